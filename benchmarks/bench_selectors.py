"""Selector benchmarks, one section per question (``--section``; ``all`` runs every section).

``known``: each offline verifier's value on the hand-made clips of the tests (a ball that continues,
teleports, freezes or reverses at the switch frame; a camera that shakes; a flickering picture).

``cost``: what each verifier costs per attempt, as ratios of a baseline measured in the same run.

``quality``: how well each selector picks among the attempts of a refinement run on a suite look and seed
(the held-out ones when reporting): pairs ordered like Physics-IQ and the share of the best-of-N-to-oracle gap
its pick closes (``section_quality``).

* Attempts: hand-made ball clips (``agent.verifiers.testing.ball_clip``: a ball crossing a textured
  background; continue, teleport, freeze and reverse variants), 40 generated frames at 320x180 and 8 FPS
  after a 24-frame prefix (the suite's 5 s and 3 s), written as H.264 and decoded back, scored in v2v mode.
* Baseline: decoding one attempt's video (PyAV, ``physics_iq.video.read_video``).
* CPU seconds per attempt (``time.process_time``, all threads) and wall seconds, scoring ``--attempts``
  attempts with one ``score_many`` call, the fastest of ``--repeat`` runs; the one-off model load is
  reported apart.
* Peak memory while scoring: ``tracemalloc`` (Python and NumPy allocations) for every verifier, and for
  the neural backends torch's own counter on top: on CUDA ``torch.cuda.max_memory_allocated``, on CPU the
  peak of the allocations the torch profiler records (``profile_memory=True``).
* Neural backends run at the tiny random configs of the tests (``agent.verifiers.testing``) unless
  ``--encoder``/``--world-model`` name real checkpoints (hub ids or folders); ``--device`` picks where.

Run::

    python benchmarks/bench_selectors.py                          # cost section, CPU, tiny models
    python benchmarks/bench_selectors.py --section cost --device cuda \\
        --encoder facebook/dinov2-small --world-model facebook/vjepa2-vitl-fpc64-256

    python benchmarks/bench_selectors.py --section quality --style room --suite-seed 7

A section is an entry of ``SECTIONS``: a function taking the parsed arguments and returning a
JSON-serialisable dict.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.verifiers import VERIFIERS, ClipInput, build_verifier
from agent.verifiers.testing import ball_clip, build_tiny_image_encoder, build_tiny_vjepa2
from physics_iq.video import read_video, write_video

KINDS = ("continue", "teleport", "freeze", "reverse")


def make_attempts(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` attempt videos (40 frames after a 24-frame prefix), and the prefix, written as H.264."""
    paths = []
    for i in range(count):
        clip = ball_clip(
            KINDS[i % len(KINDS)],  # type: ignore[arg-type]
            width=width,
            height=height,
            prefix_frames=24,
            frames=40,
            start=(40.0, 50.0),
            velocity=(3.5, 0.5),
            gravity=0.05,
            seed=i // len(KINDS),
        )
        if i == 0:
            write_video(folder / "prefix.mp4", clip.prefix, clip.fps)
        path = folder / f"attempt-{i}.mp4"
        write_video(path, clip.frames, clip.fps)
        paths.append(path)
    return paths


def decode(paths: list[Path]) -> list[np.ndarray]:
    return [read_video(path)[0] for path in paths]


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Fastest (wall, CPU) seconds of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def python_peak(run: Callable[[], object]) -> int:
    """Peak bytes of Python/NumPy allocations during ``run`` (tracemalloc)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def torch_peak(run: Callable[[], object], device: str) -> int:
    """Peak bytes held by torch's allocator during ``run`` (CUDA counters, or the CPU profiler's records)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    # Each event's own allocations (+) and frees (-), replayed in time order.
    changes = sorted(
        (event.time_range.start, event.self_cpu_memory_usage)
        for event in prof.events()
        if event.self_cpu_memory_usage
    )
    level = peak = 0
    for _, change in changes:
        level += change
        peak = max(peak, level)
    return peak


def verifier_specs(args: argparse.Namespace, models: Path) -> dict[str, dict[str, Any]]:
    """Verifier name -> options for this run (tiny neural checkpoints unless real ones are named)."""
    wanted = set(args.only or VERIFIERS.names())
    specs: dict[str, dict[str, Any]] = {
        name: {} for name in ("motion-continuity", "background-stability", "feature-path") if name in wanted
    }
    if "feature-path-encoder" in wanted:
        encoder = args.encoder or str(build_tiny_image_encoder(models / "tiny-dinov2", "dinov2"))
        specs["feature-path-encoder"] = {"model": encoder, "device": args.device}
    if "world-model-surprise" in wanted:
        world = args.world_model or str(build_tiny_vjepa2(models / "tiny-vjepa2"))
        specs["world-model-surprise"] = {"model": world, "device": args.device}
    return specs


def section_cost(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-selectors-") as tmp:
        root = Path(tmp)
        paths = make_attempts(root, args.attempts, args.width, args.height)
        prefix = read_video(root / "prefix.mp4")[0]
        baseline_wall, baseline_cpu = timed(lambda: decode(paths), args.repeat)
        per = args.attempts
        baseline_wall, baseline_cpu = baseline_wall / per, baseline_cpu / per
        clips = [ClipInput(prefix, frames, 8.0, "v2v") for frames in decode(paths)]
        print(
            f"cost per attempt: {args.attempts} attempts of 40 frames at {args.width}x{args.height} after a "
            f"24-frame prefix, v2v, scored together; fastest of {args.repeat}; device {args.device}"
        )
        print(
            f"baseline, decoding one attempt: {1000 * baseline_cpu:.1f} ms CPU, {1000 * baseline_wall:.1f} ms wall\n"
        )
        header = f"{'verifier':<22} {'load s':>7} {'CPU s':>8} {'x decode':>9} {'wall s':>8} {'x decode':>9} {'py MiB':>7} {'torch MiB':>9}"
        print(header)
        print("-" * len(header))
        rows: dict[str, Any] = {}
        for name, options in verifier_specs(args, root / "models").items():
            start = time.perf_counter()
            verifier = build_verifier(name, **options)
            load = time.perf_counter() - start
            verifier.score_many(clips[:1])  # warm-up: lazy kernels, first-call allocations
            wall, cpu = timed(lambda v=verifier: v.score_many(clips), args.repeat)
            wall, cpu = wall / per, cpu / per
            py_peak = python_peak(lambda v=verifier: v.score_many(clips))
            th_peak = (
                torch_peak(lambda v=verifier: v.score_many(clips), args.device) if verifier.neural else None
            )
            values = [s.value for s in verifier.score_many(clips)]
            rows[name] = {
                "options": {k: v for k, v in verifier.config.items()},
                "load_s": load,
                "cpu_s_per_attempt": cpu,
                "cpu_ratio_to_decode": cpu / baseline_cpu,
                "wall_s_per_attempt": wall,
                "wall_ratio_to_decode": wall / baseline_wall,
                "python_peak_mib": py_peak / 2**20,
                "torch_peak_mib": None if th_peak is None else th_peak / 2**20,
                "values": values,
            }
            torch_text = "-" if th_peak is None else f"{th_peak / 2**20:.1f}"
            print(
                f"{name:<22} {load:>7.2f} {cpu:>8.3f} {cpu / baseline_cpu:>8.1f}x {wall:>8.3f} "
                f"{wall / baseline_wall:>8.1f}x {py_peak / 2**20:>7.1f} {torch_text:>9}"
            )
        return {
            "attempts": args.attempts,
            "size": [args.width, args.height],
            "device": args.device,
            "baseline_decode_cpu_s": baseline_cpu,
            "baseline_decode_wall_s": baseline_wall,
            "verifiers": rows,
        }


def section_known(args: argparse.Namespace) -> dict[str, Any]:
    """Each offline verifier's value on the hand-made clips of the tests (the known answers), both modes."""
    kinds = ("continue", "teleport", "freeze", "reverse", "jitter", "flicker")
    names = [
        n
        for n in ("motion-continuity", "background-stability", "feature-path")
        if not args.only or n in args.only
    ]
    results: dict[str, Any] = {}
    print(
        "\nvalues on the hand-made clips (higher is better; 'continue' should lead every column it is meant to judge)"
    )
    for mode in ("v2v", "i2v"):
        print(f"\n{mode:<22}" + "".join(f"{kind:>10}" for kind in kinds))
        for name in names:
            verifier = build_verifier(name)
            values = {kind: verifier.score(ball_clip(kind, mode)).value for kind in kinds}  # type: ignore[arg-type]
            results.setdefault(name, {})[mode] = values
            print(f"{name:<22}" + "".join(f"{values[k]:>10.2f}" for k in kinds))
    return results


#: Offline selectors compared by the quality section (neural ones need real checkpoints to mean anything).
QUALITY_SELECTORS = (
    "critic",
    "motion-continuity",
    "background-stability",
    "feature-path",
    "critic+motion-continuity",
    "critic+feature-path",
    "mean:critic=1,motion-continuity=1",
    "mean:critic=2,motion-continuity=1,feature-path=1",
)


def section_quality(args: argparse.Namespace) -> dict[str, Any]:
    """How well each selector picks, on a suite look and seed (the held-out one by default), offline stack.

    One refinement run (``--loops`` x ``--seeds``, ``--mode``) with its best-of-N baseline; then every selector
    re-ranks the same attempts with ``physrefine rank`` (no generation, no ground truth). Per selector: its
    pick's Physics-IQ, the share of attempt pairs (more than 1 point apart) it orders like Physics-IQ, and the
    share of the gap between the run's best-of-N and its oracle that its pick closes. Targets (issue): the best
    offline selector orders >= 65 % of pairs right and closes >= half of that gap.
    """
    from agent.refine import run_refinement
    from agent.runs import RunConfig
    from agent.workflows.rank import rank_run
    from agent.workflows.rundata import load_run
    from physics_iq.synthetic import build_suite

    work = Path(args.workdir)
    suite_options: dict[str, Any] = {"fps": 8, "seed": args.suite_seed, "jobs": 2}
    if args.style:
        suite_options["style"] = args.style
    layout = build_suite(work / f"suite-{args.style or 'classic'}-{args.suite_seed}", **suite_options)
    run_dir = work / f"run-{args.style or 'classic'}-{args.suite_seed}-{args.mode}-{args.loops}x{args.seeds}"
    config = RunConfig(
        dataset=str(layout.root.resolve()),
        fps=8,
        mode=args.mode,
        loops=args.loops,
        seeds=args.seeds,
        best_of_n_baseline=True,
    )
    summary = run_refinement(config, run_dir)
    overall = summary["overall"]
    best_of_n, oracle = overall.get("best_of_n"), overall.get("oracle")
    run = load_run(run_dir)
    print(
        f"\nselection quality on look {args.style or 'classic'}, suite seed {args.suite_seed}, {args.mode}, "
        f"{args.loops} loops x {args.seeds} seeds: loop 1 {overall['loop_1']}, best of N {best_of_n} "
        f"(the run's selector over as many loop-1 attempts as the refinement made), oracle {oracle}"
    )
    print(f"{'selector':<48}{'pick':>8}{'pairs right':>14}{'gap closed':>12}")
    rows: dict[str, Any] = {}
    for spec in args.selectors or QUALITY_SELECTORS:
        result = rank_run(run, spec)["overall"]
        pick, accuracy = result["pick"], result["selection_accuracy"]
        gap = None
        if pick is not None and best_of_n is not None and oracle is not None and oracle > best_of_n:
            gap = (pick - best_of_n) / (oracle - best_of_n)
        rows[spec] = {
            "pick": pick,
            "selection_accuracy": accuracy,
            "pairs": result["selection_pairs"],
            "gap_closed": gap,
        }
        shown_gap = "-" if gap is None else f"{100 * gap:.0f}%"
        shown_accuracy = "-" if accuracy is None else f"{100 * accuracy:.0f}% of {result['selection_pairs']}"
        print(f"{spec:<48}{pick if pick is not None else '-':>8}{shown_accuracy:>14}{shown_gap:>12}")
    best = max(rows, key=lambda k: rows[k]["selection_accuracy"] or 0.0)
    met_accuracy = (rows[best]["selection_accuracy"] or 0.0) >= 0.65
    met_gap = (rows[best]["gap_closed"] or -1.0) >= 0.5
    print(
        f"best by pairs: {best}: pairs >= 65%: {'met' if met_accuracy else 'NOT met'}; "
        f"closes >= half the best-of-N-to-oracle gap: {'met' if met_gap else 'NOT met'}"
    )
    return {
        "look": args.style or "classic",
        "suite_seed": args.suite_seed,
        "mode": args.mode,
        "loops": args.loops,
        "seeds": args.seeds,
        "loop_1": overall["loop_1"],
        "best_of_n": best_of_n,
        "oracle": oracle,
        "selectors": rows,
        "best": best,
        "targets": {"pairs_65": met_accuracy, "half_gap": met_gap},
    }


#: Section name -> function(parsed args) -> JSON-serialisable results.
SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "cost": section_cost,
    "known": section_known,
    "quality": section_quality,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    parser.add_argument("--attempts", type=int, default=8, help="attempts scored together")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument(
        "--repeat", type=int, default=3, help="take the fastest of N runs (shared machines are noisy)"
    )
    parser.add_argument("--device", default="cpu", help="device of the neural backends (cpu, cuda, cuda:1)")
    parser.add_argument(
        "--encoder", default="", help="image encoder for feature-path-encoder (default: tiny random)"
    )
    parser.add_argument("--world-model", default="", help="V-JEPA 2 checkpoint (default: tiny random)")
    parser.add_argument("--only", nargs="*", choices=VERIFIERS.names(), help="measure these verifiers only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    quality = parser.add_argument_group("quality section")
    quality.add_argument(
        "--style", default="", help="suite look (make-suite --style); the held-out look for reports"
    )
    quality.add_argument(
        "--suite-seed", type=int, default=7, help="suite seed (held out: never used to tune)"
    )
    quality.add_argument("--mode", choices=["v2v", "i2v"], default="v2v")
    quality.add_argument("--loops", type=int, default=4)
    quality.add_argument("--seeds", type=int, default=2)
    quality.add_argument(
        "--selectors", nargs="*", help="selector specs to compare (default: the offline ones)"
    )
    quality.add_argument(
        "--workdir", default="bench-selectors", help="suite and run folder (reused when rerun)"
    )
    args = parser.parse_args()
    results = {}
    for name, section in SECTIONS.items():
        if args.section in (name, "all"):
            results[name] = section(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
