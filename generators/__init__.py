"""Everything that turns (prefix clip, prompt, seed) into a continuation.

Backends are looked up by name in :data:`GENERATORS`; each family lives in its own module and is imported
only when used, so the heavy ``[models]`` extra is needed only for neural backends.
"""

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, Generator, check_output
from generators.registry import LazyRegistry

GENERATORS: LazyRegistry[type] = LazyRegistry("generator")

# Offline stand-ins and baselines (no model, no weights).
GENERATORS.register(
    "physics-prior",
    "generators.physics_prior:PhysicsPriorGenerator",
    "prompt-driven 2D physics (offline, not neural)",
)
GENERATORS.register("static", "generators.baselines:StaticGenerator", "baseline: the switch frame repeated")
GENERATORS.register("take2", "generators.baselines:Take2Generator", "calibration: copy of the real take 2")

__all__ = [
    "GENERATORS",
    "GeneratedVideo",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "check_output",
]
