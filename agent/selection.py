"""Honest selectors for the ensemble: choosing among attempts without the ground truth.

``critic`` (default) takes the attempt with the best critique (consistent verdicts first, then score).
``judge`` runs a pairwise tournament with a VLM (``prompts/<set>/judge.j2``): candidates in critic order,
the current champion meets each challenger in *both* orders (A/B swapped), and a challenger takes over only if
it wins both — so a judge that always answers "A" (position bias) changes nothing. Relative judgements are
what VLMs do best on physical properties ("which bounces higher"), see ``/work/shared/METHOD.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Winner = Literal["A", "B"]


def pairwise_select(
    candidates: Sequence[T], prefer: Callable[[T, T], Winner]
) -> tuple[T, list[dict[str, Any]]]:
    """Knockout over ``candidates`` (best-first by a prior ranking); return the winner and the bout log.

    Args:
        candidates: At least one candidate; ties keep the earlier (better-ranked) one.
        prefer: ``prefer(a, b)`` returns ``"A"`` if ``a`` (shown first) is more plausible, else ``"B"``.

    >>> brighter = lambda a, b: "A" if a > b else "B"
    >>> pairwise_select([3, 9, 5], brighter)[0]
    9
    >>> pairwise_select([3, 9, 5], lambda a, b: "A")[0]  # always "A": position bias, no change
    3
    """
    if not candidates:
        raise ValueError("pairwise_select needs at least one candidate")
    champion = candidates[0]
    log: list[dict[str, Any]] = []
    for challenger in candidates[1:]:
        first = prefer(champion, challenger)  # champion shown as A
        second = prefer(challenger, champion)  # challenger shown as A
        replaced = first == "B" and second == "A"
        log.append(
            {"champion": champion, "challenger": challenger, "votes": [first, second], "replaced": replaced}
        )
        if replaced:
            champion = challenger
    return champion, log


__all__ = ["pairwise_select"]
