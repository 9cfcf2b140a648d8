"""The generator pool: one call per instance of a generator that is not safe for concurrent calls.

Unit tests use a generator that measures how many calls overlap on it; the integration test runs a real tiny
Wan 2.1 pipeline with enough denoising steps that overlapping calls would interleave their scheduler steps,
and checks that ``--seeds 2 --jobs 2`` gives byte-identical attempts to separate one-seed runs.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from agent.pool import LocalGeneratorPool, parse_devices, takes_device
from generators.base import GeneratedVideo, GenerationRequest


class OverlapMeter:
    """Counts calls in flight per instance and overall (the largest numbers seen)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[int, int] = {}
        self.most: dict[int, int] = {}
        self.total_now = 0
        self.total_most = 0

    def enter(self, instance: object) -> None:
        with self.lock:
            key = id(instance)
            self.now[key] = self.now.get(key, 0) + 1
            self.most[key] = max(self.most.get(key, 0), self.now[key])
            self.total_now += 1
            self.total_most = max(self.total_most, self.total_now)

    def leave(self, instance: object) -> None:
        with self.lock:
            self.now[id(instance)] -= 1
            self.total_now -= 1


METER = OverlapMeter()


class SlowPipeline:
    """Stands in for a diffusers adapter by its contract only: undeclared, so not safe for concurrent calls."""

    name = "slow"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        METER.enter(self)
        try:
            time.sleep(0.05)
            frames = np.full((request.num_frames, 4, 4, 3), request.seed, np.uint8)
            return GeneratedVideo(frames, request.fps, {"device": self.device})
        finally:
            METER.leave(self)


class SlowSafe(SlowPipeline):
    concurrent_safe = True


def _request(seed: int) -> GenerationRequest:
    return GenerationRequest(np.zeros((1, 4, 4, 3), np.uint8), 8.0, "p", seed, 2)


def _hammer(pool: LocalGeneratorPool, calls: int = 8) -> list[GeneratedVideo]:
    with ThreadPoolExecutor(max_workers=calls) as threads:
        return list(
            threads.map(lambda seed: pool.generate(_request(seed), label=f"seed {seed}"), range(calls))
        )


@pytest.fixture(autouse=True)
def _fresh_meter() -> None:
    METER.__init__()  # type: ignore[misc]


def test_an_unsafe_generator_serves_one_call_at_a_time() -> None:
    pool = LocalGeneratorPool(SlowPipeline, {})
    videos = _hammer(pool)
    assert [int(v.frames[0, 0, 0, 0]) for v in videos] == list(range(8))  # each caller got its own result
    assert len(pool.instances) == 1 and METER.total_most == 1
    assert [s.calls for s in pool.slots()] == [8]


def test_one_instance_per_device_each_serving_one_call() -> None:
    pool = LocalGeneratorPool(SlowPipeline, {}, devices=["cuda:0", "cuda:1"])
    videos = _hammer(pool)
    assert sorted(i.device for i in pool.instances) == ["cuda:0", "cuda:1"]  # type: ignore[attr-defined]
    assert max(METER.most.values()) == 1 and METER.total_most == 2  # two at once, never two on one
    assert {v.metadata["device"] for v in videos} == {"cuda:0", "cuda:1"}
    assert sum(s.calls for s in pool.slots()) == 8


def test_a_concurrent_safe_generator_shares_one_instance() -> None:
    pool = LocalGeneratorPool(SlowSafe, {}, workers=4)
    _hammer(pool)
    assert len(pool.instances) == 1 and METER.total_most == 4


def test_the_pool_reports_what_each_slot_does() -> None:
    pool = LocalGeneratorPool(SlowPipeline, {})
    seen: list[Any] = []
    with ThreadPoolExecutor(max_workers=3) as threads:
        futures = [threads.submit(pool.generate, _request(s), f"#7 loop 1 seed {s}") for s in range(3)]
        time.sleep(0.02)
        seen = [pool.slots()[0].busy, pool.waiting()]
        for future in futures:
            future.result()
    assert seen[0].startswith("#7 loop 1 seed") and seen[1] == 2
    assert pool.slots()[0].busy == "" and pool.waiting() == 0 and pool.slots()[0].busy_s > 0


def test_device_lists() -> None:
    assert parse_devices("cuda:0, cuda:1", None) == ["cuda:0", "cuda:1"]
    with pytest.raises(ValueError, match="not both"):
        parse_devices("cuda:0", 2)
    with pytest.raises(ValueError, match="empty device name"):
        parse_devices("cuda:0,,cuda:1", None)
    assert takes_device(SlowPipeline)


# -- a real tiny diffusers pipeline, driven through the CLI --------------------------------------------------
@pytest.mark.models
def test_seeds_and_jobs_in_parallel_give_the_attempts_of_separate_runs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from typer.testing import CliRunner

    from agent.cli import app
    from generators.diffusers_wan import Wan21I2VGenerator
    from physics_iq.synthetic import build_suite
    from tests.tiny_models import tiny_folder

    torch.set_num_threads(1)
    suite = build_suite(
        tmp_path_factory.mktemp("suite") / "suite",
        scenarios=["synthetic-ball-bounce"],
        fps=8,
        size=(96, 54),
        jobs=1,
    )
    model = tiny_folder("wan2.1-i2v", tmp_path_factory)
    # Wrap every instance's generate with the overlap meter (the pipeline itself runs for real).
    original = Wan21I2VGenerator.generate

    def metered(self: Wan21I2VGenerator, request: GenerationRequest) -> GeneratedVideo:
        METER.enter(self)
        try:
            return original(self, request)
        finally:
            METER.leave(self)

    monkeypatch.setattr(Wan21I2VGenerator, "generate", metered)
    root = tmp_path_factory.mktemp("runs")

    def refine(name: str, *extra: str) -> dict[str, Any]:
        args = [
            "refine", "--dataset", str(suite.root), "--run-dir", str(root / name), "--fps", "8",
            "--scenarios", "0001,0002", "--generator", "wan2.1-i2v", "--model", str(model), "--mode", "i2v",
            "--generator-opt", "height=16", "--generator-opt", "width=16",
            # Enough steps that two overlapping calls would interleave their scheduler's step index.
            "--generator-opt", "num_inference_steps=8", "--loops", "1", "--vlm", "offline", "--no-score",
            "--json", *extra,
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    together = refine("together", "--seeds", "2", "--jobs", "2")
    assert together["status"] == "complete"
    assert METER.most and max(METER.most.values()) == 1  # never two calls on the one instance

    def attempts(*names: str) -> dict[str, bytes]:
        return {
            f"{p.parent.parent.name}/{p.name}": p.read_bytes()
            for name in names
            for p in (root / name / "scenarios").glob("*/attempts/*.mp4")
        }

    refine("seed0", "--seeds", "1", "--seed", "0")
    refine("seed1", "--seeds", "1", "--seed", "1")
    parallel, separate = attempts("together"), attempts("seed0", "seed1")
    assert len(parallel) == 4 and parallel == separate
    trace = [json.loads(line) for line in (root / "together" / "trace.jsonl").read_text().splitlines()]
    generated = [(e["take1_id"], e["loop"], e["seed"]) for e in trace if e["node"] == "generate"]
    assert sorted(generated) == sorted(set(generated)) and len(generated) == 4  # each generate event once
