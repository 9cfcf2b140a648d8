"""physrefine submit and report on a real (tiny) offline run over the synthetic suite."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.workflows.rundata import load_run
from agent.workflows.submit import ORACLE_LABEL, SubmitError, make_submission, strict_check
from physics_iq.errors import ValidationError
from physics_iq.layout import DatasetLayout
from physics_iq.video import probe, read_video, write_video

SCENARIO = "synthetic-ball-bounce"


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One synthetic scenario (three views) refined offline for two loops, one seed."""
    from agent.refine import run_refinement
    from agent.runs import RunConfig
    from physics_iq.synthetic.build import build_suite

    root = tmp_path_factory.mktemp("workflows")
    layout = build_suite(root / "suite", scenarios=SCENARIO, fps=8, size=(128, 72), jobs=1)
    config = RunConfig(dataset=str(layout.root.resolve()), fps=8, mode="v2v", loops=2, seeds=1)
    run_refinement(config, root / "run")
    return root / "run"


def test_submit_honest_writes_official_folder_manifest_and_matches_run_score(small_run, tmp_path):
    from physics_iq.evaluate import Evaluator

    before = _tree_digest(small_run)
    run = load_run(small_run)
    out = tmp_path / "submission"
    manifest = make_submission(run, out)
    layout = DatasetLayout(run.config["dataset"])
    clips = out / "runs" / small_run.name
    videos = sorted(p.name for p in clips.iterdir() if p.suffix == ".mp4")
    assert videos == sorted(r.generated_video_name for r in layout.take1_rows())
    for name in videos:
        info = probe(clips / name)
        assert (info.frame_count, info.fps) == (40, 8.0)
    files = {f["file"]: f for f in manifest["runs"][0]["files"]}
    for name in videos:
        assert files[name]["sha256"] == hashlib.sha256((clips / name).read_bytes()).hexdigest()
    saved = json.loads((out / "manifest.json").read_text())
    record = saved["runs"][0]
    assert record["selection"]["oracle"] is False and record["prompt_set"]["templates"]
    assert record["config"] == run.config and record["models"]["generator"] == "physics-prior"
    assert not (out / "submission.yaml").exists()  # the card is for --verified packages
    assert _tree_digest(small_run) == before  # the run is an input: untouched
    # The run scores its attempts in fast mode: the same clips score the same in fast mode.
    fast = Evaluator(layout, 8, mode="fast", cache_dir=False).evaluate_folder(clips)
    assert fast.overall.physics_iq_score == pytest.approx(run.summary["overall"]["honest_ensemble"], abs=0.01)

    done = CliRunner().invoke(
        app, ["submit", str(small_run), "--out", str(tmp_path / "s2"), "--score", "--json"]
    )
    assert done.exit_code == 0, done.output
    scores = json.loads(done.stdout)["score"]
    assert scores["mode"] == "compat"  # what a leaderboard number is computed in
    summary = json.loads((tmp_path / "s2" / "scores" / small_run.name / "summary.json").read_text())
    assert summary["mode"] == "compat" and summary["verified"]["mode"] == "compat"
    assert scores["aggregate"]["original"]["physics_iq_score"]["mean"] == summary["physics_iq_score"]
    assert scores["aggregate"]["original"]["physics_iq_score"]["std"] is None  # one run: no std
    # The package's number is what the evaluator gives its clips in compat mode.
    compat = Evaluator(layout, 8, mode="compat", cache_dir=False).evaluate_folder(clips)
    assert summary["physics_iq_score"] == compat.overall.physics_iq_score
    assert summary["verified"]["physics_iq_score"] == compat.verified.physics_iq_score


def test_submit_refuses_non_empty_out_and_leaves_it_alone(small_run, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(SubmitError, match="not empty"):
        make_submission(load_run(small_run), out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".taken.partial-*"))


def test_submit_oracle_refused_unless_forced_then_labelled(small_run, tmp_path):
    run = load_run(small_run)
    with pytest.raises(SubmitError, match="--force-oracle"):
        make_submission(run, tmp_path / "o", pick="oracle")
    assert not (tmp_path / "o").exists()
    done = CliRunner().invoke(
        app,
        [
            "submit",
            str(small_run),
            "--out",
            str(tmp_path / "o"),
            "--pick",
            "oracle",
            "--force-oracle",
            "--score",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "ORACLE" in done.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["selection"]["oracle"] is True and manifest["label"] == ORACLE_LABEL
    summary = json.loads((tmp_path / "o" / "scores" / small_run.name / "summary.json").read_text())
    assert summary["label"] == ORACLE_LABEL


@pytest.mark.parametrize(
    ("pick", "match"), [("loop-0", "expected honest"), ("best", "expected honest"), ("loop-x", "expected")]
)
def test_submit_bad_pick(small_run, tmp_path, pick, match):
    with pytest.raises(SubmitError, match=match):
        make_submission(load_run(small_run), tmp_path / "x", pick=pick)


def test_submit_loop_n_past_the_end_uses_the_last_loop(small_run, tmp_path):
    run = load_run(small_run)
    manifest = make_submission(run, tmp_path / "l9", pick="loop-9")
    loops = {v.take1_id: v.loops for v in run.views}
    assert all(f["loop"] == loops[f["take1_id"]] for f in manifest["runs"][0]["files"])


def test_submit_refuses_a_run_that_misses_take1_rows(small_run, tmp_path):
    run = load_run(small_run)
    partial = type(run)(run.root, run.config, run.provenance, run.summary, run.views[:1])
    with pytest.raises(SubmitError, match="covers 1 of 3"):
        make_submission(partial, tmp_path / "p")


def test_submit_refuses_an_fps_the_dataset_lacks(small_run, tmp_path):
    with pytest.raises(SubmitError, match="no testing videos at 16"):
        make_submission(load_run(small_run), tmp_path / "f", fps=16)


def test_strict_check_flags_blank_short_and_resized_videos(small_run, tmp_path):
    run = load_run(small_run)
    make_submission(run, tmp_path / "ok")
    out = tmp_path / "ok" / "runs" / small_run.name
    layout = DatasetLayout(run.config["dataset"])
    assert strict_check(layout, out, 8) == []
    names = sorted(p.name for p in out.glob("*.mp4"))
    frames, _ = read_video(out / names[0])
    (out / names[0]).unlink()
    write_video(out / names[0], np.full_like(frames, 90), 8)  # blank
    (out / names[1]).unlink()
    write_video(out / names[1], frames[:30], 8)  # short
    (out / names[2]).unlink()
    write_video(out / names[2], np.stack([cv2.resize(f, (64, 36)) for f in frames]), 8)  # resized
    problems = strict_check(layout, out, 8)
    assert any("blank" in p and names[0] in p for p in problems)
    assert any("30 frames" in p and names[1] in p for p in problems)
    assert any("64x36" in p and names[2] in p for p in problems)
    with pytest.raises(ValidationError):
        raise ValidationError(out, problems)


# -- report -----------------------------------------------------------------------------------------------
def test_report_is_self_contained_and_escapes_model_text(small_run, tmp_path):
    # A copy of the run whose model text carries markup: the report must show it, escaped.
    copy = tmp_path / "run"
    shutil.copytree(small_run, copy)
    payload = "<script>alert(1)</script>"
    view_dir = next((copy / "scenarios").iterdir())
    prediction = view_dir / "loop_1" / "prediction.json"
    data = json.loads(prediction.read_text())
    data["prompt"] = payload + " a ball"
    prediction.write_text(json.dumps(data))
    for critique in view_dir.glob("attempts/*.critique-1.json"):  # the best-of-N baseline's attempts too
        data = json.loads(critique.read_text())
        data["observations"] = payload
        critique.write_text(json.dumps(data))

    out = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["report", str(copy), "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text(encoding="utf-8")
    assert payload not in html and "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2
    assert "data:image/jpeg;base64," in html and "data:image/png;base64," in html
    for attr in ("src", "href"):  # nothing but inlined data
        for chunk in html.split(f'{attr}="')[1:]:
            assert chunk.startswith("data:") or chunk.startswith("#"), chunk[:60]
    assert "not a neural model" in html and "upper bound" in html
    again = CliRunner().invoke(app, ["report", str(copy), "--out", str(out)])
    assert again.exit_code != 0 and "exists" in again.output


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


needs_chromium = pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (apt-get install -y chromium)"
)
# Chromium logs every console message of a web page at INFO ("INFO:CONSOLE:12] "text", source: ...(12)"),
# console.error included (only its own built-in pages keep the level), and an uncaught exception as such a
# message starting "Uncaught". So the level cannot be read from the log: any console line of the page counts
# as a problem (the report logs nothing), and the negative controls below prove that this check can fail.
_CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d+\)?\]|Uncaught")


def _headless(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, on ``page`` with ``action`` (``--dump-dom``, ``--screenshot=...``), logging to stderr."""
    browser = _chromium()
    assert browser is not None
    return subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1280,1600",
            *action,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_problems(log: str) -> list[str]:
    """The lines of a chromium log that report a console message or an uncaught error of the page."""
    return [line for line in log.splitlines() if _CONSOLE_LINE.search(line)]


@needs_chromium
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ('console.error("deliberate console error")', "deliberate console error"),
        ('throw new Error("deliberate uncaught error")', "Uncaught Error: deliberate uncaught error"),
        ('Promise.reject(new Error("deliberate rejection"))', "deliberate rejection"),
    ],
    ids=["console-error", "thrown-error", "unhandled-rejection"],
)
def test_console_check_detects_a_deliberate_error(tmp_path: Path, script: str, expected: str) -> None:
    page = tmp_path / "broken.html"
    page.write_text(f"<!doctype html><html><body><p>page</p><script>{script}</script></body></html>")
    done = _headless(page, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0 and "<p>page</p>" in done.stdout  # the page did load
    problems = console_problems(done.stderr)
    assert problems and expected in problems[0], done.stderr[-2000:]


@needs_chromium
def test_console_check_passes_a_clean_page(tmp_path: Path) -> None:
    page = tmp_path / "clean.html"
    page.write_text(
        "<!doctype html><html><body><p>page</p><script>document.title = 'ok'</script></body></html>"
    )
    done = _headless(page, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0 and "<title>ok</title>" in done.stdout  # the script ran
    assert console_problems(done.stderr) == []


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_errors(small_run, tmp_path):
    out = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["report", str(small_run), "--out", str(out)])
    assert done.exit_code == 0, done.output
    shot = tmp_path / "shot.png"
    shown = _headless(out, tmp_path / "profile", f"--screenshot={shot}")
    assert shown.returncode == 0, shown.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 100
    assert float(image.std()) > 10, "the screenshot is blank"
    # Not just the page background: the header band is dark, the rest light.
    assert image[:40].mean() < 100 < image[200:].mean()
    dom = _headless(out, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0
    assert "physrefine report" in dom.stdout and load_run(small_run).views[0].name in dom.stdout
    problems = console_problems(shown.stderr + dom.stderr)
    assert not problems, problems


def test_submit_places_a_resampled_clip_at_another_fps(small_run, tmp_path):
    from agent.workflows.submit import _place

    attempt = load_run(small_run).views[0].attempts[0]
    dest = tmp_path / "at16.mp4"
    how = _place(attempt, dest, fps=16, run_fps=8)
    info = probe(dest)
    assert how.startswith("re-encoded") and (info.frame_count, info.fps) == (80, 16.0)
    same = _place(attempt, tmp_path / "at8.mp4", fps=8, run_fps=8)
    assert same == "copied" and (tmp_path / "at8.mp4").read_bytes() == attempt.path.read_bytes()
