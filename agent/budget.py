"""Run limits (VLM tokens, cost, wall clock, worker threads) and the VLM usage meter that enforces them.

Limits are not part of :class:`~agent.runs.RunConfig`: they decide *when* a run stops, not *what* it
computes, so a run stopped by a budget resumes when rerun with a larger one. Usage is persisted in the run
directory (``usage.json``) and therefore counts across resumed invocations.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.vlm.base import VLM, Message, VLMReply, VLMUnavailable

#: Rough tokens per image when a backend does not report usage (a 512 px tile in common VLM APIs).
IMAGE_TOKENS_ESTIMATE = 256
#: Characters per token for the estimate when a backend does not report usage (English text, BPE).
CHARS_PER_TOKEN = 4


class RunLimits(BaseModel):
    """When to stop and where to run: limits, concurrency and devices (saved as ``limits.json`` per invocation).

    None of these change what a run computes, so a rerun may change them and resume.

    Attributes:
        max_vlm_tokens: Stop once the VLM used this many tokens (prompt + completion) in the whole run.
        max_cost_usd: Stop once the VLM's estimated cost reaches this.
        time_limit_s: Stop once this invocation ran this many seconds (wall clock).
        jobs: Scenarios refined concurrently (threads); results do not depend on it.
        devices: One generator instance per entry (``cuda:0``, ``cuda:1``, ...); empty = the generator's own
            default device (one instance).
        generator_workers: Generator instances (or Ray actors); default one per device. A generator declared
            safe for concurrent calls shares one instance between this many callers.
        executor: ``local``: scenario threads and generator instances in this process.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_vlm_tokens: int | None = Field(default=None, gt=0)
    max_cost_usd: float | None = Field(default=None, gt=0)
    time_limit_s: float | None = Field(default=None, gt=0)
    jobs: int = Field(default=1, ge=1, le=64)
    devices: list[str] = Field(default_factory=list)
    generator_workers: int | None = Field(default=None, ge=1, le=1024)
    executor: Literal["local"] = "local"


class UsageMeter:
    """Thread-safe running totals of VLM usage, persisted to ``path`` after every call.

    Backends that report no token counts get an estimate (characters / 4, plus a fixed count per image);
    calls counted that way are reported as ``estimated_calls``.

    >>> import tempfile, pathlib
    >>> meter = UsageMeter(pathlib.Path(tempfile.mkdtemp()) / "usage.json")
    >>> meter.add(VLMReply("ok", "m", prompt_tokens=10, completion_tokens=2, cost_usd=0.01), [])
    {'prompt_tokens': 10, 'completion_tokens': 2, 'estimated': False}
    >>> meter.snapshot()["tokens"], meter.snapshot()["cost_usd"]
    (12, 0.01)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {
            "calls": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "estimated_calls": 0,
            "unpriced_calls": 0,
        }
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            self._data.update({k: stored[k] for k in self._data if k in stored})

    def add(self, reply: VLMReply, messages: Sequence[Message]) -> dict[str, Any]:
        """Count one reply (estimating tokens from ``messages`` when the backend reported none).

        Returns:
            What was counted for this call: ``prompt_tokens``, ``completion_tokens`` and ``estimated``.
        """
        prompt, completion = int(reply.prompt_tokens), int(reply.completion_tokens)
        estimated = prompt == 0 and completion == 0
        if estimated:
            chars = sum(len(m.text) for m in messages)
            prompt = chars // CHARS_PER_TOKEN + IMAGE_TOKENS_ESTIMATE * sum(len(m.images) for m in messages)
            completion = len(reply.text) // CHARS_PER_TOKEN
        with self._lock:
            self._data["calls"] += 1
            self._data["prompt_tokens"] += prompt
            self._data["completion_tokens"] += completion
            self._data["estimated_calls"] += int(estimated)
            if reply.cost_usd is None:
                self._data["unpriced_calls"] += 1
            else:
                self._data["cost_usd"] = round(self._data["cost_usd"] + float(reply.cost_usd), 6)
            tmp = self.path.with_suffix(".json.part")
            tmp.write_text(json.dumps(self._data, indent=2, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)  # atomic: a crash keeps the previous totals
        return {"prompt_tokens": prompt, "completion_tokens": completion, "estimated": estimated}

    def snapshot(self) -> dict[str, Any]:
        """Totals so far: calls, prompt/completion tokens, ``tokens``, ``cost_usd`` and estimate counts."""
        with self._lock:
            data = dict(self._data)
        data["tokens"] = data["prompt_tokens"] + data["completion_tokens"]
        return data


# The scenario whose graph node is calling the VLM right now (set by agent.graph around each node), so that
# calls of scenarios refined concurrently (--jobs) can be told apart in the trace. A ContextVar, not a
# thread-local attribute: each graph step runs its node in one thread, and the VLM call is made inside it.
_SCENARIO: ContextVar[int | None] = ContextVar("physrefine_scenario", default=None)


@contextmanager
def scenario_scope(take1_id: int) -> Iterator[None]:
    """Attribute the VLM calls made inside the block to the scenario ``take1_id`` (its take-1 row ID)."""
    token = _SCENARIO.set(int(take1_id))
    try:
        yield
    finally:
        _SCENARIO.reset(token)


def call_event(
    reply: VLMReply,
    messages: Sequence[Message],
    counted: Mapping[str, Any],
    json_schema: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The trace event of one VLM call: accounting only, never message text, reply text or backend options.

    ``take1_id`` is the scenario whose node made the call (``None`` outside :func:`scenario_scope`),
    ``schema`` (the title of the requested JSON schema) says which role asked, and ``turn`` counts the user
    messages of the conversation (2 for a repair turn), so calls can be told apart without their text.
    ``base_url`` and the rest of the reply's metadata are left out: a URL may carry credentials.

    >>> reply = VLMReply("{}", "m", prompt_tokens=10, completion_tokens=2, cost_usd=1e-5)
    >>> counted = {"prompt_tokens": 10, "completion_tokens": 2, "estimated": False}
    >>> event = call_event(reply, [Message("user", "secret words")], counted, {"title": "Critique"})
    >>> event["schema"], event["turn"], event["prompt_tokens"], event["cost_usd"], "secret" in str(event)
    ('Critique', 1, 10, 1e-05, False)
    """
    latency = reply.metadata.get("latency_s")
    return {
        "node": "vlm_call",
        "take1_id": _SCENARIO.get(),
        "model": reply.model,
        "schema": str(json_schema.get("title", "")) if json_schema else "",
        "turn": sum(m.role == "user" for m in messages),
        "prompt_tokens": int(counted["prompt_tokens"]),
        "completion_tokens": int(counted["completion_tokens"]),
        "cost_usd": None if reply.cost_usd is None else round(float(reply.cost_usd), 8),
        "estimated": bool(counted["estimated"]),
        "images": sum(len(m.images) for m in messages),
        "latency_s": float(latency) if isinstance(latency, int | float) else None,
    }


class BackendDown(RuntimeError):
    """The VLM backend became unusable during the run (refused credentials, or several consecutive
    connection failures): the run stops like a budget stop and resumes when rerun. Not retried."""


class BackendGate:
    """Trips when the VLM backend is unusable: at once on an auth error, or after ``max_failures`` consecutive
    connection failures (a reply of any kind resets the count). Thread-safe; once tripped it stays tripped.

    >>> from agent.vlm.base import VLMUnavailable
    >>> gate = BackendGate(max_failures=2)
    >>> gate.failure(VLMUnavailable("down", "connection", "http://h/v1")), gate.reason
    (False, '')
    >>> gate.failure(VLMUnavailable("down", "connection", "http://h/v1")), gate.reason
    (True, 'backend: http://h/v1: 2 consecutive connection failures (down)')
    """

    def __init__(self, max_failures: int = 3) -> None:
        self.max_failures = max_failures
        self.reason = ""
        self._consecutive = 0
        self._lock = threading.Lock()

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0

    def failure(self, error: VLMUnavailable) -> bool:
        """Count a failure; ``True`` when the gate is (now) tripped."""
        with self._lock:
            if self.reason:
                return True
            if error.kind == "auth":
                self.reason = f"backend: {error.endpoint}: credentials refused ({error})"
            else:
                self._consecutive += 1
                if self._consecutive >= self.max_failures:
                    self.reason = f"backend: {error.endpoint}: {self._consecutive} consecutive connection failures ({error})"
            return bool(self.reason)


class MeteredVLM:
    """A :class:`VLM` that reports every reply to a :class:`UsageMeter` (the agent never sees the difference).

    Args:
        vlm: The backend.
        meter: The run's usage totals.
        trace: Optional callback (the run's ``trace.jsonl``) receiving one :func:`call_event` per reply, so
            each call's tokens and cost can be audited, not only the totals.
    """

    def __init__(
        self,
        vlm: VLM,
        meter: UsageMeter,
        trace: Callable[[dict[str, Any]], None] | None = None,
        gate: BackendGate | None = None,
    ) -> None:
        self.vlm = vlm
        self.meter = meter
        self.trace = trace
        self.gate = gate or BackendGate()
        self.name = getattr(vlm, "name", type(vlm).__name__)

    def check(self) -> str:
        """The backend's own pre-run check, when it has one."""
        check = getattr(self.vlm, "check", None)
        return str(check()) if check is not None else "no check for this backend"

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Forward to the wrapped backend, count the reply and trace the call.

        Raises:
            BackendDown: The gate tripped (now or earlier): the backend is not asked at all.
        """
        if self.gate.reason:
            raise BackendDown(self.gate.reason)
        try:
            reply = self.vlm.chat(messages, json_schema=json_schema)
        except VLMUnavailable as exc:
            if self.gate.failure(exc):
                raise BackendDown(self.gate.reason) from exc
            raise
        self.gate.success()
        counted = self.meter.add(reply, messages)
        if self.trace is not None:
            self.trace(call_event(reply, messages, counted, json_schema))
        return reply


class Budget:
    """Checks the limits; :meth:`exhausted` names the first one reached (``""`` while within all).

    Args:
        limits: The limits.
        meter: VLM usage of the whole run.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        limits: RunLimits,
        meter: UsageMeter,
        clock: Any = time.monotonic,
        gate: BackendGate | None = None,
    ) -> None:
        self.limits = limits
        self.meter = meter
        self.clock = clock
        self.gate = gate
        self.started = clock()

    def elapsed(self) -> float:
        """Seconds since this invocation started."""
        return float(self.clock() - self.started)

    def exhausted(self) -> str:
        """The reason to stop now, or ``""``."""
        if self.gate is not None and self.gate.reason:
            return self.gate.reason
        usage = self.meter.snapshot()
        limits = self.limits
        if limits.max_vlm_tokens is not None and usage["tokens"] >= limits.max_vlm_tokens:
            return f"max_vlm_tokens: {usage['tokens']} token(s) used, limit {limits.max_vlm_tokens}"
        if limits.max_cost_usd is not None and usage["cost_usd"] >= limits.max_cost_usd:
            return f"max_cost_usd: ${usage['cost_usd']:.4f} spent, limit ${limits.max_cost_usd:.4f}"
        if limits.time_limit_s is not None:
            elapsed = self.elapsed()
            if elapsed >= limits.time_limit_s:
                return f"time_limit: {elapsed:.1f} s elapsed, limit {limits.time_limit_s:g} s"
        return ""


__all__ = ["BackendDown", "BackendGate", "Budget", "MeteredVLM", "RunLimits", "UsageMeter", "call_event"]
