"""Vision-language model backends, looked up by name in :data:`VLMS`."""

from agent.vlm.base import VLM, Message, VLMError, VLMReply, VLMUnavailable
from physics_iq.registry import LazyRegistry

VLMS: LazyRegistry[type] = LazyRegistry("vlm")
VLMS.register(
    "scripted", "agent.vlm.scripted:ScriptedVLM", "fake VLM replying from a list (tests; not a model)"
)
VLMS.register(
    "openai", "agent.vlm.openai_vlm:OpenAIVLM", "OpenAI-compatible API (OpenAI, vLLM, Ollama, LM Studio)"
)
VLMS.register(
    "transformers",
    "agent.vlm.transformers_vlm:TransformersVLM",
    "local transformers image-text-to-text model",
)

__all__ = ["VLM", "VLMS", "Message", "VLMError", "VLMReply", "VLMUnavailable"]
