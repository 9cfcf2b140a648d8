"""Honest selectors for the ensemble: choosing among attempts without the ground truth.

``critic`` (default) takes the attempt with the best critique, ranked by :func:`rank_critiques`:

1. consistent verdicts first, then the higher critic score;
2. ties on both: fewer violations of high severity, then of medium, then of low (what the critic saw wrong);
3. still tied: the smaller velocity jump at the switch frame (:func:`physics_iq.motion.switch_velocity_gap`,
   the continuation measured against the prefix — the tracker measurement the offline critic's continuity
   check starts from, without its tolerance and over the whole velocity, where the critic looks only at the
   horizontal part for a ball it expects to leave an edge);
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

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast

from agent.runs import write_json

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


# -- selectors: the honest pick as an extension point ----------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One attempt the ensemble can pick.

    Attributes:
        path: The attempt's video.
        loop: Its loop.
        seed: Its seed.
        critique: Its critique record (``verdict``, ``score``, ``severities``, ``failed``, ``path`` of the JSON);
            ``None`` when it has none (not critiqued).
    """

    path: str
    loop: int
    seed: int
    critique: Mapping[str, Any] | None = None

    @property
    def critiqued(self) -> bool:
        """Whether a usable critique exists (not failed)."""
        return self.critique is not None and not self.critique.get("failed", False)

    @property
    def name(self) -> str:
        return f"loop {self.loop} seed {self.seed}"


@dataclass
class SelectionContext:
    """What a selector may use besides the candidates (never ground truth).

    Attributes:
        prefix: ``(P, H, W, 3)`` uint8, the real frames up to the switch frame (``P == 1`` in i2v mode).
        fps: Frame rate.
        mode: ``i2v`` or ``v2v``.
        frames: ``path -> (T, H, W, 3)`` frames of an attempt (read once, cached).
        folder: The scenario's folder (selectors keep per-attempt results there, for resume and audit).
        motion_gap: ``candidate -> velocity jump at the switch frame (px/s)`` (the tracker's continuity).
        reasoner: The run's reasoner (a selector that asks a VLM needs one that can ``judge``).
        scene: The scenario's scene (what the reasoner is given).
        emit: Trace callback.
    """

    prefix: Any
    fps: float
    mode: str
    frames: Callable[[str], Any]
    folder: Path
    motion_gap: Callable[[Candidate], float] | None = None
    reasoner: Any = None
    scene: Any = None
    emit: Callable[..., None] = field(default=lambda **_: None)


@dataclass(frozen=True)
class Ranking:
    """A selector's answer: candidates best first (unrankable ones last, with why), and what it recorded.

    Attributes:
        order: Ranked candidates, best first.
        unranked: ``(candidate, reason)`` for candidates the selector could not rank.
        details: JSON-serialisable facts for the pick's record (scores, ties, bouts ...).
    """

    order: tuple[Candidate, ...]
    unranked: tuple[tuple[Candidate, str], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


class Selector(Protocol):
    """Ranks a scenario's attempts without ground truth; the first of the ranking is the honest pick."""

    name: str

    def describe(self) -> str:
        """One line saying how it ranks (recorded in every pick)."""
        ...

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking: ...


class SelectionError(ValueError):
    """A selector spec names no selector, or one that cannot run with this configuration."""


class CriticSelector:
    """The critic's ranking (:func:`rank_critiques`): attempts without a usable critique are not ranked."""

    name = "critic"

    def describe(self) -> str:
        return CRITIC_SELECTOR

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking:
        usable = [c for c in candidates if c.critiqued]
        gaps: dict[str, float] = {}

        def gap(record: Mapping[str, Any]) -> float:
            candidate = by_attempt[record["attempt"]]
            if context.motion_gap is None:
                return 0.0
            gaps[candidate.name] = round(float(context.motion_gap(candidate)), 2)
            return gaps[candidate.name]

        by_attempt = {c.path: c for c in usable}
        records = [dict(c.critique or {}, attempt=c.path, loop=c.loop, seed=c.seed) for c in usable]
        ranked = rank_critiques(records, gap)
        order = tuple(by_attempt[r["attempt"]] for r in ranked)
        details: dict[str, Any] = {}
        if order:
            best_key = critique_key(order[0].critique or {})
            tied = [c for c in order if critique_key(c.critique or {}) == best_key]
            if len(tied) > 1:  # the critique could not tell them apart: say what did
                details["tied_on_critique"] = len(tied)
                details["switch_velocity_gap_px_s"] = {c.name: gaps.get(c.name, 0.0) for c in tied}
        unranked = tuple((c, "no usable critique") for c in candidates if not c.critiqued)
        return Ranking(order, unranked, details)


class JudgeSelector:
    """A pairwise VLM tournament over the ``candidates`` best-critiqued attempts (see :func:`pairwise_select`);
    bouts are kept as files, so a resumed run asks no bout twice."""

    name = "judge"

    def __init__(self, candidates: int = 4) -> None:
        self.candidates = int(candidates)

    def describe(self) -> str:
        return (
            f"pairwise VLM judge over the {self.candidates} best-critiqued attempts (both orders must agree to "
            "replace the champion)"
        )

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking:
        critic = CriticSelector().rank(candidates, context)
        pool = list(critic.order[: self.candidates])
        if len(pool) < 2:
            return Ranking(
                critic.order, critic.unranked, {**critic.details, "judge": "skipped: fewer than two"}
            )
        judge = getattr(context.reasoner, "judge", None)
        if judge is None:
            raise SelectionError("selector 'judge' needs a VLM that can judge pairs (not the offline critic)")

        def prefer(a: Candidate, b: Candidate) -> Winner:
            out = context.folder / "judge" / f"{Path(a.path).stem}__{Path(b.path).stem}.json"
            if out.is_file():
                winner = json.loads(out.read_text(encoding="utf-8"))["winner"]
            else:
                verdict = judge(context.scene, context.frames(a.path), context.frames(b.path))
                write_json(out, verdict.model_dump())
                winner = verdict.winner
            context.emit(node="judge", a=a.path, b=b.path, winner=winner)
            return cast(Winner, winner)

        winner, log = pairwise_select(pool, prefer)
        order = (winner, *[c for c in critic.order if c is not winner])
        bouts = [
            {"champion": b["champion"].path, "challenger": b["challenger"].path, "votes": b["votes"]}
            for b in log
        ]
        return Ranking(order, critic.unranked, {"bouts": bouts})


class VerifierSelector:
    """Ranks by a training-free verifier's plausibility (higher first); an attempt the verifier cannot score
    (too short, blank, ...) is unranked with the verifier's reason. Each score is kept beside the attempt
    (``<attempt>.verify-<name>.json``) and read back on resume."""

    def __init__(self, verifier: str, **options: Any) -> None:
        from agent.verifiers import build_verifier

        self.name = verifier
        self.options = dict(options)
        self.verifier = build_verifier(verifier, **options)

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"verifier {self.name}{f' ({settings})' if settings else ''}: higher plausibility first"

    def scores(self, candidates: Sequence[Candidate], context: SelectionContext) -> dict[str, dict[str, Any]]:
        """``path -> score record`` (``value``, ``details``, ``error``, ``summary``), computed once per attempt."""
        from agent.verifiers import ClipInput

        out: dict[str, dict[str, Any]] = {}
        todo = []
        for c in candidates:
            saved = Path(c.path).with_suffix(f".verify-{self.name}.json")
            if saved.is_file():
                out[c.path] = json.loads(saved.read_text(encoding="utf-8"))
            else:
                todo.append(c)
        if todo:
            mode: Literal["i2v", "v2v"] = "v2v" if context.mode == "v2v" else "i2v"
            clips = [ClipInput(context.prefix, context.frames(c.path), context.fps, mode) for c in todo]
            for c, result in zip(todo, self.verifier.score_many(clips), strict=True):
                out[c.path] = result.to_dict()
                write_json(Path(c.path).with_suffix(f".verify-{self.name}.json"), out[c.path])
        return out

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking:
        scores = self.scores(candidates, context)
        scored = [c for c in candidates if scores[c.path].get("value") is not None]
        order = tuple(sorted(scored, key=lambda c: (-float(scores[c.path]["value"]), c.loop, c.seed)))
        unranked = tuple(
            (c, f"{self.name}: {scores[c.path].get('error') or 'no value'}")
            for c in candidates
            if c not in scored
        )
        values = {c.name: scores[c.path]["value"] for c in candidates}
        return Ranking(order, unranked, {f"{self.name}_values": values})


class TieBreakSelector:
    """``critic+NAME``: the critic's ranking; its ties broken by the velocity jump at the switch frame where a
    prefix shows motion (v2v), then by NAME (in i2v nothing else tells tied attempts apart); attempts without a
    usable critique follow, in NAME's order."""

    def __init__(self, critic: CriticSelector, breaker: Selector) -> None:
        self.critic = critic
        self.breaker = breaker
        self.name = f"critic+{breaker.name}"

    def describe(self) -> str:
        return (
            "critic first (consistent verdicts, critic score, fewer/lower-severity violations); ties by the "
            f"smaller velocity jump at the switch frame (v2v), then, and attempts without a critique, by "
            f"{self.breaker.describe()}"
        )

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking:
        second = self.breaker.rank(candidates, context)
        position = {c.path: i for i, c in enumerate(second.order)}
        last = len(position)
        gaps: dict[str, float] = {}
        if context.mode == "v2v" and context.motion_gap is not None:
            tied: dict[tuple[Any, ...], int] = {}
            for c in candidates:
                if c.critiqued:
                    tied[critique_key(c.critique or {})] = tied.get(critique_key(c.critique or {}), 0) + 1
            for c in candidates:
                if c.critiqued and tied[critique_key(c.critique or {})] > 1:
                    gaps[c.path] = round(float(context.motion_gap(c)), 2)

        def key(c: Candidate) -> tuple[Any, ...]:
            critic_part = critique_key(c.critique or {}) if c.critiqued else (True, 0.0, (0, 0, 0))
            jump = gaps.get(c.path, 0.0)
            return (not c.critiqued, *critic_part, jump, position.get(c.path, last), c.loop, c.seed)

        order = tuple(sorted(candidates, key=key))
        details: dict[str, Any] = {
            "tie_break": second.details,
            "tie_break_unranked": {c.path: r for c, r in second.unranked},
        }
        if gaps:
            details["switch_velocity_gap_px_s"] = {c.name: gaps[c.path] for c in candidates if c.path in gaps}
        return Ranking(order, (), details)


class RankMeanSelector:
    """``mean:A=w,B=w,...``: the weighted mean of each selector's rank (unranked = last); ties by loop, seed."""

    def __init__(self, parts: Sequence[tuple[Selector, float]]) -> None:
        self.parts = list(parts)
        self.name = "mean:" + ",".join(f"{s.name}={w:g}" for s, w in self.parts)

    def describe(self) -> str:
        return "weighted mean rank of " + "; ".join(f"{w:g} x ({s.describe()})" for s, w in self.parts)

    def rank(self, candidates: Sequence[Candidate], context: SelectionContext) -> Ranking:
        total = {c.path: 0.0 for c in candidates}
        weights = sum(w for _, w in self.parts) or 1.0
        details: dict[str, Any] = {}
        for selector, weight in self.parts:
            ranking = selector.rank(candidates, context)
            places = {c.path: i for i, c in enumerate(ranking.order)}
            for c in candidates:
                total[c.path] += weight * places.get(c.path, len(candidates))
            details[selector.name] = [c.name for c in ranking.order]
        order = tuple(sorted(candidates, key=lambda c: (total[c.path], c.loop, c.seed)))
        details["mean_rank"] = {c.name: round(total[c.path] / weights, 3) for c in candidates}
        return Ranking(order, (), details)


def selector_names() -> list[str]:
    """Base selector names (``critic``, ``judge`` and every registered verifier)."""
    from agent.verifiers import VERIFIERS

    return ["critic", "judge", *VERIFIERS.names()]


def _base(name: str, options: Mapping[str, Any]) -> Selector:
    if name == "critic":
        return CriticSelector()
    if name == "judge":
        return JudgeSelector(int(options.get("judge_candidates", 4)))
    check_selector_spec(name)
    prefix = f"{name}."
    own = {k[len(prefix) :]: v for k, v in options.items() if k.startswith(prefix)}
    shared = {k: v for k, v in options.items() if "." not in k and k != "judge_candidates"}
    return VerifierSelector(name, **{**shared, **own})


def uses_judge(spec: str) -> bool:
    """Whether a selector spec involves the VLM judge.

    >>> uses_judge("judge"), uses_judge("mean:critic=1,judge=2"), uses_judge("critic+feature-path")
    (True, True, False)
    """
    names = spec.replace("mean:", "").replace("+", ",").split(",")
    return any(name.partition("=")[0].strip() == "judge" for name in names)


def build_selector(spec: str, options: Mapping[str, Any] | None = None) -> Selector:
    """The selector a ``--selector`` spec names.

    Specs: ``critic``, ``judge``, a verifier name, ``critic+NAME`` (NAME breaks the critic's ties) or
    ``mean:NAME=W,NAME=W`` (weighted mean rank). ``options`` (``--selector-opt``) go to the verifiers:
    ``KEY=VALUE`` to all, ``NAME.KEY=VALUE`` to one; ``judge_candidates`` to the judge.

    Raises:
        SelectionError: an unknown name (did-you-mean) or a malformed spec.
        physics_iq.registry.BackendOptionError: a verifier's model or options cannot be used.
    """
    options = dict(options or {})
    spec = spec.strip()
    if spec.startswith("mean:"):
        parts = []
        for item in spec[len("mean:") :].split(","):
            name, _, weight = item.strip().partition("=")
            try:
                parts.append((_base(name.strip(), options), float(weight) if weight else 1.0))
            except ValueError as exc:
                if isinstance(exc, SelectionError):
                    raise
                raise SelectionError(
                    f"selector {spec!r}: weight {weight!r} of {name!r} is not a number"
                ) from None
        if len(parts) < 2:
            raise SelectionError(f"selector {spec!r}: a mean needs at least two selectors")
        return RankMeanSelector(parts)
    if spec.startswith("critic+"):
        return TieBreakSelector(CriticSelector(), _base(spec[len("critic+") :], options))
    return _base(spec, options)


def check_selector_spec(spec: str) -> list[str]:
    """The base selector names a spec uses, each checked (nothing is built or loaded).

    Raises:
        SelectionError: an unknown name (did-you-mean) or a malformed spec.

    >>> check_selector_spec("critic+feature-path"), check_selector_spec("mean:critic=2,motion-continuity")
    (['critic', 'feature-path'], ['critic', 'motion-continuity'])
    >>> check_selector_spec("critc")
    Traceback (most recent call last):
    ...
    agent.selection.SelectionError: unknown selector 'critc'; did you mean 'critic'? Known: critic, judge, background-stability, feature-path, feature-path-encoder, motion-continuity, world-model-surprise, critic+NAME (NAME breaks the critic's ties), mean:NAME=WEIGHT,... (weighted mean rank)
    """
    spec = spec.strip()
    if spec.startswith("mean:"):
        names = [item.partition("=")[0].strip() for item in spec[len("mean:") :].split(",")]
        if len(names) < 2:
            raise SelectionError(f"selector {spec!r}: a mean needs at least two selectors")
    elif spec.startswith("critic+"):
        names = ["critic", spec[len("critic+") :]]
    else:
        names = [spec]
    known = selector_names()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise SelectionError(
                f"unknown selector {name!r}{hint} Known: {', '.join(known)}, critic+NAME (NAME breaks the "
                "critic's ties), mean:NAME=WEIGHT,... (weighted mean rank)"
            )
    return names


def pick_record(ranking: Ranking, selector: Selector, note: str = "") -> dict[str, Any]:
    """The honest pick as recorded in the state, the trace and the summary (``{}`` when nothing is ranked)."""
    if not ranking.order:
        return {}
    best = ranking.order[0]
    record: dict[str, Any] = {
        "path": best.path,
        "loop": best.loop,
        "seed": best.seed,
        "selector": f"{selector.describe()}; no ground truth{note}",
        "selector_name": selector.name,
        "ranking": [c.path for c in ranking.order],
        "candidates": len(ranking.order) + len(ranking.unranked),
    }
    if best.critique is not None and best.critiqued:
        record["critic_score"] = best.critique["score"]
    if ranking.unranked:
        record["unranked"] = {c.path: reason for c, reason in ranking.unranked}
    record.update(ranking.details)
    return record


__all__ = [
    "CRITIC_SELECTOR",
    "SEVERITIES",
    "Candidate",
    "CriticSelector",
    "JudgeSelector",
    "RankMeanSelector",
    "Ranking",
    "SelectionContext",
    "SelectionError",
    "Selector",
    "TieBreakSelector",
    "VerifierSelector",
    "build_selector",
    "critique_key",
    "pairwise_select",
    "pick_record",
    "rank_critiques",
    "selector_names",
    "uses_judge",
    "violation_burden",
]
