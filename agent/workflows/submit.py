"""Turn finished runs into the package the official Physics-IQ tools read, validated and documented.

Package layout (``OUT``), the one the official ``submit_verified.py`` assembles::

    OUT/
      runs/<name>/*.mp4          one folder per run: the clips and nothing else (what the official evaluator
                                 and submission script read; they refuse any other entry)
      descriptions.csv           the prompt set the runs were given (official columns)
      submission.yaml            with --verified: the submission card, filled from the runs
      manifest.json              physrefine's record: runs, configs, models, picks, per-file sha256
      scores/<name>/             with scoring: results.csv, samples.csv, summary.json (compat mode)
      scores/aggregate.json      with scoring: mean and sample std over the runs

A run folder holds exactly one ``{ID}_{perspective}_{scenario}.mp4`` per take-1 row of the dataset (198 for the
benchmark), each exactly 5 s at the chosen frame rate (only the generated continuation: attempts never contain
the prefix). ``<name>`` is the run directory's name (``refine --repeat`` names them
``<model>-<op|bpp>-run_01..04``, as the leaderboard asks).

Selection rules (``pick``):

- ``honest``: the attempt the run's critic picked (no ground truth) — the default and the only honest choice
  over all loops;
- ``final``: the last loop's attempt with the best critic score (no ground truth);
- ``loop-N``: loop N's attempt with the best critic score (a view that stopped earlier gives its last loop);
- ``oracle``: the attempt with the best Physics-IQ against ground truth. Refused unless forced; a forced one
  is labelled ``ORACLE`` in the manifest, the score summary, the card and the CLI output.

A run made with the ``take2`` generator holds copies of the dataset's second take (ground truth): it is refused
unless forced, and a forced one is labelled ``GROUND TRUTH`` everywhere.

Scores of a package are computed in ``compat`` mode (the official code's lossy steps and rounding), the mode
for leaderboard numbers. A run's own summary is scored in ``fast`` mode; the two differ (the mask codec round
trip and the rounding), and every number says which mode made it.

The package is assembled under a temporary sibling name, validated (the official evaluator's listing rule,
the official submission script's checks, and stricter ones: full decode, exact frame count, exact fps, the
real video's size, not blank), and only then moved into place; an existing non-empty ``out`` is never
touched, and the runs are only read.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agent.workflows.rundata import AttemptData, RunData, ViewData, critic_rank
from physics_iq.errors import DatasetError, PhysicsIQError, ValidationError, VideoReadError
from physics_iq.evaluate import Evaluator, FolderResults, aggregate_runs
from physics_iq.layout import DatasetLayout, descriptions_text
from physics_iq.validation import (
    OFFICIAL_VIDEO_COUNT,
    check_card,
    check_run_dir,
    check_run_id,
    check_submission_descriptions,
    container_info,
    official_listing_problems,
    validate_generated_folder,
)
from physics_iq.video import (
    TEST_SECONDS,
    frames_for_seconds,
    iter_frames,
    probe,
    read_video,
    resample_fps,
    write_video,
)

logger = logging.getLogger(__name__)

RUNS_DIR = "runs"
SCORES_DIR = "scores"
MANIFEST = "manifest.json"
CARD = "submission.yaml"
DESCRIPTIONS = "descriptions.csv"
SCORE_MODE: Literal["compat"] = "compat"
ORACLE_LABEL = "ORACLE: attempts picked with the ground truth; an upper bound, not a valid honest submission"
GROUND_TRUTH_LABEL = (
    "GROUND TRUTH: the clips are copies of the dataset's second take (generator take2), not a model's output; "
    "a calibration baseline, not a valid submission"
)
HONEST_LABEL = "honest: no ground truth used to select or make the clips"
#: Generators whose clips are ground truth rather than a model's output.
GROUND_TRUTH_GENERATORS: tuple[str, ...] = ("take2",)
#: A video whose pixel values spread less than this (std over all frames) is blank (one flat colour).
BLANK_STD = 1.0
#: Card fields only a person can fill (and why), listed in the manifest and by the CLI.
PERSON_FIELDS: dict[str, str] = {
    "public_info.organization": "your organisation",
    "public_info.availability": "public | api | research | private (the video model's access tier)",
    "public_info.model_source": "URL of the video model's paper or website",
    "public_info.generation_cost": "$ per generated video (estimate it from generation_time and your GPU price)",
    "public_info.tech_report": "optional field, but the leaderboard requires a link to a report, repository or "
    "documentation (rule 2)",
    "terms.terms_version": 'must be "1.0" once you have read the Physics-IQ Verified Submission Terms',
    "terms.terms_accepted": "true, once accepted",
    "terms.accepted_on_behalf_of": "full legal name of the submitting organisation",
    "terms.accepted_at": "ISO 8601 time of acceptance",
    **{
        f"warranties.{k}": "true, if it holds (submission terms section 6)"
        for k in (
            "has_rights_to_submit",
            "no_ip_infringement",
            "permitted_by_provider_tos",
            "no_personal_data_in_content",
            "metadata_accurate",
        )
    },
}


class SubmitError(PhysicsIQError):
    """A submission cannot be made (bad pick, refused oracle or ground truth, variant mismatch, missing
    views, existing output)."""


@dataclass(frozen=True)
class Picked:
    """The attempt chosen for one take-1 row, and why."""

    view: ViewData
    attempt: AttemptData
    rule: str


def pick_attempt(view: ViewData, pick: str) -> Picked:
    """Choose one attempt of a view under a selection rule (see the module docstring).

    Raises:
        SubmitError: an unknown rule or a view without a usable attempt.
    """
    if pick == "honest":
        chosen = view.select("honest_ensemble")
        rule = "honest: the run's critic pick over all loops (no ground truth)"
    elif pick == "oracle":
        chosen = view.select("oracle")
        rule = ORACLE_LABEL
    elif pick == "final" or (pick.startswith("loop-") and pick[5:].isdigit() and int(pick[5:]) >= 1):
        loop = view.loops if pick == "final" else min(int(pick[5:]), view.loops)
        candidates = [a for a in view.attempts if a.loop == loop]
        chosen = [max(candidates, key=critic_rank)] if candidates else []
        rule = f"{pick}: best critic score among loop {loop}'s attempts (no ground truth)"
    else:
        raise SubmitError(f"--pick {pick!r}: expected honest, final, loop-N (N >= 1) or oracle")
    if not chosen:
        raise SubmitError(f"{view.folder}: no attempt matches --pick {pick} (no honest pick or no video)")
    return Picked(view, chosen[0], rule)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def strict_check(layout: DatasetLayout, folder: Path, fps: int) -> list[str]:
    """Our rules on top of the official ones: every video fully decodes to exactly 5 s at exactly ``fps``,
    has the real take-1 video's size, and is not blank. Returns the problems (empty when all is well).

    Files hold uint8 pixels, so a generator's NaN output (cast to 0 when written) shows up here as a blank or
    undecodable video."""
    needed = frames_for_seconds(TEST_SECONDS, fps)
    problems = []
    for row in layout.take1_rows():
        path = folder / row.generated_video_name
        # Decoded frame by frame (a full-size clip is never held): count, size and running pixel moments.
        count, total, squares, size = 0, 0.0, 0.0, (0, 0)
        try:
            got_fps = probe(path).fps
            for frame in iter_frames(path):
                pixels = frame.astype(np.float64)
                count += 1
                total += float(pixels.mean())
                squares += float((pixels**2).mean())
                size = (frame.shape[1], frame.shape[0])
        except VideoReadError as exc:
            problems.append(f"{path.name}: does not decode ({exc})")
            continue
        if count != needed:
            problems.append(f"{path.name}: {count} frames; expected exactly {needed} ({TEST_SECONDS:g} s)")
        if abs(got_fps - fps) > 1e-6:
            problems.append(f"{path.name}: {got_fps:g} fps; expected exactly {fps}")
        real = layout.testing_video(row, fps)
        if real.is_file():
            info = probe(real)
            if size != info.size:
                problems.append(
                    f"{path.name}: {size[0]}x{size[1]}; expected the real video's {info.width}x{info.height}"
                )
        mean = total / count
        if max(squares / count - mean**2, 0.0) ** 0.5 < BLANK_STD:
            problems.append(f"{path.name}: blank video (one flat colour, pixel std < {BLANK_STD})")
    return problems


def _place(attempt: AttemptData, dest: Path, fps: int, run_fps: int) -> str:
    """Copy the attempt byte for byte when it already is 5 s at ``fps``; else trim/resample and re-encode."""
    needed = frames_for_seconds(TEST_SECONDS, fps)
    info = probe(attempt.path)
    if fps == run_fps and abs(info.fps - fps) < 1e-6 and info.frame_count == needed:
        shutil.copyfile(attempt.path, dest)
        return "copied"
    frames, src_fps = read_video(attempt.path)
    if abs(src_fps - fps) > 1e-6:
        frames = resample_fps(frames, src_fps, fps)
    if len(frames) < needed:
        raise SubmitError(
            f"{attempt.path}: {len(frames)} frames at {fps} fps after resampling; need {needed} ({TEST_SECONDS:g} s)"
        )
    write_video(dest, frames[:needed], fps)
    return f"re-encoded ({info.frame_count} frames at {info.fps:g} fps -> {needed} at {fps})"


def _prompt_hashes(run: RunData) -> dict[str, Any]:
    record = run.provenance.get("prompt_set", {})
    return {"name": record.get("name"), "path": record.get("path"), "templates": record.get("templates", {})}


def _run_name(run: RunData) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", run.root.resolve().name).strip("-.")
    return name or "run"


def run_label(run: RunData, pick: str) -> str:
    """What a package of this run is: ground truth (take2), oracle, or honest."""
    if run.config.get("generator") in GROUND_TRUTH_GENERATORS:
        return GROUND_TRUTH_LABEL
    if pick == "oracle":
        return ORACLE_LABEL
    return HONEST_LABEL


@dataclass
class _Plan:
    """What goes into the package, checked before anything is written."""

    runs: list[RunData]
    names: list[str]
    layout: DatasetLayout
    fps: int
    run_fps: list[int]
    picks: list[list[Picked]]
    labels: list[str]


def _check_variant(layout: DatasetLayout, verified: bool, what: str) -> None:
    variant = layout.variant
    if verified and variant != "verified":
        shown = variant or "unknown (no marker, not named physics-IQ-benchmark-verified)"
        raise SubmitError(
            f"{what}: the dataset {layout.root} is variant {shown}, not verified; a --verified package needs "
            "runs on the Physics-IQ Verified data (the leaderboard forbids using Original to improve Verified). "
            "physrefine fetch-data DEST --variant verified downloads it and marks it"
        )
    if not verified and variant == "verified":
        raise SubmitError(
            f"{what}: the dataset {layout.root} is Physics-IQ Verified; pass --verified for a Verified package "
            "(a run on one variant is not submitted for the other)"
        )


def _plan(
    runs: Sequence[RunData],
    *,
    pick: str,
    fps: int | None,
    force_oracle: bool,
    force: bool,
    dataset: str | Path | None,
    verified: bool,
) -> _Plan:
    if not runs:
        raise SubmitError("no run given")
    if pick == "oracle" and not force_oracle:
        raise SubmitError(
            "--pick oracle chooses attempts with the ground truth; such a submission is not honest. "
            "Pass --force-oracle to make it anyway (it is labelled ORACLE everywhere)"
        )
    for run in runs:
        if run.config.get("generator") in GROUND_TRUTH_GENERATORS and not force:
            raise SubmitError(
                f"{run.root}: made with --generator {run.config.get('generator')}, whose clips are copies of the "
                "dataset's second take (ground truth), not a model's output. Pass --force to package it anyway "
                "(it is labelled GROUND TRUTH everywhere)"
            )
    names = [_run_name(run) for run in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SubmitError(
            f"several runs are named {duplicates}; run folders must have distinct names (the package holds "
            "runs/<name>/ per run)"
        )
    layouts = []
    for run in runs:
        try:
            layouts.append(run.layout())
        except DatasetError as exc:
            raise SubmitError(f"{run.root}: its dataset cannot be read ({exc})") from exc
        _check_variant(layouts[-1], verified, str(run.root))
    layout = DatasetLayout(dataset) if dataset is not None else layouts[0]
    if dataset is not None:
        _check_variant(layout, verified, f"--dataset {dataset}")
    modes = {str(run.config.get("mode")) for run in runs}
    if len(modes) > 1:
        raise SubmitError(
            f"the runs use different input modes {sorted(modes)}; a package holds one input type"
        )
    ids = {r.id for r in layout.take1_rows()}
    for run, own in zip(runs, layouts, strict=True):
        if {r.id for r in own.take1_rows()} != ids:
            raise SubmitError(f"{run.root}: its dataset {own.root} has other take-1 rows than {layout.root}")
        if own.variant != layout.variant:
            raise SubmitError(
                f"{run.root}: made on variant {own.variant}, the package is for {layout.variant}"
            )
    run_fps = [int(run.config["fps"]) for run in runs]
    chosen_fps = int(fps or run_fps[0])
    if chosen_fps not in (8, 16, 24, 30):
        raise SubmitError(f"--fps {chosen_fps}: the benchmark uses 8, 16, 24 or 30")
    if chosen_fps not in layout.fps_available():
        raise SubmitError(
            f"--fps {chosen_fps}: {layout.root} has no testing videos at {chosen_fps} FPS to check the submission "
            f"against (available: {layout.fps_available()})"
        )
    picks = []
    for run in runs:
        by_id = {v.take1_id: v for v in run.views}
        missing = [r.generated_video_name for r in layout.take1_rows() if r.id not in by_id]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise SubmitError(
                f"{run.root}: the run covers {len(by_id)} of {len(layout.take1_rows())} take-1 rows of "
                f"{layout.root}; missing {shown}. Run refine over the whole dataset (no --scenarios filter)"
            )
        picks.append([pick_attempt(by_id[row.id], pick) for row in layout.take1_rows()])
    labels = [run_label(run, pick) for run in runs]
    return _Plan(list(runs), names, layout, chosen_fps, run_fps, picks, labels)


def _write_run_folder(plan: _Plan, index: int, folder: Path) -> list[dict[str, Any]]:
    folder.mkdir(parents=True)
    files = []
    for row, chosen in zip(plan.layout.take1_rows(), plan.picks[index], strict=True):
        dest = folder / row.generated_video_name
        how = _place(chosen.attempt, dest, plan.fps, plan.run_fps[index])
        files.append(
            {
                "file": dest.name,
                "take1_id": row.id,
                "sha256": _sha256(dest),
                "source": str(chosen.attempt.path),
                "loop": chosen.attempt.loop,
                "seed": chosen.attempt.seed,
                "prompt_sha256": hashlib.sha256(chosen.attempt.prompt.encode()).hexdigest(),
                "how": how,
            }
        )
    return files


def _validate_run_folder(plan: _Plan, folder: Path, resolution: str) -> dict[str, Any]:
    """Every check a run folder must pass; raises :class:`ValidationError` listing the failures."""
    problems = [f"official evaluator: {p}" for p in official_listing_problems(folder)]
    try:
        validated = validate_generated_folder(plan.layout, folder, fps=plan.fps)
        warnings = list(validated.warnings)
    except ValidationError as exc:
        problems += [f"official rules: {p}" for p in exc.problems]
        warnings = []
    expected = len(plan.layout.take1_rows())
    problems += [
        f"official submission script: {p}" for p in check_run_dir(folder, plan.fps, resolution, expected)
    ]
    problems += strict_check(plan.layout, folder, plan.fps)
    if problems:
        raise ValidationError(folder, problems)
    return {"official": "passed", "submission_script": "passed", "strict": "passed", "warnings": warnings}


def _resolution(folder: Path) -> str:
    first = min(folder.glob("*.mp4"))
    info = container_info(first)
    return f"{int(info['width'])}x{int(info['height'])}"


def score_folder(layout: DatasetLayout, folder: Path, fps: int, *, cache_dir: Any = None) -> FolderResults:
    """Score one run folder in compat mode, the leaderboard's."""
    return Evaluator(layout, fps, mode=SCORE_MODE, cache_dir=cache_dir).evaluate_folder(folder)


# -- the card -------------------------------------------------------------------------------------------------
def _trace_events(run: RunData, node: str) -> list[dict[str, Any]]:
    path = run.root / "trace.jsonl"
    events = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: the rest of the trace still counts
            if isinstance(event, dict) and event.get("node") == node:
                events.append(event)
    return events


def generation_seconds(run: RunData) -> list[float]:
    """Seconds of every generation the run made (not reused), from its trace's ``generate`` events and the
    ``seconds`` the generator recorded next to each attempt; empty when the generator records no timing."""
    seconds = []
    for event in _trace_events(run, "generate"):
        if event.get("reused") or event.get("error") or not event.get("path"):
            continue
        side = Path(str(event["path"])).with_suffix(".json")
        local = run.root / "scenarios" / side.parent.parent.name / "attempts" / side.name
        for candidate in (local, side):
            if candidate.is_file():
                try:
                    value = json.loads(candidate.read_text(encoding="utf-8")).get("seconds")
                except json.JSONDecodeError:
                    value = None
                if isinstance(value, int | float):
                    seconds.append(float(value))
                break
    return seconds


def _usage(run: RunData) -> dict[str, Any]:
    """The run's recorded VLM usage (``usage.json``, counted across resumed invocations; else the summary's)."""
    path = run.root / "usage.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return data
    usage = run.summary.get("usage")
    return usage if isinstance(usage, dict) else {}


def _vlm_name(config: dict[str, Any]) -> str:
    if config.get("vlm") == "offline":
        return "physrefine offline motion-grounded rule critic, not a neural model"
    model = (config.get("vlm_options") or {}).get("model")
    return str(model or config.get("vlm"))


def _generator_model(config: dict[str, Any]) -> str:
    model = (config.get("generator_options") or {}).get("model")
    return str(model or config.get("generator"))


def build_card(
    plan: _Plan,
    resolution: str,
    aggregate: dict[str, Any] | None,
    *,
    pick: str,
    today: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The Verified submission card filled from the runs, and the fields left for a person (field -> why)."""
    runs = plan.runs
    config = runs[0].config
    to_fill = dict(PERSON_FIELDS)
    notes: list[str] = []
    neural_generator = all(r.summary.get("generator_is_neural", True) for r in runs)
    # Best-of-N: the candidates the honest selector chose among, per view (loops x seeds actually generated).
    candidates = [len(v.attempts) for r in runs for v in r.views]
    bon = max(candidates) if candidates else 1
    if candidates and min(candidates) != bon:
        notes.append(
            f"bon_sampling {bon} is the most candidates any view had; views that stopped early chose among "
            f"{min(candidates)}-{bon} (mean {float(np.mean(candidates)):.2f})"
        )
    selectors = {
        str(v.entry.get("honest_pick", {}).get("selector", "")).split(";")[0] for r in runs for v in r.views
    }
    selectors.discard("")
    method = f"physrefine {config.get('selector', 'critic')} selector"
    if selectors:
        method += ": " + " | ".join(sorted(selectors))
    # Prompt upsampling cost: the VLM's recorded usage over the runs, per submitted video.
    n_videos = sum(len(p) for p in plan.picks)
    usages = [_usage(r) for r in runs]
    cost = sum(float(u.get("cost_usd", 0.0)) for u in usages)
    unpriced = sum(int(u.get("unpriced_calls", 0)) for u in usages)
    calls = sum(int(u.get("calls", 0)) for u in usages)
    if config.get("vlm") == "offline":
        upsample_cost: float | None = 0.0
        upsample_gpu: Any = "none (CPU rule-based critic)"
        upsample_ngpu: Any = 0
    else:
        upsample_cost = cost / n_videos if n_videos else None
        if unpriced:
            upsample_cost = float("nan")  # the template's value for "upsampling was used, cost unknown"
            notes.append(
                f"{unpriced} of {calls} VLM call(s) reported no price: upsample_cost is NaN (unknown)"
            )
        upsample_gpu = None
        upsample_ngpu = None
        to_fill["public_info.upsample_gpu"] = (
            "GPU model that ran the VLM (required by the official checker unless availability is api; "
            "leave empty if the VLM was an API)"
        )
        to_fill["public_info.upsample_ngpu"] = "number of GPUs that ran the VLM (same rule)"
    latencies = [
        float(e["latency_s"])
        for r in runs
        for e in _trace_events(r, "vlm_call")
        if isinstance(e.get("latency_s"), int | float)
    ]
    upsample_time = round(sum(latencies) / n_videos, 3) if latencies and n_videos else None
    if upsample_time is None:
        to_fill["public_info.upsample_time"] = (
            "seconds of VLM time per video: the runs' traces record no VLM latency"
            + (" (offline rule critic)" if config.get("vlm") == "offline" else "")
        )
    # Generation time: the generator's own timing of each generation, recorded next to the attempts.
    seconds = [s for r in runs for s in generation_seconds(r)]
    generation_time = round(float(np.mean(seconds)), 3) if seconds else None
    if generation_time is None:
        to_fill["public_info.generation_time"] = (
            "seconds per generation x GPUs: the runs' generate events and attempt records hold no generation "
            f"time (generator {config.get('generator')} does not record it)"
        )
    if neural_generator:
        generation_gpu: Any = None
        generation_ngpu: Any = None
        to_fill["public_info.generation_gpu"] = "GPU model used for generation (the runs do not record it)"
        to_fill["public_info.generation_ngpu"] = "number of GPUs per generation (the runs do not record it)"
    else:
        generation_gpu, generation_ngpu = "none (CPU, not a neural model)", 0
    scores: dict[str, Any] = {f"{k}_{s}": None for k in _SCORE_KEYS for s in ("mean", "std")}
    if aggregate and aggregate.get("verified"):
        for card_key, ours in _SCORE_KEYS.items():
            stat = aggregate["verified"][ours]
            scores[f"{card_key}_mean"] = round(stat["mean"], 2)
            scores[f"{card_key}_std"] = None if stat["std"] is None else round(stat["std"], 2)
        if len(runs) == 1:
            for card_key in _SCORE_KEYS:
                to_fill[f"reported_scores.{card_key}_std"] = (
                    "one run has no standard deviation; report four runs (refine --repeat 4)"
                )
    else:
        for card_key in _SCORE_KEYS:
            for stat_name in ("mean", "std"):
                to_fill[f"reported_scores.{card_key}_{stat_name}"] = "score the package (drop --no-score)"
    labels = sorted(set(plan.labels))
    comments = " ".join(
        [
            f"Made with physrefine: {_generator_model(config)} prompted by {_vlm_name(config)};",
            f"{config.get('loops')} loop(s) x {config.get('seeds')} seed(s), honest pick by the",
            f"{config.get('selector', 'critic')} selector (--pick {pick}).",
            f"{len(runs)} run(s): {', '.join(plan.names)}.",
            f"Dataset: Physics-IQ {plan.layout.variant} ({plan.layout.prompt_set} prompts).",
            "Reported scores: Physics-IQ Verified (final_score_view and score_*_view) x 100, mean and sample std",
            f"over the runs, scored in {SCORE_MODE} mode (the official code's steps).",
            *(label.rstrip(".") + "." for label in labels),
            *([f"Notes: {'; '.join(notes)}."] if notes else []),
        ]
    )
    card = {
        "public_info": {
            "organization": "",
            "model": f"{_generator_model(config)} + physrefine",
            "model_version": _generator_model(config),
            "input_type": str(config.get("mode")),
            "parameters": None,
            "fps": plan.fps,
            "resolution": resolution,
            "bon_sampling": bon,
            "bon_sampling_method": method,
            "bon_sampling_source": None,
            "prompt_upsampling": True,
            "prompt_upsampling_method": _vlm_name(config),
            "prompt_upsampling_source": None,
            "descriptions": plan.layout.prompt_set,
            "templater": None,
            "availability": "",
            "model_source": "",
            "provider": None,
            "date": today,
            "tech_report": None,
            "comments": comments,
            "upsample_cost": upsample_cost,
            "upsample_gpu": upsample_gpu,
            "upsample_ngpu": upsample_ngpu,
            "upsample_time": upsample_time,
            "generation_cost": None,
            "generation_gpu": generation_gpu,
            "generation_ngpu": generation_ngpu,
            "generation_time": generation_time,
        },
        "reported_scores": scores,
        "terms": {
            "terms_version": "",
            "terms_accepted": None,
            "accepted_on_behalf_of": "",
            "accepted_at": "",
        },
        "warranties": {key.split(".", 1)[1]: None for key in PERSON_FIELDS if key.startswith("warranties.")},
    }
    return card, to_fill


#: Card score names -> the Verified score keys of a summary (``final_score_view``, ``score_*_view``).
_SCORE_KEYS: dict[str, str] = {
    "physiq": "physics_iq_score",
    "spatial_iou": "score_spatial",
    "weighted_spatial_iou": "score_weighted_spatial",
    "spatiotemporal_iou": "score_spatiotemporal",
    "mse": "score_mse",
}


def _yaml_value(value: Any) -> str:
    """A YAML scalar: JSON for strings, numbers, booleans and null (valid YAML), ``.nan`` for NaN."""
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    return json.dumps(value, ensure_ascii=False)


def render_card(card: dict[str, Any], to_fill: dict[str, str], variant: str | None) -> str:
    """The card as YAML in the official template's key order, each field commented, the fields left for a
    person marked ``# TO FILL``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("agent", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; every value goes through _yaml_value
    )
    env.filters["yaml"] = _yaml_value
    return env.get_template("submission_verified.yaml.j2").render(
        card=card, to_fill=to_fill, variant=variant, score_mode=SCORE_MODE
    )


def read_card(path: Path) -> dict[str, Any]:
    """Parse a ``submission.yaml``.

    Raises:
        SubmitError: not valid YAML or not a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SubmitError(f"{path}: could not parse the card YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SubmitError(f"{path}: expected a YAML mapping (the submission card)")
    return data


# -- the package ----------------------------------------------------------------------------------------------
def make_submission(
    runs: RunData | Sequence[RunData],
    out: str | Path,
    *,
    pick: str = "honest",
    fps: int | None = None,
    force_oracle: bool = False,
    force: bool = False,
    dataset: str | Path | None = None,
    verified: bool = False,
    score: bool | None = None,
    cache_dir: Any = None,
    today: str | None = None,
) -> dict[str, Any]:
    """Write, validate and document a submission package (see the module docstring). Returns the manifest.

    Args:
        runs: One or more finished runs (four for a leaderboard entry with mean and std).
        out: The new package folder (must not exist or be empty).
        pick: ``honest`` (default), ``final``, ``loop-N`` or ``oracle``.
        fps: Frame rate of the submission (default: the first run's).
        force_oracle: Allow ``pick="oracle"`` (labelled everywhere).
        force: Allow runs of the ``take2`` generator (ground truth; labelled everywhere).
        dataset: The dataset naming the take-1 IDs (default: the runs').
        verified: Make the Physics-IQ Verified package (with ``submission.yaml``); runs must be on the
            Verified data. Without it, runs on the Verified data are refused.
        score: Score every run folder in compat mode (default: on with ``verified``, off otherwise).
        cache_dir: The evaluator's cache (see :class:`physics_iq.evaluate.Evaluator`).
        today: The card's date (default: today).

    Raises:
        SubmitError: refused oracle or ground truth, variant mismatch, bad pick, existing output, a take-1 row
            a run did not cover.
        ValidationError: an assembled run folder breaks the official or our rules (nothing is left at ``out``).
    """
    run_list = [runs] if isinstance(runs, RunData) else list(runs)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SubmitError(f"{out}: exists and is not empty; refusing to write into it (choose a new --out)")
    plan = _plan(
        run_list,
        pick=pick,
        fps=fps,
        force_oracle=force_oracle,
        force=force,
        dataset=dataset,
        verified=verified,
    )
    do_score = verified if score is None else score
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = _assemble(
            plan,
            staging,
            pick=pick,
            verified=verified,
            score=do_score,
            cache_dir=cache_dir,
            today=today or datetime.date.today().isoformat(),
        )
        manifest["package"] = str(out)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if out.exists():
            out.rmdir()  # checked empty above; rename needs the name free
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own staging folder, never the user's
        raise
    return manifest


def _assemble(
    plan: _Plan, staging: Path, *, pick: str, verified: bool, score: bool, cache_dir: Any, today: str
) -> dict[str, Any]:
    run_records = []
    resolution = ""
    for index, (run, name) in enumerate(zip(plan.runs, plan.names, strict=True)):
        folder = staging / RUNS_DIR / name
        files = _write_run_folder(plan, index, folder)
        resolution = resolution or _resolution(folder)
        validation = _validate_run_folder(plan, folder, resolution)
        run_records.append(
            {
                "name": name,
                "folder": f"{RUNS_DIR}/{name}",
                "run_dir": str(run.root),
                "label": plan.labels[index],
                "selection": {"pick": pick, "rule": plan.picks[index][0].rule, "oracle": pick == "oracle"},
                "ground_truth": run.config.get("generator") in GROUND_TRUTH_GENERATORS,
                "config": run.config,
                "models": {
                    "generator": run.config.get("generator"),
                    "generator_options": run.config.get("generator_options", {}),
                    "vlm": run.config.get("vlm"),
                    "vlm_options": run.config.get("vlm_options", {}),
                    "generator_is_neural": run.summary.get("generator_is_neural"),
                    "critic_is_neural": run.summary.get("critic_is_neural"),
                },
                "run_scores": {
                    "mode": run.summary.get("score_mode", "fast"),
                    **run.summary.get("overall", {}),
                },
                "prompt_set": _prompt_hashes(run),
                "packages": run.provenance.get("packages", {}),
                "git_commit": run.provenance.get("git_commit"),
                "validation": validation,
                "files": files,
            }
        )
    (staging / DESCRIPTIONS).write_text(descriptions_text(plan.layout.rows), encoding="utf-8", newline="")
    scores: dict[str, Any] | None = None
    aggregate: dict[str, Any] | None = None
    if score:
        summaries: dict[str, dict[str, Any]] = {}
        for record in run_records:
            results = score_folder(plan.layout, staging / record["folder"], plan.fps, cache_dir=cache_dir)
            results.extra["label"] = record["label"]
            results.extra["selection"] = record["selection"]
            results.extra["package_run"] = record["name"]
            results.write(staging / SCORES_DIR / record["name"])
            summaries[record["name"]] = results.to_json()
        aggregate = aggregate_runs(summaries)
        (staging / SCORES_DIR / "aggregate.json").write_text(
            json.dumps(aggregate, indent=2), encoding="utf-8"
        )
        scores = {
            "mode": SCORE_MODE,
            "per_run": {
                name: {
                    "physics_iq_score": s.get("physics_iq_score"),
                    "verified": s.get("verified", {}).get("physics_iq_score"),
                    "label": s.get("label"),
                }
                for name, s in summaries.items()
            },
            "aggregate": aggregate,
            "folder": SCORES_DIR,
        }
    manifest: dict[str, Any] = {
        "format": "physrefine.submission/2",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "variant": plan.layout.variant,
        "verified_package": verified,
        "dataset": str(plan.layout.root),
        "descriptions": {
            "file": DESCRIPTIONS,
            "prompt_set": plan.layout.prompt_set,
            "source": str(plan.layout.descriptions_path),
        },
        "fps": plan.fps,
        "resolution": resolution,
        "seconds": TEST_SECONDS,
        "frames_per_video": frames_for_seconds(TEST_SECONDS, plan.fps),
        "videos_per_run": len(plan.layout.take1_rows()),
        "official_videos_per_run": OFFICIAL_VIDEO_COUNT,
        "mode": plan.runs[0].config.get("mode"),
        "label": " | ".join(sorted(set(plan.labels))),
        "selection": run_records[0]["selection"],
        "runs": run_records,
        "scores": scores,
    }
    if verified:
        card, to_fill = build_card(plan, resolution, aggregate, pick=pick, today=today)
        (staging / CARD).write_text(render_card(card, to_fill, plan.layout.variant), encoding="utf-8")
        parsed = read_card(staging / CARD)
        manifest["card"] = {
            "file": CARD,
            "to_fill": to_fill,
            "problems": check_card(parsed),
        }
    return manifest


def validate_package(
    out: str | Path, *, run_id: str | None = None, expected_count: int | None = None
) -> dict[str, Any]:
    """Every check of the official submission script on a package folder, as ``--validate-only`` runs them.

    Checks, in the official order: the run id (when given), the card (required fields by its rules, terms,
    warranties), ``descriptions.csv`` (columns, every clip listed), then each ``runs/<name>/`` (clip count,
    prefix order, 5 s within 1 ms, the card's resolution, one fps within 0.01 of the card's), plus the
    official evaluator's listing rule (every entry an ``.mp4``).

    Args:
        out: The package folder (``submission.yaml``, ``descriptions.csv``, ``runs/``).
        run_id: The id the maintainers assigned, if any.
        expected_count: Clips per run folder (default: the manifest's take-1 row count, else 198).

    Returns:
        ``{"failures": [...], "checked": [...], "expected_count": n, "official_count": 198}``.

    Raises:
        SubmitError: ``out`` is not a package folder.
    """
    out = Path(out)
    if not out.is_dir():
        raise SubmitError(f"{out}: no such package folder")
    failures: list[str] = []
    checked: list[str] = []
    if run_id is not None:
        failures += check_run_id(run_id)
        checked.append("run id")
    card_path = out / CARD
    card: dict[str, Any] = {}
    if card_path.is_file():
        card = read_card(card_path)
        failures += [f"{CARD}: {e}" for e in check_card(card)]
    else:
        failures.append(f"{card_path}: card not found")
    checked.append("card")
    runs_dir = out / RUNS_DIR
    run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    if not run_dirs:
        failures.append(f"{runs_dir}: no run folder")
    descriptions = out / DESCRIPTIONS
    if descriptions.is_file():
        failures += check_submission_descriptions(descriptions, run_dirs)
    else:
        failures.append(f"{descriptions}: descriptions file not found")
    checked.append("descriptions.csv")
    if expected_count is None:
        manifest_path = out / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
        expected_count = int(manifest.get("videos_per_run", OFFICIAL_VIDEO_COUNT))
    info = card.get("public_info") or {}
    card_fps = _number(info.get("fps"))
    card_resolution = info.get("resolution") or None
    for run_dir in run_dirs:
        failures += [
            f"[{run_dir.name}] {e}" for e in check_run_dir(run_dir, card_fps, card_resolution, expected_count)
        ]
        failures += [f"[{run_dir.name}] {e}" for e in official_listing_problems(run_dir)]
    checked.append(f"{len(run_dirs)} run folder(s)")
    stray = sorted(p.name for p in runs_dir.iterdir() if not p.is_dir()) if runs_dir.is_dir() else []
    failures += [f"{RUNS_DIR}/{name}: not a run folder" for name in stray]
    return {
        "failures": failures,
        "checked": checked,
        "expected_count": expected_count,
        "official_count": OFFICIAL_VIDEO_COUNT,
    }


def _number(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "CARD",
    "GROUND_TRUTH_LABEL",
    "HONEST_LABEL",
    "MANIFEST",
    "ORACLE_LABEL",
    "PERSON_FIELDS",
    "RUNS_DIR",
    "SCORES_DIR",
    "SCORE_MODE",
    "Picked",
    "SubmitError",
    "build_card",
    "generation_seconds",
    "make_submission",
    "pick_attempt",
    "render_card",
    "strict_check",
    "validate_package",
]
