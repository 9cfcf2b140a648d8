"""Time the offline refinement loop with ``--jobs 1`` against ``--jobs N`` on the demo suite, in one run.

Builds the demo's synthetic-suite scenarios once (``physics_iq.synthetic.build_suite``), then refines them
from scratch into fresh run directories, first with one worker (the baseline), then with N worker threads,
and prints wall and CPU seconds of each, the speed-up ratio against the baseline, and whether the two
summaries are identical (they must be: results do not depend on the number of workers).

Run::

    python benchmarks/bench_refine_jobs.py                # demo set, 4 loops x 2 seeds, jobs 1 vs 2
    python benchmarks/bench_refine_jobs.py --jobs 4 --loops 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.budget import RunLimits
from agent.refine import DEMO_SCENARIOS, run_refinement
from agent.runs import RunConfig
from physics_iq.synthetic import build_suite


def _results(summary: dict[str, Any]) -> dict[str, Any]:
    scenarios = [
        {k: v for k, v in s.items() if k not in ("honest_pick", "oracle_pick")} for s in summary["scenarios"]
    ]
    return {"overall": summary["overall"], "scenarios": scenarios}


def _timed(config: RunConfig, run_dir: Path, jobs: int) -> tuple[float, float, dict[str, Any]]:
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_refinement(config, run_dir, limits=RunLimits(jobs=jobs))
    return time.perf_counter() - wall, time.process_time() - cpu, summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-refine-") as tmp:
        root = Path(tmp)
        layout = build_suite(root / "suite", scenarios=list(DEMO_SCENARIOS), fps=8, seed=0)
        config = RunConfig(dataset=str(layout.root), fps=8, loops=args.loops, seeds=args.seeds)
        views = len(layout.take1_rows())
        base_wall, base_cpu, base = _timed(config, root / "jobs1", 1)
        wall, cpu, other = _timed(config, root / f"jobs{args.jobs}", args.jobs)
    print(f"{views} views, {args.loops} loops x {args.seeds} seeds, offline critic + physics prior")
    print(f"jobs=1 (baseline): {base_wall:7.2f} s wall, {base_cpu:7.2f} s CPU (this process)")
    print(
        f"jobs={args.jobs}:            {wall:7.2f} s wall, {cpu:7.2f} s CPU (this process); "
        f"speed-up x{base_wall / wall:.2f} vs jobs=1"
    )
    print(f"identical results: {_results(base) == _results(other)}")


if __name__ == "__main__":
    main()
