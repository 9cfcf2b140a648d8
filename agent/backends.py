"""Building a run's backends from its configuration: the reasoner (VLM or offline critic) and the generator.

Everything here happens before the run directory is created, so a typo in a backend name or option, or a
model that cannot be loaded, stops the run without leaving anything behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agent.budget import BackendGate, MeteredVLM, UsageMeter
from agent.prompting import PromptSet
from agent.reasoning import Reasoner
from agent.runs import RunConfig
from agent.views import ViewOptions
from generators.base import DEFAULT_PROMPT_STYLE, PromptStyle
from physics_iq.registry import BackendOptionError


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
    style: PromptStyle = DEFAULT_PROMPT_STYLE,
) -> Reasoner:
    """``offline`` -> the motion-grounded critic; any other name -> ``VLMS`` backend through templates.

    With a ``meter``, every VLM reply is counted (tokens, cost) for the run's budgets and progress display,
    and with a ``trace`` too, each call's tokens and cost become a ``vlm_call`` event of the run's trace.
    ``style`` is what the run's generator reads best (prompt length, negative prompt), and
    ``config.view_options`` what a critique shows (:class:`agent.views.ViewOptions`).

    Raises:
        physics_iq.registry.BackendOptionError: a view option that is not one.
    """
    if config.vlm == "offline":
        from agent.offline import OfflineReasoner

        return OfflineReasoner(prompts)
    from agent.reasoning import VLMReasoner
    from agent.vlm import VLMS

    vlm = VLMS.resolve(config.vlm)(**parse_options(config.vlm_options))
    if meter is not None:
        vlm = MeteredVLM(vlm, meter, trace, gate)
    try:
        views = ViewOptions.model_validate(parse_options(config.view_options))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BackendOptionError(
            f"--view-opt: {problems} (known: {', '.join(ViewOptions.model_fields)})"
        ) from None
    signals = []
    if config.critic_signals:
        from agent.verifiers import build_verifier

        options = parse_options(config.selector_options)
        for name in config.critic_signals:
            own = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith(f"{name}.")}
            signals.append(build_verifier(name, **own))
    return VLMReasoner(vlm, prompts, grounding=config.grounding, views=views, style=style, signals=signals)


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
