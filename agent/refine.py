"""Run the refinement graph over a dataset: scenes, backends, execution, scoring and summary, in that order.

:class:`Refinement` ties the parts together; each lives in its own module so that it can be replaced alone:

- :mod:`agent.scenes` — which views, their prefixes and folders;
- :mod:`agent.backends` — the reasoner and the generator (before the run directory exists);
- :mod:`agent.executors` — where scenarios and generations run (the generator pool);
- :mod:`agent.scoring` — Physics-IQ of the attempts (ground truth, never seen by the loop);
- :mod:`agent.summary` — the variants' scores, ``summary.json`` and ``summary.csv``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent.backends import build_reasoner, check_reasoner, generator_id, parse_options
from agent.budget import BackendGate, Budget, RunLimits, UsageMeter
from agent.executors import make_executor
from agent.graph import LoopContext, LoopSettings, build_graph
from agent.prompting import PromptSet
from agent.runs import RunConfig, RunConfigError, RunDir, git_commit, package_versions
from agent.scenes import SceneStore, select_pairs
from agent.scoring import AttemptScorer
from agent.selection import build_selector, uses_judge
from agent.state import LoopState
from agent.summary import BEST_OF_N, OFFLINE_GENERATORS, VARIANTS, summarise, write_summary
from physics_iq.layout import ViewPair

logger = logging.getLogger(__name__)

#: Synthetic-suite scenarios ``physrefine demo`` refines: five whose motion the offline stack can model
#: (translating balls and pucks under gravity, contact, friction, a ramp, a magnet's push), one per kind of
#: situation. Not in the set, and why (docs/offline-stack.md): pendulum-strike (a rod constraint the physics
#: prior does not model), domino-chain (rotation), and the fluid/optics/thermodynamics scenes.
DEMO_SCENARIOS: tuple[str, ...] = (
    "synthetic-ball-bounce",
    "synthetic-two-ball-collision",
    "synthetic-ramp-roll-slide",
    "synthetic-mirror-table-bounce",
    "synthetic-magnet-repel",
)


class Refinement:
    """One configured run over a dataset (see :func:`run_refinement`).

    Builds everything that can fail on bad input (dataset, prompt set, backends, generator pool) before
    the run directory is opened, so a typo leaves nothing behind.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        limits: RunLimits | None = None,
    ):
        from generators import GENERATORS, prompt_style

        self.config = config
        self.limits = limits or RunLimits()
        self.on_event = on_event
        self.scenes = SceneStore(config)
        self.pairs = self.scenes.pairs
        self.prompts = PromptSet(config.prompt_set)
        generator_class = self.generator_class = GENERATORS.resolve(config.generator)
        self.meter = UsageMeter(Path(run_dir) / "usage.json")
        self.gate = BackendGate()
        # self.trace writes to the run directory opened below; the reasoner calls it only once the run runs.
        self.reasoner = build_reasoner(
            config, self.prompts, self.meter, self.trace, self.gate, prompt_style(generator_class)
        )
        if uses_judge(config.selector) and not hasattr(self.reasoner, "judge"):
            raise RunConfigError(
                f"selector 'judge' compares attempts pairwise with a VLM; --vlm {config.vlm} cannot "
                "(use --selector critic, a verifier, or a VLM backend)"
            )
        # Verifier models load here, once, before anything is generated (a bad folder is one line).
        self.selector = build_selector(config.selector, parse_options(config.selector_options))
        self.best_of_n = (
            config.best_of_n_baseline
            if config.best_of_n_baseline is not None
            else (config.vlm == "offline" and config.generator in OFFLINE_GENERATORS)
        )
        # Fail fast: an endpoint that does not answer, a refused key or an unknown model stops the run here,
        # before a generator is loaded or anything is spent.
        self.backend_check = check_reasoner(self.reasoner)
        self.executor = make_executor(self.limits)
        try:
            self.generators = self.executor.generator_pool(
                generator_class, parse_options(config.generator_options), config.seeds
            )
            self.run = RunDir(run_dir, config)
            self.resumed = self.run.open(
                {
                    "prompt_set": self.prompts.record(),
                    "packages": package_versions(),
                    "git_commit": git_commit(Path(__file__).resolve().parent),
                    "reasoner": config.vlm,
                    "selector": {"spec": config.selector, "describe": self.selector.describe()},
                    "offline_note": "offline critic and physics-prior generator are not neural models"
                    if config.vlm == "offline" or config.generator == "physics-prior"
                    else "",
                }
            )
            self.scenes.run = self.run
            self.scorer = AttemptScorer(self.scenes, self.run.root / "cache") if config.score else None
            self.budget = Budget(self.limits, self.meter, gate=self.gate)
            # Limits may change between invocations (a rerun with a larger budget resumes): record each one.
            (self.run.root / "limits.json").write_text(
                json.dumps(self.limits.model_dump(mode="json"), indent=2, sort_keys=True), encoding="utf-8"
            )
        except BaseException:
            self.executor.close()  # a Ray executor's actors hold GPUs: do not leave them to the process's end
            raise

    def name(self, take1_id: int) -> str:
        return self.scenes.name(take1_id)

    def trace(self, event: dict[str, Any]) -> None:
        self.run.trace(event)
        if self.on_event is not None:
            self.on_event(event)

    def context(self) -> LoopContext:
        """What the graph's nodes get besides the state."""
        config = self.config
        return LoopContext(
            reasoner=self.reasoner,
            generators=self.generators,
            generator_id=generator_id(config),
            scenes=self.scenes,
            settings=LoopSettings(n_seeds=config.seeds, max_loops=config.loops, seed=config.seed),
            selector=self.selector,
            expectations=bool(getattr(self.generator_class, "reads_expectations", False)),
            score=self.scorer,
            trace=self.trace,
        )

    def baseline_context(self, context: LoopContext, budget: int) -> LoopContext:
        """The equal-budget baseline: one loop of ``budget`` seeds (the generations the refinement made for the
        scenario: loops run x seeds) from the loop-1 prompt, the same selector. It draws the seeds the
        refinement drew, so its first ``seeds`` attempts are the refinement's loop-1 attempts (same content
        hash) and the rest differ from the refinement's only by the prompt."""
        settings = replace(context.settings, n_seeds=max(budget, 1), max_loops=1)
        return replace(context, settings=settings, label=BEST_OF_N)

    # -- the run -------------------------------------------------------------------------------------------
    def _run_scenario(
        self,
        graph: CompiledStateGraph[LoopState, LoopContext, LoopState, LoopState],
        pair: ViewPair,
        context: LoopContext,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The refinement's thread, then (when on) the best-of-N baseline's; ``None`` for a thread a limit
        stopped before its end."""
        values = self._run_thread(graph, pair, context, LoopState(take1_id=pair.take1.id))
        if values is None or not self.best_of_n or not values.get("prompt_history"):
            return values, None
        negative, expectations = self._first_prediction(pair.take1.id)
        first = LoopState(
            take1_id=pair.take1.id,
            prompt=values["prompt_history"][0],
            negative_prompt=negative,
            expectations=expectations,
        )
        budget = len(values.get("attempts", []))  # every generation the refinement made, failed ones too
        return values, self._run_thread(graph, pair, self.baseline_context(context, budget), first)

    def _first_prediction(self, take1_id: int) -> tuple[str, list[dict[str, Any]]]:
        """Loop 1's negative prompt and expectations (none when the prediction failed: the fallback prompt
        has neither)."""
        saved = self.scenes.scenario_dir(take1_id) / "loop_1" / "prediction.json"
        if not saved.is_file():
            return "", []
        prediction = json.loads(saved.read_text(encoding="utf-8"))
        return str(prediction.get("negative_prompt", "")), list(prediction.get("expectations", []))

    def _run_thread(
        self,
        graph: CompiledStateGraph[LoopState, LoopContext, LoopState, LoopState],
        pair: ViewPair,
        context: LoopContext,
        start: LoopState,
    ) -> dict[str, Any] | None:
        """Run (or resume) one thread of a scenario; ``None`` when a limit stopped it before the end."""
        take1_id = pair.take1.id
        variant = {"variant": context.label} if context.label else {}
        cfg: RunnableConfig = {
            "configurable": {
                "thread_id": self.name(take1_id) + (f"#{context.label}" if context.label else "")
            },
            "recursion_limit": 40 + 10 * context.settings.max_loops,
        }
        snapshot = graph.get_state(cfg)
        # Finished = no task left in the saved step. ``snapshot.next`` is not enough: it leaves out tasks whose
        # writes were saved, so a process killed after a step's last task ended but before the step's
        # checkpoint shows an empty ``next`` although the graph has further steps to run.
        if snapshot.values and not snapshot.tasks:
            self.trace({"node": "resume", "take1_id": take1_id, "status": "already finished", **variant})
            self.trace({"node": "scenario_done", "take1_id": take1_id, **variant})
            return dict(snapshot.values)
        if self.budget.exhausted():
            return None
        graph_input: LoopState | Command[Any] | None
        if any(task.interrupts for task in snapshot.tasks):  # paused by a backend that went down
            self.trace(
                {
                    "node": "resume",
                    "take1_id": take1_id,
                    "status": "resuming after a backend outage",
                    **variant,
                }
            )
            graph_input = Command(resume="backend available again")
        elif snapshot.tasks:
            if snapshot.next:
                status = f"resuming at {list(snapshot.next)}"
            else:
                saved = sorted({task.name for task in snapshot.tasks})
                status = f"resuming after {saved} (their results were saved, the step's checkpoint was not)"
            self.trace({"node": "resume", "take1_id": take1_id, "status": status, **variant})
            graph_input = None
        else:
            self.trace({"node": "start", "take1_id": take1_id, "scenario": pair.scenario, **variant})
            graph_input = start
        # Stream node by node so that a budget is checked between steps; stopping leaves the sqlite
        # checkpoint of the last finished step, from which a rerun resumes.
        for _ in graph.stream(graph_input, cfg, context=context, durability="sync", stream_mode="updates"):
            if self.budget.exhausted():
                return None
        final = graph.get_state(cfg)
        if any(task.interrupts for task in final.tasks):
            return None  # a backend went down (the budget names it); the rerun resumes the paused node
        self.trace({"node": "scenario_done", "take1_id": take1_id, **variant})
        return dict(final.values)

    def run_all(self) -> dict[str, Any]:
        """Refine every selected scenario (``limits.jobs`` at a time), score, write and return the summary."""
        from langgraph.checkpoint.sqlite import SqliteSaver

        context = self.context()
        connection = sqlite3.connect(str(self.run.checkpoint_path), check_same_thread=False)
        try:
            graph = build_graph(checkpointer=SqliteSaver(connection))
            results = self.executor.map(lambda pair: self._run_scenario(graph, pair, context), self.pairs)
        finally:
            connection.close()
            self.executor.close()
        done = [
            (pair, values, baseline)
            for pair, (values, baseline) in zip(self.pairs, results, strict=True)
            if values is not None and (baseline is not None or not self.best_of_n)
        ]
        finals = {pair.take1.id: values for pair, values, _ in done}
        baselines = {pair.take1.id: baseline for pair, _, baseline in done if baseline is not None}
        unfinished = [self.name(pair.take1.id) for pair in self.pairs if pair.take1.id not in finals]
        stopped_by = self.budget.exhausted() if unfinished else ""
        if unfinished:
            self.trace({"node": "budget", "stopped_by": stopped_by, "unfinished": unfinished})
            logger.warning(
                "run stopped (%s); %d scenario(s) unfinished; rerun to resume", stopped_by, len(unfinished)
            )
        summary = summarise(self.config, self.run.root, self.scenes, finals, self.scorer, baselines)
        empty = [e["scenario"] for e in summary["scenarios"] if e["attempts"] == 0]
        failed_generations = sum(e["failed_generations"] for e in summary["scenarios"])
        # "complete" only when every scenario has something to show; a scenario whose generations all failed
        # makes the run "failed" (the CLI exits non-zero), whatever the others did.
        summary["status"] = "stopped" if unfinished else ("failed" if empty else "complete")
        summary["stopped_by"] = stopped_by
        summary["failed_generations"] = failed_generations
        summary["scenarios_without_attempts"] = empty
        if failed_generations:
            logger.warning(
                "%d generation(s) failed; %d scenario(s) have no successful attempt%s",
                failed_generations,
                len(empty),
                f" ({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''})" if empty else "",
            )
        summary["unfinished"] = unfinished
        summary["usage"] = self.meter.snapshot()
        summary["limits"] = self.limits.model_dump(mode="json")
        summary["elapsed_s"] = round(self.budget.elapsed(), 2)
        write_summary(self.run.root, summary)
        return summary


def run_refinement(
    config: RunConfig,
    run_dir: str | Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    limits: RunLimits | None = None,
) -> dict[str, Any]:
    """Run (or resume) the refinement loop over ``config.dataset`` into ``run_dir``; return the summary.

    The summary's ``status`` is ``"complete"``; ``"failed"`` when a scenario has no successful attempt (all
    its generations failed: ``scenarios_without_attempts`` names them, ``failed_generations`` counts every
    failed generation); or ``"stopped"`` when a limit ended the run early (then ``stopped_by`` says which and
    ``unfinished`` lists the scenarios a rerun will resume).
    """
    return Refinement(config, run_dir, on_event, limits).run_all()


__all__ = ["DEMO_SCENARIOS", "OFFLINE_GENERATORS", "VARIANTS", "Refinement", "run_refinement", "select_pairs"]
