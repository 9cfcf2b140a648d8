"""Build time of the full default synthetic suite, and its acceptance numbers (scores, variance, trajectory).

Run: ``python benchmarks/bench_suite.py`` (about a minute on 2 cores). Prints the build time with one worker
(the baseline) and with ``--jobs`` workers, their ratio, then scores two stand-in "models" with the evaluator:
take-2 clips (should be 100) and the switch frame repeated (a still video), the physical variance per category,
and the trajectory metric's floor vs a frozen clip.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from physics_iq.evaluate import Evaluator
from physics_iq.layout import DatasetLayout
from physics_iq.synthetic import build_suite
from physics_iq.trajectory import trajectory_report
from physics_iq.video import write_video


def _timed_build(root: Path, jobs: int) -> float:
    start = time.perf_counter()
    build_suite(root, "all", fps=8, jobs=jobs)
    return time.perf_counter() - start


def _stand_in(layout: DatasetLayout, out: Path, kind: str) -> Path:
    out.mkdir()
    for pair in layout.pairs():
        target = out / pair.take1.generated_video_name
        if kind == "take2":
            shutil.copyfile(layout.testing_video(pair.take2, 8), target)
        else:
            image = cv2.cvtColor(cv2.imread(str(layout.switch_frame(pair.take1))), cv2.COLOR_BGR2RGB)
            write_video(target, np.repeat(image[None], 40, axis=0), 8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        serial = _timed_build(tmp / "serial", 1)
        parallel = _timed_build(tmp / "parallel", args.jobs)
        layout = DatasetLayout(tmp / "parallel")
        print(f"full default suite ({len(layout.rows)} rows, 8 FPS, 320x180):")
        print(f"  build, 1 worker (baseline): {serial:6.1f} s")
        print(f"  build, {args.jobs} workers:           {parallel:6.1f} s   ratio {parallel / serial:.2f}")
        evaluator = Evaluator(layout, 8, cache_dir=False)
        take2 = evaluator.evaluate_folder(_stand_in(layout, tmp / "take2", "take2"), jobs=args.jobs)
        still = evaluator.evaluate_folder(_stand_in(layout, tmp / "still", "still"), jobs=args.jobs)
        print(
            "\n| category | take-2 score | still-frame score | spatial IoU | spatiotemporal IoU | weighted spatial IoU | MSE |"
        )
        print("|---|---|---|---|---|---|---|")
        groups = [*take2.per_category.items(), ("overall", take2.overall)]
        for name, agg in groups:
            other = still.overall if name == "overall" else still.per_category[name]
            v = agg.variance
            print(
                f"| {name} | {agg.physics_iq_score:.1f} | {other.physics_iq_score:.1f} | {v.spatial_iou:.3f} | "
                f"{v.spatiotemporal_iou:.3f} | {v.weighted_spatial_iou:.3f} | {v.mse:.5f} |"
            )
        still_traj = trajectory_report(layout, tmp / "still", 8)
        take2_traj = trajectory_report(layout, tmp / "take2", 8)
        assert still_traj is not None and take2_traj is not None
        print(
            f"\ntrajectory (mean abs velocity error, px/s): parsing floor "
            f"{still_traj['parsing_floor_px_s']:.2f}, take-2 {take2_traj['mean_abs_velocity_error_px_s']:.2f}, "
            f"still frame {still_traj['mean_abs_velocity_error_px_s']:.2f}"
        )


if __name__ == "__main__":
    main()
