"""The user workflows built on run directories: compare, sweep, submit, report.

``compare``, ``submit`` and ``report`` only *read* run directories written by :mod:`agent.refine` (see
:mod:`agent.workflows.rundata`); ``sweep`` creates run directories of its own (one per grid cell).
"""
