"""Read a finished run directory (written by :mod:`agent.refine`) into plain objects.

This is a reader of the on-disk format only (``config.json``, ``provenance.json``, ``summary.json``,
``scenarios/<name>/scores.json``, ``attempts/<key>.json``, ``<key>.critique-<loop>.json``,
``loop_<n>/prediction.json|rewrite.json|prompt.txt``); it never writes into the run. Paths stored in a run are
absolute; when a run directory was moved they are re-rooted under its ``scenarios/<name>/`` folder.

The selection rules of the run's summary variants are reproduced here from the stored per-attempt metrics:

- ``loop_1``: every loop-1 attempt (all seeds); ``final``: every attempt of the view's last loop;
- ``honest_ensemble``: the attempt the critic picked (no ground truth);
- ``oracle``: the attempt with the best Physics-IQ against ground truth (an upper bound, never honest).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.selection import violation_burden
from physics_iq.errors import DatasetError, PhysicsIQError
from physics_iq.layout import DatasetLayout, parse_generated_id
from physics_iq.scoring import METRIC_NAMES, Comparison, MetricValues, ViewResult

logger = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("loop_1", "final", "honest_ensemble", "oracle")
VARIANT_LABELS: dict[str, str] = {
    "loop_1": "loop 1",
    "final": "final loop",
    "honest_ensemble": "honest ensemble",
    "oracle": "oracle (peeks at ground truth; upper bound)",
    # The summary's accounting (agent.summary), shown by the report beside the variants.
    "static": "static baseline (switch frame held)",
    "best_of_n": "best of N (same budget of generations, no refinement)",
    "refinement_gain": "refinement gain (honest - best of N)",
    "selection_gain": "selection gain (best of N - loop 1)",
    "selection_accuracy": "selection accuracy (share of attempt pairs ordered like Physics-IQ)",
    "selection_pairs": "attempt pairs compared (Physics-IQ apart by more than 1 point)",
}


class RunDataError(PhysicsIQError):
    """A folder is not a (finished, scored) run directory, or one of its files is malformed."""


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise RunDataError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDataError(f"{path}: not valid JSON ({exc}); expected {what}") from exc


def _metrics(data: dict[str, Any], where: str) -> MetricValues:
    try:
        return MetricValues(**{name: float(data[name]) for name in METRIC_NAMES})
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDataError(f"{where}: expected the metrics {list(METRIC_NAMES)}, got {sorted(data)}") from exc


@dataclass(frozen=True)
class AttemptData:
    """One generated attempt of a view.

    Attributes:
        loop: 1-based loop index.
        seed: Generation seed.
        path: The video (re-rooted into the run directory when the run was moved).
        physics_iq: This view's own Physics-IQ score of the attempt (``None`` in unscored runs).
        metrics: The four metrics against take 1 (``None`` in unscored runs).
    """

    loop: int
    seed: int
    path: Path
    physics_iq: float | None
    metrics: MetricValues | None

    @property
    def key(self) -> str:
        """The attempt's content hash (its file stem)."""
        return self.path.stem

    def generation_info(self) -> dict[str, Any]:
        """The generator's sidecar JSON (prompt, seed, generator metadata); ``{}`` when absent."""
        side = self.path.with_suffix(".json")
        if not side.is_file():
            return {}
        data = _read_json(side, "the attempt's generation record")
        return data if isinstance(data, dict) else {}

    @property
    def prompt(self) -> str:
        """The prompt this attempt was generated from."""
        return str(self.generation_info().get("prompt", ""))

    def critique(self) -> dict[str, Any]:
        """The critique of this attempt in its loop (a failed one if that is all there is; ``{}`` if none)."""
        for suffix in (f".critique-{self.loop}.json", f".critique-{self.loop}.failed.json"):
            candidate = self.path.with_suffix(suffix)
            if candidate.is_file():
                data = _read_json(candidate, "a critique")
                return data if isinstance(data, dict) else {}
        return {}


@dataclass(frozen=True)
class ViewData:
    """One take-1 row of a run (what :mod:`agent.refine` calls a scenario: one view of a scenario).

    Attributes:
        name: ``{ID}_{perspective}_{scenario}`` (the generated file's stem; the run's folder name).
        take1_id: The take-1 ID.
        scenario: The Physics-IQ scenario slug (shared by its perspectives).
        perspective: ``perspective-left|center|right``.
        category: The scenario's category (``unknown`` when the dataset cannot be read).
        folder: ``RUN/scenarios/<name>``.
        loops: Loops the view used.
        stop_reason: Why its loop stopped.
        attempts: Every attempt that produced a video.
        variance: Take 1 against take 2 (``None`` in unscored runs).
        honest_key: Content hash of the honest (critic-picked) attempt; ``""`` if none.
        static_score: The static baseline's score, when scored.
    """

    name: str
    take1_id: int
    scenario: str
    perspective: str
    category: str
    folder: Path
    loops: int
    stop_reason: str
    attempts: tuple[AttemptData, ...]
    variance: MetricValues | None
    honest_key: str
    static_score: float | None = None
    entry: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def scored(self) -> bool:
        return self.variance is not None and all(a.metrics is not None for a in self.attempts)

    def prompt(self, loop: int) -> str:
        """The prompt of loop ``loop`` (from the prediction or the rewrite saved in ``loop_<n>/``)."""
        folder = self.folder / f"loop_{loop}"
        if loop == 1 and (folder / "prediction.json").is_file():
            return str(_read_json(folder / "prediction.json", "the loop-1 prediction").get("prompt", ""))
        if (folder / "prompt.txt").is_file():
            return (folder / "prompt.txt").read_text(encoding="utf-8").strip()
        of_loop = [a for a in self.attempts if a.loop == loop]
        return of_loop[0].prompt if of_loop else ""

    def select(self, variant: str) -> list[AttemptData]:
        """The attempts a summary variant uses for this view (see the module docstring).

        Raises:
            ValueError: an unknown variant.
        """
        if variant == "loop_1":
            return [a for a in self.attempts if a.loop == 1]
        if variant == "final":
            return [a for a in self.attempts if a.loop == self.loops]
        if variant == "honest_ensemble":
            return [a for a in self.attempts if a.key == self.honest_key][:1]
        if variant == "oracle":
            scored = [a for a in self.attempts if a.physics_iq is not None]
            return [max(scored, key=lambda a: a.physics_iq or 0.0)] if scored else []
        if variant.startswith("loop-") and variant[5:].isdigit():
            loop = int(variant[5:])
            return [a for a in self.attempts if a.loop == min(loop, self.loops)]
        raise ValueError(f"unknown variant {variant!r}; expected one of {[*VARIANTS, 'loop-N']}")

    def view_results(self, attempts: list[AttemptData]) -> list[ViewResult]:
        """The attempts as :class:`ViewResult` s for :func:`physics_iq.scoring.aggregate`.

        Per-frame values are not stored in a run, only their means; every attempt of a run has the same frame
        count, so one-element frame tuples of the means aggregate to the same numbers (mean of equal-sized
        means = mean of the concatenation).

        Raises:
            RunDataError: the run was not scored.
        """
        if self.variance is None:
            raise RunDataError(f"{self.folder}: no scores.json (run made with --no-score?)")
        variance = _comparison(self.variance)
        out = []
        for attempt in attempts:
            if attempt.metrics is None:
                raise RunDataError(f"{attempt.path}: attempt has no Physics-IQ metrics in scores.json")
            model = _comparison(attempt.metrics)
            out.append(
                ViewResult(
                    scenario=self.scenario,
                    perspective=self.perspective,
                    category=self.category,
                    take1_id=self.take1_id,
                    take2_id=0,
                    generated=attempt.path.name,
                    model_v1=model,
                    model_v2=model,
                    variance=variance,
                )
            )
        return out


def _comparison(values: MetricValues) -> Comparison:
    return Comparison(
        spatial_iou=values.spatial_iou,
        weighted_spatial_iou=values.weighted_spatial_iou,
        spatiotemporal_iou_frames=(values.spatiotemporal_iou,),
        mse_frames=(values.mse,),
    )


@dataclass(frozen=True)
class RunData:
    """A finished run directory.

    Attributes:
        root: The run directory.
        config: ``config.json`` (the frozen run configuration).
        provenance: ``provenance.json`` (prompt hashes, versions, git commit).
        summary: ``summary.json``.
        views: One entry per take-1 row, in the summary's order.
    """

    root: Path
    config: dict[str, Any]
    provenance: dict[str, Any]
    summary: dict[str, Any]
    views: tuple[ViewData, ...]

    @property
    def label(self) -> str:
        """A short name for tables: the folder name."""
        return self.root.name

    @property
    def scored(self) -> bool:
        return bool(self.views) and all(v.scored for v in self.views)

    def view(self, name: str) -> ViewData:
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def layout(self) -> DatasetLayout:
        """The run's dataset.

        Raises:
            DatasetError: the dataset folder is gone or unreadable.
        """
        return DatasetLayout(self.config["dataset"])


def _local(stored: str, folder: Path) -> Path:
    # Prefer the copy inside this run directory: a copied or moved run must not read another run's files.
    path = Path(stored)
    here = folder / "attempts" / path.name
    return here if here.is_file() else path


def _parse_name(name: str) -> tuple[int, str, str]:
    take1_id = parse_generated_id(name + ".mp4")
    parts = name.split("_", 2)
    if take1_id is None or len(parts) != 3:
        raise RunDataError(f"scenario folder {name!r}: expected '{{ID}}_{{perspective}}_{{scenario}}'")
    return take1_id, parts[1], parts[2]


def load_run(root: str | Path) -> RunData:
    """Read a finished run directory.

    Args:
        root: The folder given to ``physrefine refine --run-dir``.

    Raises:
        RunDataError: not a run directory, an unfinished run (no ``summary.json``: rerun the same ``refine``
            command to resume it), or a malformed file (named).
    """
    root = Path(root)
    if not root.is_dir():
        raise RunDataError(f"{root}: no such run directory")
    if not (root / "config.json").is_file():
        raise RunDataError(f"{root}: not a run directory (no config.json); expected a folder made by refine")
    config = _read_json(root / "config.json", "the run configuration")
    if not (root / "summary.json").is_file():
        raise RunDataError(
            f"{root}: the run has not finished (no summary.json); rerun the same refine command to resume it"
        )
    summary = _read_json(root / "summary.json", "the run summary")
    provenance = _read_json(root / "provenance.json", "the run provenance")
    rows: dict[int, Any] = {}
    try:
        layout = DatasetLayout(config["dataset"])
        rows = {row.id: row for row in layout.take1_rows()}
    except (DatasetError, OSError, KeyError) as exc:
        logger.warning("%s: dataset unreadable (%s); categories shown as 'unknown'", root, exc)
    views = []
    for entry in summary.get("scenarios", []):
        name = str(entry["scenario"])
        take1_id, perspective, slug = _parse_name(name)
        folder = root / "scenarios" / name
        row = rows.get(take1_id)
        scores_path = folder / "scores.json"
        scores = _read_json(scores_path, "the view's scores") if scores_path.is_file() else {}
        attempts = []
        for item in scores.get("attempts", []):
            attempts.append(
                AttemptData(
                    loop=int(item["loop"]),
                    seed=int(item["seed"]),
                    path=_local(str(item["path"]), folder),
                    physics_iq=float(item["physics_iq"]),
                    metrics=_metrics(item, f"{scores_path} attempt {item.get('path')}"),
                )
            )
        if not scores:
            for video in sorted((folder / "attempts").glob("*.mp4")):
                info = _read_json(video.with_suffix(".json"), "the attempt's generation record")
                loop = _loop_of(video)
                attempts.append(AttemptData(loop, int(info.get("seed", 0)), video, None, None))
        honest = entry.get("honest_pick") or {}
        views.append(
            ViewData(
                name=name,
                take1_id=take1_id,
                scenario=row.scenario if row else slug,
                perspective=row.perspective if row else perspective,
                category=row.category if row else "unknown",
                folder=folder,
                loops=int(entry.get("loops", 1)),
                stop_reason=str(entry.get("stop_reason", "")),
                attempts=tuple(sorted(attempts, key=lambda a: (a.loop, a.seed))),
                variance=_metrics(scores["variance"], f"{scores_path} variance") if scores else None,
                honest_key=Path(str(honest["path"])).stem if honest.get("path") else "",
                static_score=float(scores["static"]["physics_iq"]) if scores.get("static") else None,
                entry=entry,
            )
        )
    return RunData(root=root, config=config, provenance=provenance, summary=summary, views=tuple(views))


def critic_rank(attempt: AttemptData) -> tuple[Any, ...]:
    """Sort key (larger is better) of the critic ranking within one loop, no ground truth: consistent
    verdicts first, then critic score, then fewer/lower-severity violations
    (:func:`agent.selection.violation_burden`), then the lower seed. Attempts without a usable critique rank
    last. (The run's own honest pick also breaks ties by the velocity jump at the switch frame, which needs
    the tracker; readers of finished runs use the pick the run recorded.)"""
    critique = attempt.critique()
    usable = bool(critique) and not critique.get("failed", False)
    score = float(critique.get("score", 0.0)) if usable else -1.0
    severities = [str(v.get("severity", "medium")) for v in critique.get("violations", [])] if usable else []
    burden = violation_burden({"severities": severities})
    return (
        usable and critique.get("verdict") == "consistent",
        score,
        tuple(-n for n in burden),
        -attempt.seed,
    )


def _loop_of(video: Path) -> int:
    """Loop of an unscored attempt: the loop number of its critique file (1 if it has none)."""
    for critique in sorted(video.parent.glob(video.stem + ".critique-*.json")):
        number = critique.name.split(".critique-")[1].split(".")[0]
        if number.isdigit():
            return int(number)
    return 1


__all__ = [
    "VARIANTS",
    "VARIANT_LABELS",
    "AttemptData",
    "RunData",
    "RunDataError",
    "ViewData",
    "critic_rank",
    "load_run",
]
