"""Generator pools: the graph borrows a generator instance for one call and gives it back.

A diffusers pipeline keeps per-call state on itself and its scheduler (``set_timesteps``, ``_step_index``,
``_guidance_scale`` ...), so two overlapping calls on one instance corrupt each other's denoising, and two
14B denoising loops on one GPU run out of memory. So every instance of a generator that is not declared
safe for concurrent calls (``concurrent_safe = True`` on its class) serves one call at a time: the pool owns
one instance per device slot and a caller waits until one is free. Generators that are safe (the offline
physics prior, ``static``, ``folder``, ``command``) share one instance and are called concurrently.

:class:`LocalGeneratorPool` runs the instances in this process; other executors implement the same
:class:`GeneratorPool` protocol (one Ray actor per slot).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from generators.base import GeneratedVideo, GenerationRequest, Generator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    """What one pool slot is doing now, for the live display.

    Attributes:
        index: Slot number.
        device: The device its instance runs on (``""`` when the generator takes none).
        busy: Label of the call in progress (scenario, loop, seed), ``""`` when idle.
        calls: Calls served so far.
        busy_s: Seconds spent generating so far.
    """

    index: int
    device: str
    busy: str
    calls: int
    busy_s: float


class GeneratorPool(Protocol):
    """Serves generation requests on a fixed set of generator instances."""

    #: How many calls can run at the same time.
    capacity: int

    def generate(self, request: GenerationRequest, label: str = "") -> GeneratedVideo:
        """Run one request on a free instance (waiting for one), return its video.

        Raises:
            generators.base.GenerationError: The generator could not produce the continuation.
        """
        ...

    def slots(self) -> list[Slot]:
        """What each slot is doing (for progress displays)."""
        ...

    def waiting(self) -> int:
        """Calls waiting for a free slot."""
        ...

    def close(self) -> None:
        """Release the instances."""
        ...


def is_concurrent_safe(generator_class: type) -> bool:
    """Whether a generator class declares its instances safe to call from several threads at once.

    Undeclared means unsafe: a new backend is serialised until its author says otherwise.

    >>> class Pipeline: pass
    >>> class Prior: concurrent_safe = True
    >>> is_concurrent_safe(Pipeline), is_concurrent_safe(Prior)
    (False, True)
    """
    return bool(getattr(generator_class, "concurrent_safe", False))


def takes_device(generator_class: type) -> bool:
    """Whether the generator's constructor accepts a ``device`` option (the diffusers backends do)."""
    options = getattr(generator_class, "options_class", None)
    if options is not None and "device" in getattr(options, "model_fields", {}):
        return True
    try:
        parameters = inspect.signature(generator_class).parameters
    except (TypeError, ValueError):
        return False
    return "device" in parameters


def parse_devices(devices: str | None, count: int | None) -> list[str]:
    """The device of each pool slot from ``--device A,B`` or ``--devices N``; ``[]`` = the generator's own.

    Raises:
        ValueError: both given, or an empty entry.

    >>> parse_devices("cuda:0,cuda:1", None), parse_devices(None, 3), parse_devices(None, None)
    (['cuda:0', 'cuda:1'], ['cuda:0', 'cuda:1', 'cuda:2'], [])
    """
    if devices and count:
        raise ValueError("give either --device A,B,... or --devices N, not both")
    if count:
        return [f"cuda:{i}" for i in range(count)]
    if not devices:
        return []
    names = [d.strip() for d in devices.split(",")]
    if any(not d for d in names):
        raise ValueError(f"--device: empty device name in {devices!r} (expected e.g. cuda:0,cuda:1)")
    return names


class LocalGeneratorPool:
    """Generator instances in this process, one call per instance at a time unless the class says otherwise.

    Args:
        generator_class: The generator class (from the ``GENERATORS`` registry).
        options: Constructor options.
        devices: The device of each instance (``""`` = the generator's default); an unsafe generator gets one
            instance per slot, slots going round the devices. A concurrent-safe generator gets one shared
            instance on the first device, called by up to ``workers`` callers at once.
        workers: Slots (calls at once); default one per device.
        factory: Builds one instance from ``(options, device)``; default calls ``generator_class``.

    Instances are built here, before anything runs, so a model that cannot be loaded stops the run at once.
    """

    def __init__(
        self,
        generator_class: type,
        options: Mapping[str, Any],
        devices: Sequence[str] = ("",),
        workers: int | None = None,
        factory: Callable[[Mapping[str, Any], str], Generator] | None = None,
    ) -> None:
        devices = list(devices) or [""]
        self.concurrent_safe = is_concurrent_safe(generator_class)
        uses_device = takes_device(generator_class)
        if any(devices) and not uses_device:
            logger.info("generator %s takes no device option; devices ignored", generator_class.__name__)
            devices = [""]
        self.capacity = workers or len(devices)
        build = factory or _default_factory(generator_class, uses_device)
        self._slot_devices = [devices[i % len(devices)] for i in range(self.capacity)]
        if self.concurrent_safe:
            self._instances = [build(options, devices[0])]
        else:
            self._instances = [build(options, device) for device in self._slot_devices]
        self._limit = threading.BoundedSemaphore(self.capacity)  # calls at once, whatever the generator
        self._free = list(range(len(self._instances)))[::-1]  # idle instances (unsafe generators)
        self._lock = threading.Lock()
        self._busy: dict[int, str] = {}
        self._calls = [0] * self.capacity
        self._busy_s = [0.0] * self.capacity
        self._waiting = 0
        self.name = getattr(self._instances[0], "name", generator_class.__name__)

    @classmethod
    def of(cls, generator: Generator, workers: int | None = None) -> LocalGeneratorPool:
        """A pool around one already built instance (its class decides whether calls may overlap)."""
        return cls(type(generator), {}, workers=workers, factory=lambda _options, _device: generator)

    @property
    def instances(self) -> list[Generator]:
        """The generator instances (one per slot, or the one shared instance)."""
        return list(self._instances)

    @contextmanager
    def _borrow(self, label: str) -> Iterator[Generator]:
        with self._lock:
            self._waiting += 1
        self._limit.acquire()
        try:
            with self._lock:
                self._waiting -= 1
                if self.concurrent_safe:  # one shared instance; the slot only tracks the call for display
                    slot = next(i for i in range(self.capacity) if i not in self._busy)
                    instance = self._instances[0]
                else:  # the semaphore guarantees an idle instance: there is one per slot
                    slot = self._free.pop()
                    instance = self._instances[slot]
                self._busy[slot] = label or "busy"
            started = time.perf_counter()
            try:
                yield instance
            finally:
                with self._lock:
                    del self._busy[slot]
                    self._calls[slot] += 1
                    self._busy_s[slot] += time.perf_counter() - started
                    if not self.concurrent_safe:
                        self._free.append(slot)
        finally:
            self._limit.release()

    def generate(self, request: GenerationRequest, label: str = "") -> GeneratedVideo:
        """Run ``request`` on an idle instance (blocking until one is idle)."""
        with self._borrow(label) as instance:
            return instance.generate(request)

    def slots(self) -> list[Slot]:
        """One entry per slot: device, current call, calls served, seconds busy."""
        with self._lock:
            return [
                Slot(
                    index=i,
                    device=self._slot_devices[i],
                    busy=self._busy.get(i, ""),
                    calls=self._calls[i],
                    busy_s=round(self._busy_s[i], 3),
                )
                for i in range(self.capacity)
            ]

    def waiting(self) -> int:
        """Calls waiting for a slot."""
        with self._lock:
            return self._waiting

    def close(self) -> None:
        """Drop the instances (their memory is freed when nothing else holds them)."""
        self._instances = []


def _default_factory(
    generator_class: type, uses_device: bool
) -> Callable[[Mapping[str, Any], str], Generator]:
    def build(options: Mapping[str, Any], device: str) -> Generator:
        kwargs = dict(options)
        if uses_device and device:
            kwargs["device"] = device
        instance: Generator = generator_class(**kwargs)
        return instance

    return build


__all__ = [
    "GeneratorPool",
    "LocalGeneratorPool",
    "Slot",
    "is_concurrent_safe",
    "parse_devices",
    "takes_device",
]
