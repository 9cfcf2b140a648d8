"""Selectors: the honest pick as an extension point (critic, verifiers, combinations), ``physrefine rank``
re-ranking a finished run without ground truth, and the best-of-N accounting of a run's summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.runs import OFFLINE_SELECTOR
from agent.selection import (
    Candidate,
    CriticSelector,
    SelectionContext,
    SelectionError,
    build_selector,
    check_selector_spec,
    pick_record,
)
from agent.verifiers.testing import ball_clip
from physics_iq.video import write_video


def _rec(
    score: float, verdict: str = "inconsistent", severities: tuple[str, ...] = (), failed: bool = False
) -> dict[str, Any]:
    return {"verdict": verdict, "score": score, "severities": list(severities), "failed": failed}


def _context(tmp_path: Path, clips: dict[str, Any], prefix: np.ndarray, fps: float = 8.0) -> SelectionContext:
    return SelectionContext(prefix=prefix, fps=fps, mode="v2v", frames=clips.__getitem__, folder=tmp_path)


def _clip_files(tmp_path: Path, kinds: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    clips, prefix = {}, None
    for kind in kinds:
        clip = ball_clip(kind)  # type: ignore[arg-type]
        path = tmp_path / f"{kind}.mp4"
        write_video(path, clip.frames, 8.0)  # selectors keep their scores beside the attempt's file
        clips[str(path)] = clip.frames
        prefix = clip.prefix
    assert prefix is not None
    return clips, prefix


def test_specs_are_checked_by_name_with_did_you_mean() -> None:
    assert check_selector_spec("critic+motion-continuity") == ["critic", "motion-continuity"]
    with pytest.raises(
        SelectionError, match=r"unknown selector 'motion-continuty'; did you mean 'motion-continuity'"
    ):
        check_selector_spec("motion-continuty")
    with pytest.raises(SelectionError, match="a mean needs at least two"):
        build_selector("mean:critic=1")
    with pytest.raises(SelectionError, match="weight 'x' of 'critic' is not a number"):
        build_selector("mean:critic=x,feature-path=1")


def test_the_critic_ranks_like_the_critique_and_leaves_out_failed_critiques(tmp_path: Path) -> None:
    candidates = [
        Candidate("a", 1, 0, _rec(0.4)),
        Candidate("b", 1, 1, _rec(0.8, "consistent")),
        Candidate("c", 2, 0, _rec(0.0, failed=True)),
        Candidate("d", 2, 1, None),
    ]
    ranking = CriticSelector().rank(candidates, _context(tmp_path, {}, np.zeros((1, 4, 4, 3), np.uint8)))
    assert [c.path for c in ranking.order] == ["b", "a"]
    assert {c.path: reason for c, reason in ranking.unranked} == {
        "c": "no usable critique",
        "d": "no usable critique",
    }
    record = pick_record(ranking, CriticSelector())
    assert (record["path"], record["critic_score"], record["candidates"]) == ("b", 0.8, 4)
    assert record["ranking"] == ["b", "a"] and "no ground truth" in record["selector"]


def test_a_verifier_ranks_attempts_the_critic_could_not_and_keeps_its_scores(tmp_path: Path) -> None:
    clips, prefix = _clip_files(tmp_path, ["teleport", "continue", "freeze"])
    paths = list(clips)
    # Critiques failed for all three: the critic has nothing, a verifier still ranks them.
    candidates = [Candidate(p, 1, k, _rec(0.0, failed=True)) for k, p in enumerate(paths)]
    context = _context(tmp_path, clips, prefix)
    assert CriticSelector().rank(candidates, context).order == ()
    selector = build_selector("motion-continuity")
    ranking = selector.rank(candidates, context)
    assert ranking.order[0].path.endswith("continue.mp4")
    saved = Path(paths[1]).with_suffix(".verify-motion-continuity.json")
    assert saved.is_file() and json.loads(saved.read_text())["value"] is not None
    # Read back, not recomputed: a frames source that fails proves no frame is read.
    again = selector.rank(candidates, _context(tmp_path, {}, prefix))
    assert [c.path for c in again.order] == [c.path for c in ranking.order]


def test_an_attempt_a_verifier_cannot_score_is_ranked_last_with_why(tmp_path: Path) -> None:
    clips, prefix = _clip_files(tmp_path, ["continue"])
    blank = tmp_path / "blank.mp4"
    clips[str(blank)] = np.zeros((1, 180, 320, 3), np.uint8)  # one frame: too short for the verifier
    candidates = [Candidate(p, 1, k, None) for k, p in enumerate(clips)]
    record = pick_record(
        build_selector("feature-path").rank(candidates, _context(tmp_path, clips, prefix)),
        build_selector("feature-path"),
    )
    assert record["path"].endswith("continue.mp4") and list(record["unranked"]) == [str(blank)]
    assert record["unranked"][str(blank)].startswith("feature-path: ")


def test_combinations_say_how_they_ranked(tmp_path: Path) -> None:
    clips, prefix = _clip_files(tmp_path, ["reverse", "continue", "teleport"])
    paths = list(clips)
    # The critic ties the first two (same verdict, score and violations) and rates the third lower.
    records = [_rec(0.7, "consistent"), _rec(0.7, "consistent"), _rec(0.2)]
    candidates = [Candidate(p, 1, k, r) for k, (p, r) in enumerate(zip(paths, records, strict=True))]
    context = _context(tmp_path, clips, prefix)
    tie_break = build_selector("critic+motion-continuity")
    order = [c.path for c in tie_break.rank(candidates, context).order]
    assert order == [paths[1], paths[0], paths[2]]  # the verifier broke the tie; the critic's order stands
    assert "then, and attempts without a critique, by verifier motion-continuity" in tie_break.describe()
    mean = build_selector("mean:critic=1,motion-continuity=3")
    ranking = mean.rank(candidates, context)
    assert ranking.order[0].path == paths[1] and set(ranking.details["mean_rank"]) == {
        c.name for c in candidates
    }
    assert mean.name == "mean:critic=1,motion-continuity=3"


# -- on a run: rank re-ranks offline, no ground truth; the summary separates refinement and selection --------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agent.refine import run_refinement
    from agent.runs import RunConfig
    from physics_iq.synthetic import build_suite

    root = tmp_path_factory.mktemp("rank")
    layout = build_suite(root / "suite", scenarios=["synthetic-ball-bounce"], fps=8, seed=0, jobs=1)
    config = RunConfig(dataset=str(layout.root), fps=8, loops=2, seeds=2, scenarios=["0001", "0002"])
    run_refinement(config, root / "run")
    return root


def test_the_summary_separates_refinement_from_selection(small_run: Path) -> None:
    summary = json.loads((small_run / "run" / "summary.json").read_text())
    overall = summary["overall"]
    assert summary["config"]["best_of_n_baseline"] is None  # auto: on for the offline stack
    assert overall["refinement_gain"] == round(overall["honest_ensemble"] - overall["best_of_n"], 2)
    assert overall["selection_gain"] == round(overall["best_of_n"] - overall["loop_1"], 2)
    pairs = overall["selection_pairs"]
    assert pairs >= 0 and (overall["selection_accuracy"] is None) == (pairs == 0)
    trace = [json.loads(line) for line in (small_run / "run" / "trace.jsonl").read_text().splitlines()]
    for entry in summary["scenarios"]:
        # Exactly the generations the refinement made (loops run x seeds), with the refinement's seeds.
        assert entry["best_of_n_generations"] == entry["attempts"] == 2 * entry["loops"]
        pick = entry["best_of_n_pick"]
        assert (
            pick["selector_name"] == OFFLINE_SELECTOR  # the offline stack's default
            and pick["loop"] == 1
            and pick["candidates"] == entry["attempts"]
        )
        take1_id = int(entry["scenario"][:4])
        mine = [e for e in trace if e["node"] == "generate" and e["take1_id"] == take1_id]
        refined = sorted(e["seed"] for e in mine if not e.get("variant"))
        baseline = sorted(e["seed"] for e in mine if e.get("variant") == "best_of_n")
        assert refined == baseline == list(range(entry["attempts"]))  # each loop draws new seeds
        reused = [e for e in mine if e.get("variant") == "best_of_n" and e.get("reused")]
        assert len(reused) == 2  # seeds 0-1 with the loop-1 prompt are the refinement's loop-1 attempts


def test_rank_reproduces_the_runs_pick_and_never_reads_ground_truth(small_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_run / "run", run)
    suite = tmp_path / "suite"
    shutil.copytree(small_run / "suite", suite)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dataset": str(suite)}))
    runner = CliRunner()
    same = runner.invoke(app, ["rank", str(run), "--selector", "critic", "--json"])
    assert same.exit_code == 0, same.output
    result = json.loads(same.stdout)
    summary = json.loads((run / "summary.json").read_text())
    assert result["overall"]["pick"] == summary["overall"]["honest_ensemble"]
    assert result["overall"]["selection_accuracy"] == summary["overall"]["selection_accuracy"]
    # Take the ground truth away (take-2 videos, the real test clips, the simulator's states): ranking still works.
    removed = 0
    for path in list(suite.rglob("*")):
        if path.is_file() and (
            "take-2" in path.name or "state" in path.name or "testing" in str(path.parent)
        ):
            path.unlink()
            removed += 1
    assert removed
    other = runner.invoke(app, ["rank", str(run), "--selector", "critic+motion-continuity"])
    assert other.exit_code == 0, other.output
    assert (
        "Re-ranked with critic+motion-continuity" in other.stdout
        and (run / "rankings" / "critic-motion-continuity.json").is_file()
    )
    compared = runner.invoke(app, ["compare", str(run), str(run), "--out", str(tmp_path / "cmp")])
    assert compared.exit_code == 0, compared.output
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "## Refinement vs selection" in markdown and "critic+motion-continuity: " in markdown


def test_rank_refuses_the_judge_and_an_unknown_selector(small_run: Path) -> None:
    runner = CliRunner()
    judge = runner.invoke(app, ["rank", str(small_run / "run"), "--selector", "judge"])
    assert judge.exit_code == 2 and "the judge asks a VLM" in judge.stderr
    unknown = runner.invoke(app, ["rank", str(small_run / "run"), "--selector", "critc"])
    assert unknown.exit_code == 2 and "did you mean 'critic'" in unknown.stderr


def test_a_vlm_critique_is_told_the_verifiers_measurements(tmp_path: Path) -> None:
    from agent.prompting import PromptSet
    from agent.reasoning import VLMReasoner, make_scene
    from agent.verifiers import build_verifier
    from agent.vlm import VLMS
    from tests import replies

    clip = ball_clip("teleport")
    vlm = VLMS.resolve("scripted")(replies=[json.dumps(replies.critique())])
    reasoner = VLMReasoner(vlm, PromptSet("default"), signals=[build_verifier("motion-continuity")])
    scene = make_scene("A red ball rolls right.", "v2v", 8.0, len(clip.frames), clip.prefix)
    reasoner.critique(scene, "The red ball rolls right.", clip.frames)
    (message,) = vlm.calls[0]
    summary = build_verifier("motion-continuity").score(clip).summary
    assert "Measured by training-free checks of the video" in message.text and summary in message.text
