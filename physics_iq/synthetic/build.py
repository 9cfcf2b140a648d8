"""Building a synthetic suite on disk in the official Physics-IQ layout, with ground-truth state and a manifest."""

from __future__ import annotations

import concurrent.futures
import contextlib
import difflib
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from physics_iq.errors import DatasetError
from physics_iq.layout import PERSPECTIVES, DatasetLayout, Row, descriptions_text, generated_file_name
from physics_iq.synthetic.looks import DEFAULT_STYLE, LOOKS, describe
from physics_iq.synthetic.render import Camera, camera_for, make_renderer, object_colours
from physics_iq.synthetic.scenarios import SCENARIOS, Params
from physics_iq.synthetic.world import SimResult, StaticItem, WorldFrame
from physics_iq.video import BENCHMARK_FPS, frames_for_seconds, write_video

logger = logging.getLogger(__name__)

#: Bump when the frames or state of any scenario change, so that old suites are not silently reused.
#: 2: magnet-attract's trajectory window is the whole testing clip (``metric_valid_from_frame`` null); frames
#: unchanged.
SUITE_VERSION = "2"
MANIFEST_NAME = "synthetic_suite.json"
STATE_SCHEMA = "physrefine.synthetic.state/1"
CONDITIONING_SECONDS = 3.0
TESTING_SECONDS = 5.0
DEFAULT_SIZE = (320, 180)
MIN_SIZE = (96, 54)
_MAX_EVENTS = 100


class SuiteError(DatasetError):
    """A synthetic suite cannot be built with these arguments or into this folder."""


def _resolve_scenarios(scenarios: str | Sequence[str]) -> list[str]:
    if isinstance(scenarios, str):
        if scenarios == "all":
            return list(SCENARIOS)
        scenarios = [s for s in scenarios.split(",") if s.strip()]
    names = [s.strip() for s in scenarios]
    if not names:
        raise SuiteError("no scenario selected; pass 'all' or names from: " + ", ".join(SCENARIOS))
    for name in names:
        if name not in SCENARIOS:
            close = difflib.get_close_matches(name, list(SCENARIOS), n=1) or difflib.get_close_matches(
                f"synthetic-{name}", list(SCENARIOS), n=1
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SuiteError(f"unknown scenario {name!r}{hint} Known: {', '.join(SCENARIOS)}")
    if len(set(names)) != len(names):
        raise SuiteError(f"scenario listed twice in {names}")
    # Keep suite order regardless of how they were listed, so IDs do not depend on argument order.
    return [name for name in SCENARIOS if name in names]


def suite_rows(scenarios: Sequence[str], style: str = DEFAULT_STYLE) -> list[Row]:
    """The descriptions rows of a suite: take-1 rows (scenario x perspective) first, then their take-2 twins.

    The descriptions name the objects as the look ``style`` paints them.

    >>> [r.scenario_file_name() for r in suite_rows(["synthetic-ball-bounce"])][:2]
    ['0001_perspective-left_take-1_synthetic-ball-bounce.mp4', '0002_perspective-center_take-1_synthetic-ball-bounce.mp4']
    """
    rows = []
    per_take = len(scenarios) * len(PERSPECTIVES)
    for take in (1, 2):
        index = 0
        for name in scenarios:
            spec = SCENARIOS[name]
            for perspective in PERSPECTIVES:
                index += 1
                id_ = index + (take - 1) * per_take
                rows.append(
                    Row(
                        id_,
                        perspective,
                        take,
                        name,
                        describe(style, name, spec.description),
                        spec.category,
                        generated_file_name(id_, perspective, name),
                    )
                )
    return rows


def clip_times(fps: int) -> list[float]:
    """Sample times of the whole 8 s take (conditioning then testing), ``i / fps``.

    >>> clip_times(8)[:3], len(clip_times(8))
    ([0.0, 0.125, 0.25], 64)
    """
    total = frames_for_seconds(CONDITIONING_SECONDS, fps) + frames_for_seconds(TESTING_SECONDS, fps)
    return [i / fps for i in range(total)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step; leave it alone (mtime too) when it already holds ``text``."""
    with contextlib.suppress(OSError, UnicodeDecodeError), path.open(encoding="utf-8", newline="") as handle:
        if handle.read() == text:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _r(value: float) -> float:
    return round(float(value), 3)


def _statics_state(cam: Camera, statics: list[StaticItem]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in statics:
        if not item.surface:
            continue
        if hasattr(item.shape, "points"):
            pts = cam.to_px(np.asarray(item.shape.points))
            out.append({"name": item.name, "kind": "polygon", "points_px": [[_r(x), _r(y)] for x, y in pts]})
        else:
            centre = cam.to_px(np.asarray(item.shape.centre))
            out.append(
                {
                    "name": item.name,
                    "kind": "circle",
                    "centre_px": [_r(centre[0]), _r(centre[1])],
                    "radius_px": _r(item.shape.radius * cam.scale),
                }
            )
    return out


def state_document(
    sim: SimResult,
    frames: list[WorldFrame],
    cam: Camera,
    *,
    row: Row,
    fps: int,
    video: str,
    first_index: int,
    metric_from_contact: tuple[str, str] | None = None,
    style: str = DEFAULT_STYLE,
) -> dict[str, Any]:
    """The ground-truth state of one clip (see the schema in :mod:`physics_iq.synthetic`).

    Args:
        sim: The simulated take.
        frames: The clip's frames (a slice of ``sim.frames``).
        cam: The camera of the clip's perspective.
        row: The clip's descriptions row.
        fps: Frame rate.
        video: ``"testing"`` or ``"conditioning"``.
        first_index: Index of the clip's first frame in the whole take.
        metric_from_contact: The scenario's :attr:`~physics_iq.synthetic.ScenarioSpec.metric_from_contact`;
            its first contact sets ``metric_valid_from_frame``.
        style: The look; objects are listed with the colour it paints them in.
    """
    colours = object_colours(style, sim.colours)
    t_first, t_last = frames[0].time, frames[-1].time
    period = 1.0 / fps

    def frame_of(time: float) -> int:
        # A contact between two samples becomes visible in the next frame.
        return int(np.clip(np.ceil((time - t_first) / period - 1e-9), 0, len(frames) - 1))

    events = []
    last_seen: dict[tuple[str, ...], float] = {}
    for event in sim.events:
        if not (t_first - period < event.time <= t_last):
            continue
        pair = tuple(sorted(event.objects))
        # Resting contacts flicker on and off; keep one event per pair per 0.1 s.
        if event.time - last_seen.get(pair, -1e9) < 0.1:
            continue
        last_seen[pair] = event.time
        events.append(
            {
                "type": event.kind,
                "frame": frame_of(event.time),
                "time_s": _r(event.time),
                "objects": list(event.objects),
            }
        )
    events = events[:_MAX_EVENTS]
    valid_from = None
    if metric_from_contact is not None:
        key = tuple(sorted(metric_from_contact))
        hits = [e.time for e in sim.events if tuple(sorted(e.objects)) == key]
        if hits:
            valid_from = (
                0 if hits[0] <= t_first else (frame_of(hits[0]) if hits[0] <= t_last else len(frames))
            )
    per_frame = []
    for k, frame in enumerate(frames):
        objects = []
        for obj in frame.objects:
            x, y = cam.to_px(np.asarray(obj.centroid))
            vx, vy = cam.vel_to_px(obj.velocity)
            objects.append(
                {
                    "id": obj.id,
                    "colour": list(colours[obj.id]),
                    "position_px": [_r(x), _r(y)],
                    "velocity_px_s": [_r(vx), _r(vy)],
                    "in_view": cam.contains(obj.shape),
                }
            )
        per_frame.append({"index": k, "time_s": _r(frame.time), "objects": objects})
    return {
        "schema": STATE_SCHEMA,
        "note": "Ground truth of a synthetic (pymunk-simulated) clip; not a real recording.",
        "scenario": row.scenario,
        "category": row.category,
        "perspective": row.perspective,
        "take": row.take,
        "video": video,
        "fps": fps,
        "size": [cam.width, cam.height],
        "frame_count": len(frames),
        "first_frame_index_in_take": first_index,
        "switch_time_s": _r(CONDITIONING_SECONDS - period),
        "px_per_m": _r(cam.scale),
        "gravity_px_s2": [0.0, _r(9.81 * cam.scale)],
        "objects": [{"id": oid, "colour": list(c)} for oid, c in colours.items()],
        "static_surfaces": _statics_state(cam, sim.statics),
        "events": events,
        "metric_valid_from_frame": valid_from,
        "frames": per_frame,
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _atomic_write_text(path, json.dumps(document, separators=(",", ":")) + "\n")


def _write_jpeg(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid arrays
        raise SuiteError(f"{path}: JPEG encoding failed")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def render_take(
    sim: SimResult,
    perspective: str,
    size: tuple[int, int],
    seed: int,
    scenario: str,
    take: int,
    style: str = DEFAULT_STYLE,
) -> np.ndarray:
    """All frames of one take seen from one perspective in the look ``style``, ``(T, H, W, 3)`` uint8."""
    index = PERSPECTIVES.index(perspective)
    key = zlib.crc32(scenario.encode())
    cam = camera_for(perspective, size, style)
    renderer = make_renderer(
        style,
        cam,
        sim.statics,
        sim.colours,
        np.random.default_rng([seed, key, index, 0]),
        np.random.default_rng([seed, key, index, take]),
        index,
    )
    return np.stack([renderer.render(frame) for frame in sim.frames])


def simulate(scenario: str, take: int, fps: int, seed: int) -> SimResult:
    """Run one take of a scenario sampled at ``fps`` for the whole 8 s (3 s conditioning + 5 s testing)."""
    return SCENARIOS[scenario].simulate(Params(seed, scenario, take), clip_times(fps))


def _build_scenario(
    root: str,
    scenario: str,
    rows: list[Row],
    fps: int,
    size: tuple[int, int],
    seed: int,
    style: str = DEFAULT_STYLE,
) -> dict[str, str]:
    """Simulate, render and write every file of one scenario; returns ``{relative path: sha256}``."""
    layout = DatasetLayout(root)
    n_cond = frames_for_seconds(CONDITIONING_SECONDS, fps)
    written: dict[str, str] = {}
    gate = SCENARIOS[scenario].metric_from_contact
    for take in (1, 2):
        sim = simulate(scenario, take, fps, seed)
        for row in (r for r in rows if r.take == take):
            cam = camera_for(row.perspective, size, style)
            frames = render_take(sim, row.perspective, size, seed, scenario, take, style)
            paths = []
            cond, test = layout.conditioning_video(row, fps), layout.testing_video(row, fps)
            write_video(cond, frames[:n_cond], fps, overwrite=True)
            write_video(test, frames[n_cond:], fps, overwrite=True)
            _write_json(
                test.with_suffix(".state.json"),
                state_document(
                    sim,
                    sim.frames[n_cond:],
                    cam,
                    row=row,
                    fps=fps,
                    video="testing",
                    first_index=n_cond,
                    metric_from_contact=gate,
                    style=style,
                ),
            )
            _write_json(
                cond.with_suffix(".state.json"),
                state_document(
                    sim,
                    sim.frames[:n_cond],
                    cam,
                    row=row,
                    fps=fps,
                    video="conditioning",
                    first_index=0,
                    metric_from_contact=gate,
                    style=style,
                ),
            )
            _write_jpeg(layout.switch_frame(row), frames[n_cond - 1])
            paths += [
                cond,
                test,
                test.with_suffix(".state.json"),
                cond.with_suffix(".state.json"),
                layout.switch_frame(row),
            ]
            for path in paths:
                written[path.relative_to(layout.root).as_posix()] = _sha256(path)
    return written


def expected_files(layout: DatasetLayout, fps: int) -> dict[str, list[str]]:
    """Scenario -> the relative paths a complete suite holds for it."""
    out: dict[str, list[str]] = {}
    for row in layout.rows:
        cond, test = layout.conditioning_video(row, fps), layout.testing_video(row, fps)
        for path in (
            cond,
            test,
            test.with_suffix(".state.json"),
            cond.with_suffix(".state.json"),
            layout.switch_frame(row),
        ):
            out.setdefault(row.scenario, []).append(path.relative_to(layout.root).as_posix())
    return out


def _read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: unreadable suite manifest ({exc}); refusing to write into {root}") from exc
    if not isinstance(manifest, dict) or manifest.get("generator") != "physrefine.synthetic":
        raise SuiteError(f"{path}: not a physrefine synthetic-suite manifest; refusing to write into {root}")
    return manifest


def _write_manifest(root: Path, arguments: dict[str, Any], files: dict[str, str], complete: bool) -> None:
    manifest = {
        "generator": "physrefine.synthetic",
        "version": SUITE_VERSION,
        "arguments": arguments,
        "complete": complete,
        "files": dict(sorted(files.items())),
    }
    _atomic_write_text(root / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")


def _validate_arguments(fps: int, size: tuple[int, int], seed: int) -> tuple[int, tuple[int, int], int]:
    if fps not in BENCHMARK_FPS:
        raise SuiteError(f"fps is {fps}; expected one of the benchmark rates {list(BENCHMARK_FPS)}")
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise SuiteError(f"size is {size!r}; expected (width, height) integers") from None
    if width % 2 or height % 2:
        raise SuiteError(f"size is {width}x{height}; width and height must be even (H.264 yuv420p)")
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise SuiteError(
            f"size is {width}x{height}; expected at least {MIN_SIZE[0]}x{MIN_SIZE[1]} so that "
            "objects stay visible at the evaluator's reduced mask resolution"
        )
    if abs(width / height - 16 / 9) > 0.02:
        raise SuiteError(f"size is {width}x{height}; expected a 16:9 frame (e.g. 320x180, 256x144)")
    if not isinstance(seed, int) or seed < 0:
        raise SuiteError(f"seed is {seed!r}; expected a non-negative integer")
    return fps, (width, height), seed


def build_suite(
    out_dir: str | Path,
    scenarios: str | Sequence[str] = "all",
    fps: int = 8,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    *,
    style: str = DEFAULT_STYLE,
    jobs: int | None = None,
    on_scenario_done: Callable[[str, int, int], None] | None = None,
) -> DatasetLayout:
    """Simulate, render and write a synthetic Physics-IQ-style suite.

    The folder gets ``descriptions.csv``, conditioning and testing videos, switch frames, a ``.state.json``
    next to every video and a manifest (``synthetic_suite.json``: arguments, version, SHA-256 of every file).
    Rerunning with identical arguments verifies the files and rebuilds only scenarios with a missing or altered
    file (so an interrupted build resumes); a non-empty folder that is not such a suite is never written to.

    Args:
        out_dir: Destination folder (created; must be empty or a previous suite with identical arguments).
        scenarios: ``"all"``, a comma-separated string or a list of slugs from :data:`SCENARIOS`.
        fps: One of 8, 16, 24, 30.
        size: ``(width, height)``, even, 16:9.
        seed: Scene variation seed; the same arguments always produce identical frames.
        style: The look (:data:`physics_iq.synthetic.looks.LOOKS`): framing, room, object colours and
            patterns, noise and description wording. The physics of a seed is the same in every look.
        jobs: Worker processes (default: CPU count, at most one per scenario; 1 builds in this process).
        on_scenario_done: Called as ``(scenario, done, total)`` after each scenario is written or verified.

    Returns:
        The :class:`~physics_iq.layout.DatasetLayout` of the suite.

    Raises:
        SuiteError: bad arguments, or a folder that is not empty and not a suite built with these arguments.
    """
    names = _resolve_scenarios(scenarios)
    fps, size, seed = _validate_arguments(fps, size, seed)
    if style not in LOOKS:
        close = difflib.get_close_matches(str(style), list(LOOKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SuiteError(f"unknown style {style!r}{hint} Known: {', '.join(LOOKS)}")
    root = Path(out_dir)
    arguments = {"scenarios": names, "fps": fps, "size": list(size), "seed": seed, "style": style}
    if root.exists() and not root.is_dir():
        raise SuiteError(f"{root}: exists and is not a folder")
    manifest = _read_manifest(root) if root.is_dir() else None
    if manifest is None and root.is_dir() and any(root.iterdir()):
        raise SuiteError(
            f"{root}: folder is not empty and holds no {MANIFEST_NAME}; refusing to write into it "
            "(choose a new or empty folder)"
        )
    if manifest is not None:
        # Suites written before looks existed were all classic and do not record a style.
        old = {"style": DEFAULT_STYLE, **manifest.get("arguments", {})}
        if manifest.get("version") != SUITE_VERSION or old != arguments:
            diffs = [
                f"{k}: {old.get(k)!r} -> {arguments[k]!r}" for k in arguments if old.get(k) != arguments[k]
            ]
            if manifest.get("version") != SUITE_VERSION:
                diffs.append(f"version: {manifest.get('version')!r} -> {SUITE_VERSION!r}")
            raise SuiteError(
                f"{root}: holds a suite built with different arguments or by another suite version "
                f"({'; '.join(diffs)}); "
                "refusing to overwrite it (choose a new folder)"
            )
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = dict(manifest.get("files", {})) if manifest else {}
    # A finished suite that is reused keeps its manifest until something is rebuilt (a crash in a rebuild then
    # leaves it marked incomplete); nothing identical is rewritten, so reusing a suite leaves it untouched.
    if not (manifest and manifest.get("complete")):
        _write_manifest(root, arguments, files, complete=False)
    rows = suite_rows(names, style)
    _atomic_write_text(root / "descriptions.csv", descriptions_text(rows))
    layout = DatasetLayout(root)
    wanted = expected_files(layout, fps)

    def intact(name: str) -> bool:
        return all(
            rel in files and (root / rel).is_file() and _sha256(root / rel) == files[rel]
            for rel in wanted[name]
        )

    todo = [name for name in names if not intact(name)]
    if todo:
        _write_manifest(root, arguments, files, complete=False)
    done = 0
    for name in names:
        if name not in todo:
            done += 1
            if on_scenario_done:
                on_scenario_done(name, done, len(names))
    logger.info("suite %s: %d scenario(s) to build, %d verified", root, len(todo), done)
    workers = min(jobs or os.cpu_count() or 1, max(len(todo), 1))
    tasks = {name: [r for r in rows if r.scenario == name] for name in todo}

    def finished(name: str, written: dict[str, str]) -> None:
        nonlocal done
        files.update(written)
        done += 1
        _write_manifest(root, arguments, files, complete=False)
        if on_scenario_done:
            on_scenario_done(name, done, len(names))

    if workers <= 1:
        for name in todo:
            finished(name, _build_scenario(str(root), name, tasks[name], fps, size, seed, style))
    else:
        # spawn: a fresh interpreter per worker, safe with the threads that rich/logging may run here.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {
                pool.submit(_build_scenario, str(root), name, tasks[name], fps, size, seed, style): name
                for name in todo
            }
            for future in concurrent.futures.as_completed(futures):
                finished(futures[future], future.result())
    if todo or not (manifest and manifest.get("complete")):
        # A finished suite reused as it is keeps its manifest byte for byte (one written before looks
        # existed records no style and stays that way: no style means classic).
        _write_manifest(root, arguments, files, complete=True)
    return layout
