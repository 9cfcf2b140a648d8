"""Building a run's backends from its configuration: the reasoner (VLM or offline critic) and the generator.

Everything here happens before the run directory is created, so a typo in a backend name or option, or a
model that cannot be loaded, stops the run without leaving anything behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.budget import BackendGate, MeteredVLM, UsageMeter
from agent.prompting import PromptSet
from agent.reasoning import Reasoner
from agent.runs import RunConfig


def parse_options(raw: dict[str, str]) -> dict[str, Any]:
    """CLI ``KEY=VALUE`` strings to Python values (JSON where it parses: numbers, booleans, lists).

    >>> parse_options({"steps": "30", "name": "wan", "flag": "true"})
    {'steps': 30, 'name': 'wan', 'flag': True}
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_reasoner(
    config: RunConfig,
    prompts: PromptSet,
    meter: UsageMeter | None = None,
    trace: Callable[[dict[str, Any]], None] | None = None,
    gate: BackendGate | None = None,
) -> Reasoner:
    """``offline`` -> the motion-grounded critic; any other name -> ``VLMS`` backend through templates.

    With a ``meter``, every VLM reply is counted (tokens, cost) for the run's budgets and progress display,
    and with a ``trace`` too, each call's tokens and cost become a ``vlm_call`` event of the run's trace.
    """
    if config.vlm == "offline":
        from agent.offline import OfflineReasoner

        return OfflineReasoner(prompts)
    from agent.reasoning import VLMReasoner
    from agent.vlm import VLMS

    vlm = VLMS.resolve(config.vlm)(**parse_options(config.vlm_options))
    if meter is not None:
        vlm = MeteredVLM(vlm, meter, trace, gate)
    return VLMReasoner(vlm, prompts, grounding=config.grounding)


def check_reasoner(reasoner: Reasoner) -> str:
    """Before anything is generated: ask the reasoner's VLM backend (when it has a check) whether it can work.

    Raises:
        agent.vlm.base.VLMError: The endpoint, the key or the model is wrong (one line naming the option).
    """
    vlm = getattr(reasoner, "vlm", None)
    check = getattr(vlm, "check", None)
    return str(check()) if check is not None else "nothing to check"


def generator_id(config: RunConfig) -> str:
    """Generator name and options: part of every attempt's content hash (devices are not: they do not change
    what is generated)."""
    return json.dumps([config.generator, config.generator_options], sort_keys=True)


__all__ = ["build_reasoner", "check_reasoner", "generator_id", "parse_options"]
