"""Executors: where a run's scenarios and generations run.

The driver always runs the scenarios' LangGraph threads (they mostly wait on the VLM and the generator) and
is the single writer of the checkpoints, the trace and the usage file. The executor decides how many
scenarios are in flight and which :class:`~agent.pool.GeneratorPool` serves the generations:

- ``local``: worker threads in this process and a :class:`~agent.pool.LocalGeneratorPool`;
- ``ray``: the same threads, and a pool of Ray actors (``agent.ray_pool``), each holding one loaded generator
  and its resources (a GPU), on this machine or a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from agent.budget import RunLimits
from agent.pool import GeneratorPool, LocalGeneratorPool, is_concurrent_safe

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a run's scenarios and owns its generator pool."""

    name: str

    def generator_pool(self, generator_class: type, options: Mapping[str, Any], seeds: int) -> GeneratorPool:
        """Build (and load) the run's generator pool."""
        ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, several in flight; results in the order of ``items``."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Scenarios in ``limits.jobs`` threads, generator instances in this process.

    Threads, not processes: generation (numpy/pymunk/torch/codecs) and VLM requests release the GIL, so one
    scenario's VLM calls overlap another's generation. Results are collected in input order, so they do not
    depend on the number of workers.
    """

    name = "local"

    def __init__(self, limits: RunLimits) -> None:
        self.limits = limits

    def generator_pool(self, generator_class: type, options: Mapping[str, Any], seeds: int) -> GeneratorPool:
        devices = list(self.limits.devices) or [""]
        workers = self.limits.generator_workers
        if workers is None and is_concurrent_safe(generator_class):
            workers = self.limits.jobs * seeds  # every caller at once: nothing to protect
        return LocalGeneratorPool(generator_class, options, devices, workers)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self.limits.jobs == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.limits.jobs, thread_name_prefix="refine") as pool:
            return list(pool.map(fn, items))

    def close(self) -> None:
        pass


def make_executor(limits: RunLimits) -> Executor:
    """The executor ``limits.executor`` names."""
    return LocalExecutor(limits)


__all__ = ["Executor", "LocalExecutor", "make_executor"]
