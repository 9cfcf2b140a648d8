"""Sub-commands of the ``physrefine`` CLI, one module each; every module exposes ``register(app)``."""

from types import ModuleType

from agent.commands import data, refine, score, suite, workflows

COMMAND_MODULES: list[ModuleType] = [score, refine, suite, workflows, data]
