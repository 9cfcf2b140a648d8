"""The refinement loop as one LangGraph state machine: :func:`build_graph` declares it, one function per node.

::

    predict -> generate x K (Send, one per seed) -> critique -> converge -+-> rewrite -> generate x K ...
                                                                          +-> ensemble -> score -> END

Nodes are plain functions of the state and LangGraph's runtime; what they need besides the state (reasoner,
generator pool, scenes, settings, selector, scorer, trace) is the run's :class:`LoopContext`, passed with
``graph.stream(..., context=LoopContext(...))`` and never checkpointed. The state holds paths, text and
numbers only.

A reply that never parses does not end the run: a failed prediction falls back to the prompt set's
``fallback.j2`` prompt (from the description), a failed critique is recorded as such, a failed judge falls back
to the critic's pick, and a failed generation is recorded on its attempt.

Nodes are idempotent: an attempt is a content-addressed video file (hash of prompt, seed, generator and
request) reused when already on disk, a critique a JSON file next to it; so a killed run, resumed from the
sqlite checkpoint, neither loses nor duplicates attempts.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, Send, interrupt

from agent.budget import BackendDown, scenario_scope
from agent.pool import GeneratorPool
from agent.reasoning import Reasoner, RewriteContext, Scene, fallback_prediction
from agent.runs import write_json
from agent.schemas import Critique, Prediction, ReplyParseError, Rewrite
from agent.selection import (
    Candidate,
    CriticSelector,
    SelectionContext,
    Selector,
    pick_record,
    rank_critiques,
)
from agent.state import Attempt, CritiqueRecord, GenerateTask, LoopState
from agent.vlm.base import VLMError, VLMUnavailable
from generators.base import GenerationError, GenerationRequest
from physics_iq.motion import switch_velocity_gap
from physics_iq.video import read_video, write_video

logger = logging.getLogger(__name__)


class SceneSource(Protocol):
    """Where the nodes get a scenario's scene, folder and generator context (by take-1 row ID)."""

    def scene(self, take1_id: int) -> Scene: ...

    def scenario_dir(self, take1_id: int) -> Path: ...

    def context(self, take1_id: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LoopSettings:
    """The loop's budgets and stopping rules.

    Attributes:
        n_seeds: Attempts per loop.
        max_loops: Loop budget.
        seed: Base seed. Loop ``l`` (1-based) draws seeds ``seed + (l - 1) * n_seeds + k``: every loop tries new
            seeds, so the refinement and its equal-budget best-of-N baseline (one loop of ``max_loops x
            n_seeds`` seeds from ``seed``) spend exactly the same seeds and differ only by the prompts.
        similarity_stop: Stop when a rewrite is at least this similar to the previous prompt (difflib ratio).
        plateau: Stop when the loop's best critic score improves by less than this over the best so far.
    """

    n_seeds: int = 2
    max_loops: int = 4
    seed: int = 0
    similarity_stop: float = 0.98
    plateau: float = 0.005


@dataclass(frozen=True)
class LoopContext:
    """Everything the nodes need besides the state (LangGraph's runtime context; not checkpointed).

    Attributes:
        reasoner: The predict/critique/rewrite roles (a VLM or the offline critic).
        generators: The generator pool; a node borrows an instance for one call.
        generator_id: Name plus options, part of every attempt's content hash.
        scenes: Scene, folder and generator context per scenario.
        settings: Budgets and stopping rules.
        selector: The honest ensemble selector (:mod:`agent.selection`; the critic's ranking by default).
        label: Names this variant of the loop in its output files and events (``""`` for the refinement
            itself, ``"best_of_n"`` for the equal-budget baseline).
        expectations: Give the generator the prediction's structured per-object expectations
            (``request.context["expectations"]``): only for generators that read them (the physics prior).
        score: Optional ``(take1_id, attempts) -> scores dict`` (the Physics-IQ evaluator, when ground truth
            exists); must label oracle numbers as such.
        trace: Optional callback receiving node events (``dict``) for the run's JSONL trace.
    """

    reasoner: Reasoner
    generators: GeneratorPool
    generator_id: str
    scenes: SceneSource
    settings: LoopSettings = field(default_factory=LoopSettings)
    selector: Selector = field(default_factory=CriticSelector)
    label: str = ""
    expectations: bool = False
    score: Callable[[int, list[Attempt]], dict[str, Any]] | None = None
    trace: Callable[[dict[str, Any]], None] | None = None

    def emit(self, **event: Any) -> None:
        if self.trace is not None:
            self.trace({**event, "variant": self.label} if self.label else event)


Rt = Runtime[LoopContext]


def attempt_key(
    generator_id: str,
    scene: Scene,
    prompt: str,
    seed: int,
    negative_prompt: str = "",
    expectations: list[dict[str, Any]] | None = None,
) -> str:
    """Content hash naming an attempt: same inputs, same file (a negative prompt and the structured
    expectations, when the generator gets them, count)."""
    digest = hashlib.sha256()
    parts = [generator_id, scene.mode, f"{scene.fps:g}", str(scene.num_frames), str(seed), prompt]
    if negative_prompt:
        parts.append("negative:" + negative_prompt)
    if expectations:
        parts.append("expectations:" + json.dumps(expectations, sort_keys=True))
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(hashlib.sha256(np.ascontiguousarray(scene.prefix[-1]).tobytes()).digest())
    return digest.hexdigest()[:20]


def loop_attempts(state: LoopState, loop: int) -> list[Attempt]:
    return [a for a in state.get("attempts", []) if a["loop"] == loop]


def loop_critiques(state: LoopState, loop: int) -> list[CritiqueRecord]:
    return [c for c in state.get("critiques", []) if c["loop"] == loop]


def best_critique(
    records: list[CritiqueRecord], motion_gap: Callable[[CritiqueRecord], float] | None = None
) -> CritiqueRecord | None:
    """The best usable critique by :func:`agent.selection.rank_critiques` (consistent verdicts first, critic
    score, fewer/lower-severity violations, then -- with ``motion_gap`` -- velocity continuity at the switch
    frame, then the earlier loop and the lower seed). ``None`` when every critique failed."""
    ranked = rank_critiques(records, motion_gap)
    return ranked[0] if ranked else None


# -- routers: small named functions returning literals or Send lists -------------------------------------------
def route_after_converge(state: LoopState) -> Literal["rewrite", "ensemble"]:
    """Go on refining unless the converge node recorded a stop reason."""
    return "ensemble" if state.get("stop_reason") else "rewrite"


def route_after_rewrite(state: LoopState, runtime: Rt) -> list[Send] | Literal["ensemble"]:
    """Back to generation (one ``Send`` per seed) unless the rewrite recorded a stop reason."""
    return "ensemble" if state.get("stop_reason") else send_generate(state, runtime)


def send_generate(state: LoopState, runtime: Rt) -> list[Send]:
    """One ``generate`` task per seed of the current loop."""
    settings = runtime.context.settings
    loop = int(state["loop_index"])
    return [
        Send(
            "generate",
            GenerateTask(
                take1_id=state["take1_id"],
                loop_index=loop,
                prompt=state["prompt"],
                seed=settings.seed + (loop - 1) * settings.n_seeds + k,
                negative_prompt=state.get("negative_prompt", ""),
                expectations=state.get("expectations", []) if runtime.context.expectations else [],
            ),
        )
        for k in range(settings.n_seeds)
    ]


def decide_stop(state: LoopState, max_loops: int, plateau: float) -> tuple[str, float]:
    """The stop reason after the current loop's critiques (``""`` = go on) and this loop's best score.

    Converged means every attempt of the loop was critiqued consistent without a severe violation: one lucky
    seed is not convergence, the prompt must work whatever the seed.

    >>> rec = dict(loop=1, seed=0, attempt="a", path="p", verdict="consistent", score=0.9, severe=False, failed=False)
    >>> att = dict(loop=1, seed=0, prompt="p", path="a", error="")
    >>> decide_stop({"loop_index": 1, "critiques": [rec], "attempts": [att]}, max_loops=4, plateau=0.01)
    ('converged: all 1 attempt(s) of loop 1 consistent without severe violations', 0.9)
    >>> other = dict(rec, seed=1, attempt="b", verdict="inconsistent", score=0.4)
    >>> decide_stop({"loop_index": 1, "critiques": [rec, other], "attempts": [att, dict(att, seed=1)]}, 4, 0.01)
    ('', 0.9)
    >>> decide_stop({"loop_index": 4, "critiques": [dict(rec, loop=4, verdict="inconsistent")]}, 4, 0.01)
    ('max_loops: 4 loop(s) done', 0.9)
    >>> failed = dict(loop=1, seed=0, prompt="p", path="", error="gen: out of memory")
    >>> decide_stop({"loop_index": 1, "attempts": [failed, dict(failed, seed=1)]}, 4, 0.01)
    ('failed: all 2 generation(s) of loop 1 failed (gen: out of memory)', 0.0)
    """
    loop = int(state.get("loop_index", 1))
    records = loop_critiques(state, loop)
    best = best_critique(records)
    score = float(best["score"]) if best else 0.0
    previous = list(state.get("loop_scores", []))
    attempts = loop_attempts(state, loop)
    if attempts and all(a["error"] for a in attempts):
        # Nothing to critique or rewrite from; the errors are on the attempts (and in the trace).
        return (
            f"failed: all {len(attempts)} generation(s) of loop {loop} failed ({attempts[0]['error']})",
            score,
        )
    usable = [r for r in records if not r["failed"]]
    expected = max(len(attempts), 1)
    if len(usable) >= expected and all(r["verdict"] == "consistent" and not r["severe"] for r in usable):
        return (
            f"converged: all {len(usable)} attempt(s) of loop {loop} consistent without severe violations",
            score,
        )
    if loop >= max_loops:
        return f"max_loops: {max_loops} loop(s) done", score
    if best is None and records:
        return "failed: no critique of this loop could be obtained", score
    if previous and score < max(previous) + plateau and loop >= 3:
        return f"plateau: best critic score {score:.3f} not above {max(previous):.3f}", score
    return "", score


# -- 1. predict: physics-aware text prediction and the first prompt -------------------------------------------
def predict(state: LoopState, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    take1_id = state["take1_id"]
    if state.get("prompt"):  # a variant started from a given prompt (the best-of-N baseline): nothing to ask
        ctx.emit(node="predict", take1_id=take1_id, prompt=state["prompt"], given=True)
        return {"loop_index": 1, "prompt_history": [state["prompt"]]}
    scene = ctx.scenes.scene(take1_id)
    saved = ctx.scenes.scenario_dir(take1_id) / "loop_1" / "prediction.json"
    if saved.is_file():  # a run killed after the reply and before the step's checkpoint: do not pay twice
        prediction = Prediction.model_validate_json(saved.read_text(encoding="utf-8"))
        ctx.emit(node="predict", take1_id=take1_id, prompt=prediction.prompt, reused=True)
    else:
        prediction = ctx.reasoner.predict(scene)
        write_json(saved, prediction.model_dump())
        ctx.emit(node="predict", take1_id=take1_id, prompt=prediction.prompt)
    return {
        "loop_index": 1,
        "prompt": prediction.prompt,
        "negative_prompt": prediction.negative_prompt,
        "expectations": [e.model_dump() for e in prediction.expectations],
        "prompt_history": [prediction.prompt],
    }


def predict_failed(state: LoopState, error: NodeError, runtime: Rt) -> Command[Literal["generate"]]:
    """Retries ran out: record the failed prediction (error and raw reply) in ``loop_1/prediction.failed.json``
    and go on from the prompt set's ``fallback.j2`` prompt."""
    ctx = runtime.context
    take1_id = state["take1_id"]
    scene = ctx.scenes.scene(take1_id)
    reason = f"{type(error.error).__name__}: {error.error}"
    raw = error.error.raw if isinstance(error.error, ReplyParseError) else ""
    fallback = fallback_prediction(ctx.reasoner.prompts, scene, reason)
    folder = ctx.scenes.scenario_dir(take1_id) / "loop_1"
    write_json(
        folder / "prediction.failed.json",
        {
            "failed": True,
            "error": reason[:2000],
            "raw": raw[:2000],
            "fallback_template": "fallback",
            "fallback": fallback.model_dump(),
        },
    )
    (folder / "prompt.txt").write_text(fallback.prompt + "\n", encoding="utf-8")
    ctx.emit(node="predict", take1_id=take1_id, failed=True, error=reason[:300], prompt=fallback.prompt)
    update = {"loop_index": 1, "prompt": fallback.prompt, "prompt_history": [fallback.prompt]}
    return Command(update=update, goto=send_generate(cast(LoopState, {**state, **update}), runtime))


# -- 2. generate: one seed, content-addressed on disk, on an instance borrowed from the pool -------------------
def generate(task: GenerateTask, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    take1_id, loop, prompt, seed = task["take1_id"], task["loop_index"], task["prompt"], task["seed"]
    negative = task.get("negative_prompt", "")
    expectations = task.get("expectations", [])
    scene = ctx.scenes.scene(take1_id)
    folder = ctx.scenes.scenario_dir(take1_id)
    key = attempt_key(ctx.generator_id, scene, prompt, seed, negative, expectations)
    path = folder / "attempts" / f"{key}.mp4"
    error = ""
    if path.is_file():
        ctx.emit(node="generate", take1_id=take1_id, loop=loop, seed=seed, path=str(path), reused=True)
    else:
        request = GenerationRequest(
            prefix=scene.prefix,
            fps=scene.fps,
            prompt=prompt,
            seed=seed,
            num_frames=scene.num_frames,
            mode="v2v" if scene.mode == "v2v" else "i2v",
            negative_prompt=negative,
            context={
                **ctx.scenes.context(take1_id),
                **({"expectations": expectations} if expectations else {}),
            },
        )
        started = time.perf_counter()
        try:
            variant = f" {ctx.label}" if ctx.label else ""
            video = ctx.generators.generate(request, label=f"#{take1_id}{variant} loop {loop} seed {seed}")
            record = {"prompt": prompt, "seed": seed, **dict(video.metadata)}
            if negative:
                record["negative_prompt"] = negative
            write_json(path.with_suffix(".json"), record)
            write_video(path, video.frames, scene.fps)
        except GenerationError as exc:  # adapters raise it for anything that makes a request impossible
            error = str(exc)
            logger.warning("generation failed (scenario %s, loop %d, seed %d): %s", take1_id, loop, seed, exc)
        seconds = round(time.perf_counter() - started, 3)  # wall time, including any wait for a free instance
        ctx.emit(
            node="generate",
            take1_id=take1_id,
            loop=loop,
            seed=seed,
            path=str(path),
            error=error,
            seconds=seconds,
        )
    attempt = Attempt(loop=loop, seed=seed, prompt=prompt, path=str(path) if not error else "", error=error)
    return {"attempts": [attempt]}


# -- 3. critique: MM-CoT on every attempt of the loop (files reused on resume; retried on bad replies) --------
def critique(state: LoopState, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    take1_id, loop = state["take1_id"], int(state["loop_index"])
    done = {c["attempt"] for c in loop_critiques(state, loop)}
    scene = ctx.scenes.scene(take1_id)
    records = []
    for attempt in loop_attempts(state, loop):
        if not attempt["path"] or attempt["path"] in done:
            continue
        out = Path(attempt["path"]).with_suffix(f".critique-{loop}.json")
        if out.is_file():
            result = Critique.model_validate_json(out.read_text(encoding="utf-8"))
        else:
            frames, _ = read_video(attempt["path"])
            result = ctx.reasoner.critique(scene, attempt["prompt"], frames)
            write_json(out, result.model_dump())
        records.append(_record(attempt, out, result))
        ctx.emit(
            node="critique",
            take1_id=take1_id,
            loop=loop,
            seed=attempt["seed"],
            verdict=result.verdict,
            score=result.score,
            violations=[v.law for v in result.violations],
        )
    return {"critiques": records}


def critique_failed(state: LoopState, error: NodeError, runtime: Rt) -> Command[Literal["converge"]]:
    """Retries ran out: record failed critiques for the loop's remaining attempts; the run goes on."""
    ctx = runtime.context
    take1_id, loop = state["take1_id"], int(state["loop_index"])
    done = {c["attempt"] for c in loop_critiques(state, loop)}
    records = []
    reason = f"{type(error.error).__name__}: {error.error}"
    raw = error.error.raw if isinstance(error.error, ReplyParseError) else ""
    for attempt in loop_attempts(state, loop):
        if attempt["path"] and attempt["path"] not in done:
            out = Path(attempt["path"]).with_suffix(f".critique-{loop}.failed.json")
            write_json(out, {"failed": True, "error": reason[:2000], "raw": raw[:2000]})
            records.append(_record(attempt, out, None))
    ctx.emit(node="critique", take1_id=take1_id, loop=loop, failed=True, error=str(error.error)[:300])
    return Command(update={"critiques": records}, goto="converge")


# -- 4. converge: explicit termination, recorded in state -----------------------------------------------------
def converge(state: LoopState, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    reason, score = decide_stop(state, ctx.settings.max_loops, ctx.settings.plateau)
    ctx.emit(node="converge", take1_id=state["take1_id"], loop=state["loop_index"], best=score, stop=reason)
    update: dict[str, Any] = {"loop_scores": [*state.get("loop_scores", []), score]}
    if reason:
        update["stop_reason"] = reason
    return update


# -- 5. rewrite: a new prompt from the loop's best-scored critique --------------------------------------------
def rewrite(state: LoopState, runtime: Rt) -> dict[str, Any]:
    """A new prompt from everything the loop showed: every seed's critique (pooled: a violation all seeds
    show is a prompt problem, one seed's is noise) and the prompts tried before."""
    ctx = runtime.context
    take1_id, loop = state["take1_id"], int(state["loop_index"])
    ranked = rank_critiques(loop_critiques(state, loop))
    if not ranked:
        return {"stop_reason": "failed: nothing to rewrite from"}
    folder = ctx.scenes.scenario_dir(take1_id) / f"loop_{loop + 1}"
    saved = folder / "rewrite.json"
    if saved.is_file():  # killed after the reply and before the step's checkpoint: do not pay twice
        new = Rewrite.model_validate_json(saved.read_text(encoding="utf-8"))
    else:
        context = RewriteContext(
            loop_index=loop,
            prompt=state["prompt"],
            negative_prompt=state.get("negative_prompt", ""),
            history=tuple(state.get("prompt_history", [])[:-1]),
            critiques=tuple(
                Critique.model_validate_json(Path(r["path"]).read_text(encoding="utf-8")) for r in ranked
            ),
            attempts=len(loop_attempts(state, loop)),
        )
        new = ctx.reasoner.rewrite(ctx.scenes.scene(take1_id), context)
        write_json(saved, new.model_dump())
    similarity = difflib.SequenceMatcher(None, state["prompt"], new.prompt).ratio()
    ctx.emit(
        node="rewrite", take1_id=take1_id, loop=loop + 1, similarity=round(similarity, 4), prompt=new.prompt
    )
    if similarity >= ctx.settings.similarity_stop:
        return {
            "stop_reason": f"prompt_unchanged: similarity {similarity:.3f} >= {ctx.settings.similarity_stop}"
        }
    (folder / "prompt.txt").write_text(new.prompt + "\n", encoding="utf-8")
    return {
        "loop_index": loop + 1,
        "prompt": new.prompt,
        "negative_prompt": new.negative_prompt,
        "expectations": [e.model_dump() for e in new.expectations],
        "prompt_history": [*state.get("prompt_history", []), new.prompt],
    }


def rewrite_failed(state: LoopState, error: NodeError, runtime: Rt) -> Command[Literal["ensemble"]]:
    """Retries ran out: keep the previous prompt, stop this scenario's loop with the reason recorded
    (``loop_N/rewrite.failed.json``), and go on to the ensemble; other scenarios are not affected."""
    ctx = runtime.context
    take1_id, loop = state["take1_id"], int(state["loop_index"])
    reason = f"{type(error.error).__name__}: {error.error}"
    raw = error.error.raw if isinstance(error.error, ReplyParseError) else ""
    folder = ctx.scenes.scenario_dir(take1_id) / f"loop_{loop + 1}"
    write_json(folder / "rewrite.failed.json", {"failed": True, "error": reason[:2000], "raw": raw[:2000]})
    ctx.emit(node="rewrite", take1_id=take1_id, loop=loop + 1, failed=True, error=reason[:300])
    return Command(
        update={"stop_reason": f"failed: the rewrite of loop {loop} could not be obtained ({reason[:300]})"},
        goto="ensemble",
    )


# -- 6. ensemble: the honest pick never sees ground truth -----------------------------------------------------
def candidates(state: LoopState) -> list[Candidate]:
    """Every attempt that produced a video, with its critique record when it has one (a failed critique too:
    a verifier can still rank that attempt)."""
    records = {r["attempt"]: r for r in state.get("critiques", [])}
    return [
        Candidate(path=a["path"], loop=a["loop"], seed=a["seed"], critique=records.get(a["path"]))
        for a in state.get("attempts", [])
        if a["path"]
    ]


def selection_context(ctx: LoopContext, take1_id: int) -> SelectionContext:
    """What the selector may use: the prefix, the attempts' frames (read once) and the tracker's measurement
    of the velocity jump at the switch frame -- never ground truth."""
    scene = ctx.scenes.scene(take1_id)
    cache: dict[str, np.ndarray] = {}

    def frames(path: str) -> np.ndarray:
        if path not in cache:
            cache[path] = read_video(path)[0]
        return cache[path]

    def motion_gap(candidate: Candidate) -> float:
        return switch_velocity_gap(scene.prefix_motion, scene.attempt_motion(frames(candidate.path)))

    return SelectionContext(
        prefix=scene.prefix,
        fps=scene.fps,
        mode=scene.mode,
        frames=frames,
        folder=ctx.scenes.scenario_dir(take1_id),
        motion_gap=motion_gap,
        reasoner=ctx.reasoner,
        scene=scene,
        emit=lambda **event: ctx.emit(take1_id=take1_id, **event),
    )


def ensemble(state: LoopState, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    take1_id = state["take1_id"]
    ranking = ctx.selector.rank(candidates(state), selection_context(ctx, take1_id))
    honest = pick_record(ranking, ctx.selector)
    ctx.emit(node="ensemble", take1_id=take1_id, honest=honest)
    return {"honest": honest}


def ensemble_failed(state: LoopState, error: NodeError, runtime: Rt) -> Command[Literal["score"]]:
    """The selector kept failing (a judge VLM that never answers): fall back to the critic's pick and say so
    (the run goes on)."""
    ctx = runtime.context
    take1_id = state["take1_id"]
    note = f"; {ctx.selector.name} failed ({type(error.error).__name__}: {str(error.error)[:200]})"
    critic = CriticSelector()
    honest = pick_record(critic.rank(candidates(state), selection_context(ctx, take1_id)), critic, note)
    ctx.emit(node="ensemble", take1_id=take1_id, honest=honest, failed=True)
    return Command(update={"honest": honest}, goto="score")


# -- 7. score: Physics-IQ of every attempt, the honest pick, the oracle (labelled) and baselines -----------------
def score(state: LoopState, runtime: Rt) -> dict[str, Any]:
    ctx = runtime.context
    if ctx.score is None:
        return {"scores": {}}
    scores = ctx.score(state["take1_id"], list(state.get("attempts", [])))
    name = f"scores-{ctx.label}.json" if ctx.label else "scores.json"
    write_json(ctx.scenes.scenario_dir(state["take1_id"]) / name, scores)
    ctx.emit(node="score", take1_id=state["take1_id"], oracle=scores.get("oracle", {}))
    return {"scores": scores, "oracle": scores.get("oracle", {})}


def retryable(error: Exception) -> bool:
    """Worth asking again: a reply that did not parse, or a VLM error -- except refused credentials and a
    backend the run has given up on (asking again cannot help; the run stops and resumes later).

    >>> from agent.vlm.base import VLMUnavailable
    >>> retryable(VLMError("HTTP 500")), retryable(VLMUnavailable("401", "auth", "u")), retryable(BackendDown("x"))
    (True, False, False)
    """
    if isinstance(error, VLMUnavailable) and error.kind == "auth":
        return False
    return isinstance(error, ReplyParseError | VLMError)


F = TypeVar("F", bound=Callable[..., Any])


def in_scenario(node: F) -> F:
    """Wrap a VLM-calling node: its calls are attributed to its scenario (:func:`agent.budget.scenario_scope`,
    so each ``vlm_call`` trace event names the scenario that paid for it), and a backend that went down
    pauses the scenario's thread with a LangGraph ``interrupt`` instead of failing the node.

    An interrupt is checkpointed and bypasses both the retry policy and the error handler, so nothing is
    recorded as failed; the rerun resumes the thread (``Command(resume=...)``) and the node runs again from
    its start. If the backend is still down, the next ``interrupt`` pauses it again.
    """

    @functools.wraps(node)  # keeps the signature LangGraph reads to inject ``runtime`` and ``error``
    def run(state: LoopState, *args: Any, **kwargs: Any) -> Any:
        with scenario_scope(state["take1_id"]):
            while True:
                try:
                    return node(state, *args, **kwargs)
                except BackendDown as down:
                    interrupt({"backend_down": str(down)})  # returns only when a resume answered this one

    return cast(F, run)


def build_graph(checkpointer: Any = None) -> CompiledStateGraph[LoopState, LoopContext, LoopState, LoopState]:
    """Declare and compile the whole refinement graph (run it with ``context=LoopContext(...)``).

    Args:
        checkpointer: A LangGraph checkpointer (``SqliteSaver`` for runs; ``None`` in unit tests).
    """
    retry = RetryPolicy(max_attempts=3, initial_interval=0.05, retry_on=retryable)
    builder = StateGraph(LoopState, context_schema=LoopContext)
    builder.add_node(
        "predict", in_scenario(predict), retry_policy=retry, error_handler=in_scenario(predict_failed)
    )
    builder.add_node("generate", generate)  # type: ignore[call-overload]  # Send payload, not the state
    builder.add_node(
        "critique", in_scenario(critique), retry_policy=retry, error_handler=in_scenario(critique_failed)
    )
    builder.add_node("converge", converge)
    builder.add_node(
        "rewrite", in_scenario(rewrite), retry_policy=retry, error_handler=in_scenario(rewrite_failed)
    )
    builder.add_node(
        "ensemble", in_scenario(ensemble), retry_policy=retry, error_handler=in_scenario(ensemble_failed)
    )
    builder.add_node("score", score)
    builder.add_edge(START, "predict")
    builder.add_conditional_edges("predict", send_generate, ["generate"])
    builder.add_edge("generate", "critique")
    builder.add_edge("critique", "converge")
    builder.add_conditional_edges("converge", route_after_converge, ["rewrite", "ensemble"])
    builder.add_conditional_edges("rewrite", route_after_rewrite, ["generate", "ensemble"])
    builder.add_edge("ensemble", "score")
    builder.add_edge("score", END)
    return builder.compile(checkpointer=checkpointer)


def _record(attempt: Attempt, path: Path, result: Critique | None) -> CritiqueRecord:
    """The state's record of a critique (``None``: it could not be obtained; ``path`` holds why)."""
    return CritiqueRecord(
        loop=attempt["loop"],
        seed=attempt["seed"],
        attempt=attempt["path"],
        path=str(path),
        verdict=result.verdict if result is not None else "inconsistent",
        score=float(result.score) if result is not None else 0.0,
        severe=bool(result.severe) if result is not None else False,
        failed=result is None,
        severities=[str(v.severity) for v in result.violations] if result is not None else [],
    )
