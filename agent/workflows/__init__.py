"""The user workflows built on finished run directories: compare, sweep, submit, report.

Everything here only *reads* run directories written by :mod:`agent.refine` (see :mod:`agent.workflows.rundata`);
no module in this package modifies a run.
"""
