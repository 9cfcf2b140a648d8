"""Hand-written run directories (JSON only, no videos) in the format :mod:`agent.refine` writes, for fast tests
of the readers in :mod:`agent.workflows`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VARIANCE = {"spatial_iou": 0.6, "spatiotemporal_iou": 0.5, "weighted_spatial_iou": 0.4, "mse": 0.001}


def metrics(quality: float) -> dict[str, float]:
    """Model metrics that are ``quality`` times the variance's IoUs (so the view score is ~100*quality)."""
    return {
        "spatial_iou": 0.6 * quality,
        "spatiotemporal_iou": 0.5 * quality,
        "weighted_spatial_iou": 0.4 * quality,
        "mse": 0.002,
    }


def write_run(
    root: Path,
    views: dict[str, list[list[float]]],
    *,
    prompt_set: str = "default",
    dataset: str = "/nonexistent",
) -> Path:
    """A finished run: ``views`` maps ``{ID}_{perspective}_{scenario}`` to per-loop lists of per-seed qualities.

    The honest pick is the last loop's first seed.
    """
    root.mkdir(parents=True)
    config = {"dataset": dataset, "fps": 8, "loops": 4, "seeds": 2, "prompt_set": prompt_set, "score": True}
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (root / "provenance.json").write_text(json.dumps({"prompt_set": {"name": prompt_set}}), encoding="utf-8")
    entries: list[dict[str, Any]] = []
    for name, loops in views.items():
        folder = root / "scenarios" / name
        (folder / "attempts").mkdir(parents=True)
        attempts = []
        for loop, qualities in enumerate(loops, start=1):
            for seed, quality in enumerate(qualities):
                path = folder / "attempts" / f"{name[:4]}l{loop}s{seed}.mp4"
                (path.with_suffix(".json")).write_text(
                    json.dumps({"prompt": f"loop {loop}"}), encoding="utf-8"
                )
                attempts.append(
                    {
                        "loop": loop,
                        "seed": seed,
                        "path": str(path),
                        "physics_iq": 100 * quality,
                        **metrics(quality),
                    }
                )
        (folder / "scores.json").write_text(
            json.dumps({"attempts": attempts, "variance": VARIANCE, "static": {"physics_iq": 1.0}}),
            encoding="utf-8",
        )
        honest = next(a for a in attempts if a["loop"] == len(loops) and a["seed"] == 0)
        entries.append(
            {
                "scenario": name,
                "loops": len(loops),
                "stop_reason": "max_loops: done" if len(loops) == 4 else "converged: ok",
                "honest_pick": {"path": honest["path"]},
            }
        )
    (root / "summary.json").write_text(json.dumps({"scenarios": entries, "overall": {}}), encoding="utf-8")
    return root


def kill_after_first_attempt(proc: Any, run_dir: Path, seconds: float = 60) -> dict[Path, int]:
    """SIGKILL a running ``refine`` subprocess as soon as its first attempt file exists; check it really was
    killed mid-run, and return the attempt files that survived with their mtimes."""
    import signal
    import time

    deadline = time.monotonic() + seconds
    try:
        while not list(run_dir.glob("scenarios/*/attempts/*.mp4")):
            assert proc.poll() is None, "refine ended before it could be killed"
            assert time.monotonic() < deadline, f"no attempt written within {seconds:g} s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists(), "the run finished before the kill; nothing was tested"
    return {p: p.stat().st_mtime_ns for p in run_dir.glob("scenarios/*/attempts/*.mp4")}
