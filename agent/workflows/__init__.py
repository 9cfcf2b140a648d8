"""The user workflows built on run directories: compare, sweep, submit, report, repeat.

``compare``, ``submit`` and ``report`` only *read* run directories written by :mod:`agent.refine` (see
:mod:`agent.workflows.rundata`); ``sweep`` and ``repeat`` create run directories of their own (one per grid cell, one per repeat).
"""
