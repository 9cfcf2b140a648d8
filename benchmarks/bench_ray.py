"""Throughput of ``refine --executor ray``: 4 actors against 1, against the local executor, in one run.

The generator stands in for a GPU model by its latency: the physics prior with ``delay_s`` (it sleeps that long
per call, then computes its clip in ~0.1 s), one call per actor at a time as a diffusers pipeline would be.
On the demo's 15 views (5 scenarios x 3 cameras), the benchmark refines the same configuration three times
from scratch, each with every view in flight (``jobs`` = views, so that only the generators differ):

1. ``local``: the local executor with one generator instance (the baseline);
2. ``ray x1``: one Ray actor;
3. ``ray xN``: N Ray actors (default 4).

It prints each run's generations, wall time (the run itself; starting actors is reported apart) and
throughput; the throughput ratio of N actors to 1 actor (target >= 3.2 for 4); whether the three runs wrote
byte-identical attempt files and the same ``summary.json`` (timing and limits fields aside); and the
orchestration overhead per generation: the driver's time for a call (send, wait, frames back) minus the time
spent inside the generator on the actor (which includes the sleep), median and 90th percentile.

Run::

    python benchmarks/bench_ray.py                       # 15 views, 2 loops x 2 seeds, 2 s per call, 4 actors
    python benchmarks/bench_ray.py --one-camera          # 5 views (one camera a scenario): shorter
    python benchmarks/bench_ray.py --ray-address auto    # an existing cluster instead of a local Ray
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _files(run_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.glob("scenarios/*/attempts/*"))
        if p.is_file()
    }


def _summary(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8").replace(str(run_dir), "RUN"))
    for key in ("elapsed_s", "limits"):
        summary.pop(key)
    return dict(summary)


def _generations(run_dir: Path) -> int:
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    return sum(e.get("node") == "generate" and not e.get("reused") for e in events)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(config: Any, run_dir: Path, limits: Any) -> dict[str, Any]:
    from agent.refine import Refinement

    started = time.perf_counter()
    refinement = Refinement(config, run_dir, limits=limits)
    ready = time.perf_counter()
    pool = refinement.generators
    summary = refinement.run_all()
    done = time.perf_counter()
    timings = pool.timings() if hasattr(pool, "timings") else []
    generations = _generations(run_dir)
    return {
        "startup_s": ready - started,
        "wall_s": done - ready,
        "generations": generations,
        "throughput": generations / (done - ready),
        "status": summary["status"],
        "overhead_s": [t.total_s - t.remote_s for t in timings],
        "remote_s": [t.remote_s for t in timings],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument(
        "--latency", type=float, default=2.0, help="seconds per generation (the GPU stand-in)"
    )
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--one-camera", action="store_true", help="the centre camera of each scenario only")
    parser.add_argument("--actor-cpus", type=float, default=0.25, help="num_cpus each actor holds")
    parser.add_argument("--ray-address", default=None, help="join this cluster (default: start Ray here)")
    args = parser.parse_args()

    import ray

    from agent.budget import RunLimits
    from agent.ray_pool import NAMESPACE
    from agent.refine import DEMO_SCENARIOS
    from agent.runs import RunConfig
    from physics_iq.synthetic import build_suite

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        layout = build_suite(root / "suite", scenarios=list(DEMO_SCENARIOS), fps=8, seed=0, jobs=2)
        pairs = layout.pairs()
        chosen = (
            [p for p in pairs if p.take1.perspective == "perspective-center"] if args.one_camera else pairs
        )
        views = [str(p.take1.id) for p in chosen]
        config = RunConfig(
            dataset=str(layout.root),
            fps=8,
            loops=args.loops,
            seeds=args.seeds,
            scenarios=views,
            generator="physics-prior",
            generator_options={"delay_s": str(args.latency)},
            best_of_n_baseline=True,  # the demo's setting for the offline stack
        )
        jobs = len(views)
        resources = {"num_cpus": args.actor_cpus}
        if args.ray_address:
            ray.init(address=args.ray_address, namespace=NAMESPACE, log_to_driver=False)
        else:
            ray.init(
                include_dashboard=False, namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING"
            )
        try:
            runs = {
                "local": _run(config, root / "local", RunLimits(jobs=jobs, generator_workers=1)),
                "ray x1": _run(
                    config,
                    root / "ray1",
                    RunLimits(jobs=jobs, executor="ray", generator_workers=1, generator_resources=resources),
                ),
                f"ray x{args.actors}": _run(
                    config,
                    root / "rayN",
                    RunLimits(
                        jobs=jobs,
                        executor="ray",
                        generator_workers=args.actors,
                        generator_resources=resources,
                    ),
                ),
            }
        finally:
            ray.shutdown()
        dirs = {"local": root / "local", "ray x1": root / "ray1", f"ray x{args.actors}": root / "rayN"}
        files = {name: _files(d) for name, d in dirs.items()}
        summaries = {name: _summary(d) for name, d in dirs.items()}

    one, many = runs["ray x1"], runs[f"ray x{args.actors}"]
    print(
        f"{len(views)} views of the demo scenarios, {args.loops} loops x {args.seeds} seeds + best-of-N baseline, "
        f"physics prior sleeping {args.latency:g} s per call (GPU stand-in), jobs={jobs}, "
        f"actors of num_cpus={args.actor_cpus:g}"
    )
    for name, run in runs.items():
        print(
            f"  {name:8s} {run['generations']:3d} generations in {run['wall_s']:7.2f} s "
            f"({run['throughput']:.3f}/s; start {run['startup_s']:.1f} s); status {run['status']}"
        )
    ratio = many["throughput"] / one["throughput"]
    print(
        f"throughput ratio, {args.actors} actors / 1 actor: {ratio:.2f}x "
        f"(efficiency {100 * ratio / args.actors:.0f}%; target >= {0.8 * args.actors:.1f}x)"
    )
    print(f"wall ratio, ray x1 / local: {one['wall_s'] / runs['local']['wall_s']:.3f}")
    same_files = all(f == files["local"] for f in files.values()) and bool(files["local"])
    same_summary = all(s == summaries["local"] for s in summaries.values())
    print(f"identical attempt files (all 3 runs, {len(files['local'])} files): {same_files}")
    print(f"identical summary.json (timing and limits aside): {same_summary}")
    for name in ("ray x1", f"ray x{args.actors}"):
        overhead = [1000 * s for s in runs[name]["overhead_s"]]
        inside = [s - args.latency for s in runs[name]["remote_s"]]
        print(
            f"orchestration overhead per generation, {name}: median {statistics.median(overhead):.1f} ms, "
            f"p90 {_percentile(overhead, 0.9):.1f} ms (target < 50 ms median); generator's own work besides "
            f"the sleep: median {1000 * statistics.median(inside):.0f} ms"
        )
    idle = (one["wall_s"] - sum(one["remote_s"])) / one["generations"]
    print(
        f"ray x1: the actor was not generating {1000 * idle:.0f} ms per generation (run wall - generator time)"
    )


if __name__ == "__main__":
    main()
