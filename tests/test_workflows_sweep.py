"""physrefine sweep: config validation, cells, the shared generation cache, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.workflows.sweep import SweepError, cells, load_sweep_config, run_sweep


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    from physics_iq.synthetic.build import build_suite

    root = tmp_path_factory.mktemp("sweep") / "suite"
    build_suite(root, scenarios="synthetic-ball-bounce", fps=8, size=(128, 72), jobs=1)
    return root


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_sweep_config_toml_and_yaml_give_the_same_cells(tmp_path, suite):
    toml = _write(
        tmp_path / "s.toml",
        f'[base]\ndataset = "{suite}"\nseeds = 1\n[grid]\nprompt_set = ["default", "minimal"]\nloops = [1, 3]\n',
    )
    yaml_file = _write(
        tmp_path / "s.yaml",
        f"base:\n  dataset: {suite}\n  seeds: 1\ngrid:\n  prompt_set: [default, minimal]\n  loops: [1, 3]\n",
    )
    a, b = cells(load_sweep_config(toml)), cells(load_sweep_config(yaml_file))
    assert a == b
    assert list(a) == [
        "prompt_set-default__loops-1",
        "prompt_set-default__loops-3",
        "prompt_set-minimal__loops-1",
        "prompt_set-minimal__loops-3",
    ]
    assert a["prompt_set-minimal__loops-3"].loops == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[grid]\nloops = [1]\n", "needs 'dataset'"),
        ('[base]\ndataset = "d"\n[grid]\nfps = [8, 16]\n', "cannot vary"),
        ('[base]\ndataset = "d"\n[grid]\nloops = []\n', "empty list"),
        ('[base]\ndataset = "d"\n[grid]\nloops = [1, 1]\n', "twice"),
        ('[base]\ndataset = "d"\nloops = 2\n[grid]\nloops = [1]\n', "both"),
        ('[base]\ndataset = "d"\n[grid]\nloops = [1]\n[extra]\nx = 1\n', "extra"),
        ("[base\n", "not valid TOML"),
        (
            '[base]\ndataset = "d"\n[grid]\nvlm = ["offline", "offlin"]\n',
            r"bad.toml: \[grid\] vlm: unknown vlm 'offlin'; did you mean 'offline'\?",
        ),
        (
            '[base]\ndataset = "d"\ngenerator = "physics-prio"\n[grid]\nloops = [1]\n',
            r"bad.toml: \[base\] generator: unknown generator 'physics-prio'; did you mean 'physics-prior'\?",
        ),
        (
            '[base]\ndataset = "d"\n[grid]\nprompt_set = ["default", "phyt2"]\n',
            r"bad.toml: \[grid\] prompt_set: prompt set 'phyt2' is neither a folder nor a built-in set",
        ),
    ],
    ids=[
        *["no-dataset", "fixed-key", "empty", "duplicate", "base-and-grid", "unknown-table", "syntax"],
        *["unknown-vlm", "unknown-generator", "unknown-prompt-set"],
    ],
)
def test_sweep_config_errors_name_the_problem(tmp_path, text, match):
    with pytest.raises(SweepError, match=match):
        load_sweep_config(_write(tmp_path / "bad.toml", text))


def test_sweep_cell_rejected_by_run_config_names_the_file_and_cell(tmp_path):
    with pytest.raises(SweepError, match=r"s\.toml: cell loops-0: loops"):
        load_sweep_config(_write(tmp_path / "s.toml", '[base]\ndataset = "d"\n[grid]\nloops = [1, 0]\n'))


def test_sweep_with_a_bad_cell_is_one_line_and_creates_nothing(tmp_path, suite):
    from typer.testing import CliRunner

    from agent.cli import app

    config = _write(
        tmp_path / "s.toml", f'[base]\ndataset = "{suite}"\n[grid]\nvlm = ["offline", "offlin"]\n'
    )
    result = CliRunner().invoke(app, ["sweep", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "did you mean 'offline'?" in result.stderr and not (tmp_path / "out").exists()


def test_sweep_runs_cells_shares_identical_generations_and_resumes(tmp_path, suite):
    config_path = _write(
        tmp_path / "s.toml",
        f'[base]\ndataset = "{suite}"\nseeds = 1\nloops = 1\n[grid]\nprompt_set = ["default", "minimal"]\n',
    )
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["sweep", str(config_path), "--out", str(out), "--n-boot", "50", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    first, second = "prompt_set-default", "prompt_set-minimal"
    assert result["sharing"][first]["reused_generations"] == 0
    # The offline reasoner writes the same loop-1 prompt under both prompt sets: same key, same file.
    assert result["sharing"][second]["reused_generations"] == 3
    for video in (out / "cells" / second).glob("scenarios/*/attempts/*.mp4"):
        twin = out / "cells" / first / video.relative_to(out / "cells" / second)
        assert twin.is_file() and os.path.samefile(video, twin)
    assert (out / "compare" / "compare.md").is_file()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}

    again = CliRunner().invoke(app, ["sweep", str(config_path), "--out", str(out), "--n-boot", "50"])
    assert again.exit_code == 0, again.output
    assert again.output.count("done before") == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before

    other = _write(tmp_path / "o.toml", f'[base]\ndataset = "{suite}"\n[grid]\nloops = [1, 2]\n')
    refused = CliRunner().invoke(app, ["sweep", str(other), "--out", str(out)])
    assert refused.exit_code != 0 and "different sweep" in refused.output


def test_sweep_refuses_a_non_empty_foreign_folder(tmp_path, suite):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    config = load_sweep_config(
        _write(tmp_path / "s.toml", f'[base]\ndataset = "{suite}"\n[grid]\nloops = [1]\n')
    )
    with pytest.raises(SweepError, match="not empty"):
        run_sweep(config, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
