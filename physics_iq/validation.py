"""Up-front checks of a dataset and of a folder of generated videos, listing every problem at once.

Validation never modifies anything: the official script renames the user's files; we only read them.
Checks here are cheap (container headers and packet counts, no decoding), so a folder with a bad file fails
in seconds instead of after an hour of scoring.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av

from physics_iq.errors import DatasetError, ValidationError, VideoReadError
from physics_iq.layout import DatasetLayout, ViewPair, parse_generated_id
from physics_iq.video import TEST_SECONDS, VideoInfo, frames_for_seconds

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
    if not path.is_file():
        raise VideoReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "the file is empty")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoReadError(path, f"not a readable video container ({exc})") from exc
    try:
        if not container.streams.video:
            raise VideoReadError(path, "the container has no video stream")
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
