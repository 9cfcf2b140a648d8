"""The Physics-IQ evaluator: score generated clips against the real takes of a dataset.

Per view (one take-1 row, its take-2 twin and a generated clip), following the official procedure:

1. keep the first 5 s of every clip;
2. compute motion masks at each clip's own resolution (:func:`physics_iq.metrics.motion_masks`);
3. resize frames and masks to a quarter of the real take-1 video's width and height (masks: bilinear, then
   ``> 127``), generated clips directly from their own size as the official code does;
4. compare the generated clip with take-1 (the score) and take-2 (reported), and take-1 with take-2 (the
   physical variance).

Two modes:

* ``fast``: masks stay in memory; frames are decoded with PyAV.
* ``compat``: reproduces the official toolkit's lossy steps: masks are written as ``mp4v`` videos with OpenCV
  and decoded back (as 3-channel images), videos are decoded with OpenCV, per-frame values and variances are
  rounded as the official aggregation rounds them. The dataset's own precomputed real masks
  (``video-masks/real/{fps}FPS``) are used when present, as the official script does.

The real side of every view (downscaled take-1/take-2 frames and masks, and the variance) is cached on disk,
keyed by the content of the dataset files (see :mod:`physics_iq.cache`), so scoring another model or a
single attempt costs one decode of the generated clip plus cheap array work.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from physics_iq import metrics as M
from physics_iq.cache import ArrayCache, cache_key, default_cache_dir
from physics_iq.errors import DatasetError, VideoReadError
from physics_iq.layout import PERSPECTIVES, DatasetLayout, Row, ViewPair
from physics_iq.scoring import (
    SCORE_TYPES,
    VERIFIED_TERMS,
    Aggregate,
    Comparison,
    MetricValues,
    VerifiedAggregate,
    VerifiedSample,
    ViewResult,
    aggregate,
    mean_std,
    physics_iq_score,
    verified_aggregate,
    verified_sample,
)
from physics_iq.validation import GeneratedFolder, check_dataset, listing, validate_generated_folder
from physics_iq.video import TEST_SECONDS, frames_for_seconds, iter_frames

logger = logging.getLogger(__name__)

Mode = Literal["fast", "compat"]
MODES: tuple[str, ...] = ("fast", "compat")
#: What each mode is for, said next to every number it produces.
MODE_NOTES: dict[str, str] = {
    "fast": "fast mode: masks kept in memory; differs from the official code by a fraction of a point",
    "compat": "compat mode: the official code's lossy steps and rounding (use it for leaderboard numbers)",
}
# Real sides kept in memory (each holds both takes' quarter-size frames: ~30 MB at 8 FPS from 1080p, ~120 MB
# at 30 FPS); enough for repeated attempts on the same few views, the disk cache serves the rest.
_MEMO_SIZE = 4


# --------------------------------------------------------------------------------------------------------
# Decoding and masks per mode


def _iter_cv2(path: Path, max_frames: int) -> Iterator[np.ndarray]:
    """Decode with OpenCV like the official toolkit (BGR), yielded as RGB for a uniform pipeline."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoReadError(path, "OpenCV cannot open it")
    count = 0
    try:
        while count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if count == 0:
        raise VideoReadError(path, "no decodable frame")


# Set in the worker threads of Evaluator.evaluate_folder: they already decode several files at once, so
# FFmpeg's own frame threads only add overhead there (measured: ~3 % CPU and ~4 % wall on a second-model run
# with --jobs 2, benchmarks/bench_score.py setup). Thread-local so direct callers keep the faster default.
_worker = threading.local()


def _iter_source(source: Path | np.ndarray, max_frames: int, mode: str) -> Iterator[np.ndarray]:
    if isinstance(source, np.ndarray):
        return iter(source[:max_frames])
    if mode == "compat":
        return _iter_cv2(source, max_frames)
    threaded = not getattr(_worker, "in_pool", False)
    return iter_frames(source, max_frames=max_frames, frame_threads=threaded)


def _read_mask_video(path: Path, n_frames: int, size: tuple[int, int]) -> np.ndarray:
    """A mask video, decoded as 3-channel images, resized and re-thresholded like the official code."""
    decoded = np.stack(list(_iter_cv2(path, n_frames)))
    return M.resize_frames(decoded, size) > M.MASK_REBINARIZE_LEVEL


class _Mp4vMaskWriter:
    """Writes masks as the official toolkit does: mp4v, gray, even size, ``round(fps)``."""

    def __init__(self, work_dir: Path, fps: float, width: int, height: int) -> None:
        self.even = (width - width % 2, height - height % 2)
        fd, name = tempfile.mkstemp(suffix=".mp4", dir=work_dir)
        os.close(fd)
        self.path = Path(name)
        self.count = 0
        self.writer = cv2.VideoWriter(
            name, cv2.VideoWriter.fourcc(*"mp4v"), round(fps), self.even, isColor=False
        )
        if not self.writer.isOpened():
            raise VideoReadError(self.path, "OpenCV cannot open an mp4v writer for the compat mask video")

    def write(self, mask: np.ndarray) -> None:
        self.writer.write(np.ascontiguousarray(mask[: self.even[1], : self.even[0]]).astype(np.uint8) * 255)
        self.count += 1

    def read_back(self, size: tuple[int, int]) -> np.ndarray:
        self.writer.release()
        try:
            masks = _read_mask_video(self.path, self.count, size)
        finally:
            self.path.unlink(missing_ok=True)
        if len(masks) != self.count:
            raise VideoReadError(
                self.path, f"compat mask video holds {len(masks)} frames, wrote {self.count}"
            )
        return masks


def compare(
    masks: np.ndarray,
    frames: np.ndarray,
    ref_masks: np.ndarray,
    ref_frames: np.ndarray,
    *,
    compat: bool = False,
) -> Comparison:
    """All four metrics between two clips already at the metric size (masks bool, frames uint8)."""
    n = min(len(masks), len(ref_masks))
    if len(frames) != len(ref_frames):
        raise ValueError(f"clips differ in length: {len(frames)} vs {len(ref_frames)} frames")
    masks, ref_masks = masks[:n], ref_masks[:n]
    return Comparison(
        spatial_iou=M.spatial_iou(masks, ref_masks),
        weighted_spatial_iou=M.weighted_spatial_iou(masks, ref_masks),
        spatiotemporal_iou_frames=tuple(float(v) for v in M.spatiotemporal_iou_per_frame(masks, ref_masks)),
        mse_frames=tuple(float(v) for v in M.mse_per_frame(frames, ref_frames, compat=compat)),
    )


@dataclass(frozen=True)
class _Clip:
    """A clip brought to the metric size: masks and frames (and the ``(width, height)`` it came at)."""

    masks: np.ndarray
    frames: np.ndarray
    source_size: tuple[int, int] = (0, 0)


def _prepare(
    source: Path | np.ndarray,
    fps: float,
    size: tuple[int, int] | None,
    mode: str,
    work_dir: Path | None,
    *,
    masks_from: Path | None = None,
) -> _Clip:
    """Stream a clip's first 5 s: masks at full resolution, then masks and frames at the metric size.

    Args:
        source: A video file or ``(T, H, W, 3)`` RGB frames.
        fps: The clip's frame rate.
        size: The metric size; ``None`` takes a quarter of this clip's own size (the real take-1 video).
        mode: ``fast`` or ``compat``.
        work_dir: Where compat mode writes its temporary mask videos.
        masks_from: A precomputed official mask video to use instead of computing masks (compat mode).

    Raises:
        ValueError: the clip is shorter than 5 s.
        VideoReadError: the file cannot be decoded.
    """
    n = frames_for_seconds(TEST_SECONDS, fps)
    masker = M.MotionMasker()
    small_frames: list[np.ndarray] = []
    small_masks: list[np.ndarray] = []
    writer: _Mp4vMaskWriter | None = None
    source_size = (0, 0)
    for frame in _iter_source(source, n, mode):
        source_size = (frame.shape[1], frame.shape[0])
        if size is None:
            size = M.metric_size(frame.shape[1], frame.shape[0])
        small_frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
        if masks_from is not None:
            continue
        if mode == "compat":
            if writer is None:
                assert work_dir is not None
                writer = _Mp4vMaskWriter(work_dir, fps, frame.shape[1], frame.shape[0])
            writer.write(masker.update(frame))
        else:
            # The 0/255 mask image resized directly: the same pixels as M.resize_masks on the bool mask.
            scaled = cv2.resize(masker.update_u8(frame), size, interpolation=cv2.INTER_LINEAR)
            small_masks.append(scaled > M.MASK_REBINARIZE_LEVEL)
    what = source.name if isinstance(source, Path) else "the clip"
    if len(small_frames) < n:
        raise ValueError(
            f"{what}: {len(small_frames)} frames is shorter than {TEST_SECONDS:g} s at {fps:g} fps ({n} frames)"
        )
    assert size is not None
    if masks_from is not None:
        masks = _read_mask_video(masks_from, n, size)
    elif writer is not None:
        masks = writer.read_back(size)
    else:
        masks = np.stack(small_masks)
    return _Clip(masks=masks, frames=np.stack(small_frames), source_size=source_size)


def compare_clips(generated: np.ndarray, real: np.ndarray, fps: float, mode: Mode = "fast") -> MetricValues:
    """Score one generated clip against one real clip (arrays), as the evaluator scores a view.

    Both are trimmed to 5 s; metrics are computed at a quarter of the real clip's size, the generated clip is
    resized to it; masks are computed at each clip's own resolution.

    Args:
        generated: ``(T, H, W, 3)`` RGB uint8, at least 5 s.
        real: ``(T', H', W', 3)`` RGB uint8, at least 5 s.
        fps: The frame rate of both.
        mode: ``fast`` or ``compat`` (mask mp4v round trip; official rounding is applied only in aggregation).

    Raises:
        ValueError: a clip is shorter than 5 s or the mode is unknown.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    with tempfile.TemporaryDirectory(prefix="physrefine-") as tmp:
        work = Path(tmp) if mode == "compat" else None
        ref = _prepare(real, fps, None, mode, work)
        size = (ref.frames.shape[2], ref.frames.shape[1])
        gen = _prepare(generated, fps, size, mode, work)
    return compare(gen.masks, gen.frames, ref.masks, ref.frames, compat=mode == "compat").values


# --------------------------------------------------------------------------------------------------------
# The real side of a view, cached


@dataclass(frozen=True)
class RealSide:
    """Everything about a take-1/take-2 pair a generated clip is compared with.

    Attributes:
        size: The metric size ``(width, height)``.
        take1: Take-1 masks and frames at the metric size.
        take2: Take-2 masks and frames at the metric size.
        variance: Take-1 vs take-2.
    """

    size: tuple[int, int]
    take1: _Clip
    take2: _Clip
    variance: Comparison


def _comparison_meta(c: Comparison) -> dict[str, Any]:
    return {
        "spatial_iou": c.spatial_iou,
        "weighted_spatial_iou": c.weighted_spatial_iou,
        "spatiotemporal_iou_frames": list(c.spatiotemporal_iou_frames),
        "mse_frames": list(c.mse_frames),
    }


def _comparison_from_meta(d: dict[str, Any]) -> Comparison:
    return Comparison(
        spatial_iou=float(d["spatial_iou"]),
        weighted_spatial_iou=float(d["weighted_spatial_iou"]),
        spatiotemporal_iou_frames=tuple(float(v) for v in d["spatiotemporal_iou_frames"]),
        mse_frames=tuple(float(v) for v in d["mse_frames"]),
    )


def _pack(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.packbits(masks.reshape(-1)), np.asarray(masks.shape, dtype=np.int64)


def _unpack(bits: np.ndarray, shape: np.ndarray) -> np.ndarray:
    count = int(np.prod(shape))
    return np.unpackbits(bits, count=count).astype(bool).reshape(tuple(int(s) for s in shape))


# --------------------------------------------------------------------------------------------------------
# Results


def _view_identity(v: ViewResult) -> dict[str, Any]:
    """The columns that say which view a row of the CSV or JSON report is."""
    return {
        "id": v.take1_id,
        "scenario": v.scenario,
        "perspective": v.perspective,
        "category": v.category,
        "generated": v.generated,
    }


@dataclass
class FolderResults:
    """The scores of a folder of generated videos.

    Attributes:
        views: One result per take-1 row, in ID order.
        overall: The aggregate over all views.
        per_category: Category -> aggregate.
        per_scenario: Scenario -> aggregate.
        mode: ``fast`` or ``compat``.
        fps: Frame rate scored at.
        dataset: The dataset folder.
        generated_dir: The generated folder.
        warnings: Validation warnings (videos trimmed or resized).
        extra: More summary entries (e.g. ``trajectory``) merged into :meth:`to_json`.
        samples: The Verified terms of every view (one sample each), in ID order.
        verified: The Physics-IQ Verified score over all samples.
        verified_per_category: Category -> Verified score of its samples.
    """

    views: list[ViewResult]
    overall: Aggregate
    per_category: dict[str, Aggregate]
    per_scenario: dict[str, Aggregate]
    mode: str
    fps: int
    dataset: Path
    generated_dir: Path
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    samples: list[VerifiedSample] = field(default_factory=list)
    verified: VerifiedAggregate | None = None
    verified_per_category: dict[str, VerifiedAggregate] = field(default_factory=dict)

    @classmethod
    def from_views(cls, views: Sequence[ViewResult], *, mode: str, **kwargs: Any) -> FolderResults:
        """Aggregate views overall, per category and per scenario."""
        views = sorted(views, key=lambda v: v.take1_id)
        compat = mode == "compat"
        by_category: dict[str, list[ViewResult]] = {}
        by_scenario: dict[str, list[ViewResult]] = {}
        for v in views:
            by_category.setdefault(v.category, []).append(v)
            by_scenario.setdefault(v.scenario, []).append(v)
        return cls(
            views=list(views),
            overall=aggregate(views, compat=compat),
            per_category={k: aggregate(g, compat=compat) for k, g in by_category.items()},
            per_scenario={k: aggregate(g, compat=compat) for k, g in by_scenario.items()},
            mode=mode,
            samples=[verified_sample(v, compat=compat) for v in views],
            verified=verified_aggregate(views, compat=compat),
            verified_per_category={k: verified_aggregate(g, compat=compat) for k, g in by_category.items()},
            **kwargs,
        )

    def sample_of(self, take1_id: int) -> VerifiedSample:
        """The Verified sample of the view with this take-1 ID."""
        for sample in self.samples:
            if sample.take1_id == take1_id:
                return sample
        raise KeyError(take1_id)

    def csv_rows(self) -> tuple[list[str], list[dict[str, Any]]]:
        """The official per-scenario results table: header and rows (lists as ``[a, b, ...]`` strings).

        After the official columns come the Verified values of every sample (one scenario seen from one
        perspective): ``verified_<term>_<perspective>`` for the four clipped terms and
        ``verified_sample_<perspective>`` for their mean, all in [0, 1]. Official readers ignore them.
        """
        header = ["scenario"]
        for view in PERSPECTIVES:
            header += [
                f"v1_mse_{view}",
                f"v2_mse_{view}",
                f"variance_spatial_{view}",
                f"variance_weighted_spatial_{view}",
                f"variance_spatiotemporal_iou_{view}",
                f"variance_mse_{view}",
                f"spatiotemporal_iou_v1_{view}",
                f"spatiotemporal_iou_v2_{view}",
                f"spatial_iou_v1_{view}",
                f"spatial_iou_v2_{view}",
                f"weighted_spatial_iou_v1_{view}",
                f"weighted_spatial_iou_v2_{view}",
            ]
        for view in PERSPECTIVES:
            header += [f"verified_{term}_{view}" for term in VERIFIED_TERMS]
            header.append(f"verified_sample_{view}")

        def lst(values: Sequence[float]) -> str:
            return "[" + ", ".join(repr(float(v)) for v in values) + "]"

        rows: list[dict[str, Any]] = []
        by_scenario: dict[str, dict[str, ViewResult]] = {}
        for v in self.views:
            by_scenario.setdefault(v.scenario, {})[v.perspective] = v
        for scenario, views in by_scenario.items():
            row: dict[str, Any] = {"scenario": scenario}
            for p, v in views.items():
                row.update(
                    {
                        f"v1_mse_{p}": lst(v.model_v1.mse_frames),
                        f"v2_mse_{p}": lst(v.model_v2.mse_frames),
                        f"variance_spatial_{p}": repr(v.variance.spatial_iou),
                        f"variance_weighted_spatial_{p}": repr(v.variance.weighted_spatial_iou),
                        f"variance_spatiotemporal_iou_{p}": lst(v.variance.spatiotemporal_iou_frames),
                        f"variance_mse_{p}": lst(v.variance.mse_frames),
                        f"spatiotemporal_iou_v1_{p}": lst(v.model_v1.spatiotemporal_iou_frames),
                        f"spatiotemporal_iou_v2_{p}": lst(v.model_v2.spatiotemporal_iou_frames),
                        f"spatial_iou_v1_{p}": repr(v.model_v1.spatial_iou),
                        f"spatial_iou_v2_{p}": repr(v.model_v2.spatial_iou),
                        f"weighted_spatial_iou_v1_{p}": repr(v.model_v1.weighted_spatial_iou),
                        f"weighted_spatial_iou_v2_{p}": repr(v.model_v2.weighted_spatial_iou),
                    }
                )
                if self.samples:
                    sample = self.sample_of(v.take1_id)
                    row.update({f"verified_{t}_{p}": repr(sample.terms[t]) for t in VERIFIED_TERMS})
                    row[f"verified_sample_{p}"] = repr(sample.value)
            rows.append(row)
        return header, rows

    def sample_rows(self) -> tuple[list[str], list[dict[str, Any]]]:
        """One row per sample (scenario x perspective): its metrics, its physical variance (per-frame values
        averaged over its frames), the four clipped Verified terms and the sample value (``samples.csv``)."""
        header = ["id", "scenario", "perspective", "category", "generated"]
        header += [f"model_{m}" for m in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")]
        header += [
            f"variance_{m}" for m in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")
        ]
        header += [*VERIFIED_TERMS, "sample_value", "original_view_score"]
        rows = []
        for v in self.views:
            sample = self.sample_of(v.take1_id)
            model, var = v.model_v1.values, v.variance.values
            row: dict[str, Any] = _view_identity(v)
            row.update({f"model_{k}": repr(x) for k, x in model.as_dict().items()})
            row.update({f"variance_{k}": repr(x) for k, x in var.as_dict().items()})
            row.update({t: repr(sample.terms[t]) for t in VERIFIED_TERMS})
            row["sample_value"] = repr(sample.value)
            row["original_view_score"] = repr(v.score)
            rows.append(row)
        return header, rows

    def to_csv(self, path: str | Path, *, per_sample: bool = False) -> Path:
        """Write the official-format results CSV (one row per scenario, official column names), or with
        ``per_sample`` the one-row-per-sample table (:meth:`sample_rows`)."""
        path = Path(path)
        header, rows = self.sample_rows() if per_sample else self.csv_rows()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)
        return path

    def to_json(self, score_types: Sequence[str] = SCORE_TYPES) -> dict[str, Any]:
        """The JSON summary.

        With ``original`` in ``score_types``: the original score and metrics at top level (as before), per
        category and scenario. With ``verified``: a ``verified`` block (score, four sub-scores, samples) and
        per-category Verified scores. Both name the ``mode`` they were computed in; ``per_row`` lists every
        view with the scores asked for.
        """
        unknown = [t for t in score_types if t not in SCORE_TYPES]
        if unknown or not score_types:
            raise ValueError(f"score types must be among {SCORE_TYPES}, got {list(score_types)}")
        original = "original" in score_types
        verified = "verified" in score_types and self.verified is not None
        out: dict[str, Any] = self.overall.as_dict() if original else {}
        rows = []
        for v in self.views:
            row: dict[str, Any] = _view_identity(v)
            if original:
                row["physics_iq_score"] = v.score
            row.update(v.model_v1.values.as_dict())
            row["physical_variance_metrics"] = v.variance.values.as_dict()
            if verified:
                sample = self.sample_of(v.take1_id)
                row["verified"] = {**sample.terms, "sample_value": sample.value}
            rows.append(row)
        out.update(
            {
                "mode": self.mode,
                "mode_note": MODE_NOTES.get(self.mode, ""),
                "score_types": [t for t in SCORE_TYPES if t in score_types],
                "fps": self.fps,
                "dataset": str(self.dataset),
                "generated_dir": str(self.generated_dir),
                "warnings": list(self.warnings),
            }
        )
        if original:
            out["per_category"] = {k: a.as_dict() for k, a in self.per_category.items()}
            out["per_scenario"] = {k: a.as_dict() for k, a in self.per_scenario.items()}
        if verified:
            assert self.verified is not None
            out["verified"] = {
                **self.verified.as_dict(),
                "mode": self.mode,
                "per_category": {k: a.as_dict() for k, a in self.verified_per_category.items()},
            }
        out["per_row"] = rows
        out.update(self.extra)
        return out

    def write(self, out_dir: str | Path, score_types: Sequence[str] = SCORE_TYPES) -> tuple[Path, Path]:
        """Write ``results.csv`` (official per-scenario table plus per-sample Verified columns),
        ``samples.csv`` (one row per sample) and ``summary.json`` into ``out_dir``; returns the paths of the
        first and the last."""
        out_dir = Path(out_dir)
        csv_path = self.to_csv(out_dir / "results.csv")
        self.to_csv(out_dir / "samples.csv", per_sample=True)
        json_path = out_dir / "summary.json"
        tmp = json_path.with_name(".summary.json.part")
        tmp.write_text(json.dumps(self.to_json(score_types), indent=2) + "\n", encoding="utf-8")
        tmp.replace(json_path)
        return csv_path, json_path


def aggregate_runs(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (``ddof=1``; none for one run) over runs of every original and Verified score, as
    the official ``aggregate_runs_from_csvs.py`` aggregates four runs (scores here stay 0-100).

    Args:
        summaries: Run name -> its ``summary.json`` (:meth:`FolderResults.to_json`); a score type is
            aggregated when every summary holds it.
    """

    def stat(values: list[float]) -> dict[str, Any]:
        mean, std = mean_std(values)
        return {"mean": round(mean, 4), "std": None if std is None else round(std, 4), "values": values}

    original = {
        key: stat([float(s[key]) for s in summaries.values()])
        for key in ("physics_iq_score", "spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")
        if all(key in s for s in summaries.values())
    }
    verified: dict[str, Any] = {}
    if all("verified" in s for s in summaries.values()):
        for key in ("physics_iq_score", *VERIFIED_TERMS):
            verified[key] = stat([float(s["verified"][key]) for s in summaries.values()])
    modes = sorted({str(s.get("mode")) for s in summaries.values()})
    return {
        "runs": list(summaries),
        "n_runs": len(summaries),
        "mode": modes[0] if len(modes) == 1 else modes,
        "std": "sample standard deviation (ddof=1) over runs, as the official aggregate_runs_from_csvs.py",
        "original": original,
        "verified": verified,
    }


# --------------------------------------------------------------------------------------------------------
# The evaluator


class Evaluator:
    """Scores generated clips against a Physics-IQ style dataset.

    Args:
        dataset_root: The dataset folder (or an already parsed :class:`DatasetLayout`).
        fps: The frame rate to score at (testing videos must exist at it).
        mode: ``fast`` (default) or ``compat`` (reproduces the official lossy steps and rounding).
        cache_dir: Where the real side is cached: ``None`` = :func:`physics_iq.cache.default_cache_dir`
            (``$PHYSREFINE_CACHE_DIR``), a path, or ``False`` for no disk cache.
    """

    def __init__(
        self,
        dataset_root: str | Path | DatasetLayout,
        fps: int,
        mode: Mode = "fast",
        cache_dir: str | Path | Literal[False] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.layout = dataset_root if isinstance(dataset_root, DatasetLayout) else DatasetLayout(dataset_root)
        self.fps = int(fps)
        self.mode: Mode = mode
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._cache = ArrayCache(self.cache_dir / "physics_iq") if self.cache_dir is not None else None
        self._memo: OrderedDict[int, RealSide] = OrderedDict()
        self._lock = threading.Lock()
        self._resized: dict[int, str] = {}
        self._pairs: dict[int, ViewPair] | None = None
        self.cache_hits = 0
        self.cache_misses = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memo"] = OrderedDict()  # arrays stay in the process that computed them
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def n_frames(self) -> int:
        """Frames scored per clip: 5 s at :attr:`fps`."""
        return frames_for_seconds(TEST_SECONDS, self.fps)

    def pairs(self) -> list[ViewPair]:
        """The take-1/take-2 pairs, after checking the dataset (raises :class:`DatasetError`)."""
        if self._pairs is None:
            self._pairs = {p.take1.id: p for p in check_dataset(self.layout, self.fps)}
        return list(self._pairs.values())

    def pair(self, take1_id: int) -> ViewPair:
        """The pair whose take-1 row has this ID."""
        for p in self.pairs():
            if p.take1.id == take1_id:
                return p
        raise DatasetError(f"{self.layout.descriptions_path}: no take-1 row with ID {take1_id:04d}")

    # -- real side --------------------------------------------------------------------------------------

    def _work_dir(self) -> Path:
        base = self.cache_dir / "tmp" if self.cache_dir is not None else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="physrefine-compat-", dir=base))

    def _real_inputs(self, pair: ViewPair) -> list[Path]:
        files = [
            self.layout.testing_video(pair.take1, self.fps),
            self.layout.testing_video(pair.take2, self.fps),
        ]
        if self.mode == "compat":
            files += [p for p in (self._mask_file(pair.take1), self._mask_file(pair.take2)) if p is not None]
        return files

    def _mask_file(self, row: Row) -> Path | None:
        path = self.layout.real_mask_video(row, self.fps)
        return path if path.is_file() else None

    def _real_clip(self, row: Row, work_dir: Path | None, size: tuple[int, int] | None) -> _Clip:
        path = self.layout.testing_video(row, self.fps)
        mask_file = self._mask_file(row) if self.mode == "compat" else None
        try:
            return _prepare(path, self.fps, size, self.mode, work_dir, masks_from=mask_file)
        except ValueError as exc:
            raise DatasetError(f"{path}: {exc}") from exc

    def _compute_real_side(self, pair: ViewPair) -> RealSide:
        work_dir = self._work_dir() if self.mode == "compat" else None
        try:
            take1 = self._real_clip(pair.take1, work_dir, None)
            size = (take1.frames.shape[2], take1.frames.shape[1])
            take2 = self._real_clip(pair.take2, work_dir, size)
        finally:
            if work_dir is not None:
                shutil.rmtree(work_dir, ignore_errors=True)
        variance = compare(take2.masks, take2.frames, take1.masks, take1.frames, compat=self.mode == "compat")
        return RealSide(size=size, take1=take1, take2=take2, variance=variance)

    def real_side(self, pair: ViewPair) -> RealSide:
        """The cached real side of a pair (computed and stored on a miss)."""
        with self._lock:
            memo = self._memo.get(pair.take1.id)
            if memo is not None:
                self._memo.move_to_end(pair.take1.id)
                return memo
        key = None
        side = None
        if self._cache is not None:
            key = cache_key(
                "real-side",
                {"mode": self.mode, "fps": self.fps, "seconds": TEST_SECONDS},
                self._real_inputs(pair),
            )
            entry = self._cache.load(key)
            if entry is not None:
                arrays, meta = entry
                side = RealSide(
                    size=(int(meta["size"][0]), int(meta["size"][1])),
                    take1=_Clip(
                        _unpack(arrays["masks1"], arrays["masks1_shape"]),
                        arrays["frames1"],
                        source_size=(int(meta["source_size"][0]), int(meta["source_size"][1])),
                    ),
                    take2=_Clip(_unpack(arrays["masks2"], arrays["masks2_shape"]), arrays["frames2"]),
                    variance=_comparison_from_meta(meta["variance"]),
                )
                with self._lock:
                    self.cache_hits += 1
        if side is None:
            side = self._compute_real_side(pair)
            with self._lock:
                self.cache_misses += 1
            if self._cache is not None and key is not None:
                m1, s1 = _pack(side.take1.masks)
                m2, s2 = _pack(side.take2.masks)
                self._cache.store(
                    key,
                    {
                        "masks1": m1,
                        "masks1_shape": s1,
                        "masks2": m2,
                        "masks2_shape": s2,
                        "frames1": side.take1.frames,
                        "frames2": side.take2.frames,
                    },
                    {
                        "size": list(side.size),
                        "source_size": list(side.take1.source_size),
                        "variance": _comparison_meta(side.variance),
                    },
                )
        with self._lock:
            self._memo[pair.take1.id] = side
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return side

    def variance(self, pair: ViewPair) -> MetricValues:
        """Physical variance of a view: take-1 against take-2 (cached)."""
        return self.real_side(pair).variance.values

    def real_masks(self, row: Row) -> np.ndarray:
        """Motion masks of a real testing video at the metric size (cached); ``row`` may be either take.

        Shape ``(T, h, w)`` in fast mode, ``(T, h, w, 3)`` in compat mode (the official code decodes mask
        videos as 3-channel images and compares all channels).
        """
        for p in self.pairs():
            if p.take1.id == row.id:
                return self.real_side(p).take1.masks
            if p.take2.id == row.id:
                return self.real_side(p).take2.masks
        raise DatasetError(f"{self.layout.descriptions_path}: no row with ID {row.id:04d}")

    # -- generated side ---------------------------------------------------------------------------------

    def view_result(self, pair: ViewPair, generated: str | Path | np.ndarray) -> ViewResult:
        """Score a generated clip (a file or ``(T, H, W, 3)`` RGB uint8 frames at :attr:`fps`) on one view.

        Raises:
            VideoReadError: the file cannot be decoded or holds fewer than 5 s of decodable frames.
            ValueError: the array is shorter than 5 s.
        """
        side = self.real_side(pair)
        source = generated if isinstance(generated, np.ndarray) else Path(generated)
        name = "" if isinstance(source, np.ndarray) else source.name
        work_dir = self._work_dir() if self.mode == "compat" else None
        try:
            clip = _prepare(source, self.fps, side.size, self.mode, work_dir)
        except ValueError as exc:
            if isinstance(source, Path):
                # Fewer decodable frames than the container promised (damaged packets): name the file.
                raise VideoReadError(source, str(exc)) from exc
            raise
        finally:
            if work_dir is not None:
                shutil.rmtree(work_dir, ignore_errors=True)
        if clip.source_size != side.take1.source_size:
            (gw, gh), (rw, rh) = clip.source_size, side.take1.source_size
            with self._lock:
                self._resized[pair.take1.id] = f"{name or 'the clip'} ({gw}x{gh} vs {rw}x{rh})"
        compat = self.mode == "compat"
        return ViewResult(
            scenario=pair.scenario,
            perspective=pair.take1.perspective,
            category=pair.category,
            take1_id=pair.take1.id,
            take2_id=pair.take2.id,
            generated=name,
            model_v1=compare(clip.masks, clip.frames, side.take1.masks, side.take1.frames, compat=compat),
            model_v2=compare(clip.masks, clip.frames, side.take2.masks, side.take2.frames, compat=compat),
            variance=side.variance,
        )

    def score_video(self, pair: ViewPair, generated: str | Path | np.ndarray) -> MetricValues:
        """The four metrics of a generated clip against take-1; pair with :meth:`variance` and
        :func:`physics_iq_score` for a single-view score."""
        return self.view_result(pair, generated).model_v1.values

    def score_single(self, pair: ViewPair, generated: str | Path | np.ndarray) -> float:
        """Single-view Physics-IQ score in [0, 100] (model against this view's own physical variance)."""
        result = self.view_result(pair, generated)
        return physics_iq_score(result.model_v1.values, result.variance.values)

    # -- folders ----------------------------------------------------------------------------------------

    def validate(self, generated_dir: str | Path, *, jobs: int = 1) -> GeneratedFolder:
        """Check the dataset and a generated folder (``jobs`` threads probing), listing every problem at once."""
        self.pairs()
        return validate_generated_folder(self.layout, generated_dir, fps=self.fps, jobs=jobs)

    def evaluate_folder(
        self,
        generated_dir: str | Path,
        *,
        jobs: int = 1,
        progress: Callable[[int], None] | None = None,
        validated: GeneratedFolder | None = None,
    ) -> FolderResults:
        """Validate and score a folder of generated videos.

        Args:
            generated_dir: The folder (``{ID}_{perspective}_{scenario}.mp4`` per take-1 row).
            jobs: Worker threads; scenarios are distributed over them.
            progress: Called with the number of views just finished.
            validated: A result of :meth:`validate` to skip validating again.

        Raises:
            ValidationError: the folder has problems (all listed).
            DatasetError: the dataset has problems.
        """
        folder = validated or self.validate(generated_dir, jobs=jobs)
        pairs = self.pairs()
        with self._lock:
            self._resized.clear()
        by_scenario: dict[str, list[tuple[ViewPair, Path]]] = {}
        for p in pairs:
            by_scenario.setdefault(p.scenario, []).append((p, folder.files[p.take1.id]))
        views: list[ViewResult] = []
        # OpenCV's own thread pool is off while scoring: its per-call parallelism over rows of one frame
        # brings no wall-time gain for these images (measured on 480x272 and 1920x1080 frames, 2 cores) but
        # costs 60-80 % more CPU in the mask steps, and with --jobs it would fight the scenario threads.
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            if jobs <= 1 or len(by_scenario) <= 1:
                for items in by_scenario.values():
                    for pair, path in items:
                        views.append(self.view_result(pair, path))
                        if progress:
                            progress(1)
            else:
                # Threads, not processes: decoding (FFmpeg) and every OpenCV call release the GIL, and
                # threads start instantly and share the memo (measured: benchmarks/bench_score.py).
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    futures = [pool.submit(_score_items, self, items) for items in by_scenario.values()]
                    for future in as_completed(futures):
                        done = future.result()
                        views.extend(done)
                        if progress:
                            progress(len(done))
        finally:
            cv2.setNumThreads(previous)
        warnings = list(folder.warnings)
        if self._resized:
            resized = [self._resized[i] for i in sorted(self._resized)]
            warnings.append(
                f"{len(resized)} video(s) differ in size from the real video: they are resized to a quarter of "
                f"the real size for the metrics, as in the official evaluator: {listing(resized)}"
            )
            logger.info("%s", warnings[-1])
        return FolderResults.from_views(
            views,
            mode=self.mode,
            fps=self.fps,
            dataset=self.layout.root,
            generated_dir=Path(generated_dir),
            warnings=tuple(warnings),
        )


def _score_items(evaluator: Evaluator, items: list[tuple[ViewPair, Path]]) -> list[ViewResult]:
    _worker.in_pool = True
    try:
        return [evaluator.view_result(pair, path) for pair, path in items]
    finally:
        _worker.in_pool = False
