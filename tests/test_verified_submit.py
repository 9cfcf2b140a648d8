"""physrefine submit: the Physics-IQ Verified package from several runs, its card, --validate-only, variant
and ground-truth refusals, and the package checked against the official scripts' listing rules."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from agent.workflows.rundata import load_run
from agent.workflows.submit import (
    GROUND_TRUTH_LABEL,
    SubmitError,
    generation_seconds,
    make_submission,
    validate_package,
)
from physics_iq.errors import DatasetError
from physics_iq.layout import DatasetLayout, write_marker
from physics_iq.scoring import mean_std
from physics_iq.video import read_video, write_video
from tests.datasets import build_tiny_dataset


@pytest.fixture(scope="module")
def verified_runs(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A tiny dataset marked Physics-IQ Verified and two offline runs on it (differing by base seed)."""
    from agent.refine import run_refinement
    from agent.runs import RunConfig

    root = tmp_path_factory.mktemp("verified")
    layout = build_tiny_dataset(root / "ds", n_scenarios=1)
    write_marker(layout.root, {"variant": "verified", "complete": True})
    runs = []
    for i in (1, 2):
        config = RunConfig(dataset=str(layout.root), fps=8, mode="v2v", loops=1, seeds=2, seed=10 * i)
        run_refinement(config, root / f"prior-op-run_0{i}")
        runs.append(root / f"prior-op-run_0{i}")
    return layout.root, runs


@pytest.fixture(scope="module")
def package(verified_runs, tmp_path_factory) -> tuple[Path, dict]:
    _, runs = verified_runs
    out = tmp_path_factory.mktemp("pkg") / "package"
    manifest = make_submission([load_run(r) for r in runs], out, verified=True, today="2026-12-05")
    return out, manifest


def official_rename_listing(folder: Path) -> None:
    """The listing loop of the official evaluator's ``rename_generated_videos`` (run_physics_iq.py): every
    entry of the folder, dot-entries included, must end in .mp4 or it raises (transcribed as a reference)."""
    for genfile in sorted(os.listdir(folder)):
        if not genfile.endswith(".mp4"):
            raise ValueError("Only .mp4 files are supported.")


def official_validate_generations(folder: Path, num_videos: int) -> None:
    """The official ``validate_generations`` count and prefix rule (durations are checked elsewhere)."""
    files = sorted(f for f in os.listdir(folder) if f.endswith(".mp4"))
    assert len(files) == num_videos, f"found {len(files)} videos but expected {num_videos}"
    for counter, name in enumerate(files, start=1):
        assert name.startswith(f"{counter:04d}_"), name


def test_package_layout_passes_the_official_listing_rules(verified_runs, package):
    ds, runs = verified_runs
    out, manifest = package
    assert sorted(p.name for p in out.iterdir()) == [
        "descriptions.csv",
        "manifest.json",
        "runs",
        "scores",
        "submission.yaml",
    ]
    assert sorted(p.name for p in (out / "runs").iterdir()) == [r.name for r in runs]
    n_take1 = len(DatasetLayout(ds).take1_rows())
    for run_dir in (out / "runs").iterdir():
        official_rename_listing(run_dir)  # raises on any other entry, hidden ones included
        official_validate_generations(run_dir, n_take1)
    assert manifest["videos_per_run"] == n_take1 and manifest["official_videos_per_run"] == 198
    assert manifest["variant"] == "verified" and manifest["verified_package"] is True


def test_the_old_hidden_manifest_layout_breaks_the_official_renamer(tmp_path):
    # The defect this layout fixes: a hidden folder inside the clips folder.
    folder = tmp_path / "clips"
    (folder / ".physrefine").mkdir(parents=True)
    (folder / "0001_perspective-left_x.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Only \.mp4 files are supported"):
        official_rename_listing(folder)
    from physics_iq.validation import official_listing_problems

    assert official_listing_problems(folder) and ".physrefine" in official_listing_problems(folder)[0]


def test_card_is_filled_from_the_runs(verified_runs, package):
    _, runs = verified_runs
    out, manifest = package
    card = yaml.safe_load((out / "submission.yaml").read_text())
    info = card["public_info"]
    assert info["input_type"] == "v2v" and info["fps"] == 8 and info["resolution"] == "96x64"
    assert info["bon_sampling"] == 2  # 1 loop x 2 seeds generated per view
    assert info["bon_sampling_method"].startswith("physrefine critic+feature-path selector: critic first")
    assert info["prompt_upsampling"] is True and "offline" in info["prompt_upsampling_method"]
    assert info["descriptions"] == "op" and info["date"] == "2026-12-05"
    assert info["upsample_cost"] == 0.0  # the offline critic costs nothing
    assert "verified" in info["comments"] and "compat mode" in info["comments"]
    # Reported scores: the Verified score and sub-scores (x 100) of the compat-scored run folders, mean and
    # sample std over the two runs.
    per_run = [json.loads((out / "scores" / r.name / "summary.json").read_text()) for r in runs]
    assert all(s["mode"] == "compat" for s in per_run)
    mean, std = mean_std([s["verified"]["physics_iq_score"] for s in per_run])
    assert card["reported_scores"]["physiq_mean"] == pytest.approx(mean, abs=0.005 + 1e-9)
    assert card["reported_scores"]["physiq_std"] == pytest.approx(std, abs=0.005 + 1e-9)
    mean, std = mean_std([s["verified"]["score_mse"] for s in per_run])
    assert card["reported_scores"]["mse_mean"] == pytest.approx(mean, abs=0.005 + 1e-9)
    assert card["reported_scores"]["mse_std"] == pytest.approx(std, abs=0.005 + 1e-9)
    # Fields only a person can fill stay empty and are listed.
    assert info["organization"] == "" and card["terms"]["terms_accepted"] is None
    to_fill = manifest["card"]["to_fill"]
    for name in ("public_info.organization", "terms.terms_accepted", "warranties.metadata_accurate"):
        assert name in to_fill
    assert "TO FILL" in (out / "submission.yaml").read_text()


def _fill(card_path: Path) -> None:
    card = yaml.safe_load(card_path.read_text())
    card["public_info"].update(
        organization="Org",
        availability="public",
        model_source="https://example.org/model",
        generation_cost=0.01,
        generation_time=1.0,
        upsample_time=0.5,
    )
    card["terms"] = {
        "terms_version": "1.0",
        "terms_accepted": True,
        "accepted_on_behalf_of": "Org",
        "accepted_at": "2026-12-05T12:00:00Z",
    }
    card["warranties"] = dict.fromkeys(card["warranties"], True)
    card_path.write_text(yaml.safe_dump(card, sort_keys=False))


def test_validate_only_lists_each_failure_then_passes_once_filled(package, tmp_path):
    out = tmp_path / "pkg"
    shutil.copytree(package[0], out)
    checks = validate_package(out, run_id="Not An Id")
    failures = checks["failures"]
    assert any("run id" in f for f in failures)
    assert any("'public_info.organization' is empty" in f for f in failures)
    assert any("terms.terms_accepted must be true" in f for f in failures)
    assert not any("[prior-op-run" in f for f in failures)  # the clips themselves pass
    runner = CliRunner()
    done = runner.invoke(app, ["submit", "--validate-only", "--out", str(out)])
    assert done.exit_code == 1 and done.output.count("FAIL") == len(validate_package(out)["failures"])
    _fill(out / "submission.yaml")
    assert validate_package(out, run_id="org__physrefine-prior-op__2026-12-05")["failures"] == []
    done = runner.invoke(
        app, ["submit", "--validate-only", "--out", str(out), "--run-id", "org__x__2026-12-05"]
    )
    assert done.exit_code == 0 and "all checks passed" in done.output


def test_validate_only_catches_what_the_official_script_refuses(package, tmp_path):
    out = tmp_path / "pkg"
    shutil.copytree(package[0], out)
    _fill(out / "submission.yaml")
    run_dir = next((out / "runs").iterdir())
    clips = sorted(run_dir.glob("*.mp4"))
    frames, _ = read_video(clips[0])
    clips[0].unlink()
    write_video(clips[0], frames[:-1], 8)  # 4.875 s
    frames, _ = read_video(clips[1])
    clips[1].unlink()
    write_video(clips[1], np.ascontiguousarray(frames[:, :32, :48]), 8)  # not the card's resolution
    (run_dir / ".DS_Store").write_bytes(b"x")
    failures = validate_package(out)["failures"]
    assert any(clips[0].name in f and "must be exactly 5.0s" in f for f in failures)
    assert any(clips[1].name in f and "does not match card" in f for f in failures)
    assert any(".DS_Store" in f and "Only .mp4 files" in f for f in failures)
    card = yaml.safe_load((out / "submission.yaml").read_text())
    card["public_info"]["fps"] = 24
    (out / "submission.yaml").write_text(yaml.safe_dump(card))
    assert any("does not match card fps=24" in f for f in validate_package(out)["failures"])


def test_a_run_on_one_variant_is_refused_for_the_other(verified_runs, tmp_path):
    ds, runs = verified_runs
    with pytest.raises(SubmitError, match="pass --verified"):
        make_submission(load_run(runs[0]), tmp_path / "a")
    plain = tmp_path / "plain"
    shutil.copytree(ds, plain)
    (plain / "physrefine_dataset.json").unlink()
    run = load_run(runs[0])
    moved = type(run)(run.root, {**run.config, "dataset": str(plain)}, run.provenance, run.summary, run.views)
    with pytest.raises(SubmitError, match="not verified"):
        make_submission(moved, tmp_path / "b", verified=True)
    with pytest.raises(SubmitError, match="not verified"):
        make_submission(load_run(runs[0]), tmp_path / "c", verified=True, dataset=plain)
    assert not any(tmp_path.glob("[abc]"))


def test_an_unfinished_download_is_refused(verified_runs, tmp_path):
    ds, _ = verified_runs
    copy = tmp_path / "ds"
    shutil.copytree(ds, copy)
    write_marker(copy, {"variant": "verified", "complete": False, "status": "3 of 40 files"})
    with pytest.raises(DatasetError, match="has not finished"):
        DatasetLayout(copy)


@pytest.fixture(scope="module")
def take2_run(verified_runs, tmp_path_factory) -> Path:
    from agent.refine import run_refinement
    from agent.runs import RunConfig

    ds, _ = verified_runs
    run_dir = tmp_path_factory.mktemp("gt") / "take2-op-run_01"
    run_refinement(
        RunConfig(dataset=str(ds), fps=8, mode="v2v", loops=1, seeds=1, generator="take2"), run_dir
    )
    return run_dir


def test_take2_run_is_refused_unless_forced_then_labelled_ground_truth(take2_run, tmp_path):
    with pytest.raises(SubmitError, match=r"ground truth.*--force"):
        make_submission(load_run(take2_run), tmp_path / "gt", verified=True)
    assert not (tmp_path / "gt").exists()
    done = CliRunner().invoke(
        app, ["submit", str(take2_run), "--verified", "--force", "--out", str(tmp_path / "gt"), "--json"]
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "gt" / "manifest.json").read_text())
    assert manifest["label"] == GROUND_TRUTH_LABEL and manifest["runs"][0]["ground_truth"] is True
    assert "honest" not in manifest["label"]
    summary = json.loads((tmp_path / "gt" / "scores" / take2_run.name / "summary.json").read_text())
    assert summary["label"] == GROUND_TRUTH_LABEL
    card = yaml.safe_load((tmp_path / "gt" / "submission.yaml").read_text())
    assert "GROUND TRUTH" in card["public_info"]["comments"]
    assert "GROUND TRUTH" in done.stderr


def test_generation_seconds_come_from_the_trace_and_attempt_records(verified_runs, tmp_path):
    _, runs = verified_runs
    run_dir = tmp_path / "run"
    shutil.copytree(runs[0], run_dir)
    run = load_run(run_dir)
    assert generation_seconds(run) == []  # the physics prior records no timing
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    generated = [e for e in events if e.get("node") == "generate" and not e.get("reused")]
    for k, event in enumerate(generated):
        side = run_dir / "scenarios" / Path(event["path"]).parent.parent.name / "attempts"
        record = side / (Path(event["path"]).stem + ".json")
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "seconds": 2.0 + k}))
    seconds = generation_seconds(load_run(run_dir))
    assert seconds == [2.0 + k for k in range(len(generated))] and len(seconds) == 6


def test_single_run_card_has_no_std_and_says_so(verified_runs, tmp_path):
    _, runs = verified_runs
    manifest = make_submission(load_run(runs[0]), tmp_path / "one", verified=True, today="2026-12-05")
    card = yaml.safe_load((tmp_path / "one" / "submission.yaml").read_text())
    assert card["reported_scores"]["physiq_std"] is None
    assert isinstance(card["reported_scores"]["physiq_mean"], float)
    assert "one run has no standard deviation" in manifest["card"]["to_fill"]["reported_scores.physiq_std"]
    assert not math.isnan(card["reported_scores"]["physiq_mean"])


def test_card_upsampling_cost_and_method_come_from_the_runs_usage(verified_runs, tmp_path):
    _, runs = verified_runs
    run_dir = tmp_path / "api-op-run_01"
    shutil.copytree(runs[0], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config.update(vlm="openai", vlm_options={"model": "qwen2.5-vl-72b", "base_url": "http://x/v1"})
    (run_dir / "config.json").write_text(json.dumps(config))
    usage = {
        "calls": 12,
        "prompt_tokens": 9000,
        "completion_tokens": 1000,
        "cost_usd": 0.12,
        "unpriced_calls": 0,
    }
    (run_dir / "usage.json").write_text(json.dumps(usage))
    manifest = make_submission(load_run(run_dir), tmp_path / "pkg", verified=True, score=False)
    info = yaml.safe_load((tmp_path / "pkg" / "submission.yaml").read_text())["public_info"]
    assert info["prompt_upsampling_method"] == "qwen2.5-vl-72b"
    assert info["upsample_cost"] == pytest.approx(0.12 / 3)  # per submitted clip (3 take-1 rows)
    assert info["upsample_gpu"] is None and "public_info.upsample_gpu" in manifest["card"]["to_fill"]
    assert "reported_scores.physiq_mean" in manifest["card"]["to_fill"]  # not scored: left to fill
    usage["unpriced_calls"] = 2
    (run_dir / "usage.json").write_text(json.dumps(usage))
    make_submission(load_run(run_dir), tmp_path / "pkg2", verified=True, score=False)
    info = yaml.safe_load((tmp_path / "pkg2" / "submission.yaml").read_text())["public_info"]
    assert math.isnan(info["upsample_cost"])  # upsampling used, cost unknown: the template's NaN
