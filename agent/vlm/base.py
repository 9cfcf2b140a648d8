"""The one extension point for vision-language models: ``VLM.chat(messages) -> VLMReply``.

Backends only send messages with images and return text. The agent owns prompt rendering (templates in
``prompts/``) and parsing replies into schemas; no backend knows what a critique is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Role = Literal["system", "user", "assistant"]


class VLMError(RuntimeError):
    """The backend failed to answer (transport error, timeout, refusal, exhausted retries)."""


class VLMUnavailable(VLMError):
    """The backend itself cannot be used right now, whatever was asked: it cannot be reached (``kind`` =
    ``"connection"``: refused, timed out, DNS) or it refused the credentials (``"auth"``: HTTP 401/403).

    Unlike a bad reply, asking again at once does not help: an auth error is never retried, and a run stops
    cleanly after a few consecutive connection failures (see :class:`agent.budget.BackendGate`).

    Attributes:
        kind: ``"connection"`` or ``"auth"``.
        endpoint: What could not be used (a URL, never with credentials).
    """

    def __init__(self, message: str, kind: str, endpoint: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.endpoint = endpoint


@dataclass(frozen=True)
class Message:
    """One chat message.

    Attributes:
        role: ``system``, ``user`` or ``assistant``.
        text: The text part.
        images: Frames shown with the text, each ``(H, W, 3)`` uint8 RGB, in order.
    """

    role: Role
    text: str
    images: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class VLMReply:
    """A model's answer with its accounting.

    Attributes:
        text: The raw reply text.
        model: The model that answered.
        prompt_tokens: Input tokens billed (0 when unknown).
        completion_tokens: Output tokens billed (0 when unknown).
        cost_usd: Estimated cost, ``None`` when no price is known.
        metadata: JSON-serialisable extras (finish reason, latency, retries...).
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class VLM(Protocol):
    """Sends messages with images, returns text. Loads/connects once, in ``__init__``.

    A backend may also define ``check() -> str``: a cheap test, made before a run spends anything, that
    the endpoint answers, the credentials are accepted and the model exists; it raises
    :class:`VLMUnavailable` or :class:`VLMError` with one line naming the option at fault, and returns
    what it checked.
    """

    name: str

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Answer the conversation; ``json_schema`` asks for structured output where the backend supports it."""
        ...
