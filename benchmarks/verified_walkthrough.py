"""The Physics-IQ Verified path end to end, offline, on a stand-in dataset: four runs, scores, a package.

The real path starts with ``physrefine fetch-data DEST --variant verified`` (network and a Hub login). This
script walks the rest of it where neither is available: it builds the demo's synthetic-suite scenarios,
copies them into a folder laid out as a fetched dataset (``split-videos/testing/{fps}FPS``, the op prompt
set under ``descriptions/``) and marks it ``verified`` with the marker ``fetch-data`` writes. **It is not
Physics-IQ data**; the numbers show what the tools report, not how a model does on the benchmark.

Then, through the ``physrefine`` command line (argument lists, no shell):

1. ``refine --repeat 4 --descriptions op`` (offline critic and physics-prior generator, neither a neural
   model): four runs ``physics-prior-op-run_01..04`` differing by base seed;
2. ``score RUN_01/... RUN_04/...`` is not needed: ``submit --verified`` scores the package in compat mode;
3. ``submit RUN_01 .. RUN_04 --verified --out PKG``: the package and its card;
4. ``submit --validate-only --out PKG``: the official submission checks (fail on the fields left for a
   person), then again after filling them in as a person would.

Run::

    python benchmarks/verified_walkthrough.py [--out DIR] [--loops 2] [--seeds 2]

Prints each step's wall time, the four runs' scores (fast mode, from their summaries), the package's scores
(compat mode, mean and sample std) and the validation results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from agent.refine import DEMO_SCENARIOS
from physics_iq.layout import PROMPT_SET_FILES, DatasetLayout, write_marker
from physics_iq.synthetic import build_suite


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - start, done


def _stand_in(root: Path) -> Path:
    """The demo scenarios laid out as a fetched Physics-IQ Verified folder (see the module docstring)."""
    suite = build_suite(root / "suite", scenarios=list(DEMO_SCENARIOS), fps=8, seed=0, jobs=2)
    dataset = root / "physics-IQ-benchmark-verified"
    for kind, folder in (("testing-videos", "testing"), ("conditioning-videos", "conditioning")):
        shutil.copytree(suite.root / "split-videos" / kind, dataset / "split-videos" / folder)
    shutil.copytree(suite.root / "switch-frames", dataset / "switch-frames")
    op = dataset / PROMPT_SET_FILES["op"]
    op.parent.mkdir(parents=True)
    shutil.copyfile(suite.descriptions_path, op)
    write_marker(
        dataset,
        {
            "variant": "verified",
            "complete": True,
            "source": "stand-in: physrefine synthetic suite (not Physics-IQ)",
        },
    )
    DatasetLayout(dataset)  # reads as a fetched dataset would
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: a temporary one).")
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="physrefine-verified-"))
    root.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    dataset = _stand_in(root)
    print(f"stand-in dataset: {dataset} ({time.perf_counter() - start:.1f} s)")

    runs = root / "runs"
    seconds, done = _cli(
        "refine",
        "--dataset",
        str(dataset),
        "--descriptions",
        "op",
        "--run-dir",
        str(runs),
        "--repeat",
        "4",
        "--loops",
        str(args.loops),
        "--seeds",
        str(args.seeds),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(f"refine --repeat 4: {seconds:.1f} s")
    for name, run in result["runs"].items():
        print(
            f"  {name}: base seed {run['seed']}, honest ensemble {run['overall']['honest_ensemble']:.2f} (fast)"
        )
    for variant, stats in result["repeats"]["variants"].items():
        o, v = stats["original"], stats["verified"]
        print(
            f"  {variant}: original {o['mean']:.2f} ± {o['std']:.2f}, Verified {v['mean']:.2f} ± {v['std']:.2f} "
            f"({result['repeats']['mode']} mode)"
        )

    package = root / "package"
    seconds, done = _cli(
        "submit",
        *(run["run_dir"] for run in result["runs"].values()),
        "--verified",
        "--out",
        str(package),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)["manifest"]
    agg = manifest["scores"]["aggregate"]
    print(
        f"submit --verified: {seconds:.1f} s; {len(manifest['runs'])} run folders of {manifest['videos_per_run']} clips"
    )
    for kind in ("verified", "original"):
        stat = agg[kind]["physics_iq_score"]
        print(
            f"  {kind}: {stat['mean']:.2f} ± {stat['std']:.2f} ({agg['mode']} mode; per run {stat['values']})"
        )
    card = yaml.safe_load((package / "submission.yaml").read_text(encoding="utf-8"))
    print("  reported_scores:", json.dumps(card["reported_scores"]))
    print(f"  fields left for a person: {len(manifest['card']['to_fill'])}")

    seconds, done = _cli("submit", "--validate-only", "--out", str(package))
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    print(f"validate-only as written: exit {done.returncode}, {len(failures)} failure(s) ({seconds:.1f} s)")
    info = card["public_info"]
    info.update(
        organization="Example Org",
        availability="research",
        model_source="https://example.org",
        generation_cost=0.0,
        generation_time=0.05,
        upsample_time=0.01,
    )
    card["terms"] = {
        "terms_version": "1.0",
        "terms_accepted": True,
        "accepted_on_behalf_of": "Example Org",
        "accepted_at": "2026-12-05T12:00:00Z",
    }
    card["warranties"] = dict.fromkeys(card["warranties"], True)
    (package / "submission.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    seconds, done = _cli(
        "submit",
        "--validate-only",
        "--out",
        str(package),
        "--run-id",
        "example__physrefine-prior-op__2026-12-05",
    )
    print(
        f"validate-only once filled: exit {done.returncode} ({seconds:.1f} s): {done.stdout.strip().splitlines()[-1]}"
    )
    print(f"work folder: {root}")


if __name__ == "__main__":
    main()
