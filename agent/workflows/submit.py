"""Turn a finished run into the folder the official Physics-IQ toolkit scores, validated and documented.

The folder holds exactly one ``{ID}_{perspective}_{scenario}.mp4`` per take-1 row of the dataset, each exactly
5 s at the chosen frame rate (only the generated continuation: attempts never contain the prefix). Next to
the videos, in the hidden sub-folder ``.physrefine/`` (the official rules and our validator ignore hidden
entries), go ``manifest.json`` (run config, models, prompt hashes, selection rule, per-file sha256) and, with
scoring, the evaluator's ``results.csv``/``summary.json``.

Selection rules (``pick``):

- ``honest``: the attempt the run's critic picked (no ground truth) — the default and the only honest choice
  over all loops;
- ``final``: the last loop's attempt with the best critic score (no ground truth);
- ``loop-N``: loop N's attempt with the best critic score (a view that stopped earlier gives its last loop);
- ``oracle``: the attempt with the best Physics-IQ against ground truth. Refused unless forced; a forced one
  is labelled ``ORACLE`` in the manifest, the score summary and the CLI output.

The folder is assembled under a temporary sibling name, validated (official rules plus stricter ones: full
decode, exact frame count, exact fps, the real video's size, not blank), and only then moved into place; an
existing non-empty ``out`` is never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.workflows.rundata import AttemptData, RunData, ViewData, critic_rank
from physics_iq.errors import PhysicsIQError, ValidationError, VideoReadError
from physics_iq.layout import DatasetLayout
from physics_iq.validation import validate_generated_folder
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

META_DIR = ".physrefine"
ORACLE_LABEL = "ORACLE: attempts picked with the ground truth; an upper bound, not a valid honest submission"
#: A video whose pixel values spread less than this (std over all frames) is blank (one flat colour).
BLANK_STD = 1.0


class SubmitError(PhysicsIQError):
    """A submission cannot be made (bad pick, refused oracle, missing views, existing output)."""


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


def make_submission(
    run: RunData,
    out: str | Path,
    *,
    pick: str = "honest",
    fps: int | None = None,
    force_oracle: bool = False,
    dataset: str | Path | None = None,
) -> dict[str, Any]:
    """Write, validate and document a submission folder (see the module docstring). Returns the manifest.

    Args:
        run: A finished run.
        out: The new submission folder (must not exist or be empty).
        pick: ``honest`` (default), ``final``, ``loop-N`` or ``oracle``.
        fps: Frame rate of the submission (default: the run's).
        force_oracle: Allow ``pick="oracle"`` (labelled everywhere).
        dataset: The dataset naming the take-1 IDs (default: the run's).

    Raises:
        SubmitError: refused oracle, bad pick, existing output, a take-1 row the run did not cover.
        ValidationError: the assembled folder breaks the official or our rules (nothing is left at ``out``).
    """
    out = Path(out)
    if pick == "oracle" and not force_oracle:
        raise SubmitError(
            "--pick oracle chooses attempts with the ground truth; such a submission is not honest. "
            "Pass --force-oracle to make it anyway (it is labelled ORACLE everywhere)"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SubmitError(f"{out}: exists and is not empty; refusing to write into it (choose a new --out)")
    layout = DatasetLayout(dataset if dataset is not None else run.config["dataset"])
    run_fps = int(run.config["fps"])
    fps = int(fps or run_fps)
    if fps not in (8, 16, 24, 30):
        raise SubmitError(f"--fps {fps}: the benchmark uses 8, 16, 24 or 30")
    if fps not in layout.fps_available():
        raise SubmitError(
            f"--fps {fps}: {layout.root} has no testing videos at {fps} FPS to check the submission against "
            f"(available: {layout.fps_available()})"
        )
    by_id = {v.take1_id: v for v in run.views}
    missing = [r.generated_video_name for r in layout.take1_rows() if r.id not in by_id]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise SubmitError(
            f"{run.root}: the run covers {len(by_id)} of {len(layout.take1_rows())} take-1 rows of "
            f"{layout.root}; missing {shown}. Run refine over the whole dataset (no --scenarios filter)"
        )
    picks = [pick_attempt(by_id[row.id], pick) for row in layout.take1_rows()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        files = []
        for row, chosen in zip(layout.take1_rows(), picks, strict=True):
            dest = staging / row.generated_video_name
            how = _place(chosen.attempt, dest, fps, run_fps)
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
        try:
            validated = validate_generated_folder(layout, staging, fps=fps)
        except ValidationError as exc:
            raise ValidationError(out, [f"official rules: {p}" for p in exc.problems]) from exc
        problems = strict_check(layout, staging, fps)
        if problems:
            raise ValidationError(out, problems)
        oracle = pick == "oracle"
        manifest = {
            "format": "physrefine.submission/1",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "run_dir": str(run.root),
            "dataset": str(layout.root),
            "fps": fps,
            "seconds": TEST_SECONDS,
            "frames_per_video": frames_for_seconds(TEST_SECONDS, fps),
            "mode": run.config.get("mode"),
            "selection": {"pick": pick, "rule": picks[0].rule, "oracle": oracle},
            "label": ORACLE_LABEL if oracle else "honest: no ground truth used to select attempts",
            "config": run.config,
            "models": {
                "generator": run.config.get("generator"),
                "generator_options": run.config.get("generator_options", {}),
                "vlm": run.config.get("vlm"),
                "vlm_options": run.config.get("vlm_options", {}),
                "generator_is_neural": run.summary.get("generator_is_neural"),
                "critic_is_neural": run.summary.get("critic_is_neural"),
            },
            "prompt_set": _prompt_hashes(run),
            "packages": run.provenance.get("packages", {}),
            "git_commit": run.provenance.get("git_commit"),
            "validation": {"official": "passed", "strict": "passed", "warnings": list(validated.warnings)},
            "files": files,
        }
        meta = staging / META_DIR
        meta.mkdir()
        (meta / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if out.exists():
            out.rmdir()  # checked empty above; rename needs the name free
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own staging folder, never the user's
        raise
    return manifest


def score_submission(
    out: str | Path, manifest: dict[str, Any], *, cache_dir: Path | None = None
) -> dict[str, Any]:
    """Score a submission folder with the evaluator; results go to ``out/.physrefine/score/``.

    The summary carries the manifest's selection label (an oracle submission's score says ORACLE).
    """
    from physics_iq.evaluate import Evaluator

    out = Path(out)
    evaluator = Evaluator(manifest["dataset"], int(manifest["fps"]), mode="fast", cache_dir=cache_dir)
    results = evaluator.evaluate_folder(out)
    results.extra["selection"] = manifest["selection"]
    results.extra["label"] = manifest["label"]
    results.write(out / META_DIR / "score")
    summary: dict[str, Any] = results.to_json()
    return summary


__all__ = [
    "META_DIR",
    "ORACLE_LABEL",
    "Picked",
    "SubmitError",
    "make_submission",
    "pick_attempt",
    "score_submission",
    "strict_check",
]
