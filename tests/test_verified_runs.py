"""Four-run reporting: refine --repeat (independent runs differing by base seed, named
<model>-<op|bpp>-run_NN), the runs' mean and sample std in compare, and their Verified package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from agent.runs import RunConfig
from agent.workflows.compare import compare_runs, run_scores
from agent.workflows.repeat import RepeatError, model_slug, repeat_plan, run_repeats
from agent.workflows.rundata import load_run
from agent.workflows.submit import make_submission
from physics_iq.layout import PROMPT_SET_FILES, write_marker
from physics_iq.scoring import mean_std
from tests.datasets import build_tiny_dataset
from tests.workflow_runs import write_run


def _with_prompt_sets(root: Path) -> None:
    """Give a tiny dataset both official prompt sets (bpp: the same rows, other wording)."""
    text = (root / "descriptions.csv").read_text(encoding="utf-8")
    for name, rel in PROMPT_SET_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            text if name == "op" else text.replace("Tiny scenario", "Best practice: tiny"), "utf-8"
        )
    (root / "descriptions.csv").unlink()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    layout = build_tiny_dataset(tmp_path_factory.mktemp("rep") / "ds", n_scenarios=1)
    _with_prompt_sets(layout.root)
    write_marker(layout.root, {"variant": "verified", "complete": True})
    return layout.root


def test_repeat_plan_names_and_disjoint_seeds(dataset):
    config = RunConfig(
        dataset=str(dataset), fps=8, seeds=3, seed=5, generator_options={"model": "/ckpt/My_Model/"}
    )
    plan = repeat_plan(config, 4)
    assert [name for name, _ in plan] == [
        f"my-model-bpp-run_0{i}" for i in range(1, 5)
    ]  # Verified: bpp default
    seeds = [set(range(c.seed, c.seed + c.seeds)) for _, c in plan]
    assert all(a.isdisjoint(b) for i, a in enumerate(seeds) for b in seeds[i + 1 :])
    assert all(c.model_dump(exclude={"seed"}) == config.model_dump(exclude={"seed"}) for _, c in plan)
    op = repeat_plan(config.model_copy(update={"dataset": str(dataset / PROMPT_SET_FILES["op"])}), 1)
    assert op[0][0] == "my-model-op-run_01"
    assert model_slug(RunConfig(dataset="d", fps=8, generator="take2")) == "take2"


@pytest.fixture(scope="module")
def repeats(dataset, tmp_path_factory) -> tuple[Path, dict]:
    parent = tmp_path_factory.mktemp("runs") / "repeats"
    done = CliRunner().invoke(
        app,
        [
            "refine",
            "--dataset",
            str(dataset),
            "--run-dir",
            str(parent),
            "--loops",
            "1",
            "--seeds",
            "1",
            "--repeat",
            "2",
            "--descriptions",
            "op",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    return parent, json.loads(done.stdout)


def test_refine_repeat_makes_independent_named_runs_with_mean_and_std(repeats):
    parent, result = repeats
    names = ["physics-prior-op-run_01", "physics-prior-op-run_02"]
    assert list(result["runs"]) == names and result["status"] == "complete"
    configs = [json.loads((parent / n / "config.json").read_text()) for n in names]
    assert [c["seed"] for c in configs] == [0, 1]
    assert all(c["dataset"].endswith(PROMPT_SET_FILES["op"]) for c in configs)  # the prompts are recorded
    loaded = [load_run(parent / n) for n in names]
    view_names = [v.name for v in loaded[0].views]
    for variant in ("honest_ensemble", "loop_1"):
        scores = [run_scores(run, view_names, variant) for run in loaded]
        for key in ("original", "verified"):
            mean, std = mean_std([s[key] for s in scores])
            stat = result["repeats"]["variants"][variant][key]
            assert stat["mean"] == pytest.approx(mean, abs=1e-4) and stat["std"] == pytest.approx(
                std, abs=1e-4
            )
    assert result["repeats"]["mode"] == "fast"
    # The runs really differ (their own seeds), and each is an ordinary, complete run directory.
    honest = [run.summary["overall"]["honest_ensemble"] for run in loaded]
    assert honest[0] != honest[1]
    stored = json.loads((parent / "repeats.json").read_text())
    assert stored["result"]["repeats"] == result["repeats"]


def test_refine_repeat_resumes_and_refuses_other_settings(dataset, repeats, tmp_path):
    parent, result = repeats
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    config = RunConfig(dataset=str(dataset / PROMPT_SET_FILES["op"]), fps=8, loops=1, seeds=1)
    again = run_repeats(config, copy, 2)
    assert again["repeats"] == result["repeats"]  # finished runs are reused as they are
    with pytest.raises(RepeatError, match="other settings"):
        run_repeats(config.model_copy(update={"loops": 2}), copy, 2)


def test_repeats_make_a_verified_package_with_their_mean_and_std(repeats, tmp_path):
    parent, _ = repeats
    runs = [load_run(p) for p in sorted(parent.glob("*-run_*"))]
    manifest = make_submission(runs, tmp_path / "pkg", verified=True)
    card = yaml.safe_load((tmp_path / "pkg" / "submission.yaml").read_text())
    assert card["public_info"]["descriptions"] == "op" and card["public_info"]["bon_sampling"] == 1
    per_run = [manifest["scores"]["per_run"][r.root.name]["verified"] for r in runs]
    assert card["reported_scores"]["physiq_mean"] == pytest.approx(np.mean(per_run), abs=0.0051)
    assert card["reported_scores"]["physiq_std"] == pytest.approx(np.std(per_run, ddof=1), abs=0.0051)
    assert sorted(p.name for p in (tmp_path / "pkg" / "runs").iterdir()) == [r.root.name for r in runs]


def test_compare_reports_the_runs_as_repeats(tmp_path):
    qualities = [0.5, 0.6, 0.8]
    runs = []
    for k, q in enumerate(qualities):
        views = {f"000{i}_perspective-{p}_scene-{i}": [[q, q / 2]] for i, p in ((1, "left"), (2, "center"))}
        runs.append(load_run(write_run(tmp_path / f"run-{k}", views)))
    result = compare_runs(runs, n_boot=20)
    names = [v.name for v in runs[0].views]
    honest = result["repeats"]["variants"]["honest_ensemble"]
    verified = [run_scores(r, names, "honest_ensemble")["verified"] for r in runs]
    original = [run_scores(r, names, "honest_ensemble")["original"] for r in runs]
    assert honest["verified"]["mean"] == pytest.approx(np.mean(verified), abs=1e-4)
    assert honest["verified"]["std"] == pytest.approx(np.std(verified, ddof=1), abs=1e-4)
    assert honest["original"]["std"] == pytest.approx(np.std(original, ddof=1), abs=1e-4)
    # The hand-written runs' honest pick is 'quality' times the variance's IoUs: Verified IoU terms = quality.
    assert honest["score_spatial"]["values"] == pytest.approx(
        {f"run-{k}": 100 * q for k, q in enumerate(qualities)}
    )
    out = tmp_path / "cmp"
    from agent.workflows.compare import write_comparison

    write_comparison(result, out)
    assert "The runs as repeats (3 runs, fast mode)" in (out / "compare.md").read_text()
    assert (out / "repeats.csv").read_text().startswith("selection,score,mean,std")
