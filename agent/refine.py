"""Run the refinement graph over a dataset: build the parts from the registries, resume, score, summarise.

The summary follows the official aggregation (:func:`physics_iq.scoring.aggregate`: means of metrics over
rows, then the score formula) for each variant:

- ``loop_1``: every loop-1 attempt (all seeds, each a row) — what single-shot generation gives;
- ``final``: every attempt of each scenario's last loop;
- ``honest_ensemble``: per scenario the attempt the honest selector picked (critic only, no ground truth);
- ``oracle``: per scenario the attempt with the best Physics-IQ against ground truth — an upper bound, never
  an honest result;
- ``static``: the switch frame repeated (baseline);
- ``physical_variance``: take 1 against take 2.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from agent.budget import Budget, MeteredVLM, RunLimits, UsageMeter
from agent.graph import GraphDeps, build_graph
from agent.prompting import PromptSet
from agent.reasoning import Reasoner, Scene, make_scene
from agent.runs import RunConfig, RunConfigError, RunDir, git_commit, package_versions
from agent.state import Attempt
from physics_iq.errors import DatasetError
from physics_iq.layout import DatasetLayout, ViewPair
from physics_iq.video import TEST_SECONDS, frames_for_seconds, read_video, write_video

logger = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("loop_1", "final", "honest_ensemble", "oracle", "static")

#: Synthetic-suite scenarios ``physrefine demo`` refines: five whose motion the offline stack can model
#: (translating balls and pucks under gravity, contact, friction, a ramp, a magnet's push), one per kind of
#: situation. Not in the set, and why (measured, see the README): pendulum-strike (a rod constraint the
#: physics prior does not model), domino-chain (rotation), and the fluid/optics/thermodynamics scenes;
#: magnet-attract is modelled but left to the full suite (the demo's set and numbers stay comparable).
DEMO_SCENARIOS: tuple[str, ...] = (
    "synthetic-ball-bounce",
    "synthetic-two-ball-collision",
    "synthetic-ramp-roll-slide",
    "synthetic-mirror-table-bounce",
    "synthetic-magnet-repel",
)


def _options(raw: dict[str, str]) -> dict[str, Any]:
    """CLI ``KEY=VALUE`` strings to Python values (JSON where it parses: numbers, booleans, lists)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_reasoner(
    config: RunConfig,
    prompts: PromptSet,
    meter: UsageMeter | None = None,
    trace: Callable[[dict[str, Any]], None] | None = None,
) -> Reasoner:
    """``offline`` -> the motion-grounded critic; any other name -> ``VLMS`` backend through templates.

    With a ``meter``, every VLM reply is counted (tokens, cost) for the run's budgets and progress display,
    and with a ``trace`` too, each call's tokens and cost become a ``vlm_call`` event of the run's trace.
    """
    if config.vlm == "offline":
        from agent.offline import OfflineReasoner

        return OfflineReasoner(prompts)
    from agent.reasoning import VLMReasoner
    from agent.vlm import VLMS

    vlm = VLMS.resolve(config.vlm)(**_options(config.vlm_options))
    if meter is not None:
        vlm = MeteredVLM(vlm, meter, trace)
    return VLMReasoner(vlm, prompts, grounding=config.grounding)


def select_pairs(layout: DatasetLayout, wanted: list[str], categories: Sequence[str] = ()) -> list[ViewPair]:
    """Pairs whose scenario slug, ID or generated name is in ``wanted`` (all when empty), restricted to
    ``categories`` (case-insensitive; all when empty).

    Raises:
        DatasetError: a wanted name or category matches nothing (listing those there are).
    """
    pairs = layout.pairs()
    if categories:
        known = sorted({p.take1.category for p in pairs})
        lowered = {c.lower() for c in known}
        unknown = [c for c in categories if c.lower() not in lowered]
        if unknown:
            raise DatasetError(
                f"{layout.descriptions_path}: no category {unknown}; known: {', '.join(known)}"
            )
        chosen_categories = {c.lower() for c in categories}
        pairs = [p for p in pairs if p.take1.category.lower() in chosen_categories]
    if not wanted:
        return pairs
    chosen = []
    for pair in pairs:
        names = {
            pair.scenario,
            pair.take1.id_str,
            str(pair.take1.id),
            Path(pair.take1.generated_video_name).stem,
        }
        if names & set(wanted):
            chosen.append(pair)
    matched = {
        n
        for p in chosen
        for n in (p.scenario, p.take1.id_str, str(p.take1.id), Path(p.take1.generated_video_name).stem)
    }
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise DatasetError(
            f"{layout.descriptions_path}: no scenario {missing}; known: {', '.join(layout.scenarios())}"
        )
    return chosen


class Refinement:
    """One configured run over a dataset (see :func:`run_refinement`)."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        limits: RunLimits | None = None,
    ):
        from generators import GENERATORS

        self.config = config
        self.limits = limits or RunLimits()
        self.layout = DatasetLayout(config.dataset)
        self.pairs = select_pairs(self.layout, config.scenarios, config.categories)
        if config.fps not in self.layout.fps_available():
            raise DatasetError(
                f"{self.layout.root}: no testing videos at {config.fps} FPS (available: {self.layout.fps_available()})"
            )
        self.prompts = PromptSet(config.prompt_set)
        # Build the backends before touching the run directory: a typo must not leave a config behind.
        self.generator = GENERATORS.resolve(config.generator)(**_options(config.generator_options))
        self.meter = UsageMeter(Path(run_dir) / "usage.json")
        # self.trace writes to the run directory opened below; the reasoner calls it only once the run runs.
        self.reasoner = build_reasoner(config, self.prompts, self.meter, self.trace)
        if config.selector == "judge" and not hasattr(self.reasoner, "judge"):
            raise RunConfigError(
                f"selector 'judge' compares attempts pairwise with a VLM; --vlm {config.vlm} cannot "
                "(use --selector critic or a VLM backend)"
            )
        self.run = RunDir(run_dir, config)
        self.resumed = self.run.open(
            {
                "prompt_set": self.prompts.record(),
                "packages": package_versions(),
                "git_commit": git_commit(Path(__file__).resolve().parent),
                "reasoner": config.vlm,
                "offline_note": "offline critic and physics-prior generator are not neural models"
                if config.vlm == "offline" or config.generator == "physics-prior"
                else "",
            }
        )
        self.num_frames = frames_for_seconds(TEST_SECONDS, config.fps)
        self._scenes: dict[int, Scene] = {}
        self._by_id = {p.take1.id: p for p in self.pairs}
        self._scored: dict[str, Any] = {}
        self.evaluator = None
        if config.score:
            from physics_iq.evaluate import Evaluator

            self.evaluator = Evaluator(
                self.layout, config.fps, mode="fast", cache_dir=self.run.root / "cache"
            )
        self.on_event = on_event
        self.budget = Budget(self.limits, self.meter)
        # Limits may change between invocations (a rerun with a larger budget resumes): record each one.
        (self.run.root / "limits.json").write_text(
            json.dumps(self.limits.model_dump(mode="json"), indent=2, sort_keys=True), encoding="utf-8"
        )

    # -- helpers given to the graph ---------------------------------------------------------------------
    def name(self, take1_id: int) -> str:
        return Path(self._by_id[take1_id].take1.generated_video_name).stem

    def scenario_dir(self, take1_id: int) -> Path:
        return self.run.scenario_dir(self.name(take1_id))

    def scene(self, take1_id: int) -> Scene:
        if take1_id not in self._scenes:
            row = self._by_id[take1_id].take1
            if self.config.mode == "v2v":
                prefix, _ = read_video(self.layout.conditioning_video(row, self.config.fps))
            else:
                path = self.layout.switch_frame(row)
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise DatasetError(f"{path}: switch frame missing or not an image")
                prefix = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None]
            self._scenes[take1_id] = make_scene(
                row.description, self.config.mode, float(self.config.fps), self.num_frames, prefix
            )
        return self._scenes[take1_id]

    def context(self, take1_id: int) -> dict[str, Any]:
        pair = self._by_id[take1_id]
        context: dict[str, Any] = {"scenario": pair.scenario, "take1_id": take1_id}
        if self.config.generator == "take2":  # only the calibration baseline may see the second take
            context["take2_video"] = str(self.layout.testing_video(pair.take2, self.config.fps))
        return context

    def trace(self, event: dict[str, Any]) -> None:
        self.run.trace(event)
        if self.on_event is not None:
            self.on_event(event)

    def _view(self, pair: ViewPair, path: str) -> Any:
        if path not in self._scored:
            assert self.evaluator is not None
            self._scored[path] = self.evaluator.view_result(pair, path)
        return self._scored[path]

    def _static_path(self, take1_id: int) -> str:
        from generators.base import GenerationRequest
        from generators.baselines import StaticGenerator

        path = self.scenario_dir(take1_id) / "baselines" / "static.mp4"
        if not path.is_file():
            scene = self.scene(take1_id)
            request = GenerationRequest(scene.prefix, scene.fps, "", 0, self.num_frames)
            write_video(path, StaticGenerator().generate(request).frames, scene.fps)
        return str(path)

    def score(self, take1_id: int, attempts: list[Attempt]) -> dict[str, Any]:
        """Physics-IQ of every attempt against ground truth; the oracle pick is labelled as such."""
        pair = self._by_id[take1_id]
        rows = []
        for attempt in attempts:
            if not attempt["path"]:
                continue
            view = self._view(pair, attempt["path"])
            rows.append(
                {
                    "loop": attempt["loop"],
                    "seed": attempt["seed"],
                    "path": attempt["path"],
                    "physics_iq": round(float(view.score), 4),
                    **view.model_v1.values.as_dict(),
                }
            )
        oracle = max(rows, key=lambda r: r["physics_iq"]) if rows else {}
        static_view = self._view(pair, self._static_path(take1_id))
        return {
            "attempts": rows,
            "oracle": {**oracle, "label": "oracle: picked with ground truth (upper bound, not honest)"},
            "static": {"path": static_view.generated, "physics_iq": round(float(static_view.score), 4)},
            "variance": static_view.variance.values.as_dict(),
        }

    # -- the run -------------------------------------------------------------------------------------------
    def _run_scenario(self, graph: CompiledStateGraph, pair: ViewPair) -> dict[str, Any] | None:
        """Run (or resume) one scenario's thread; ``None`` when a limit stopped it before the end."""
        take1_id = pair.take1.id
        cfg: RunnableConfig = {
            "configurable": {"thread_id": self.name(take1_id)},
            "recursion_limit": 40 + 10 * self.config.loops,
        }
        snapshot = graph.get_state(cfg)
        # Finished = no task left in the saved step. ``snapshot.next`` is not enough: it leaves out tasks whose
        # writes were saved, so a process killed after a step's last task ended but before the step's
        # checkpoint shows an empty ``next`` although the graph has further steps to run.
        if snapshot.values and not snapshot.tasks:
            self.trace({"node": "resume", "take1_id": take1_id, "status": "already finished"})
            self.trace({"node": "scenario_done", "take1_id": take1_id})
            return dict(snapshot.values)
        if self.budget.exhausted():
            return None
        graph_input: dict[str, Any] | None
        if snapshot.tasks:
            if snapshot.next:
                status = f"resuming at {list(snapshot.next)}"
            else:
                saved = sorted({task.name for task in snapshot.tasks})
                status = f"resuming after {saved} (their results were saved, the step's checkpoint was not)"
            self.trace({"node": "resume", "take1_id": take1_id, "status": status})
            graph_input = None
        else:
            self.trace({"node": "start", "take1_id": take1_id, "scenario": pair.scenario})
            graph_input = {"take1_id": take1_id}
        # Stream node by node so that a budget is checked between steps; stopping leaves the sqlite
        # checkpoint of the last finished step, from which a rerun resumes.
        for _ in graph.stream(graph_input, cfg, durability="sync", stream_mode="updates"):
            if self.budget.exhausted():
                return None
        self.trace({"node": "scenario_done", "take1_id": take1_id})
        return dict(graph.get_state(cfg).values)

    def run_all(self) -> dict[str, Any]:
        """Refine every selected scenario (``limits.jobs`` at a time), score, write and return the summary."""
        from langgraph.checkpoint.sqlite import SqliteSaver

        deps = GraphDeps(
            reasoner=self.reasoner,
            generator=self.generator,
            generator_id=json.dumps([self.config.generator, self.config.generator_options], sort_keys=True),
            scene=self.scene,
            scenario_dir=self.scenario_dir,
            n_seeds=self.config.seeds,
            max_loops=self.config.loops,
            seed=self.config.seed,
            score=self.score if self.evaluator is not None else None,
            trace=self.trace,
            context=self.context,
            selector=self.config.selector,
        )
        connection = sqlite3.connect(str(self.run.checkpoint_path), check_same_thread=False)
        try:
            graph = build_graph(deps, checkpointer=SqliteSaver(connection))
            if self.limits.jobs == 1:
                results = [self._run_scenario(graph, pair) for pair in self.pairs]
            else:
                # Threads: generation (numpy/pymunk/torch/codecs) and VLM requests release the GIL, so
                # one scenario's VLM calls overlap another's generation. Results are keyed by scenario and
                # collected in dataset order, so they do not depend on the number of workers.
                with ThreadPoolExecutor(max_workers=self.limits.jobs, thread_name_prefix="refine") as pool:
                    results = list(pool.map(lambda pair: self._run_scenario(graph, pair), self.pairs))
        finally:
            connection.close()
        finals = {
            pair.take1.id: values
            for pair, values in zip(self.pairs, results, strict=True)
            if values is not None
        }
        unfinished = [
            self.name(pair.take1.id) for pair, v in zip(self.pairs, results, strict=True) if v is None
        ]
        stopped_by = self.budget.exhausted() if unfinished else ""
        if unfinished:
            self.trace({"node": "budget", "stopped_by": stopped_by, "unfinished": unfinished})
            logger.warning(
                "run stopped (%s); %d scenario(s) unfinished; rerun to resume", stopped_by, len(unfinished)
            )
        summary = self.summarise(finals)
        summary["status"] = "stopped" if unfinished else "complete"
        summary["stopped_by"] = stopped_by
        summary["unfinished"] = unfinished
        summary["usage"] = self.meter.snapshot()
        summary["limits"] = self.limits.model_dump(mode="json")
        summary["elapsed_s"] = round(self.budget.elapsed(), 2)
        (self.run.root / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        self._write_csv(summary)
        return summary

    def summarise(self, finals: dict[int, dict[str, Any]]) -> dict[str, Any]:
        """Per scenario and overall scores of every variant (see the module docstring)."""
        from physics_iq.scoring import aggregate

        per_variant: dict[str, list[Any]] = {v: [] for v in VARIANTS}
        scenarios = []
        for take1_id, values in finals.items():
            pair = self._by_id[take1_id]
            attempts = [a for a in values.get("attempts", []) if a["path"]]
            failed = [a for a in values.get("attempts", []) if a["error"]]
            last = int(values.get("loop_index", 1))
            entry: dict[str, Any] = {
                "scenario": self.name(take1_id),
                "loops": last,
                "attempts": len(attempts),
                "failed_generations": len(failed),
                "generation_errors": sorted({a["error"][:300] for a in failed}),
                "stop_reason": values.get("stop_reason", ""),
                "final_prompt": values.get("prompt", ""),
                "honest_pick": values.get("honest", {}),
                "oracle_pick": values.get("oracle", {}),
            }
            if self.evaluator is not None and attempts:
                chosen = {
                    "loop_1": [a["path"] for a in attempts if a["loop"] == 1],
                    "final": [a["path"] for a in attempts if a["loop"] == last],
                    "honest_ensemble": [values["honest"]["path"]] if values.get("honest") else [],
                    "oracle": [values["oracle"]["path"]] if values.get("oracle", {}).get("path") else [],
                    "static": [self._static_path(take1_id)],
                }
                for variant, paths in chosen.items():
                    views = [self._view(pair, p) for p in paths]
                    per_variant[variant].extend(views)
                    entry[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
                static_view = self._view(pair, chosen["static"][0])
                entry["physical_variance"] = round(aggregate([static_view]).physical_variance, 4)
            scenarios.append(entry)
        overall: dict[str, Any] = {}
        if self.evaluator is not None:
            for variant, views in per_variant.items():
                overall[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
            if per_variant["static"]:
                overall["physical_variance"] = round(aggregate(per_variant["static"]).physical_variance, 4)
        return {
            "run_dir": str(self.run.root),
            "config": self.config.model_dump(mode="json"),
            "generator_is_neural": self.config.generator not in ("physics-prior", "static", "take2"),
            "critic_is_neural": self.config.vlm != "offline",
            "overall": overall,
            "scenarios": scenarios,
        }

    def _write_csv(self, summary: dict[str, Any]) -> None:
        columns = [
            "scenario",
            "loops",
            "attempts",
            "failed_generations",
            *VARIANTS,
            "physical_variance",
            "stop_reason",
        ]
        with (self.run.root / "summary.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for entry in summary["scenarios"]:
                writer.writerow(entry)
            writer.writerow({"scenario": "overall", **summary["overall"]})


def run_refinement(
    config: RunConfig,
    run_dir: str | Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    limits: RunLimits | None = None,
) -> dict[str, Any]:
    """Run (or resume) the refinement loop over ``config.dataset`` into ``run_dir``; return the summary.

    The summary's ``status`` is ``"complete"``, or ``"stopped"`` when a limit ended the run early (then
    ``stopped_by`` says which and ``unfinished`` lists the scenarios a rerun will resume).
    """
    return Refinement(config, run_dir, on_event, limits).run_all()


__all__ = ["DEMO_SCENARIOS", "VARIANTS", "Refinement", "run_refinement", "select_pairs"]
