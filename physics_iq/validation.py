"""Up-front checks of a dataset and of a folder of generated videos, listing every problem at once.

Validation never modifies anything: the official script renames the user's files; we only read them.
Checks here are cheap (container headers and packet counts, no decoding), so a folder with a bad file fails
in seconds instead of after an hour of scoring.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from physics_iq.errors import DatasetError, ValidationError, VideoReadError
from physics_iq.layout import DatasetLayout, ViewPair, parse_generated_id
from physics_iq.video import TEST_SECONDS, VideoInfo, frames_for_seconds, open_for_reading

logger = logging.getLogger(__name__)

_MAX_LISTED = 20


def quick_probe(path: str | Path) -> VideoInfo:
    """Frame rate, frame count and size from the container, counting packets without decoding them.

    A truncated file either fails to open (its index is missing) or shows fewer packets than frames it
    claims; the full decode during scoring still raises :class:`VideoReadError` for any damage this misses.

    Raises:
        VideoReadError: missing, empty, not a video container, no video stream, or no frame.
    """
    path = Path(path)
    container = open_for_reading(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0:
            raise VideoReadError(path, "the video stream declares no frame rate")
        width, height = stream.codec_context.width, stream.codec_context.height
        count = 0
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except av.FFmpegError as exc:
        raise VideoReadError(path, f"demuxing failed after {count} packet(s) ({exc})") from exc
    finally:
        container.close()
    if count == 0 or not width or not height:
        raise VideoReadError(path, "no video frame (truncated or empty stream)")
    return VideoInfo(path=path, fps=float(rate), frame_count=count, width=width, height=height)


def listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def check_dataset(layout: DatasetLayout, fps: int) -> list[ViewPair]:
    """Check that every scenario has all three views, each take-1 row a take-2 twin, and the videos exist.

    Returns:
        The take-1/take-2 pairs in ID order.

    Raises:
        DatasetError: listing every problem found.
    """
    problems: list[str] = []
    if fps not in layout.fps_available():
        available = layout.fps_available()
        problems.append(
            f"no testing videos at {fps} FPS under {layout.split_dir('testing-videos', fps).parent} "
            f"(available: {', '.join(f'{f} FPS' for f in available) or 'none'})"
        )
    take1: dict[str, set[str]] = {}
    take2: Counter[tuple[str, str]] = Counter()
    for row in layout.rows:
        if row.take == 1:
            take1.setdefault(row.scenario, set()).add(row.perspective)
        else:
            take2[row.view_key] += 1
    for scenario, views in take1.items():
        missing = [p for p in layout.views if p not in views]
        if missing:
            problems.append(
                f"scenario {scenario}: take-1 view(s) {missing} missing (expected all of {list(layout.views)})"
            )
    for row in layout.take1_rows():
        if take2[row.view_key] != 1:
            problems.append(
                f"{row.scenario_file_name()}: {take2[row.view_key]} take-2 row(s) for {row.scenario} "
                f"{row.perspective}; expected exactly one"
            )
    if not problems:
        missing_files = [
            str(path)
            for row in layout.rows
            for path in [layout.testing_video(row, fps)]
            if not path.is_file()
        ]
        if missing_files:
            problems.append(f"{len(missing_files)} testing video(s) missing: {listing(missing_files)}")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise DatasetError(f"{layout.root}: {len(problems)} dataset problem(s):\n{lines}")
    return layout.pairs()


@dataclass(frozen=True)
class GeneratedFolder:
    """A validated folder of generated videos.

    Attributes:
        folder: The folder.
        fps: The frame rate shared by all its videos.
        files: Take-1 ID -> the generated file for it.
        infos: Take-1 ID -> what :func:`quick_probe` measured.
        warnings: Things that are scored anyway but the user should know (longer than 5 s, resized).
    """

    folder: Path
    fps: int
    files: dict[int, Path]
    infos: dict[int, VideoInfo] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _probe_or_error(path: Path) -> VideoInfo | VideoReadError:
    try:
        return quick_probe(path)
    except VideoReadError as exc:
        return exc


def validate_generated_folder(
    layout: DatasetLayout, folder: str | Path, fps: int | None = None, *, jobs: int = 1
) -> GeneratedFolder:
    """Check a folder of generated videos against a dataset, reading only container headers.

    Problems (all reported together): folder missing or empty, files that are not ``{ID}....mp4`` for a
    take-1 ID, two files for one ID, missing IDs, unreadable/truncated/non-video files, videos shorter than
    5 s, mixed frame rates, a frame rate the dataset has no testing videos for. Hidden files (``.name``) and
    sub-folders are ignored.

    Warnings (scored anyway, as the official evaluator does): videos longer than 5 s (the first 5 s are
    scored). Videos whose size differs from the real one are resized; the evaluator reports those once it has
    decoded them (probing every real video here would cost as much as scoring a cached model).

    Args:
        layout: The dataset.
        folder: The generated videos.
        fps: The expected frame rate; ``None`` takes the one the videos share.
        jobs: Threads probing the files (opening a container decodes a few frames in FFmpeg, which
            releases the GIL); problems are listed in the same order whatever the value.

    Raises:
        ValidationError: listing every problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError(folder, ["the folder does not exist (or is not a folder)"])
    take1 = {row.id: row for row in layout.take1_rows()}
    problems: list[str] = []
    files: dict[int, Path] = {}
    extra: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        id_ = parse_generated_id(path.name)
        if id_ is None:
            extra.append(path.name)
        elif id_ not in take1:
            problems.append(
                f"{path.name}: ID {id_:04d} is not a take-1 row of {layout.descriptions_path} "
                f"(valid IDs: {min(take1):04d}-{max(take1):04d}); remove or rename it"
            )
        elif id_ in files:
            problems.append(f"{path.name}: a second file for ID {id_:04d} (first: {files[id_].name})")
        else:
            files[id_] = path
    if extra:
        problems.append(
            f"{len(extra)} extra file(s) that are not '{{ID}}_{{perspective}}_{{scenario}}.mp4': {listing(extra)}"
        )
    if not files and not extra and not problems:
        example = take1[min(take1)].generated_video_name
        raise ValidationError(
            folder, [f"no generated videos found; expected {len(take1)} files like {example!r}"]
        )
    missing = [take1[i].generated_video_name for i in sorted(take1) if i not in files]
    if missing:
        problems.append(f"{len(missing)} of {len(take1)} video(s) missing: {listing(missing)}")

    infos: dict[int, VideoInfo] = {}
    if jobs > 1 and len(files) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            probed = list(pool.map(_probe_or_error, files.values()))
    else:
        probed = [_probe_or_error(path) for path in files.values()]
    for id_, outcome in zip(files, probed, strict=True):
        if isinstance(outcome, VideoReadError):
            problems.append(str(outcome))
        else:
            infos[id_] = outcome
    rates = Counter(round(info.fps, 3) for info in infos.values())
    chosen: float | None = float(fps) if fps is not None else (rates.most_common(1)[0][0] if rates else None)
    warnings: list[str] = []
    if chosen is not None:
        off = [
            f"{infos[i].path.name} ({infos[i].fps:g} fps)" for i in infos if round(infos[i].fps, 3) != chosen
        ]
        if off:
            why = "--fps" if fps is not None else f"the other {rates[chosen]} video(s)"
            problems.append(
                f"inconsistent frame rates: expected {chosen:g} fps like {why}, got {listing(off)}"
            )
        if abs(chosen - round(chosen)) > 1e-3:
            problems.append(f"frame rate {chosen:g} fps is not one the benchmark uses (8, 16, 24, 30)")
        elif round(chosen) not in layout.fps_available():
            problems.append(
                f"the dataset has no testing videos at {round(chosen)} FPS "
                f"(available: {', '.join(map(str, layout.fps_available())) or 'none'})"
            )
        needed = frames_for_seconds(TEST_SECONDS, chosen)
        short = [
            f"{info.path.name} is {info.duration:.2f} s ({info.frame_count} frames at {info.fps:g} fps)"
            for info in infos.values()
            if info.frame_count < needed
        ]
        if short:
            problems.append(
                f"{len(short)} video(s) shorter than {TEST_SECONDS:g} s (need {needed} frames at "
                f"{chosen:g} fps): {listing(short)}"
            )
        long = [
            f"{info.path.name} ({info.duration:.2f} s)"
            for info in infos.values()
            if info.frame_count > needed
        ]
        if long:
            warnings.append(
                f"{len(long)} video(s) longer than {TEST_SECONDS:g} s: only the first {TEST_SECONDS:g} s are "
                f"scored, as in the official evaluator: {listing(long)}"
            )
    if problems:
        raise ValidationError(folder, problems)
    assert chosen is not None  # files were found and all probed, so rates is non-empty
    for message in warnings:
        logger.info("%s", message)  # returned to the caller too; the CLI shows them
    return GeneratedFolder(
        folder=folder, fps=round(chosen), files=files, infos=infos, warnings=tuple(warnings)
    )


# --------------------------------------------------------------------------------------------------------
# The official rules, as the official scripts apply them (google-deepmind/physics-IQ-benchmark)

#: Generated clips the official evaluator and submission script expect per run folder (198 take-1 rows).
OFFICIAL_VIDEO_COUNT = 198
#: ``submit_verified.py``: a clip lasts 5 s within 1 ms; a run's frame rate matches the card within 0.01.
DURATION_TOLERANCE_S = 0.001
FPS_TOLERANCE = 0.01
#: ``submit_verified.py`` run ids: ``<org>__<descriptive-id>__<YYYY-MM-DD>``, lowercase.
RUN_ID_RE = re.compile(r"^[a-z0-9]+__[a-z0-9.-]+__\d{4}-\d{2}-\d{2}$")
CURRENT_TERMS_VERSION = "1.0"
#: ``public_info`` fields that must be neither null nor "" (the official card rules, in their order).
REQUIRED_CARD_FIELDS: tuple[str, ...] = (
    "organization",
    "model",
    "model_version",
    "input_type",
    "fps",
    "resolution",
    "bon_sampling",
    "prompt_upsampling",
    "descriptions",
    "availability",
    "model_source",
    "date",
    "generation_cost",
)
#: Required when ``prompt_upsampling`` is true.
UPSAMPLING_REQUIRED_CARD_FIELDS: tuple[str, ...] = ("upsample_cost",)
#: Required when ``availability`` is not ``api`` (the submitter ran generation).
NON_API_REQUIRED_CARD_FIELDS: tuple[str, ...] = ("generation_gpu", "generation_ngpu", "generation_time")
#: Required when upsampling was done and ``availability`` is not ``api``.
NON_API_UPSAMPLING_REQUIRED_CARD_FIELDS: tuple[str, ...] = ("upsample_gpu", "upsample_ngpu", "upsample_time")
#: ``reported_scores`` fields, all required.
REQUIRED_REPORTED_SCORE_FIELDS: tuple[str, ...] = tuple(
    f"{name}_{stat}"
    for name in ("physiq", "spatial_iou", "weighted_spatial_iou", "spatiotemporal_iou", "mse")
    for stat in ("mean", "std")
)
#: ``warranties`` fields, all must be true.
WARRANTY_FIELDS: tuple[str, ...] = (
    "has_rights_to_submit",
    "no_ip_infringement",
    "permitted_by_provider_tos",
    "no_personal_data_in_content",
    "metadata_accurate",
)


def official_listing_problems(folder: str | Path) -> list[str]:
    """What the official evaluator's listing steps refuse in a folder of generated clips.

    ``rename_generated_videos`` lists every entry of the folder (dot-entries and sub-folders included) and
    raises ``ValueError: Only .mp4 files are supported.`` for any name not ending in ``.mp4``;
    ``validate_generations`` takes the ``.mp4`` names in sorted order and requires the n-th to start with
    ``{n:04d}_``. Returns the problems (empty when the folder passes).
    """
    folder = Path(folder)
    entries = sorted(os.listdir(folder))
    problems = [
        f"{name}: not an .mp4 file; the official evaluator lists every entry of the folder and raises "
        "'ValueError: Only .mp4 files are supported.'"
        for name in entries
        if not name.endswith(".mp4") or not (folder / name).is_file()
    ]
    mp4s = [name for name in entries if name.endswith(".mp4")]
    problems += [
        f"{name}: the official evaluator expects file #{i} to start with '{i:04d}_'"
        for i, name in enumerate(mp4s, start=1)
        if not name.startswith(f"{i:04d}_")
    ]
    return problems


def check_run_id(run_id: str) -> list[str]:
    """The official run-id rule (``<org>__<descriptive-id>__<YYYY-MM-DD>``, lowercase, digits, ``.-``).

    >>> check_run_id("openai__sora-2-op-bon1__2026-06-30"), len(check_run_id("My Run"))
    ([], 1)
    """
    if RUN_ID_RE.match(run_id):
        return []
    return [f"run id {run_id!r}: expected <org>__<descriptive-id>__<YYYY-MM-DD> (lowercase, no spaces)"]


def _empty(value: object) -> bool:
    return value is None or value == ""


def check_card(card: Mapping[str, Any]) -> list[str]:
    """Every rule the official ``submit_verified.py`` applies to a submission card (``submission.yaml``).

    Required ``public_info`` fields (more when ``prompt_upsampling`` is true or ``availability`` is not
    ``api``), the ten ``reported_scores``, ``terms`` (version "1.0", accepted, by whom, when) and the five
    ``warranties``. Enum values are not checked, as officially. Returns one message per failure.
    """
    errors: list[str] = []
    info = card.get("public_info") or {}
    errors += [
        f"required field 'public_info.{k}' is empty" for k in REQUIRED_CARD_FIELDS if _empty(info.get(k))
    ]
    if info.get("prompt_upsampling") is True:
        errors += [
            f"required field 'public_info.{k}' is empty (required when prompt_upsampling is true)"
            for k in UPSAMPLING_REQUIRED_CARD_FIELDS
            if _empty(info.get(k))
        ]
        if info.get("availability") != "api":
            errors += [
                f"required field 'public_info.{k}' is empty (required for non-API models with prompt upsampling)"
                for k in NON_API_UPSAMPLING_REQUIRED_CARD_FIELDS
                if _empty(info.get(k))
            ]
    if info.get("availability") != "api":
        errors += [
            f"required field 'public_info.{k}' is empty (required for non-API models)"
            for k in NON_API_REQUIRED_CARD_FIELDS
            if _empty(info.get(k))
        ]
    scores = card.get("reported_scores") or {}
    errors += [
        f"required field 'reported_scores.{k}' is empty"
        for k in REQUIRED_REPORTED_SCORE_FIELDS
        if _empty(scores.get(k))
    ]
    terms = card.get("terms") or {}
    if terms.get("terms_version") != CURRENT_TERMS_VERSION:
        errors.append(
            f'terms.terms_version must be "{CURRENT_TERMS_VERSION}" (got {terms.get("terms_version")!r})'
        )
    if terms.get("terms_accepted") is not True:
        errors.append("terms.terms_accepted must be true")
    if not terms.get("accepted_on_behalf_of"):
        errors.append("terms.accepted_on_behalf_of must be a non-empty string")
    if not terms.get("accepted_at"):
        errors.append("terms.accepted_at must be a non-empty string")
    warranties = card.get("warranties") or {}
    errors += [f"warranties.{k} must be true" for k in WARRANTY_FIELDS if warranties.get(k) is not True]
    return errors


def check_submission_descriptions(path: str | Path, run_dirs: Sequence[str | Path]) -> list[str]:
    """The official ``descriptions.csv`` check of a submission: UTF-8 CSV with ``scenario``, ``description``
    and ``generated_video_name`` columns, and every ``.mp4`` of every run folder listed as a generated name."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            fields = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [f"{path}: descriptions.csv could not be parsed: {exc}"]
    missing = {"scenario", "description", "generated_video_name"} - set(fields)
    if missing:
        return [f"{path}: descriptions.csv missing required column(s): {sorted(missing)}"]
    covered = {(row["generated_video_name"] or "").strip() for row in rows}
    return [
        f"[{Path(run_dir).name}] {mp4.name} not found in descriptions.csv generated_video_name column"
        for run_dir in run_dirs
        for mp4 in sorted(Path(run_dir).glob("*.mp4"))
        if mp4.name not in covered
    ]


def container_info(path: str | Path) -> dict[str, float]:
    """What ``ffprobe`` reports to the official submission script: the stream's ``r_frame_rate`` (fps),
    width, height and the container's (format) duration in seconds.

    Raises:
        VideoReadError: the file cannot be opened or has no video stream.
    """
    path = Path(path)
    container = open_for_reading(path)
    try:
        stream = container.streams.video[0]
        rate = stream.base_rate or stream.average_rate
        duration = container.duration / av.time_base if container.duration is not None else float("nan")
        return {
            "fps": float(rate) if rate else float("nan"),
            "width": float(stream.codec_context.width),
            "height": float(stream.codec_context.height),
            "duration": float(duration),
        }
    finally:
        container.close()


def check_run_dir(
    run_dir: str | Path,
    card_fps: float | None,
    card_resolution: str | None,
    expected_count: int = OFFICIAL_VIDEO_COUNT,
) -> list[str]:
    """The official submission checks of one run folder: ``expected_count`` ``*.mp4`` files (198 for the
    benchmark), the n-th starting with ``{n:04d}_``, each 5 s within 1 ms, of the card's resolution, all at
    one frame rate within 0.01 of the card's. ``card_fps``/``card_resolution`` of ``None`` skip those
    comparisons (the card's own check reports them empty)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return [f"run directory not found: {run_dir}"]
    mp4s = sorted(run_dir.glob("*.mp4"))
    if len(mp4s) != expected_count:
        return [f"found {len(mp4s)} video(s) but expected {expected_count}"]
    errors = [
        f"file #{i} must start with '{i:04d}_', got '{p.name}'"
        for i, p in enumerate(mp4s, start=1)
        if not p.name.startswith(f"{i:04d}_")
    ]
    size: tuple[int, int] | None = None
    if card_resolution is not None:
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(card_resolution))
        if match:
            size = (int(match[1]), int(match[2]))
        else:
            errors.append(f"card resolution {card_resolution!r} is not WIDTHxHEIGHT")
    rates: list[float] = []
    for path in mp4s:
        try:
            info = container_info(path)
        except VideoReadError as exc:
            errors.append(f"could not probe {path.name}: {exc.reason}")
            continue
        if not math.isclose(info["duration"], 5.0, abs_tol=DURATION_TOLERANCE_S):
            errors.append(
                f"{path.name} is {info['duration']:.4f}s — must be exactly 5.0s (tolerance ±{DURATION_TOLERANCE_S}s)"
            )
        if size is not None and (int(info["width"]), int(info["height"])) != size:
            errors.append(
                f"{path.name} resolution {int(info['width'])}x{int(info['height'])} does not match card "
                f"({card_resolution})"
            )
        rates.append(info["fps"])
    if rates:
        if len(set(rates)) > 1:
            errors.append("videos have inconsistent FPS within this run directory")
        elif card_fps is not None and not math.isclose(rates[0], float(card_fps), abs_tol=FPS_TOLERANCE):
            errors.append(f"video FPS {rates[0]:.4f} does not match card fps={card_fps}")
    return errors
