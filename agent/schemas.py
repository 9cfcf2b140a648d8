"""What the reasoning roles return, as pydantic schemas, and the one place model text is parsed.

A reply that does not parse raises :class:`ReplyParseError` keeping the raw text; the VLM reasoner asks the
model once to repair it (:class:`agent.reasoning.VLMReasoner`), and past that the graph node declares a retry
policy for it and records a failure (beside the attempt, never in these schemas) when retries run out.
"""

from __future__ import annotations

import json
import re
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

Severity = Literal["low", "medium", "high"]

# The models below are what a model is asked to fill: their JSON schemas go to the backend as structured
# output. So they hold no internal bookkeeping (whether a critique failed and why lives in the run's records:
# ``*.failed.json`` files and the graph state), every reasoning field is required (a model that may skip its
# reasoning often does), and there are no tuple types (``prefixItems``, refused by some constrained-decoding
# servers). Field descriptions are part of the schema the model reads.


def generated_span(first: int, last: int, fps: float) -> str:
    """``when`` for generated frames ``first..last`` (0-based after the switch frame), in the terms of the
    labels the model is shown (:func:`agent.views.time_label`).

    >>> generated_span(3, 11, 8.0), generated_span(0, 0, 8.0)
    ('generated, t = +0.50 s to +1.50 s', 'generated, t = +0.12 s')
    """
    from agent.views import format_seconds, generated_seconds, time_label

    start = time_label("generated", generated_seconds(first, fps))
    if last <= first:
        return start
    return f"{start} to {format_seconds(generated_seconds(last, fps))}"


class ObjectExpectation(BaseModel):
    """What one object should do after the switch frame, as numbers and classes beside the prompt's words.

    A generator that takes structured hints receives these as ``GenerationRequest.context["expectations"]``
    (the physics prior does; a real video model ignores them). Positions and times are fractions, so they
    mean the same at any frame size and frame rate.
    """

    object: str = Field(
        description="The object, as you would point it out, e.g. 'the grey ball on the left'."
    )
    x: float = Field(
        ge=0.0, le=1.0, description="Where its centre is in the switch frame: 0 = left edge, 1 = right edge."
    )
    y: float = Field(
        ge=0.0, le=1.0, description="Where its centre is in the switch frame: 0 = top edge, 1 = bottom edge."
    )
    motion: Literal["still", "moving", "falling", "rolling", "sliding", "swinging", "rising"] = Field(
        description="What it does right after the switch frame."
    )
    direction: Literal["none", "left", "right", "up", "down"] = Field(
        description="Which way it moves in the picture right after the switch frame ('none' if it stays still)."
    )
    speed: Literal["none", "slow", "medium", "fast"] = Field(
        description="How fast it moves: slow (crosses the picture in 10 s or more), medium (in about 4 s), "
        "fast (in 2 s or less)."
    )
    bounce: Literal["none", "low", "high"] = Field(
        description="When it lands: none (it stays down), low (a small bounce), high (several bounces, each lower)."
    )
    friction: Literal["low", "medium", "high"] = Field(
        description="How quickly it slows down while rolling or sliding: low (keeps its speed), high (stops soon)."
    )
    lands_at: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="When it first hits the surface below it, as a fraction of the generated clip (0 = at the "
        "switch frame, 1 = at its end); null if it does not fall.",
    )
    stops_at: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="When it comes to rest, as a fraction of the generated clip; null if it keeps moving or "
        "never moves.",
    )


class Prediction(BaseModel):
    """Physics-aware text prediction: what is there, what acts on it, what will visibly happen, and the prompt."""

    objects: list[str] = Field(
        description="Every object that moves or may move, as you would point it out: colour, shape, where it is."
    )
    physics: str = Field(
        min_length=1,
        description="Your reasoning: the forces and contacts acting on each object and how it moves now.",
    )
    expected_outcome: str = Field(
        min_length=1,
        description="What will visibly happen in the next 5 seconds and where everything ends up.",
    )
    prompt: str = Field(min_length=1, description="The prompt for the video model.")
    negative_prompt: str = Field(
        default="", description="What the video must not show; empty unless you were asked for one."
    )
    expectations: list[ObjectExpectation] = Field(
        default_factory=list,
        description="For each object that moves or may move, what it does after the switch frame, as the "
        "prompt says it; empty if you cannot tell.",
    )


class Violation(BaseModel):
    """One physical inconsistency seen in an attempt."""

    object: str = Field(description="The object, as you would point it out.")
    law: str = Field(description="The physical rule broken, e.g. 'gravity', 'velocity continuity'.")
    severity: Severity = Field(description="'high' when it is plainly impossible, 'low' when barely visible.")
    when: str = Field(
        description="Where it shows, by the labels of the frames you were shown, e.g. "
        "'generated, t = +0.50 s to +1.25 s'."
    )
    detail: str = Field(default="", description="What is seen, in one sentence.")


class Critique(BaseModel):
    """Multimodal chain-of-thought critique of one attempt (what the critic model fills)."""

    observations: str = Field(
        min_length=1, description="What each object does in the generated frames, in order of time."
    )
    expected_physics: str = Field(
        min_length=1,
        description="What each object should do, given how it moved before the switch frame and the scene.",
    )
    violations: list[Violation] = Field(description="Every inconsistency with physics; empty if none.")
    verdict: Literal["consistent", "inconsistent"]
    score: float = Field(ge=0.0, le=1.0, description="0 = physically impossible, 1 = fully plausible.")
    suggested_changes: list[str] = Field(
        description="Changes to the prompt, as concrete visible events, that would remove the violations."
    )

    @property
    def severe(self) -> bool:
        """True when any violation is of high severity."""
        return any(v.severity == "high" for v in self.violations)


class Rewrite(BaseModel):
    """A new generation prompt and why it changed."""

    reasoning: str = Field(
        min_length=1, description="Which problems the new prompt fixes and why the old wording caused them."
    )
    prompt: str = Field(min_length=1, description="The new prompt for the video model.")
    negative_prompt: str = Field(
        default="", description="What the video must not show; empty unless you were asked for one."
    )
    expectations: list[ObjectExpectation] = Field(
        default_factory=list,
        description="For each object that moves or may move, what it should do after the switch frame, "
        "corrected as the new prompt says it; empty if you cannot tell.",
    )


class Judgement(BaseModel):
    """A pairwise verdict: which of two continuations (A shown first, then B) is more plausible."""

    reasoning: str = Field(
        min_length=1, description="What each continuation does, and which obeys physics better."
    )
    winner: Literal["A", "B"]


#: The schemas a model fills (checked by tests: no internal fields, no tuples, reasoning required).
MODEL_FACING: tuple[type[BaseModel], ...] = (Prediction, Critique, Rewrite, Judgement, ObjectExpectation)


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

    >>> parse_reply('Sure!\\n```json\\n{"reasoning": "r", "prompt": "A ball rolls."}\\n```', Rewrite).prompt
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
