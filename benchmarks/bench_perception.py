"""How often the offline perception finds what moves, and how often it invents objects, on a suite look.

The synthetic suite writes each clip's ground-truth state next to it (``*.state.json``: every simulated
object's position per frame). For every take-1 view this script runs ``physics_iq.motion.perceive`` as the
offline critic and the physics prior do — on the switch frame alone (``i2v``) or on the conditioning clip
(``v2v``) with the description — and compares the objects it finds with the truth:

- **missed**: an object that moves more than 5 px in the testing clip and that no perceived object sits on
  (within 6 px or the object's radius) at the switch frame;
- **invented**: a perceived object that sits on no simulated object (a poster, a prop, a stripe). The
  collision scene's description names a wooden block the simulation does not move; it counts as invented
  here, as it does in every run, so the totals compare across commits.

It prints one line per view with something missed or invented, and the totals; ``--json`` writes them.
These are benchmark numbers for development: use a development look (``cluttered`` seed 1, the classic
demo); a held-out look is only measured, never tuned on (docs/offline-stack.md).

Run::

    physrefine make-suite runs/suite-cluttered-s1 --style cluttered --seed 1
    python benchmarks/bench_perception.py runs/suite-cluttered-s1 --modes i2v,v2v
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from physics_iq import motion
from physics_iq.layout import DatasetLayout
from physics_iq.video import read_video


def _on(blob: motion.Blob, at_switch: dict[str, tuple[float, float]]) -> str | None:
    """The simulated object a perceived one sits on at the switch frame, if any."""
    oid = min(at_switch, key=lambda k: math.dist(at_switch[k], (blob.x, blob.y)))
    return oid if math.dist(at_switch[oid], (blob.x, blob.y)) <= max(6.0, blob.radius) else None


def audit(layout: DatasetLayout, mode: str, fps: int = 8) -> dict[str, object]:
    """Missed and invented objects of every take-1 view of a suite in one mode."""
    views = []
    for row in layout.take1_rows():
        cond = json.loads(layout.conditioning_video(row, fps).with_suffix(".state.json").read_text())
        test = json.loads(layout.testing_video(row, fps).with_suffix(".state.json").read_text())
        at_switch = {o["id"]: tuple(o["position_px"]) for o in cond["frames"][-1]["objects"]}
        travel = {}
        for oid, start in at_switch.items():
            path = [next(o["position_px"] for o in f["objects"] if o["id"] == oid) for f in test["frames"]]
            travel[oid] = max(math.dist(start, p) for p in path)
        prefix, _ = read_video(layout.conditioning_video(row, fps))
        if mode == "i2v":
            prefix = prefix[-1:]
        objects = motion.perceive(prefix, row.description, float(fps)).objects
        found = {_on(b, at_switch) for b in objects}
        missed = sorted(oid for oid, d in travel.items() if d > 5 and oid not in found)
        invented = [b.name for b in objects if _on(b, at_switch) is None]
        views.append(
            {"scenario": row.scenario, "perspective": row.perspective, "missed": missed, "invented": invented}
        )
    return {
        "mode": mode,
        "views": len(views),
        "missed": sum(len(v["missed"]) for v in views),
        "invented": sum(len(v["invented"]) for v in views),
        "per_view": [v for v in views if v["missed"] or v["invented"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="a suite folder written by `physrefine make-suite`")
    parser.add_argument("--modes", default="i2v,v2v", help="comma-separated: i2v, v2v")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not any(args.suite.glob("split-videos/conditioning-videos/*/*.state.json")):
        parser.error(
            f"{args.suite}: no ground-truth state (split-videos/conditioning-videos/<N>FPS/*.state.json); "
            "expected a folder written by `physrefine make-suite`"
        )
    layout = DatasetLayout(args.suite)
    results = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        result = audit(layout, mode, args.fps)
        results.append(result)
        print(f"{mode}: {result['views']} views, {result['missed']} missed, {result['invented']} invented")
        for v in result["per_view"]:
            print(
                f"  {v['scenario']:36s} {v['perspective']:20s} missed={v['missed']} invented={v['invented']}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    print(
        f"total: {sum(r['missed'] for r in results)} missed, {sum(r['invented'] for r in results)} invented"
    )


if __name__ == "__main__":
    main()
