"""Everything that turns (prefix clip, prompt, seed) into a continuation.

Backends are looked up by name in :data:`GENERATORS`; each family lives in its own module and is imported
only when used, so the heavy ``[models]`` extra is needed only for neural backends.
"""

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, Generator, check_output
from generators.registry import LazyRegistry

GENERATORS: LazyRegistry[type] = LazyRegistry("generator")

__all__ = [
    "GENERATORS",
    "GeneratedVideo",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "check_output",
]
