"""Everything that turns (prefix clip, prompt, seed) into a continuation.

Backends are looked up by name in :data:`GENERATORS`; each family lives in its own module and is imported
only when used, so the heavy ``[models]`` extra is needed only for neural backends.
"""

from generators.base import (
    GeneratedVideo,
    GenerationError,
    GenerationRequest,
    Generator,
    PromptStyle,
    check_output,
    prompt_style,
)
from physics_iq.registry import LazyRegistry

GENERATORS: LazyRegistry[type] = LazyRegistry("generator")

# Offline stand-ins and baselines (no model, no weights).
GENERATORS.register(
    "physics-prior",
    "generators.physics_prior:PhysicsPriorGenerator",
    "prompt-driven 2D physics (offline, not neural)",
)
GENERATORS.register("static", "generators.baselines:StaticGenerator", "baseline: the switch frame repeated")
GENERATORS.register("take2", "generators.baselines:Take2Generator", "calibration: copy of the real take 2")

# Neural backends (the [models] extra): diffusers pipelines, one module per family.
GENERATORS.register("wan2.1-i2v", "generators.diffusers_wan:Wan21I2VGenerator", "Wan 2.1 I2V (diffusers)")
GENERATORS.register(
    "wan2.2-i2v-a14b", "generators.diffusers_wan:Wan22I2VA14BGenerator", "Wan 2.2 I2V A14B (diffusers)"
)
GENERATORS.register(
    "wan2.2-ti2v-5b", "generators.diffusers_wan:Wan22TI2V5BGenerator", "Wan 2.2 TI2V 5B (diffusers)"
)
GENERATORS.register(
    "wan-vace", "generators.diffusers_wan:WanVACEGenerator", "Wan VACE prefix continuation, v2v"
)
GENERATORS.register(
    "ltx-condition", "generators.diffusers_ltx:LTXConditionGenerator", "LTX-Video prefix continuation, v2v"
)
GENERATORS.register(
    "cogvideox-i2v",
    "generators.diffusers_cogvideox:CogVideoXI2VGenerator",
    "CogVideoX 1.0/1.5 I2V (diffusers)",
)
GENERATORS.register("svd", "generators.diffusers_svd:SVDGenerator", "Stable Video Diffusion I2V, no text")
GENERATORS.register(
    "folder", "generators.external:FolderGenerator", "precomputed videos from a folder (closed APIs)"
)
GENERATORS.register("command", "generators.external:CommandGenerator", "an external program, run per request")
GENERATORS.register(
    "diffusers-i2v",
    "generators.diffusers_generic:GenericI2VGenerator",
    "any diffusers I2V pipeline (fallback)",
)

__all__ = [
    "GENERATORS",
    "GeneratedVideo",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "PromptStyle",
    "check_output",
    "prompt_style",
]
