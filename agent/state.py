"""The graph state of one scenario's refinement: paths, text and plain numbers only.

Frames live on disk under the run directory; numpy scalars never enter the state (the sqlite checkpointer
serialises it, and numpy types do not round-trip).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from typing_extensions import NotRequired


class Attempt(TypedDict):
    """One generated continuation (a file under the run directory)."""

    loop: int
    seed: int
    prompt: str
    path: str
    error: str


class CritiqueRecord(TypedDict):
    """The critique of one attempt; ``path`` holds the full :class:`~agent.schemas.Critique` JSON."""

    loop: int
    seed: int
    attempt: str
    path: str
    verdict: str
    score: float
    severe: bool
    failed: bool
    severities: NotRequired[list[str]]  # one per violation (absent in runs checkpointed before it existed)


class LoopState(TypedDict, total=False):
    """State of one scenario thread.

    ``attempts`` and ``critiques`` are joined across parallel ``Send`` branches with ``operator.add``.
    Termination is explicit: ``loop_index`` counts loops (1-based) and ``stop_reason`` is set by the converge
    node when the loop ends (never by the recursion limit).
    """

    take1_id: int
    loop_index: int
    prompt: str
    negative_prompt: str
    expectations: list[dict[str, Any]]
    prompt_history: list[str]
    attempts: Annotated[list[Attempt], operator.add]
    critiques: Annotated[list[CritiqueRecord], operator.add]
    loop_scores: list[float]
    stop_reason: str
    honest: dict[str, Any]
    oracle: dict[str, Any]
    scores: dict[str, Any]


class GenerateTask(TypedDict):
    """Payload of one ``Send("generate", ...)``: one seed of one loop."""

    take1_id: int
    loop_index: int
    prompt: str
    seed: int
    negative_prompt: NotRequired[str]
    expectations: NotRequired[list[dict[str, Any]]]
