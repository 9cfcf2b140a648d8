"""The bad-input matrix of ``physrefine score``: a clear message naming the problem, and nothing modified."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import types

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from physics_iq.video import read_video, write_video
from tests.datasets import build_tiny_dataset, write_generated_folder

FPS = 8


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    layout = build_tiny_dataset(root / "ds", n_scenarios=2, fps=FPS)
    gen = write_generated_folder(layout, root / "gen", source="take2")
    return types.SimpleNamespace(layout=layout, gen=gen)


@pytest.fixture
def case(base, tmp_path):
    """Private copies of the dataset and the generated folder, to break as each test needs."""
    ds, gen = tmp_path / "ds", tmp_path / "gen"
    shutil.copytree(base.layout.root, ds)
    shutil.copytree(base.gen, gen)
    return types.SimpleNamespace(ds=ds, gen=gen, tmp=tmp_path)


def snapshot(*folders):
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(case, *extra):
    before = snapshot(case.ds, case.gen)
    result = CliRunner().invoke(
        app,
        ["score", str(case.gen), "--dataset", str(case.ds), "--cache-dir", str(case.tmp / "cache"),
         "--out", str(case.tmp / "out"), *extra],
    )  # fmt: skip
    assert snapshot(case.ds, case.gen) == before, "an input file was renamed, modified or created"
    return result


def assert_fails(result, *needles):
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())  # undo rich's line wrapping
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{result.stderr}"


def first_name(case):
    return sorted(p.name for p in case.gen.iterdir())[0]


def test_empty_folder(case):
    for p in case.gen.iterdir():
        p.unlink()
    assert_fails(run(case), "no generated videos found", "0001_perspective-left_trimmed-tiny-scenario-0.mp4")


def test_missing_folder(case):
    shutil.rmtree(case.gen)
    case.gen.mkdir()
    case.gen.rmdir()
    result = CliRunner().invoke(app, ["score", str(case.gen), "--dataset", str(case.ds), "--no-cache"])
    assert_fails(result, "does not exist")


def test_missing_ids_are_all_listed(case):
    (case.gen / "0002_perspective-center_trimmed-tiny-scenario-0.mp4").unlink()
    (case.gen / "0005_perspective-center_trimmed-tiny-scenario-1.mp4").unlink()
    assert_fails(
        run(case),
        "2 of 6 video(s) missing",
        "0002_perspective-center_trimmed-tiny-scenario-0.mp4",
        "0005_perspective-center_trimmed-tiny-scenario-1.mp4",
    )


def test_extra_files_and_every_problem_at_once(case):
    (case.gen / "notes.txt").write_text("my notes")
    (case.gen / "0009_perspective-left_trimmed-tiny-scenario-0.mp4").write_bytes(b"")  # take-2 ID
    (case.gen / "0003_perspective-right_trimmed-tiny-scenario-0.mp4").unlink()
    assert_fails(
        run(case),
        "notes.txt",
        "extra file",
        "ID 0009 is not a take-1 row",
        "0003_perspective-right_trimmed-tiny-scenario-0.mp4",
        "3 problem(s)",
    )


def test_video_of_4_9_seconds(case):
    name = first_name(case)
    frames, _ = read_video(case.gen / name)
    write_video(case.gen / name, frames[:39], FPS, overwrite=True)
    assert_fails(run(case), name, "4.88 s (39 frames at 8 fps)", "shorter than 5 s", "need 40 frames")


def test_video_of_10_seconds_uses_first_5_with_a_warning(case):
    name = first_name(case)
    frames, _ = read_video(case.gen / name)
    write_video(case.gen / name, np.concatenate([frames, frames]), FPS, overwrite=True)
    result = run(case, "--json")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "longer than 5 s" in text and "only the first 5 s are scored" in text and name in text
    summary = json.loads(result.stdout)
    assert any("longer than 5 s" in w for w in summary["warnings"])
    assert summary["physics_iq_score"] > 90


def test_mixed_fps(case):
    name = first_name(case)
    frames, _ = read_video(case.gen / name)
    write_video(case.gen / name, np.repeat(frames, 2, axis=0), 16, overwrite=True)  # still 5 s, at 16 fps
    assert_fails(run(case), "inconsistent frame rates", f"{name} (16 fps)", "expected 8 fps")


def test_explicit_fps_mismatch(case):
    assert_fails(run(case, "--fps", "16"), "inconsistent frame rates", "expected 16 fps like --fps")


def test_truncated_mp4(case):
    name = first_name(case)
    data = (case.gen / name).read_bytes()
    (case.gen / name).write_bytes(data[: len(data) // 2])
    assert_fails(run(case), name, "cannot read as a video")


def test_non_video_named_mp4(case):
    name = first_name(case)
    (case.gen / name).write_text("this is not a video\n" * 50)
    assert_fails(run(case), name, "cannot read as a video")


def test_different_size_is_resized_with_a_warning(case):
    name = first_name(case)
    frames, _ = read_video(case.gen / name)
    bigger = np.stack([cv2.resize(f, (192, 128), interpolation=cv2.INTER_LINEAR) for f in frames])
    write_video(case.gen / name, bigger, FPS, overwrite=True)
    result = run(case, "--json")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "differ in size" in text and "192x128 vs 96x64" in text and "resized" in text
    row = next(r for r in json.loads(result.stdout)["per_row"] if r["generated"] == name)
    assert row["physics_iq_score"] > 50  # the same motion, just bigger


def _rewrite_descriptions(ds, keep):
    path = ds / "descriptions.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if keep(r))


def test_dataset_missing_a_take2_row(case):
    _rewrite_descriptions(case.ds, lambda r: not r["scenario"].startswith("0007_"))
    assert_fails(run(case), "0001_perspective-left_take-1_trimmed-tiny-scenario-0.mp4", "0 take-2 row(s)")


def test_dataset_missing_a_view(case):
    _rewrite_descriptions(
        case.ds, lambda r: "perspective-right_take-1_trimmed-tiny-scenario-1" not in r["scenario"]
    )
    (case.gen / "0006_perspective-right_trimmed-tiny-scenario-1.mp4").unlink()
    assert_fails(run(case), "scenario trimmed-tiny-scenario-1", "['perspective-right'] missing")


def test_dataset_missing_a_take2_video(case):
    missing = next((case.ds / "split-videos" / "testing-videos" / "8FPS").glob("0008_*"))
    missing.unlink()
    assert_fails(run(case), "testing video(s) missing", missing.name)


def test_contradicting_cache_options(case):
    result = CliRunner().invoke(
        app, ["score", str(case.gen), "-d", str(case.ds), "--no-cache", "--cache-dir", str(case.tmp / "c")]
    )
    assert_fails(result, "--cache-dir and --no-cache")


def test_probing_in_threads_lists_the_same_problems_in_the_same_order(case):
    from physics_iq.errors import ValidationError
    from physics_iq.layout import DatasetLayout
    from physics_iq.validation import validate_generated_folder

    files = sorted(case.gen.iterdir())
    files[0].write_bytes(b"not a video")
    files[3].write_bytes(files[3].read_bytes()[:200])
    files[4].write_bytes(b"")
    layout = DatasetLayout(case.ds)
    messages = []
    for jobs in (1, 3):
        with pytest.raises(ValidationError) as info:
            validate_generated_folder(layout, case.gen, jobs=jobs)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert all(p.name in messages[0] for p in (files[0], files[3], files[4]))
