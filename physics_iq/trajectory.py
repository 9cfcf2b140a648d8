"""Trajectory-level physics adherence for suites with ground-truth state (the synthetic suite).

Following "How far is video generation from world model" (Kang et al., 2024): each object is located in every
frame of a clip by its known colour (the mean position of the pixels within ``tol`` of it), positions are
differentiated into velocities, and the mean absolute velocity error against the simulator is reported over
the object's valid frames. The same parse applied to the ground-truth video itself gives the *parsing floor*:
the error a perfect video would still get from colour parsing, lighting, noise and compression.

For an object ``o`` with simulator positions ``p`` and parsed positions ``q`` (pixels, at the clip's ``fps``):

* **Window** ``W_o``: the frames where ``o`` lies wholly inside the ground truth's frame, from
  ``metric_valid_from_frame`` on where the state file sets it. A scenario sets it by declaring the contact that
  opens its window (:attr:`physics_iq.synthetic.ScenarioSpec.metric_from_contact`): collisions, whose
  pre-contact motion is only the conditioning's push continuing. Elsewhere (falls, rolls, an attraction, whose
  approach is the physics) the whole clip is judged.
* **Velocities** use frames of ``W_o`` only: central differences ``(x[k+1] - x[k-1]) fps / 2`` inside each run
  of consecutive window frames, one-sided at the run's ends (so the first frame after a contact never sees a
  frame from before it), none for a run of one frame. Both sides are differenced the same way (the
  simulator's positions for the reference), so a perfect video scores the parsing floor rather than the gap
  between instantaneous and frame-to-frame velocity (large at 8 FPS around bounces).
* **Error** ``E_o = mean over k in W_o of |v_q(k) - v_p(k)|`` (Euclidean, px/s), over frames where both
  velocities exist; a missing detection is skipped, not punished.
* **Which objects are judged**: ``o`` counts in a view only when its mean true speed ``S_o`` (mean ``|v_p|`` over
  ``W_o``) is more than :data:`MIN_SPEED_OVER_FLOOR` (2) times its parsing floor ``F_o`` (``E_o`` of the
  ground-truth video), i.e. when a perfect video beats a still one on it more than twofold. Below that, the
  colour parse cannot tell the object's motion from its own error. On the default suite (320x180) that excludes
  ice-melting's melt water (particles: floor 6.1-8.4 px/s at 3.7-5.1 px/s) and its ice (sub-pixel shrinking:
  floor 2.0-2.1 px/s at 1.9-2.3), which let a frozen clip beat the ground truth, so ice-melting has no score;
  block-splash's slowly sloshing liquid in the centre view (floor 2.4 px/s at 2.0); and objects that do not
  move (the hanging ball of swinging-lamp-shadow: a clip that moves it is left to the mask metrics). Every
  object is reported with its floor, speed and the reason it is not judged. The rule uses the ground truth
  alone, so every model is judged on the same objects.
* **View**: the frame-weighted mean of ``E_o`` over its judged objects, and its floor likewise. A view with no
  judged object has no score (``null``, with the reason); so does a clip in which no judged object is found.

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
#: An object is judged only when its mean true speed is more than this many times its parsing floor. Measured on
#: the default suite (320x180, 8 FPS, seed 0): judged objects are at 3.1x (block-splash's liquid, side views) to
#: over 100x, the excluded ones at 0.6-1.1x (ice-melting's water and ice, block-splash's liquid in the centre
#: view) or still, so 2 sits well between both groups.
MIN_SPEED_OVER_FLOOR = 2.0


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


def finite_velocity(positions: np.ndarray, fps: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Velocities (units per second) by finite differences that use valid frames only; NaN propagates.

    Inside each run of consecutive valid frames: central differences, one-sided at the run's first and last
    frame. Invalid frames and runs of a single frame get NaN.

    Args:
        positions: ``(T, ...)`` positions, one row per frame.
        fps: Frame rate.
        valid: ``(T,)`` bool (default: all frames, one run).

    >>> finite_velocity(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), fps=2).tolist()
    [[2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]
    >>> x = np.array([0.0, 1.0, 3.0, 6.0, 10.0])
    >>> finite_velocity(x, fps=1, valid=np.array([False, True, True, True, False])).tolist()
    [nan, 2.0, 2.5, 3.0, nan]
    """
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    keep = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if keep.shape != (n,):
        raise ValueError(f"valid has shape {keep.shape}; expected ({n},) for {n} positions")
    before, after = np.zeros(n, bool), np.zeros(n, bool)
    before[1:], after[:-1] = keep[:-1], keep[1:]
    out = np.full_like(positions, np.nan)
    k = np.flatnonzero(keep & before & after)
    out[k] = (positions[k + 1] - positions[k - 1]) * (fps / 2)
    k = np.flatnonzero(keep & ~before & after)
    out[k] = (positions[k + 1] - positions[k]) * fps
    k = np.flatnonzero(keep & before & ~after)
    out[k] = (positions[k] - positions[k - 1]) * fps
    return out


def velocity_error(
    predicted: np.ndarray, reference: np.ndarray, fps: float, valid: np.ndarray | None = None
) -> tuple[float, int]:
    """Mean Euclidean distance between the velocities of two position tracks over valid frames.

    Both tracks are differenced with :func:`finite_velocity` over the same ``valid`` frames (so no velocity uses
    a frame outside them). A frame counts when both velocities are finite there. A missing detection in the
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
    errors = np.linalg.norm(
        finite_velocity(predicted, fps, valid) - finite_velocity(reference, fps, valid), axis=1
    )
    keep = np.isfinite(errors)
    n = int(keep.sum())
    return (float(errors[keep].mean()) if n else math.nan, n)


def reference_track(state: dict[str, Any], object_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's positions of one object and its window (the frames the metric may use).

    Returns:
        ``(T, 2)`` positions in px (NaN where the object is not listed) and ``(T,)`` bool: in view and at or
        after ``metric_valid_from_frame`` when the state sets it.
    """
    frames = state["frames"]
    positions = np.full((len(frames), 2), np.nan)
    window = np.zeros(len(frames), bool)
    for k, frame in enumerate(frames):
        for obj in frame["objects"]:
            if obj["id"] == object_id:
                positions[k] = obj["position_px"]
                window[k] = bool(obj["in_view"])
    start = state.get("metric_valid_from_frame")
    if start is not None:
        window[: int(start)] = False
    return positions, window


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


def object_errors(
    frames: np.ndarray, state: dict[str, Any], *, tol: float = DEFAULT_TOL
) -> dict[str, tuple[float, int]]:
    """Velocity error of every object of a state file in a clip.

    Args:
        frames: ``(T, H, W, 3)`` uint8; trimmed or NaN-padded to the state's frame count, and positions are
            rescaled when its size differs from the ground truth's.
        state: A loaded state file.
        tol: Colour tolerance.

    Returns:
        Object id -> ``(mean error px/s, frames counted)`` (NaN and 0 when no frame counts).
    """
    n = int(state["frame_count"]) if "frame_count" in state else len(state["frames"])
    fps = float(state["fps"])
    width, height = state["size"]
    frames = np.asarray(frames)[:n]
    sx, sy = width / frames.shape[2], height / frames.shape[1]
    out: dict[str, tuple[float, int]] = {}
    for obj in state["objects"]:
        reference, window = reference_track(state, obj["id"])
        parsed = np.full((n, 2), np.nan)
        located = locate_by_colour(frames, tuple(obj["colour"]), tol)
        # Rescale from the clip's pixel centres to the ground truth's.
        parsed[: len(located), 0] = (located[:, 0] + 0.5) * sx - 0.5
        parsed[: len(located), 1] = (located[:, 1] + 0.5) * sy - 0.5
        out[obj["id"]] = velocity_error(parsed, reference, fps, window)
    return out


def mean_speed(state: dict[str, Any], object_id: str) -> float:
    """Mean true speed (px/s) of an object over its window: the error a still clip gets on it (NaN if none)."""
    reference, window = reference_track(state, object_id)
    speeds = np.linalg.norm(finite_velocity(reference, float(state["fps"]), window), axis=1)
    speeds = speeds[np.isfinite(speeds)]
    return float(speeds.mean()) if len(speeds) else math.nan


def _pooled(errors: dict[str, tuple[float, int]], ids: list[str]) -> tuple[float, int]:
    used = [(errors[i][0], errors[i][1]) for i in ids if errors[i][1]]
    count = sum(n for _, n in used)
    return (sum(e * n for e, n in used) / count if count else math.nan, count)


def _not_judged_reason(floor: tuple[float, int], speed: float) -> str | None:
    if not floor[1]:
        return "no valid frame (never wholly in view, or not found in the ground-truth video)"
    if not speed > MIN_SPEED_OVER_FLOOR * floor[0]:
        return (
            f"mean speed {speed:.2f} px/s is not above {MIN_SPEED_OVER_FLOOR:g} x its parsing floor "
            f"{floor[0]:.2f} px/s"
        )
    return None


def score_view(
    truth: np.ndarray, clip: np.ndarray, state: dict[str, Any], *, tol: float = DEFAULT_TOL
) -> dict[str, Any]:
    """The trajectory metric of one view: a clip against the simulator, with the parsing floor (see module doc).

    Args:
        truth: The ground-truth testing video, ``(T, H, W, 3)`` uint8 (gives the floor and the judged objects).
        clip: The clip to score, ``(T', H', W', 3)`` uint8 at the state's frame rate.
        state: The view's loaded state file.
        tol: Colour tolerance for :func:`locate_by_colour`.

    Returns:
        ``velocity_error_px_s`` and ``parsing_floor_px_s`` (pooled over judged objects, NaN when none),
        ``frames_counted``, ``metric_defined`` (some object is judged), ``reason`` (why the error is NaN, else
        ``None``) and ``objects``: per object its error, floor, mean speed, frames counted, ``judged`` and
        ``reason`` (why not judged, else ``None``).
    """
    floor = object_errors(truth, state, tol=tol)
    errors = object_errors(clip, state, tol=tol)
    objects: dict[str, dict[str, Any]] = {}
    for object_id in floor:
        speed = mean_speed(state, object_id)
        excluded = _not_judged_reason(floor[object_id], speed)
        objects[object_id] = {
            "velocity_error_px_s": errors[object_id][0],
            "parsing_floor_px_s": floor[object_id][0],
            "mean_speed_px_s": speed,
            "frames_counted": errors[object_id][1],
            "judged": excluded is None,
            "reason": excluded,
        }
    judged = [i for i, o in objects.items() if o["judged"]]
    error, used = _pooled(errors, judged)
    reason: str | None = None
    if not judged:
        reason = (
            "metric undefined: no object moves measurably above its parse error ("
            + "; ".join(f"{i}: {o['reason']}" for i, o in objects.items())
            + ")"
        )
    elif not used:
        reason = "no judged object was found in the clip: " + ", ".join(judged)
    return {
        "velocity_error_px_s": error,
        "parsing_floor_px_s": _pooled(floor, judged)[0],
        "frames_counted": used,
        "metric_defined": bool(judged),
        "reason": reason,
        "objects": objects,
    }


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


def _group(views: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for view in views:
        groups.setdefault(view[key], []).append(view)
    out: dict[str, dict[str, Any]] = {}
    for name, items in groups.items():
        undefined = [v for v in items if not v["metric_defined"]]
        entry: dict[str, Any] = {
            "mean_abs_velocity_error_px_s": _mean([v["velocity_error_px_s"] for v in items]),
            "parsing_floor_px_s": _mean([v["parsing_floor_px_s"] for v in items]),
            "n_views": len(items),
            "n_views_undefined": len(undefined),
        }
        if len(undefined) == len(items):
            entry["undefined_reason"] = (
                f"undefined in all {len(items)} view(s); view {items[0]['id']}: " + str(items[0]["reason"])
            )
        out[name] = entry
    return out


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
        ``mean_abs_velocity_error_px_s`` and ``parsing_floor_px_s`` (means over the views that have one),
        ``per_category`` and ``per_scenario`` (the same means, view counts, and ``undefined_reason`` where no
        view has a score), ``views`` (:func:`score_view` of each, with its ID, scenario, category and
        perspective), the counts ``n_views``, ``n_views_undefined`` (no judged object) and ``n_missing`` (no
        generated clip), and the settings (``fps``, ``colour_tolerance``, ``min_speed_over_floor``).

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
        views.append(
            {
                "id": row.id_str,
                "scenario": row.scenario,
                "category": row.category,
                "perspective": row.perspective,
                **score_view(truth, clip, state, tol=tol),
            }
        )
    undefined = sum(not v["metric_defined"] for v in views)
    logger.info(
        "trajectory metric: %d view(s) scored (%d where it is undefined), %d without a generated clip",
        len(views),
        undefined,
        missing,
    )
    return _finite_or_none(
        {
            "mean_abs_velocity_error_px_s": _mean([v["velocity_error_px_s"] for v in views]),
            "parsing_floor_px_s": _mean([v["parsing_floor_px_s"] for v in views]),
            "n_views": len(views),
            "n_views_undefined": undefined,
            "n_missing": missing,
            "fps": fps,
            "colour_tolerance": tol,
            "min_speed_over_floor": MIN_SPEED_OVER_FLOOR,
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
