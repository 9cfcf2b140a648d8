"""Generation on Ray actors: the ``ray`` executor and its generator pool (``refine --executor ray``).

The driver (this process) runs every scenario's LangGraph thread, as the local executor does, and stays the
single writer of the checkpoints, the trace, the usage file and the attempt files. Only generation moves:
each actor of a :class:`RayGeneratorPool` loads the generator once and holds its resources (a GPU) for the
whole run; a graph node borrows a free actor for one call, as it borrows a local instance from
:class:`agent.pool.LocalGeneratorPool`.

What crosses the wire per call: the request's text and numbers, the prefix clip as an object-store
reference (``ray.put`` once per scenario, reused by every request of that scenario), and back the
continuation's frames. So a Ray run writes the same bytes as a local run of the same configuration.

An actor killed mid-generation (a preempted node, a crashed process) is restarted by Ray, which loads the
generator again and re-runs the call (``max_restarts``, ``max_task_retries``); the graph node waiting on it
simply gets its frames later, and writes its attempt once.

Ray is imported only when this executor is used (``pip install 'physrefine[ray]'``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agent.budget import RunLimits
from agent.pool import Slot, is_concurrent_safe, takes_device
from agent.settings import SettingsError
from generators.base import GeneratedVideo, GenerationError, GenerationRequest
from physics_iq.registry import MissingExtraError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Times Ray restarts an actor whose process died (each restart loads the generator again).
MAX_RESTARTS = 10
#: Times Ray re-runs a call whose actor died while running it, before the attempt is recorded as failed.
MAX_TASK_RETRIES = 2
#: Seconds to wait for a TCP answer from a ``--ray-address`` before calling it unreachable.
PROBE_TIMEOUT_S = 3.0
#: The Ray namespace of the generator actors (their names are unique per pool).
NAMESPACE = "physrefine"
#: ``--generator-resources`` keys that are Ray actor options, and the cluster resource each one counts.
RAY_OPTIONS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


class RayUnavailable(SettingsError):
    """The Ray cluster named by ``--ray-address`` cannot be reached, or cannot hold the requested actors."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("executor 'ray' needs Ray: pip install 'physrefine[ray]'") from exc
    return ray


# -- connecting ------------------------------------------------------------------------------------------------
def tcp_endpoint(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` a Ray address connects to first, or ``None`` for ``auto``/``local``.

    A bare host means the GCS's default port 6379; a ``ray://`` (Ray Client) address the client port 10001.

    >>> tcp_endpoint("10.0.0.5:6379"), tcp_endpoint("ray://head:10001"), tcp_endpoint("head")
    (('10.0.0.5', 6379), ('head', 10001), ('head', 6379))
    >>> tcp_endpoint("[::1]:6380"), tcp_endpoint("ray://head"), tcp_endpoint("auto")
    (('::1', 6380), ('head', 10001), None)
    """
    if address in ("auto", "local"):
        return None
    client = address.startswith("ray://")
    parts = urlsplit(address if client else "//" + address)
    if not parts.hostname:
        raise ValueError(f"{address!r} names no host (expected HOST:PORT, ray://HOST:PORT or auto)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{address!r}: {exc}") from None
    return parts.hostname, port or (10001 if client else 6379)


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Check that something answers at a Ray address (Ray's own connect waits minutes on a dead address).

    Raises:
        RayUnavailable: naming the address and what went wrong.
    """
    try:
        endpoint = tcp_endpoint(address)
    except ValueError as exc:
        raise RayUnavailable(f"--ray-address {address}: {exc}") from None
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror
        raise RayUnavailable(
            f"--ray-address {address}: cannot reach a Ray cluster at {host}:{port} ({reason or exc})"
        ) from None


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``None``: ``RAY_ADDRESS``, else start Ray on this machine).

    A process already connected (a notebook, a test) keeps its connection.

    Returns:
        Whether this call connected (and so the caller should ``ray.shutdown()`` when done).

    Raises:
        RayUnavailable: the address cannot be reached; nothing has been created yet.
    """
    ray = _ray()
    if ray.is_initialized():
        logger.info("ray: already connected; --ray-address %s not used", address)
        return False
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target:
        probe(target)
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if target in (None, "local"):
        options["include_dashboard"] = False  # the plain ``ray`` package has no dashboard
    try:
        ray.init(address=address, namespace=NAMESPACE, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayUnavailable(
            f"--ray-address {target or 'local'}: cannot join the Ray cluster ({first})"
        ) from None
    return True


# -- sizing ------------------------------------------------------------------------------------------------------
def actor_resources(
    requested: Mapping[str, float], generator_class: type, cluster: Mapping[str, float]
) -> dict[str, float]:
    """What one actor holds: the requested resources, else ``num_cpus=1`` and, for a generator that takes a
    device on a cluster with GPUs, ``num_gpus=1``. ``max_concurrency`` is not a resource and is left out.

    >>> class Pipeline:
    ...     def __init__(self, device="cuda"): ...
    >>> actor_resources({}, Pipeline, {"CPU": 16, "GPU": 8}), actor_resources({}, Pipeline, {"CPU": 2})
    ({'num_cpus': 1.0, 'num_gpus': 1.0}, {'num_cpus': 1.0})
    >>> actor_resources({"num_gpus": 0.5, "max_concurrency": 2}, Pipeline, {"GPU": 8})
    {'num_gpus': 0.5}
    """
    resources = {k: float(v) for k, v in requested.items() if k != "max_concurrency"}
    if resources:
        return resources
    resources = {"num_cpus": 1.0}
    if takes_device(generator_class) and cluster.get("GPU", 0) > 0:
        resources["num_gpus"] = 1.0
    return resources


def fitting_actors(resources: Mapping[str, float], cluster: Mapping[str, float]) -> int:
    """How many actors holding ``resources`` the cluster's total resources hold (0 when one lacks).

    Zero amounts are not limits; with no positive amount at all the answer is 1.

    >>> fitting_actors({"num_cpus": 0.25}, {"CPU": 2.0}), fitting_actors({"num_gpus": 1, "num_cpus": 4}, {"CPU": 16, "GPU": 8})
    (8, 4)
    >>> fitting_actors({"num_gpus": 1}, {"CPU": 2.0}), fitting_actors({"num_cpus": 0}, {"CPU": 2.0})
    (0, 1)
    >>> fitting_actors({"num_cpus": 0.1}, {"CPU": 0.3})  # not 2.9999...
    3
    """
    counts = [
        math.floor(cluster.get(RAY_OPTIONS.get(key, key), 0.0) / amount + 1e-9)
        for key, amount in resources.items()
        if amount > 0
    ]
    return min(counts) if counts else 1


def ray_actor_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray ``.options()`` for the resources: ``num_cpus``/``num_gpus``/``memory`` as themselves, any other name
    as a custom resource.

    >>> ray_actor_options({"num_gpus": 1, "num_cpus": 2, "memory": 2e9, "A100": 1})
    {'num_gpus': 1.0, 'num_cpus': 2.0, 'memory': 2000000000, 'resources': {'A100': 1.0}}
    """
    options: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for key, amount in resources.items():
        if key == "memory":
            options[key] = int(amount)
        elif key in RAY_OPTIONS:
            options[key] = float(amount)
        else:
            custom[key] = float(amount)
    if custom:
        options["resources"] = custom
    return options


def describe_resources(resources: Mapping[str, float]) -> str:
    """``num_gpus=1, num_cpus=4`` (for messages).

    >>> describe_resources({"num_gpus": 1.0, "num_cpus": 0.25})
    'num_gpus=1, num_cpus=0.25'
    """
    return ", ".join(f"{k}={v:g}" for k, v in resources.items())


# -- the actor ------------------------------------------------------------------------------------------------------
class GeneratorWorker:
    """The body of one Ray actor: one generator instance, loaded once, serving calls.

    A failure to build the generator is kept and raised by :meth:`info`, so the driver sees the generator's own
    error (a bad option or model path is one line, as with the local executor) instead of a dead actor.
    """

    def __init__(self, generator_class: type, options: Mapping[str, Any]) -> None:
        self.error: BaseException | None = None
        self.generator: Any = None
        started = time.perf_counter()
        try:
            self.generator = generator_class(**dict(options))
        except Exception as exc:
            self.error = exc
        self.load_s = time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        """Where this actor runs (process, node, GPUs) and how long loading took.

        Raises:
            Exception: the generator's own error when it could not be built.
        """
        if self.error is not None:
            raise self.error
        import ray

        context = ray.get_runtime_context()
        gpus = context.get_accelerator_ids().get("GPU", [])
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_ip": ray.util.get_node_ip_address(),
            "gpus": [str(g) for g in gpus],
            "load_s": round(self.load_s, 3),
        }

    def generate(self, prefix: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """One generation; ``{"video", "seconds"}`` or, for a :class:`GenerationError`, ``{"error", "seconds"}``
        (any other exception propagates, as it would locally)."""
        started = time.perf_counter()
        if self.error is not None:
            return {"error": f"generator could not be loaded: {self.error}", "seconds": 0.0}
        # Object-store arrays are read-only views; a generator may expect the writable array a local call gets.
        prefix = prefix if prefix.flags.writeable else prefix.copy()
        try:
            video = self.generator.generate(GenerationRequest(prefix=prefix, **fields))
        except GenerationError as exc:
            return {"error": str(exc), "seconds": time.perf_counter() - started}
        return {"video": video, "seconds": time.perf_counter() - started}


@dataclass(frozen=True)
class CallTiming:
    """Timings of one call, seen from the driver.

    Attributes:
        label: The caller's label (scenario, loop, seed).
        actor: Index of the actor that served it.
        wait_s: Seconds waiting for a free actor.
        remote_s: Seconds inside the generator, measured on the actor.
        total_s: Seconds from sending the call to having its frames (``total_s - remote_s`` is the
            orchestration overhead: scheduling, transfer, serialisation).
    """

    label: str
    actor: int
    wait_s: float
    remote_s: float
    total_s: float


def _cause(error: BaseException) -> BaseException:
    """The actor's own exception inside Ray's wrapper (when Ray could carry it over)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


class RayGeneratorPool:
    """A :class:`agent.pool.GeneratorPool` of Ray actors, each holding one loaded generator and its resources.

    Args:
        generator_class: The generator class (from the ``GENERATORS`` registry; importable on every node).
        options: Constructor options.
        workers: Actors; default as many as the cluster's resources hold (at least 1).
        resources: Per-actor resources (``num_gpus``, ``num_cpus``, ``memory``, custom names) and
            ``max_concurrency`` (calls per actor at once; only for generators declared concurrent-safe).
        prefix_cache: Prefix clips kept in the object store at once (one per scenario in flight).

    Every actor is started and its generator loaded here, before anything runs, so a model that cannot be
    loaded stops the run at once.

    Raises:
        RayUnavailable: the cluster cannot hold one actor with these resources, or fewer than ``workers``.
        SettingsError: ``max_concurrency`` above 1 for a generator not declared safe for concurrent calls.
    """

    def __init__(
        self,
        generator_class: type,
        options: Mapping[str, Any],
        workers: int | None = None,
        resources: Mapping[str, float] | None = None,
        prefix_cache: int = 8,
    ) -> None:
        ray = _ray()
        requested = dict(resources or {})
        self.concurrent_safe = is_concurrent_safe(generator_class)
        self.per_actor = int(requested.get("max_concurrency", 1))
        self.name = str(getattr(generator_class, "name", generator_class.__name__))
        if self.per_actor > 1 and not self.concurrent_safe:
            raise SettingsError(
                f"--generator-resources max_concurrency={self.per_actor}: generator {self.name} is not declared "
                "safe for concurrent calls; each actor serves one call at a time"
            )
        cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
        self.resources = actor_resources(requested, generator_class, cluster)
        fits = fitting_actors(self.resources, cluster)
        have = ", ".join(f"{k}={v:g}" for k, v in sorted(cluster.items()) if not k.startswith("node:"))
        if fits < 1 or (workers is not None and workers > fits):
            wanted = f"{workers} actor(s)" if workers else "one actor"
            raise RayUnavailable(
                f"--generator-resources {describe_resources(self.resources)}: the Ray cluster holds {fits} "
                f"actor(s) with these resources, {wanted} requested (cluster resources: {have})"
            )
        count = workers or fits
        self.prefix_cache = max(1, prefix_cache)
        tag = uuid.uuid4().hex[:8]
        self.actor_names = [f"physrefine-generator-{tag}-{i}" for i in range(count)]
        remote = ray.remote(concurrency_groups={"info": 1})(GeneratorWorker)
        base = ray_actor_options(self.resources)
        self._actors = [
            remote.options(
                **base,
                name=name,
                namespace=NAMESPACE,
                max_concurrency=self.per_actor,
                max_restarts=MAX_RESTARTS,
                max_task_retries=MAX_TASK_RETRIES,
            ).remote(generator_class, dict(options))
            for name in self.actor_names
        ]
        logger.info("ray: starting %d generator actor(s) with %s", count, describe_resources(self.resources))
        try:
            self.actor_info: list[dict[str, Any]] = ray.get([self._info_ref(i) for i in range(count)])
        except Exception as exc:
            self.close()
            raise _cause(exc) from None
        self.capacity = count * self.per_actor
        # Slot s is served by actor s % count: the first picks go to different actors.
        self._slot_actor = [s % count for s in range(self.capacity)]
        self._cond = threading.Condition()
        self._idle: deque[int] = deque(range(self.capacity))
        self._dead: set[int] = set()
        self._busy: dict[int, str] = {}
        self._calls = [0] * self.capacity
        self._busy_s = [0.0] * self.capacity
        self._waiting = 0
        self._timings: list[CallTiming] = []
        self._prefixes: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._prefix_lock = threading.Lock()
        #: Prefix clips put in the object store so far (one per scenario while its threads run).
        self.prefix_puts = 0

    def _info_ref(self, actor: int) -> Any:
        # Its own concurrency group: answered even while the actor is generating.
        return self._actors[actor].info.options(concurrency_group="info").remote()

    # -- the wire -------------------------------------------------------------------------------------------------
    def _prefix_ref(self, prefix: Any) -> Any:
        """The object-store copy of a prefix clip, put once per scenario.

        Keyed by the array's identity (the scene store loads each prefix once and keeps it); the cache holds
        the array itself, so its ``id`` cannot be reused by another array while the entry lives.
        """
        ray = _ray()
        key = id(prefix)
        # One lock around the put too: a scenario's seeds ask at the same moment, and must share one copy.
        with self._prefix_lock:
            entry = self._prefixes.get(key)
            if entry is not None and entry[0] is prefix:
                self._prefixes.move_to_end(key)
                return entry[1]
            ref = ray.put(prefix)
            self.prefix_puts += 1
            self._prefixes[key] = (prefix, ref)
            while len(self._prefixes) > self.prefix_cache:
                self._prefixes.popitem(last=False)  # dropping the reference frees the object-store copy
            return ref

    def _acquire(self, label: str) -> int:
        with self._cond:
            self._waiting += 1
            try:
                while not self._idle:
                    if len(self._dead) == len(self._actors):
                        raise GenerationError(
                            f"ray: every generator actor died ({len(self._actors)} actor(s), each restarted up "
                            f"to {MAX_RESTARTS} times)"
                        )
                    self._cond.wait()
            finally:
                self._waiting -= 1
            slot = self._idle.popleft()
            self._busy[slot] = label or "busy"
            return slot

    def _release(self, slot: int, remote_s: float) -> None:
        with self._cond:
            del self._busy[slot]
            self._calls[slot] += 1
            self._busy_s[slot] += remote_s
            if self._slot_actor[slot] not in self._dead:
                self._idle.append(slot)
            self._cond.notify_all()

    def generate(self, request: GenerationRequest, label: str = "") -> GeneratedVideo:
        """Run ``request`` on a free actor (blocking until one is free), return its video.

        Raises:
            GenerationError: the generator's own, or the actor died more often than Ray retries a call.
        """
        ray = _ray()
        queued = time.perf_counter()
        slot = self._acquire(label)
        actor = self._slot_actor[slot]
        sent = time.perf_counter()
        remote_s = 0.0
        try:
            fields = {
                "fps": request.fps,
                "prompt": request.prompt,
                "seed": request.seed,
                "num_frames": request.num_frames,
                "mode": request.mode,
                "negative_prompt": request.negative_prompt,
                "context": dict(request.context),
            }
            ref = self._actors[actor].generate.remote(self._prefix_ref(request.prefix), fields)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None  # the generator's own exception, as a local call raises it
            except ray.exceptions.RayActorError as exc:
                if isinstance(exc, ray.exceptions.ActorDiedError):
                    with self._cond:
                        self._dead.add(actor)
                        self._cond.notify_all()
                raise GenerationError(
                    f"ray: generator actor {actor} died during the call, {MAX_TASK_RETRIES} retries spent "
                    f"({_first_line(exc)})"
                ) from None
            remote_s = float(result["seconds"])
            total_s = time.perf_counter() - sent
            with self._cond:
                self._timings.append(CallTiming(label, actor, sent - queued, remote_s, total_s))
            if "error" in result:
                raise GenerationError(result["error"])
            video: GeneratedVideo = result["video"]
            return video
        finally:
            self._release(slot, remote_s)

    # -- the protocol's views -------------------------------------------------------------------------------------
    def _device(self, actor: int) -> str:
        info = self.actor_info[actor]
        gpus = f" GPU {','.join(info['gpus'])}" if info["gpus"] else ""
        dead = " (dead)" if actor in self._dead else ""
        return f"actor {actor} @ {info['host']}{gpus}{dead}"

    def slots(self) -> list[Slot]:
        """One entry per slot (an actor, or one of its concurrent calls): where, current call, calls, seconds."""
        with self._cond:
            return [
                Slot(
                    index=s,
                    device=self._device(self._slot_actor[s]),
                    busy=self._busy.get(s, ""),
                    calls=self._calls[s],
                    busy_s=round(self._busy_s[s], 3),
                )
                for s in range(self.capacity)
            ]

    def waiting(self) -> int:
        """Calls waiting for a free actor."""
        with self._cond:
            return self._waiting

    def timings(self) -> list[CallTiming]:
        """Every finished call's timings, in the order they finished."""
        with self._cond:
            return list(self._timings)

    def uses_gpus(self) -> bool:
        """Whether each actor holds GPUs (its busy seconds are GPU-seconds)."""
        return self.resources.get("num_gpus", 0) > 0

    def close(self) -> None:
        """Stop the actors (their models are freed with their processes) and drop the prefix clips."""
        ray = _ray()
        for handle in getattr(self, "_actors", []):
            try:
                ray.kill(handle, no_restart=True)
            except Exception as exc:  # already gone: nothing to free
                logger.debug("ray: kill: %s", exc)
        self._actors = []
        if hasattr(self, "_prefixes"):
            with self._prefix_lock:
                self._prefixes.clear()


# -- the executor ---------------------------------------------------------------------------------------------------
class RayExecutor:
    """Scenarios in driver threads, generation on a :class:`RayGeneratorPool`.

    Connects to (or starts) Ray when built, so an unreachable ``--ray-address`` stops the run before its
    directory exists. Without an explicit ``jobs``, twice as many generations are kept in flight as the
    actors serve at once, so that each scenario's critique and rewrite overlap other scenarios' generation.
    """

    name = "ray"

    def __init__(self, limits: RunLimits) -> None:
        self.limits = limits
        self.jobs = limits.jobs
        self._connected = connect(limits.ray_address)
        self.pool: RayGeneratorPool | None = None

    def generator_pool(
        self, generator_class: type, options: Mapping[str, Any], seeds: int
    ) -> RayGeneratorPool:
        explicit = "jobs" in self.limits.model_fields_set
        self.pool = RayGeneratorPool(
            generator_class,
            options,
            workers=self.limits.generator_workers,
            resources=self.limits.generator_resources,
        )
        if not explicit:
            self.jobs = min(64, max(1, math.ceil(2 * self.pool.capacity / max(seeds, 1))))
        self.pool.prefix_cache = 2 * self.jobs + 2  # a scenario's two threads share its prefix
        logger.info(
            "ray: %d actor(s), %d call(s) at once, %d scenario(s) in flight",
            len(self.pool.actor_names),
            self.pool.capacity,
            self.jobs,
        )
        return self.pool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """The scenarios in ``jobs`` threads. Ray's driver prints cluster events (a worker died, a call is
        retried) on stdout; during the run they go to stderr, so that stdout stays the caller's
        (``refine --json`` prints one JSON object there)."""
        from agent.executors import threaded_map

        with contextlib.redirect_stdout(sys.stderr):
            return threaded_map(fn, items, self.jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._connected:
            _ray().shutdown()
            self._connected = False


__all__ = [
    "MAX_RESTARTS",
    "MAX_TASK_RETRIES",
    "NAMESPACE",
    "CallTiming",
    "GeneratorWorker",
    "RayExecutor",
    "RayGeneratorPool",
    "RayUnavailable",
    "actor_resources",
    "connect",
    "fitting_actors",
    "probe",
    "ray_actor_options",
    "tcp_endpoint",
]
