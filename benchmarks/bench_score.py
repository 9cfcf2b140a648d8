"""Time ``physrefine score`` against just decoding its inputs, in one run, and compare fast with compat mode.

Builds a synthetic dataset in the official layout (``tests/datasets.py``: moving squares over a textured,
noisy background, 3 views x 2 takes per scenario) and two "models" (the switch frame repeated, and take-1
with noise), then measures:

* baseline: decoding every input once (each generated video and both real takes, all frames, PyAV);
* fast, cold: ``physrefine score`` with an empty cache, ``--jobs 1`` and ``--jobs 2``;
* fast, second model: the real side is cached, only the generated videos are new;
* compat, cold: the official lossy steps (mp4v mask round trip, OpenCV decoding, official rounding).

and prints each time as a ratio of the baseline, plus how far compat and fast scores differ.

Run::

    python benchmarks/bench_score.py                     # 4 scenarios, 480x270, 8 FPS (about a minute)
    python benchmarks/bench_score.py --width 960 --height 540 --scenarios 6
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typer.testing import CliRunner

from agent.cli import app
from physics_iq.layout import DatasetLayout
from physics_iq.video import iter_frames, read_video, write_video
from tests.datasets import build_tiny_dataset, write_generated_folder


def decode_all(paths: list[Path]) -> int:
    frames = 0
    for path in paths:
        for _ in iter_frames(path):
            frames += 1
    return frames


def late_take1(layout: DatasetLayout, out: Path, fps: int, delay_s: float = 0.5) -> Path:
    """A "model" that replays take-1 half a second late (first frame held): right motion, wrong timing."""
    out.mkdir(parents=True, exist_ok=True)
    delay = int(delay_s * fps)
    for pair in layout.pairs():
        frames, _ = read_video(layout.testing_video(pair.take1, fps))
        late = np.concatenate([np.repeat(frames[:1], delay, axis=0), frames[: len(frames) - delay]])
        write_video(out / pair.take1.generated_video_name, late, fps)
    return out


def score(generated: Path, dataset: Path, mode: str, cache: Path, jobs: int = 1) -> tuple[float, float, dict]:
    args = ["score", str(generated), "--dataset", str(dataset), "--mode", mode, "--jobs", str(jobs)]
    args += ["--cache-dir", str(cache), "--out", str(cache.parent / f"out-{mode}-{generated.name}"), "--json"]
    start, cpu = time.perf_counter(), time.process_time()
    result = CliRunner().invoke(app, args)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.exit_code != 0:
        raise SystemExit(f"physrefine score failed:\n{result.output}")
    return elapsed, cpu, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", type=int, default=4)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=272)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument(
        "--repeat", type=int, default=3, help="take the fastest of N runs (shared machines are noisy)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        layout = build_tiny_dataset(
            root / "ds", n_scenarios=args.scenarios, fps=args.fps, width=args.width, height=args.height
        )
        model_a = write_generated_folder(layout, root / "model-switch", source="switch", fps=args.fps)
        model_b = late_take1(layout, root / "model-late", args.fps)
        n_views = len(layout.take1_rows())
        print(
            f"dataset: {args.scenarios} scenarios x 3 views, {args.width}x{args.height}, {args.fps} FPS, 5 s "
            f"({n_views} generated videos per model); built in {time.perf_counter() - t0:.1f} s"
        )

        inputs = [model_a / p.take1.generated_video_name for p in layout.pairs()]
        inputs += [layout.testing_video(r, args.fps) for r in layout.rows]
        times: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        out: dict[str, dict] = {}
        for rep in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            n_frames = decode_all(inputs)
            times.setdefault("baseline", []).append(time.perf_counter() - start)
            cpus.setdefault("baseline", []).append(time.process_time() - cpu)
            # Each repetition starts from empty caches so "cold" stays cold.
            for key, model, mode, jobs, cache in (
                ("fast-cold-1", model_a, "fast", 1, f"cf1-{rep}"),
                ("fast-cold-2", model_a, "fast", 2, f"cf2-{rep}"),
                ("fast-warm-1", model_b, "fast", 1, f"cf1-{rep}"),
                ("fast-warm-2", model_b, "fast", 2, f"cf2-{rep}"),
                ("compat-cold-1", model_a, "compat", 1, f"cc1-{rep}"),
                ("compat-cold-2", model_a, "compat", 2, f"cc2-{rep}"),
                ("compat-warm-1", model_b, "compat", 1, f"cc1-{rep}"),
            ):
                t, c, out[key] = score(model, layout.root, mode, root / cache, jobs=jobs)
                times.setdefault(key, []).append(t)
                cpus.setdefault(key, []).append(c)
        baseline, baseline_cpu = min(times["baseline"]), min(cpus["baseline"])
        labels = {
            "baseline": "decode every input once (baseline)",
            "fast-cold-1": "fast, cold cache, --jobs 1",
            "fast-cold-2": "fast, cold cache, --jobs 2",
            "fast-warm-1": "fast, second model (real cached), --jobs 1",
            "fast-warm-2": "fast, second model (real cached), --jobs 2",
            "compat-cold-1": "compat, cold cache, --jobs 1",
            "compat-cold-2": "compat, cold cache, --jobs 2",
            "compat-warm-1": "compat, second model (real cached), --jobs 1",
        }
        rows = [
            (labels[k], min(v), min(cpus[k]), out[k]["physics_iq_score"] if k in out else None)
            for k, v in times.items()
        ]
        fast_a, fast_b, compat_a, compat_b = (
            out["fast-cold-1"],
            out["fast-warm-1"],
            out["compat-cold-1"],
            out["compat-warm-1"],
        )

        print(
            f"baseline decoded {len(inputs)} videos, {n_frames} frames; fastest of {args.repeat} run(s) each"
        )
        print(
            "wall = elapsed seconds; cpu = CPU seconds of all threads (robust to other load on the machine)"
        )
        print(f"{'run':46s} {'wall s':>7s} {'x base':>7s} {'cpu s':>7s} {'x base':>7s} {'score':>7s}")
        for name, seconds, cpu_s, value in rows:
            shown = "" if value is None else f"{value:7.2f}"
            print(
                f"{name:46s} {seconds:7.2f} {seconds / baseline:7.2f} {cpu_s:7.2f} {cpu_s / baseline_cpu:7.2f} {shown}"
            )

        print("\ncompat vs fast (same videos):")
        for label, fast, compat in (("switch frame", fast_a, compat_a), ("late take-1", fast_b, compat_b)):
            print(
                f"  {label:15s} score fast {fast['physics_iq_score']:.2f} compat {compat['physics_iq_score']:.2f} "
                f"(diff {compat['physics_iq_score'] - fast['physics_iq_score']:+.2f})"
            )
            for key in ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse"):
                f, c = fast[key], compat[key]
                vf, vc = fast["physical_variance_metrics"][key], compat["physical_variance_metrics"][key]
                print(
                    f"    {key:22s} model {f:.4f} vs {c:.4f} ({c - f:+.4f}); variance {vf:.4f} vs {vc:.4f} ({vc - vf:+.4f})"
                )


if __name__ == "__main__":
    main()
