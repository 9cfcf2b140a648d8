"""Sub-commands of the ``physrefine`` CLI, one module each; every module exposes ``register(app)``."""

from types import ModuleType

COMMAND_MODULES: list[ModuleType] = []
