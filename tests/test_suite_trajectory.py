"""The trajectory metric: pure functions against naive references, and its behaviour on a real suite."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from physics_iq.layout import DatasetLayout
from physics_iq.synthetic import build_suite
from physics_iq.trajectory import finite_velocity, locate_by_colour, trajectory_report, velocity_error
from physics_iq.video import read_video, write_video


def _naive_locate(
    frames: np.ndarray, colour: tuple[int, int, int], tol: float, min_pixels: int
) -> np.ndarray:
    out = []
    for frame in frames:
        xs, ys = [], []
        for y in range(frame.shape[0]):
            for x in range(frame.shape[1]):
                if math.dist(frame[y, x].astype(float), colour) <= tol:
                    xs.append(x)
                    ys.append(y)
        out.append([np.mean(xs), np.mean(ys)] if len(xs) >= min_pixels else [np.nan, np.nan])
    return np.array(out)


@pytest.mark.parametrize("tol", [10.0, 60.0, 200.0], ids=["tight", "default-ish", "loose"])
def test_locate_by_colour_matches_naive_reference(tol: float) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    frames[1, 2:5, 3:6] = (200, 30, 30)
    expected = _naive_locate(frames, (200, 30, 30), tol, 2)
    np.testing.assert_allclose(locate_by_colour(frames, (200, 30, 30), tol, min_pixels=2), expected)


def test_velocity_error_matches_naive_reference_and_skips_invalid() -> None:
    rng = np.random.default_rng(1)
    ref = np.cumsum(rng.normal(0, 3, (12, 2)), axis=0)
    pred = ref + rng.normal(0, 1, ref.shape)
    pred[4] = np.nan
    valid = np.ones(12, bool)
    valid[:2] = False
    fps = 16

    def naive_velocity(track: np.ndarray) -> np.ndarray:
        v = np.empty_like(track)
        v[0], v[-1] = (track[1] - track[0]) * fps, (track[-1] - track[-2]) * fps
        for k in range(1, len(track) - 1):
            v[k] = (track[k + 1] - track[k - 1]) / 2 * fps
        return v

    errors = np.linalg.norm(naive_velocity(pred) - naive_velocity(ref), axis=1)
    keep = valid & np.isfinite(errors)
    mean, used = velocity_error(pred, ref, fps, valid)
    assert used == keep.sum() == 8  # central differences at 3 and 5 use the missing frame 4; 0, 1 invalid
    assert mean == pytest.approx(errors[keep].mean())
    np.testing.assert_allclose(finite_velocity(ref, fps), naive_velocity(ref))
    assert math.isnan(velocity_error(pred, ref, fps, np.zeros(12, bool))[0])


@pytest.fixture(scope="module")
def bounce(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    return build_suite(
        tmp_path_factory.mktemp("traj") / "s", ["synthetic-ball-bounce"], fps=8, size=(192, 108), jobs=1
    )


def _generated(layout: DatasetLayout, out: Path, how: str) -> Path:
    out.mkdir()
    for row in layout.take1_rows():
        frames, _ = read_video(layout.testing_video(row, 8))
        if how == "frozen":
            frames = np.repeat(frames[:1], len(frames), axis=0)
        elif how == "shifted":  # the same motion half a second late
            frames = np.concatenate([np.repeat(frames[:1], 4, axis=0), frames[:-4]])
        elif how == "upscaled":  # another resolution: positions must be rescaled to the truth's pixels
            frames = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)
        write_video(out / row.generated_video_name, frames, 8)
    return out


def test_ground_truth_near_floor_frozen_and_shifted_large(bounce: DatasetLayout, tmp_path: Path) -> None:
    truth = trajectory_report(bounce, _generated(bounce, tmp_path / "gt", "copy"), 8)
    frozen = trajectory_report(bounce, _generated(bounce, tmp_path / "frozen", "frozen"), 8)
    shifted = trajectory_report(bounce, _generated(bounce, tmp_path / "shifted", "shifted"), 8)
    upscaled = trajectory_report(bounce, _generated(bounce, tmp_path / "up", "upscaled"), 8)
    assert truth is not None and frozen is not None and shifted is not None and upscaled is not None
    floor = truth["parsing_floor_px_s"]
    # Re-encoding the ground truth costs little; the floor itself is small next to the ball's ~150 px/s.
    assert floor < 3.0 and truth["mean_abs_velocity_error_px_s"] < 2 * floor + 0.5
    assert upscaled["mean_abs_velocity_error_px_s"] < 2 * floor + 1.0
    assert frozen["mean_abs_velocity_error_px_s"] > 10 * floor + 10
    assert shifted["mean_abs_velocity_error_px_s"] > 10 * floor + 10
    assert truth["n_views"] == 3 and truth["n_missing"] == 0
    assert set(truth["per_category"]) == {"Solid Mechanics"}


def test_report_is_none_without_state_files_and_counts_missing(bounce: DatasetLayout, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(bounce.root, tmp_path / "copy"))
    for state in copy.rglob("*.state.json"):
        state.unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert trajectory_report(DatasetLayout(copy), empty, 8) is None
    report = trajectory_report(bounce, empty, 8)
    assert report is not None and report["n_missing"] == 3 and report["mean_abs_velocity_error_px_s"] is None


def test_make_suite_cli_and_preview(tmp_path: Path) -> None:
    from agent.cli import app

    runner = CliRunner()
    out = tmp_path / "suite"
    result = runner.invoke(
        app,
        ["make-suite", str(out), "--scenarios", "synthetic-magnet-repel", "--size", "96x54", "--jobs", "1"],
    )
    assert result.exit_code == 0, result.output
    assert (out / "descriptions.csv").is_file()
    bad = runner.invoke(
        app, ["make-suite", str(out), "--scenarios", "synthetic-magnet-repel", "--size", "96x5"]
    )
    assert bad.exit_code != 0
    png = tmp_path / "sheet.png"
    result = runner.invoke(
        app, ["suite-preview", str(png), "--scenarios", "synthetic-magnet-repel", "--size", "96x54"]
    )
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 0
    again = runner.invoke(app, ["suite-preview", str(png), "--scenarios", "synthetic-magnet-repel"])
    assert again.exit_code == 2  # never replaces a file without --overwrite


def test_suite_and_trajectory_modules_do_not_import_torch() -> None:
    code = (
        "import sys, physics_iq.synthetic, physics_iq.trajectory, physics_iq.synthetic.preview; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('agent', 'generators'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
