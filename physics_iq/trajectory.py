"""Trajectory-level physics adherence for suites with ground-truth state (the synthetic suite).

Following "How far is video generation from world model" (Kang et al., 2024): each object is located in every
frame of a clip by its known colour (the mean position of the pixels within ``tol`` of it), positions are
differentiated into velocities, and the mean absolute velocity error against the simulator is reported over
valid frames (the object fully in view in the ground truth; in collision scenarios only from the key contact
on, as recorded in the state file's ``metric_valid_from_frame``). The same parse applied to the ground-truth
video itself gives the *parsing floor*: the error a perfect video would still get from colour parsing,
lighting, noise and compression.

Velocities on both sides are central differences of positions at the clip's frame rate (the simulator's
positions for the reference), so a perfect video scores the parsing floor rather than the difference between
instantaneous and frame-to-frame velocity (large at 8 FPS around bounces).

Units are pixels per second in the ground truth's perspective; a generated clip of another size is parsed in
its own pixels and rescaled.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from physics_iq.errors import DatasetError
from physics_iq.layout import DatasetLayout, Row, parse_generated_id
from physics_iq.video import read_video, resample_fps

logger = logging.getLogger(__name__)

#: Default colour tolerance (Euclidean distance in 8-bit RGB). The suite's palette colours are >= 75 apart and
#: lighting and noise move an object's pixels by < 20, so 40 separates objects without losing their interiors.
DEFAULT_TOL = 40.0
#: Fewer matching pixels than this means "not found" (a stray pixel of similar colour is not an object).
MIN_PIXELS = 4


def locate_by_colour(
    frames: np.ndarray,
    colour: tuple[int, int, int] | np.ndarray,
    tol: float = DEFAULT_TOL,
    *,
    min_pixels: int = MIN_PIXELS,
) -> np.ndarray:
    """Mean pixel position of the pixels whose colour is within ``tol`` of ``colour``, per frame.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        colour: The object's RGB colour.
        tol: Maximum Euclidean RGB distance of a matching pixel.
        min_pixels: Frames with fewer matching pixels give NaN.

    Returns:
        ``(T, 2)`` float64 ``(x, y)`` in pixel coordinates (pixel centres at integers), NaN where absent.

    >>> clip = np.zeros((2, 6, 8, 3), np.uint8)
    >>> clip[0, 1:3, 2:4] = (250, 0, 0)       # a 2x2 red square centred at x=2.5, y=1.5
    >>> locate_by_colour(clip, (240, 10, 10), tol=30, min_pixels=1).tolist()
    [[2.5, 1.5], [nan, nan]]
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    target = np.asarray(colour, dtype=np.int32).reshape(1, 1, 1, 3)
    t, h, w = frames.shape[:3]
    diff = frames.astype(np.int32) - target
    match = (diff * diff).sum(axis=-1) <= tol * tol  # (T, H, W)
    counts = match.sum(axis=(1, 2))
    xs = match.sum(axis=1) @ np.arange(w, dtype=np.float64)  # (T,) sum of x over matching pixels
    ys = match.sum(axis=2) @ np.arange(h, dtype=np.float64)
    out = np.full((t, 2), np.nan)
    found = counts >= min_pixels
    out[found, 0] = xs[found] / counts[found]
    out[found, 1] = ys[found] / counts[found]
    return out


def finite_velocity(positions: np.ndarray, fps: float) -> np.ndarray:
    """Velocities (units per second) by central differences, one-sided at the ends; NaN propagates.

    >>> finite_velocity(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), fps=2).tolist()
    [[2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]
    """
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) < 2:
        return np.full_like(positions, np.nan)
    return np.gradient(positions, axis=0) * fps


def velocity_error(
    predicted: np.ndarray, reference: np.ndarray, fps: float, valid: np.ndarray | None = None
) -> tuple[float, int]:
    """Mean Euclidean distance between the velocities of two position tracks over valid frames.

    A frame counts when ``valid`` is true there and both velocities are finite. A missing detection in the
    predicted track is skipped here; callers that want to punish it should count it separately.

    Args:
        predicted: ``(T, 2)`` positions parsed from a clip.
        reference: ``(T, 2)`` true positions.
        fps: Frame rate.
        valid: ``(T,)`` bool (default: all frames).

    Returns:
        ``(mean error in units/s, frames counted)``; the mean is NaN when no frame counts.

    >>> ref = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])          # 1 px/frame
    >>> velocity_error(ref, ref, fps=8), velocity_error(np.zeros((4, 2)), ref, fps=8)
    ((0.0, 4), (8.0, 4))
    """
    predicted, reference = np.asarray(predicted, float), np.asarray(reference, float)
    if predicted.shape != reference.shape:
        raise ValueError(f"tracks differ in shape: {predicted.shape} vs {reference.shape}")
    errors = np.linalg.norm(finite_velocity(predicted, fps) - finite_velocity(reference, fps), axis=1)
    keep = np.isfinite(errors)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    n = int(keep.sum())
    return (float(errors[keep].mean()) if n else math.nan, n)


def _valid_frames(state: dict[str, Any], object_id: str) -> tuple[np.ndarray, np.ndarray]:
    frames = state["frames"]
    positions = np.full((len(frames), 2), np.nan)
    in_view = np.zeros(len(frames), bool)
    for k, frame in enumerate(frames):
        for obj in frame["objects"]:
            if obj["id"] == object_id:
                positions[k] = obj["position_px"]
                in_view[k] = bool(obj["in_view"])
    # A central difference at frame k uses k-1 and k+1: all three must be in view.
    valid = in_view.copy()
    valid[1:] &= in_view[:-1]
    valid[:-1] &= in_view[1:]
    start = state.get("metric_valid_from_frame")
    if start is not None:
        valid[: int(start)] = False
    return positions, valid


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a ground-truth state file, checking the fields the metric needs.

    Raises:
        DatasetError: the file is missing, not JSON, or lacks ``frames``/``objects``/``fps``.
    """
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ground-truth state ({exc})") from exc
    for key in ("frames", "objects", "fps", "size"):
        if not isinstance(state, dict) or key not in state:
            raise DatasetError(f"{path}: ground-truth state lacks field {key!r}")
    return state


def clip_velocity_error(
    frames: np.ndarray, state: dict[str, Any], *, tol: float = DEFAULT_TOL
) -> tuple[float, int, dict[str, float]]:
    """Velocity error of a clip against a state file, pooled over objects and valid frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8; trimmed or NaN-padded to the state's frame count, and positions are
            rescaled when its size differs from the ground truth's.
        state: A loaded state file.
        tol: Colour tolerance.

    Returns:
        ``(mean error px/s, frames counted, per-object mean)``.
    """
    n = int(state["frame_count"]) if "frame_count" in state else len(state["frames"])
    fps = float(state["fps"])
    width, height = state["size"]
    frames = np.asarray(frames)[:n]
    sx, sy = width / frames.shape[2], height / frames.shape[1]
    total, count = 0.0, 0
    per_object: dict[str, float] = {}
    for obj in state["objects"]:
        reference, valid = _valid_frames(state, obj["id"])
        parsed = np.full((n, 2), np.nan)
        located = locate_by_colour(frames, tuple(obj["colour"]), tol)
        # Rescale from the clip's pixel centres to the ground truth's.
        parsed[: len(located), 0] = (located[:, 0] + 0.5) * sx - 0.5
        parsed[: len(located), 1] = (located[:, 1] + 0.5) * sy - 0.5
        err, used = velocity_error(parsed, reference, fps, valid)
        per_object[obj["id"]] = err
        if used:
            total += err * used
            count += used
    return (total / count if count else math.nan, count, per_object)


def _generated_files(generated_dir: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(generated_dir.glob("*.mp4")):
        id_ = parse_generated_id(path.name)
        if id_ is not None and id_ not in found:
            found[id_] = path
    return found


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _group(views: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for view in views:
        groups.setdefault(view[key], []).append(view)
    return {
        name: {
            "mean_abs_velocity_error_px_s": _mean([v["velocity_error_px_s"] for v in items]),
            "parsing_floor_px_s": _mean([v["parsing_floor_px_s"] for v in items]),
            "n_views": len(items),
        }
        for name, items in groups.items()
    }


def trajectory_report(
    layout: DatasetLayout, generated_dir: str | Path, fps: int, *, tol: float = DEFAULT_TOL
) -> dict[str, Any] | None:
    """Mean absolute velocity error of generated clips against the simulator, with the parsing floor.

    Generated files are matched to take-1 rows by the ID their name starts with, as the evaluator does.

    Args:
        layout: A dataset with state files next to its testing videos (the synthetic suite).
        generated_dir: Folder of generated ``{ID}_....mp4`` clips.
        fps: The frame rate scored at.
        tol: Colour tolerance for :func:`locate_by_colour`.

    Returns:
        ``None`` when no take-1 testing video has a state file; else a JSON-ready dict with
        ``mean_abs_velocity_error_px_s`` and ``parsing_floor_px_s`` (overall means over views),
        ``per_category``, ``per_scenario``, ``views`` and the counts of views scored and missing.

    Raises:
        DatasetError: a state file is unreadable.
        VideoReadError: a testing or generated video cannot be decoded.
    """
    rows: list[Row] = [row for row in layout.take1_rows() if layout.state_file(row, fps).is_file()]
    if not rows:
        return None
    generated = _generated_files(Path(generated_dir))
    views: list[dict[str, Any]] = []
    missing = 0
    for row in rows:
        path = generated.get(row.id)
        if path is None:
            missing += 1
            continue
        state = load_state(layout.state_file(row, fps))
        truth, _ = read_video(layout.testing_video(row, fps))
        clip, clip_fps = read_video(path)
        if abs(clip_fps - fps) > 0.01:
            clip = resample_fps(clip, clip_fps, fps)
        floor, _, _ = clip_velocity_error(truth, state, tol=tol)
        error, used, per_object = clip_velocity_error(clip, state, tol=tol)
        views.append(
            {
                "id": row.id_str,
                "scenario": row.scenario,
                "category": row.category,
                "perspective": row.perspective,
                "velocity_error_px_s": error,
                "parsing_floor_px_s": floor,
                "frames_counted": used,
                "per_object_px_s": per_object,
            }
        )
    logger.info("trajectory metric: %d view(s) scored, %d without a generated clip", len(views), missing)
    return _finite_or_none(
        {
            "mean_abs_velocity_error_px_s": _mean([v["velocity_error_px_s"] for v in views]),
            "parsing_floor_px_s": _mean([v["parsing_floor_px_s"] for v in views]),
            "n_views": len(views),
            "n_missing": missing,
            "fps": fps,
            "colour_tolerance": tol,
            "per_category": _group(views, "category"),
            "per_scenario": _group(views, "scenario"),
            "views": views,
        }
    )


def _finite_or_none(value: Any) -> Any:
    """Replace NaN/inf by ``None`` so the report is strict JSON (NaN means "no valid frame")."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value
