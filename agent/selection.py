"""Honest selectors for the ensemble: choosing among attempts without the ground truth.

``critic`` (default) takes the attempt with the best critique, ranked by :func:`rank_critiques`:

1. consistent verdicts first, then the higher critic score;
2. ties on both: fewer violations of high severity, then of medium, then of low (what the critic saw wrong);
3. still tied: the smaller velocity jump at the switch frame (:func:`physics_iq.motion.switch_velocity_gap`,
   the continuation measured against the prefix — the same measurement the offline critic's continuity
   check uses, without its tolerance);
4. still tied: the earlier loop (a later rewrite that changed nothing measurable has earned nothing), then
   the lower seed (deterministic; only reached when every measurement ties).

Nothing here looks at ground truth.
``judge`` runs a pairwise tournament with a VLM (``prompts/<set>/judge.j2``): candidates in critic order,
the current champion meets each challenger in *both* orders (A/B swapped), and a challenger takes over only if
it wins both — so a judge that always answers "A" (position bias) changes nothing. Relative judgements are
what VLMs do best on physical properties: "which bounces higher" is far easier for them than an absolute
elasticity or friction estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Winner = Literal["A", "B"]
R = TypeVar("R", bound=Mapping[str, Any])

#: How the critic selector ranks, as recorded in every honest pick.
CRITIC_SELECTOR = (
    "critic: consistent verdicts first, critic score, fewer/lower-severity violations, smaller velocity jump "
    "at the switch frame, earlier loop, lower seed"
)

#: Severities, worst first (the order of step 2 of the ranking).
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")


def violation_burden(record: Mapping[str, Any]) -> tuple[int, ...]:
    """``(#high, #medium, #low)`` violations of a critique record (fewer is better, compared in order).

    >>> violation_burden({"severities": ["medium", "high", "medium"]})
    (1, 2, 0)
    """
    severities = list(record.get("severities", []))
    return tuple(severities.count(level) for level in SEVERITIES)


def rank_critiques(records: Sequence[R], motion_gap: Callable[[R], float] | None = None) -> list[R]:
    """Usable (not failed) critique records, best first, by the ranking in the module docstring.

    Args:
        records: Critique records (``verdict``, ``score``, ``severities``, ``loop``, ``seed``, ``failed``).
        motion_gap: Record -> velocity jump at the switch frame (px/s). Called only for records still tied
            after steps 1-2 (it reads and tracks a video); ``None`` skips step 3.

    >>> a = dict(verdict="consistent", score=1.0, severities=[], loop=1, seed=0, failed=False)
    >>> b = dict(a, seed=1)
    >>> c = dict(a, loop=2, severities=["low"])
    >>> gaps = {0: 40.0, 1: 12.0}
    >>> [(r["loop"], r["seed"]) for r in rank_critiques([a, b, c], lambda r: gaps[r["seed"]])]
    [(1, 1), (1, 0), (2, 0)]
    >>> [(r["loop"], r["seed"]) for r in rank_critiques([c, b, a])]  # without motion: earlier loop, lower seed
    [(1, 0), (1, 1), (2, 0)]
    """
    usable = [r for r in records if not r["failed"]]
    tied: dict[tuple[Any, ...], int] = {}
    for r in usable:
        tied[critique_key(r)] = tied.get(critique_key(r), 0) + 1
    gaps: dict[int, float] = {}

    def gap(r: R) -> float:
        if motion_gap is None or tied[critique_key(r)] < 2:
            return 0.0
        if id(r) not in gaps:
            gaps[id(r)] = float(motion_gap(r))
        return gaps[id(r)]

    return sorted(usable, key=lambda r: (*critique_key(r), gap(r), int(r["loop"]), int(r["seed"])))


def critique_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Steps 1-2 of the ranking as a sort key (smaller is better): records with equal keys are tied.

    >>> critique_key({"verdict": "consistent", "score": 0.9, "severities": ["low"]})
    (False, -0.9, (0, 0, 1))
    """
    return (record["verdict"] != "consistent", -float(record["score"]), violation_burden(record))


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


__all__ = [
    "CRITIC_SELECTOR",
    "SEVERITIES",
    "critique_key",
    "pairwise_select",
    "rank_critiques",
    "violation_burden",
]
