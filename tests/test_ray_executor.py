"""``refine --executor ray``: generation on Ray actors gives the local executor's bytes, survives a killed actor
and a killed driver, and refuses an unreachable cluster in one line.

One local Ray instance serves the whole module (``ray.init`` takes seconds): 2 CPUs, actors of 0.5 CPU, so two
actors, the driver and a test subprocess fit on a 2-core machine. The generator that stands in for a GPU model
by its latency is the ``command`` generator running ``tests/slow_clip.py`` (sleep, then a deterministic clip).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.workflow_runs import kill_after_first_attempt

ray = pytest.importorskip(
    "ray", reason="the Ray executor needs the [ray] extra: pip install 'physrefine[ray]'"
)

from agent.budget import RunLimits  # noqa: E402
from agent.cli import app  # noqa: E402
from agent.ray_pool import NAMESPACE, RayGeneratorPool, RayUnavailable  # noqa: E402
from agent.refine import Refinement  # noqa: E402
from agent.runs import RunConfig  # noqa: E402
from agent.settings import SettingsError  # noqa: E402
from generators import GENERATORS  # noqa: E402
from generators.base import GenerationError, GenerationRequest  # noqa: E402
from physics_iq.registry import BackendOptionError  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = Path(__file__).resolve().parent / "slow_clip.py"
ACTOR = "num_cpus=0.5"
#: One view of each scenario (take-1 IDs), 2 loops x 2 seeds: at most 8 generations a run.
VIEWS = "1,4"
LATENCY_S = 1.0


def _env() -> dict[str, str]:
    """This environment with this checkout first on the import path (for subprocesses and actors)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance for the module; its address is what a second driver (a subprocess) joins."""
    with pytest.MonkeyPatch.context() as patch:
        # Actor processes import this checkout's packages, whatever is installed.
        patch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from physics_iq.synthetic import build_suite

    scenarios = ["synthetic-ball-bounce", "synthetic-two-ball-collision"]
    root = tmp_path_factory.mktemp("suite") / "suite"
    return build_suite(root, scenarios=scenarios, fps=8, size=(128, 72), jobs=1).root


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of the slow program: where it marks each start, and its work folders (one command string for
    every run, so that attempts hash alike)."""
    base = tmp_path_factory.mktemp("stand-in")
    return {"markers": base / "markers", "work": base / "work"}


def _command(stand_in: dict[str, Path], latency: float = LATENCY_S) -> str:
    fixed = [sys.executable, str(PROGRAM)]
    variables = ["{{ image }}", "{{ output }}", "{{ seed }}", "{{ num_frames }}", "{{ fps }}"]
    tail = [str(latency), str(stand_in["markers"])]
    return " ".join([*map(shlex.quote, fixed), *variables, *map(shlex.quote, tail)])


def _slow_args(suite: Path, run_dir: Path, stand_in: dict[str, Path]) -> list[str]:
    stand_in["work"].mkdir(parents=True, exist_ok=True)
    return [
        "refine",
        "--dataset",
        str(suite),
        "--run-dir",
        str(run_dir),
        "--scenarios",
        VIEWS,
        "--loops",
        "2",
        "--seeds",
        "2",
        "--generator",
        "command",
        "--generator-opt",
        f"command={_command(stand_in)}",
        "--generator-opt",
        f"workdir={stand_in['work']}",
    ]


RAY_ARGS = ["--executor", "ray", "--generator-resources", ACTOR, "--generator-workers", "2"]


def _invoke(args: list[str]) -> str:
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, f"physrefine {' '.join(args)}\n{done.output}"
    return done.stdout


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every attempt file (videos, generation records, critiques), by path within the run."""
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.glob("scenarios/*/attempts/*"))
        if p.is_file() and not p.name.endswith(".part")
    }


def _summary(run_dir: Path) -> dict[str, Any]:
    """summary.json without what may differ between executors: timing, limits and the run folder's name."""
    text = (run_dir / "summary.json").read_text(encoding="utf-8").replace(str(run_dir), "RUN")
    summary = json.loads(text)
    for key in ("elapsed_s", "limits"):
        summary.pop(key)
    return dict(summary)


def _generate_events(run_dir: Path) -> list[dict[str, Any]]:
    events = []
    for line in (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a SIGKILL
            continue
        if event.get("node") == "generate":
            events.append(event)
    return events


def _key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["take1_id"], event.get("variant", ""), event["loop"], event["seed"])


def _clear_markers(stand_in: dict[str, Path]) -> None:
    for marker in stand_in["markers"].glob("started-*"):
        marker.unlink()


def _markers(stand_in: dict[str, Path]) -> list[tuple[int, int]]:
    """(parent pid, pid) of every start of the slow program."""
    out = []
    for marker in stand_in["markers"].glob("started-*"):
        _, parent, pid, _seed = marker.name.split("-")
        out.append((int(parent), int(pid)))
    return out


def _wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    """Wait for processes a killed actor left behind (its slow programs) to end by themselves."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(suite: Path, stand_in: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The slow stand-in refined by the local executor: what every Ray run must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    _invoke(_slow_args(suite, run_dir, stand_in))
    _clear_markers(stand_in)
    return run_dir


# -- the same bytes ----------------------------------------------------------------------------------------------
def test_a_ray_run_writes_the_local_runs_attempts_and_summary(
    cluster: str, suite: Path, tmp_path: Path
) -> None:
    """The demo's generator (physics-prior, with its best-of-N baseline) on one scenario's three views."""
    common = ["--dataset", str(suite), "--scenarios", "synthetic-ball-bounce", "--loops", "2", "--seeds", "2"]
    local, remote = tmp_path / "local", tmp_path / "ray"
    _invoke(["refine", *common, "--run-dir", str(local), "--json"])
    _invoke(["refine", *common, "--run-dir", str(remote), "--json", *RAY_ARGS])

    assert _files(local) and _files(remote) == _files(local)
    assert _summary(remote) == _summary(local)
    assert json.loads((remote / "limits.json").read_text())["executor"] == "ray"
    assert Counter(map(_key, _generate_events(remote))) == Counter(map(_key, _generate_events(local)))


def test_the_pool_puts_each_prefix_once_and_reports_its_actors(
    cluster: str, suite: Path, stand_in: dict[str, Path], reference: Path, tmp_path: Path
) -> None:
    """Direct use of the executor: a scenario's prefix crosses the wire once, whatever its number of calls."""
    run_dir = tmp_path / "run"
    config = RunConfig(
        dataset=str(suite),
        fps=8,
        loops=2,
        seeds=2,
        scenarios=VIEWS.split(","),
        generator="command",
        generator_options={"command": _command(stand_in), "workdir": str(stand_in["work"])},
    )
    limits = RunLimits(executor="ray", generator_resources={"num_cpus": 0.5}, generator_workers=2)
    refinement = Refinement(config, run_dir, limits=limits)
    pool = refinement.generators
    assert isinstance(pool, RayGeneratorPool) and pool.capacity == 2
    summary = refinement.run_all()
    _clear_markers(stand_in)

    assert summary["status"] == "complete" and _files(run_dir) == _files(reference)
    events = _generate_events(run_dir)
    assert pool.prefix_puts == 2  # two views, 2 loops x 2 seeds each
    labels = {f"#{e['take1_id']} loop {e['loop']} seed {e['seed']}" for e in events}
    assert sorted(t.label for t in pool.timings()) == sorted(labels) and len(labels) == len(events)
    assert all(t.remote_s >= LATENCY_S and t.total_s >= t.remote_s for t in pool.timings())
    assert all(s.device.startswith("actor ") for s in pool.slots())
    assert sum(s.calls for s in pool.slots()) == len(events)


# -- failures -----------------------------------------------------------------------------------------------------
def test_an_actor_killed_mid_generation_is_restarted_and_its_call_retried(
    cluster: str, suite: Path, stand_in: dict[str, Path], reference: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result: dict[str, Any] = {}

    def refine() -> None:
        try:
            result["stdout"] = _invoke([*_slow_args(suite, run_dir, stand_in), *RAY_ARGS, "--json"])
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    worker = threading.Thread(target=refine)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not _markers(stand_in):
            assert worker.is_alive(), f"the run ended before any generation started: {result}"
            assert time.monotonic() < deadline, "no generation started within 120 s"
            time.sleep(0.02)
        parent, program = _markers(stand_in)[0]
        # Find the actor through Ray: the generator actors are named in physrefine's namespace.
        names = [
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == NAMESPACE and a["name"].startswith("physrefine-generator-")
        ]
        pids = {
            ray.get(ray.get_actor(n, namespace=NAMESPACE).info.options(concurrency_group="info").remote())[
                "pid"
            ]: n
            for n in names
        }
        assert parent in pids, f"the generating process {parent} is none of the actors {pids}"
        os.kill(parent, signal.SIGKILL)
    finally:
        worker.join(timeout=300)
    assert not worker.is_alive(), "the run did not finish after the kill"
    assert "error" not in result, result.get("error")
    _wait_gone([program])

    summary = json.loads(result["stdout"])
    assert summary["status"] == "complete" and summary["failed_generations"] == 0
    events = _generate_events(run_dir)
    counts = Counter(map(_key, events))
    assert set(counts.values()) == {1}, f"generated more than once: {counts}"
    assert not any(e.get("error") for e in events)
    starts = _markers(stand_in)
    assert len(starts) == len(events) + 1  # the killed call ran twice, its attempt was written once
    assert sum(p == parent for p, _ in starts) == 1  # nothing ran on the killed process afterwards
    assert _files(run_dir) == _files(reference)
    assert _summary(run_dir) == _summary(reference)
    _clear_markers(stand_in)


def test_a_killed_driver_resumes_on_the_cluster(
    cluster: str, suite: Path, stand_in: dict[str, Path], reference: Path, tmp_path: Path
) -> None:
    """The driver is a second process joined to the module's cluster; after its SIGKILL, a rerun resumes."""
    run_dir = tmp_path / "run"
    args = [*_slow_args(suite, run_dir, stand_in), *RAY_ARGS]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args, "--ray-address", cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    survivors = kill_after_first_attempt(proc, run_dir, 120)
    _wait_gone([pid for _, pid in _markers(stand_in)])

    summary = json.loads(_invoke([*args, "--json"]))  # this process is connected to the same cluster
    assert summary["status"] == "complete"
    assert {p: p.stat().st_mtime_ns for p in survivors} == survivors  # reused, not generated again
    assert _files(run_dir) == _files(reference)
    generated = Counter(_key(e) for e in _generate_events(run_dir) if not e.get("reused"))
    assert max(generated.values()) == 1, f"generated more than once: {generated}"
    _clear_markers(stand_in)


def test_an_unreachable_ray_address_is_one_line_before_the_run_directory(suite: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port: nothing listens there
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    run_dir = tmp_path / "run"
    args = ["--dataset", str(suite), "--run-dir", str(run_dir), "--executor", "ray", "--ray-address", address]
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "refine", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and address in errors[0] and "Traceback" not in done.stderr, done.stderr
    assert not run_dir.exists()


# -- the pool alone --------------------------------------------------------------------------------------------------
def _request(suite: Path, seed: int = 0) -> GenerationRequest:
    from physics_iq.video import read_video

    clip = sorted(suite.glob("split-videos/conditioning-videos/8FPS/*.mp4"))[0]
    prefix, _ = read_video(clip)
    return GenerationRequest(
        prefix=prefix, fps=8.0, prompt="p", seed=seed, num_frames=4, context={"take1_id": 1}
    )


def test_the_generators_own_errors_come_back_as_locally(cluster: str, suite: Path) -> None:
    command = GENERATORS.resolve("command")
    options = {"command": f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'"}
    pool = RayGeneratorPool(command, options, workers=1, resources={"num_cpus": 0.5})
    try:
        with pytest.raises(GenerationError) as remote:
            pool.generate(_request(suite), label="#1 loop 1 seed 0")
    finally:
        pool.close()
    with pytest.raises(GenerationError) as local:
        command(**options).generate(_request(suite))
    assert str(remote.value) == str(local.value)

    # A generator that cannot be built fails the pool's construction with its own error (one line in the CLI).
    with pytest.raises(BackendOptionError, match="is not a folder of videos"):
        RayGeneratorPool(GENERATORS.resolve("folder"), {"model": "/nonexistent"}, resources={"num_cpus": 0.5})


def test_sizing_and_refusals(cluster: str, suite: Path, stand_in: dict[str, Path]) -> None:
    command = GENERATORS.resolve("command")
    options = {"command": _command(stand_in, latency=0.3), "workdir": str(stand_in["work"])}
    pool = RayGeneratorPool(command, options, resources={"num_cpus": 1})  # default: what the cluster holds
    try:
        assert len(pool.actor_names) == 2 and pool.capacity == 2
        request = _request(suite)
        threads = [threading.Thread(target=pool.generate, args=(request, f"#1 seed {i}")) for i in range(4)]
        for thread in threads:
            thread.start()
        seen: list[tuple[int, list[str]]] = []  # (calls waiting, what each actor does) while the calls run
        while any(thread.is_alive() for thread in threads):
            seen.append((pool.waiting(), [s.busy for s in pool.slots()]))
            time.sleep(0.01)
        assert max(waiting for waiting, _ in seen) == 2  # four calls on two actors, 0.3 s each: two waited
        assert any(all(label.startswith("#1 seed ") for label in busy) for _, busy in seen)
        assert sum(s.calls for s in pool.slots()) == 4 and pool.waiting() == 0
        assert pool.prefix_puts == 1
        assert all(s.busy_s > 0 for s in pool.slots())
    finally:
        pool.close()
        _clear_markers(stand_in)

    with pytest.raises(RayUnavailable, match="holds 2 actor"):
        RayGeneratorPool(command, options, workers=3, resources={"num_cpus": 1})
    with pytest.raises(RayUnavailable, match="num_gpus=1"):
        RayGeneratorPool(command, options, resources={"num_gpus": 1})

    class Pipeline:  # undeclared: one call at a time (refused before any actor exists)
        name = "pipeline"

    with pytest.raises(SettingsError, match="max_concurrency=2: generator pipeline is not declared safe"):
        RayGeneratorPool(Pipeline, {}, resources={"num_cpus": 0.5, "max_concurrency": 2})


def test_ray_settings_are_checked_where_they_are_given(tmp_path: Path) -> None:
    from agent.settings import resolve_settings

    base = {"dataset": str(tmp_path), "run_dir": str(tmp_path / "run")}
    settings = resolve_settings({**base, "executor": "ray", "generator_resources": {"num_gpus": "1"}})
    assert settings.limits.generator_resources == {"num_gpus": 1.0}
    with pytest.raises(SettingsError, match="option --ray-address: applies to executor 'ray' only"):
        resolve_settings({**base, "ray_address": "auto"})
    with pytest.raises(SettingsError, match="option --devices: devices place local generator instances"):
        resolve_settings({**base, "executor": "ray", "devices": "2"})
    config = tmp_path / "run.toml"
    config.write_text('executor = "ray"\ngenerator_resources = "num_gpus=one"\n', encoding="utf-8")
    with pytest.raises(
        SettingsError, match=r"run.toml: field 'generator_resources': num_gpus: expected a number"
    ):
        resolve_settings(base, config)


def test_a_sweep_runs_its_cells_on_ray_and_reruns_with_other_execution_settings(
    cluster: str, suite: Path, tmp_path: Path
) -> None:
    from agent.workflows.sweep import SweepError, cells, load_sweep_config, run_sweep

    base = f'[base]\ndataset = "{suite}"\nscenarios = ["1"]\nloops = 1\nseeds = 1\n'
    on_ray = 'executor = "ray"\ngenerator_workers = 1\ngenerator_resources = {num_cpus = 0.5}\n'
    grid = "[grid]\nseed = [0, 1]\n"
    (tmp_path / "sweep.toml").write_text(base + on_ray + grid, encoding="utf-8")
    config = load_sweep_config(tmp_path / "sweep.toml")
    assert all("executor" not in c.model_dump() for c in cells(config).values())
    result = run_sweep(config, tmp_path / "out", n_boot=50)
    assert {c["status"] for c in result["cells"].values()} == {"complete"}
    for cell in (tmp_path / "out" / "cells").iterdir():
        limits = json.loads((cell / "limits.json").read_text(encoding="utf-8"))
        assert limits["executor"] == "ray" and limits["generator_resources"] == {"num_cpus": 0.5}

    # Where cells run is not what they compute: the same sweep on the local executor finds its cells done.
    (tmp_path / "sweep.toml").write_text(base + "jobs = 2\n" + grid, encoding="utf-8")
    again = run_sweep(load_sweep_config(tmp_path / "sweep.toml"), tmp_path / "out", n_boot=50)
    assert again["cells"] == result["cells"]

    bad = on_ray.replace("num_cpus = 0.5", 'num_cpus = "half"')
    (tmp_path / "bad.toml").write_text(base + bad + grid, encoding="utf-8")
    with pytest.raises(
        SweepError, match=r"bad.toml: \[base\] generator_resources: num_cpus: expected a number"
    ):
        load_sweep_config(tmp_path / "bad.toml")
