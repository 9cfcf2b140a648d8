"""Targets of the offline stack on a held-out look and seed of the synthetic suite, met or not.

The offline stack (``--generator physics-prior --vlm offline``) is developed on the ``cluttered`` look at seed
1 and on the classic look's demo; this script measures it on a look and seed never used while developing
(default: the ``room`` look, seed 7), in both modes, and on the demo, with the project's own commands::

    physrefine make-suite OUT/suite-room-s7 --style room --seed 7
    physrefine refine --dataset OUT/suite-room-s7 --mode v2v --generator physics-prior --vlm offline \\
        --loops 4 --seeds 2 --run-dir OUT/run-room-s7-v2v --json          (and --mode i2v)
    physrefine demo --out OUT/demo --json

and prints, from each run's ``summary.json`` (``overall.*``):

- v2v: honest >= still frame, honest - loop 1 >= +3, honest - best_of_n >= +1;
- i2v: honest - loop 1 >= +2;
- the demo (classic look, in-distribution): honest - loop 1 >= +5;

each with met / not met, and which numbers are in-distribution (a look used while developing) or held out.
Keys a summary does not have (an older checkout) are printed as "not available". Reruns reuse the suite and
resume finished runs (delete OUT to measure from scratch). These are benchmark numbers, not tests.

The gaps these targets measure are a point or two, about what another draw of the generator's seeds moves
them by. ``--run-seeds 0,1,2`` repeats each suite run with those base seeds (``refine --seed 100*S``: no
attempt seed is shared) and judges the targets on the mean, printing each run seed's value beside it (the
demo has no seed option and runs once).

Run::

    python benchmarks/bench_heldout.py --out runs/heldout                  # room, seed 7, 4 x 2, both modes
    python benchmarks/bench_heldout.py --out runs/heldout --run-seeds 0,1,2
    python benchmarks/bench_heldout.py --out runs/dev --style cluttered --seed 1 --modes v2v --no-demo
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Looks used while developing the offline stack: numbers on them are in-distribution.
DEVELOPMENT_LOOKS = ("classic", "cluttered")
KEYS = (
    "loop_1",
    "final",
    "honest_ensemble",
    "best_of_n",
    "oracle",
    "static",
    "refinement_gain",
    "selection_gain",
    "selection_accuracy",
)


def _physrefine(*args: str) -> str:
    """Run the CLI (this checkout's code) and return its stdout; stderr (progress) passes through."""
    command = [sys.executable, "-m", "agent.cli", *args]
    print("$ physrefine " + " ".join(args), file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode not in (0, 1):  # 1: a run finished with failed generations; its summary stands
        raise SystemExit(f"physrefine {' '.join(args)} failed with exit code {result.returncode}")
    return result.stdout


def _refine(
    dataset: Path, run_dir: Path, mode: str, loops: int, seeds: int, jobs: int, base_seed: int = 0
) -> dict[str, Any]:
    out = _physrefine(
        "refine", "--dataset", str(dataset), "--fps", "8", "--mode", mode, "--generator", "physics-prior",
        "--vlm", "offline", "--loops", str(loops), "--seeds", str(seeds), "--jobs", str(jobs),
        "--seed", str(base_seed), "--run-dir", str(run_dir), "--json",
    )  # fmt: skip
    return dict(json.loads(out)["overall"])


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each key's mean over the runs that have it as a number (``None`` where one lacks it)."""
    keys = {k for run in runs for k in run}
    out: dict[str, Any] = {}
    for key in sorted(keys):
        values = [_number(run, key) for run in runs]
        numbers = [v for v in values if v is not None]
        out[key] = round(sum(numbers) / len(numbers), 4) if numbers and len(numbers) == len(values) else None
    return out


def _number(overall: dict[str, Any], key: str) -> float | None:
    value = overall.get(key)
    return float(value) if isinstance(value, int | float) else None


def _fmt(value: float | None) -> str:
    return "not available" if value is None else f"{value:.2f}"


def _target(
    name: str, value: float | None, threshold: float, where: str, each: list[float | None] | None = None
) -> dict[str, Any]:
    met = None if value is None else value >= threshold
    verdict = "not available" if met is None else ("met" if met else "NOT MET")
    spread = "" if not each or len(each) < 2 else "   per run seed: " + ", ".join(_fmt(v) for v in each)
    print(f"  {name:<34} {_fmt(value):>14}  (target >= {threshold:+.0f})  {verdict}   [{where}]{spread}")
    return {
        "target": name,
        "value": value,
        "threshold": threshold,
        "met": met,
        "split": where,
        "per_run_seed": each,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="Folder for the suite, the runs and results.")
    parser.add_argument("--style", default="room", help="The suite look to measure on (default: room).")
    parser.add_argument("--seed", type=int, default=7, help="The suite seed (default: 7).")
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--modes", default="v2v,i2v", help="Comma-separated: v2v, i2v.")
    parser.add_argument("--no-demo", action="store_true", help="Skip the classic-look demo.")
    parser.add_argument(
        "--run-seeds",
        default="0",
        help="Comma-separated run seeds S (refine --seed 100*S); targets on the mean.",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        run_seeds = [int(x) for x in args.run_seeds.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--run-seeds: expected comma-separated non-negative integers, got {args.run_seeds!r}")
    if not run_seeds or min(run_seeds) < 0:
        parser.error(f"--run-seeds: expected comma-separated non-negative integers, got {args.run_seeds!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    split = "in-distribution" if args.style in DEVELOPMENT_LOOKS else "held-out"
    name = f"{args.style}-s{args.seed}"
    suite = args.out / f"suite-{name}"
    _physrefine("make-suite", str(suite), "--style", args.style, "--seed", str(args.seed), "--fps", "8")
    results: dict[str, Any] = {
        "style": args.style,
        "seed": args.seed,
        "split": split,
        "run_seeds": run_seeds,
        "runs": {},
        "per_run_seed": {},
        "targets": [],
    }
    for mode in modes:
        per = [
            _refine(
                suite,
                args.out / (f"run-{name}-{mode}" + (f"-r{s}" if s else "")),
                mode,
                args.loops,
                args.seeds,
                args.jobs,
                base_seed=100 * s,
            )
            for s in run_seeds
        ]
        results["per_run_seed"][mode] = per
        results["runs"][mode] = _mean(per)
    if not args.no_demo:
        demo = json.loads(
            _physrefine("demo", "--out", str(args.out / "demo"), "--json", "--jobs", str(args.jobs))
        )
        results["runs"]["demo"] = dict(demo["overall"])
    print(
        f"\nOffline stack, {args.loops} loops x {args.seeds} seeds; '{args.style}' look, seed {args.seed} ({split})"
        + (f"; suite runs: mean over run seeds {run_seeds}" if len(run_seeds) > 1 else "")
    )
    print(f"  {'run':<10}" + "".join(f"{k:>18}" for k in KEYS))
    for run, overall in results["runs"].items():
        print(f"  {run:<10}" + "".join(f"{_fmt(_number(overall, k)):>18}" for k in KEYS))
    print("\nTargets")
    targets = results["targets"]

    def target(label: str, mode: str, a: str, b: str, threshold: float) -> None:
        """A target on the mean over run seeds of ``a - b``, with each run seed's value."""
        mean = _diff(_number(results["runs"][mode], a), _number(results["runs"][mode], b))
        each = [_diff(_number(run, a), _number(run, b)) for run in results["per_run_seed"][mode]]
        targets.append(_target(label, mean, threshold, split, each))

    if "v2v" in results["runs"]:
        target("v2v: honest - still frame", "v2v", "honest_ensemble", "static", 0.0)
        target("v2v: honest - loop 1", "v2v", "honest_ensemble", "loop_1", 3.0)
        target("v2v: honest - best_of_n", "v2v", "honest_ensemble", "best_of_n", 1.0)
    if "i2v" in results["runs"]:
        target("i2v: honest - loop 1", "i2v", "honest_ensemble", "loop_1", 2.0)
    if "demo" in results["runs"]:
        v = results["runs"]["demo"]
        targets.append(
            _target(
                "demo (classic): honest - loop 1",
                _diff(_number(v, "honest_ensemble"), _number(v, "loop_1")),
                5.0,
                "in-distribution",
            )
        )
    (args.out / f"heldout-{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out / f'heldout-{name}.json'}")


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


if __name__ == "__main__":
    main()
