"""What the reasoning roles return, as pydantic schemas, and the one place model text is parsed.

A reply that does not parse raises :class:`ReplyParseError` keeping the raw text; the VLM reasoner asks the
model once to repair it (:class:`agent.reasoning.VLMReasoner`), and past that the graph node declares a retry
policy for it and records a failed critique when retries run out.
"""

from __future__ import annotations

import json
import re
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

Severity = Literal["low", "medium", "high"]


class Prediction(BaseModel):
    """Physics-aware text prediction: what is there, what acts on it, what will visibly happen, and the prompt."""

    objects: list[str] = Field(default_factory=list)
    physics: str = ""
    expected_outcome: str = ""
    prompt: str = Field(min_length=1)


class Violation(BaseModel):
    """One physical inconsistency seen in an attempt."""

    frames: tuple[int, int] = (0, 0)
    object: str = ""
    law: str
    severity: Severity = "medium"
    detail: str = ""


class Critique(BaseModel):
    """Multimodal chain-of-thought critique of one attempt."""

    observations: str = ""
    expected_physics: str = ""
    violations: list[Violation] = Field(default_factory=list)
    verdict: Literal["consistent", "inconsistent"]
    score: float = Field(ge=0.0, le=1.0)
    suggested_changes: list[str] = Field(default_factory=list)
    failed: bool = False
    error: str = ""

    @property
    def severe(self) -> bool:
        """True when any violation is of high severity."""
        return any(v.severity == "high" for v in self.violations)

    @classmethod
    def failure(cls, error: str) -> Critique:
        """The record of a critique that could not be obtained (the run goes on)."""
        return cls(verdict="inconsistent", score=0.0, failed=True, error=error[:2000])


class Rewrite(BaseModel):
    """A new generation prompt and why it changed."""

    reasoning: str = ""
    prompt: str = Field(min_length=1)


class Judgement(BaseModel):
    """A pairwise verdict: which of two continuations (A shown first, then B) is more plausible."""

    reasoning: str = ""
    winner: Literal["A", "B"]


class ReplyParseError(ValueError):
    """A model reply could not be parsed into the expected schema.

    Attributes:
        schema: The schema's name.
        reason: What was wrong, without the reply (shown to the model in a repair turn).
        raw: The reply text.
    """

    def __init__(self, schema: str, reason: str, raw: str) -> None:
        self.schema = schema
        self.reason = reason
        self.raw = raw
        super().__init__(f"reply is not a valid {schema}: {reason}; reply began {raw[:200]!r}")


M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def parse_reply(text: str, schema: type[M]) -> M:
    """Parse a model reply into ``schema``: bare JSON, fenced JSON, or the first ``{...}`` in the text.

    >>> parse_reply('Sure!\\n```json\\n{"prompt": "A ball rolls."}\\n```', Rewrite).prompt
    'A ball rolls.'
    >>> parse_reply("I cannot help with that.", Rewrite)
    Traceback (most recent call last):
    ...
    agent.schemas.ReplyParseError: reply is not a valid Rewrite: no JSON object found; reply began 'I cannot help with that.'
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    if not candidates:
        raise ReplyParseError(schema.__name__, "no JSON object found", text)
    last_error = ""
    for candidate in candidates:
        try:
            return schema.model_validate(json.loads(candidate))
        except json.JSONDecodeError as exc:
            last_error = f"invalid JSON ({exc.msg} at position {exc.pos})"
        except ValidationError as exc:
            last_error = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
    raise ReplyParseError(schema.__name__, last_error, text)
