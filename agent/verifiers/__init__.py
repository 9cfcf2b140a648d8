"""Training-free verifiers: judge an attempt's physical plausibility without the ground truth.

Each verifier takes a :class:`~agent.verifiers.base.ClipInput` (conditioning frames + generated
continuation) and returns a :class:`~agent.verifiers.base.VerifierScore` (higher is better, ``None`` when it
could not run, and one sentence a VLM can be shown). Selectors rank attempts by them; the critic prompt can
quote their summaries.

==========================  ======================================================  ===========================
name                        what it measures                                        source
==========================  ======================================================  ===========================
``motion-continuity``       optical-flow velocity of the moving region across the   (classical, OpenCV DIS)
                            switch frame; teleports via unexplained change
``background-stability``    drift, flicker and shake of what stayed still in the    (classical)
                            prefix
``feature-path``            GeoPhys path geometry on blurred colour thumbnails      GeoPhys, arXiv 2606.20707
``feature-path-encoder``    GeoPhys path geometry on a transformers image encoder   GeoPhys, arXiv 2606.20707
                            (DINOv2, SigLIP, ...)
``world-model-surprise``    V-JEPA 2 latent prediction loss over sliding windows    WMReward, arXiv 2601.10553
==========================  ======================================================  ===========================

:func:`build_verifier` builds (and caches, once per process) a verifier from its name and options; a wrong
name is an :class:`~physics_iq.registry.UnknownNameError` with did-you-mean, a wrong option or a model that
cannot be loaded a one-line :class:`~physics_iq.registry.BackendOptionError`.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Mapping
from typing import Any

from agent.verifiers.base import ClipInput, Verifier, VerifierScore, check_clip
from physics_iq.registry import BackendOptionError, LazyRegistry

__all__ = [
    "VERIFIERS",
    "ClipInput",
    "Verifier",
    "VerifierScore",
    "build_verifier",
    "check_clip",
    "clear_cache",
    "verifier_options",
]

#: Verifier name -> class, imported on first use (the neural ones need the ``[models]`` extra).
VERIFIERS: LazyRegistry[type[Verifier]] = LazyRegistry("verifier")
VERIFIERS.register(
    "motion-continuity",
    "agent.verifiers.continuity:MotionContinuity",
    "optical flow of the moving region: does the motion carry on across the switch frame",
)
VERIFIERS.register(
    "background-stability",
    "agent.verifiers.background:BackgroundStability",
    "what stayed still in the prefix must not drift, flicker or shake afterwards",
)
VERIFIERS.register(
    "feature-path",
    "agent.verifiers.feature_path:ClassicalFeaturePath",
    "GeoPhys-style smoothness of the path through blurred-thumbnail features (CPU, offline)",
)
VERIFIERS.register(
    "feature-path-encoder",
    "agent.verifiers.encoder_path:EncoderFeaturePath",
    "GeoPhys-style smoothness of the path through a transformers image encoder's features (DINOv2, SigLIP)",
)
VERIFIERS.register(
    "world-model-surprise",
    "agent.verifiers.world_model:WorldModelSurprise",
    "WMReward: V-JEPA 2's loss predicting each window's second half from its first half",
)

_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], Verifier] = {}
_LOCK = threading.Lock()


def verifier_options(name: str) -> dict[str, Any]:
    """Option name -> default of verifier ``name`` (imports its module).

    >>> verifier_options("motion-continuity")["horizon"]
    4
    """
    return {key: default for key, (default, _) in _parameters(name).items()}


def _parameters(name: str) -> dict[str, tuple[Any, tuple[type, ...]]]:
    """Option name -> (default, the plain types its annotation allows)."""
    cls = VERIFIERS.resolve(name)
    hints = typing.get_type_hints(cls.__init__)
    found = {}
    for key, param in inspect.signature(cls).parameters.items():
        if param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            continue
        hint = hints.get(key, Any)
        types = tuple(t for t in typing.get_args(hint) or (hint,) if isinstance(t, type))
        found[key] = (param.default, types)
    return found


def build_verifier(name: str, **options: Any) -> Verifier:
    """The verifier ``name`` built with ``options``, loaded once per process and shared.

    Options left out take their defaults, so ``build_verifier("x")`` and ``build_verifier("x", **defaults)``
    are the same instance. A string option whose default is a bool, int or float is converted (options
    typed on a command line), e.g. ``horizon="5"``.

    Raises:
        UnknownNameError: no such verifier (with the closest names).
        MissingExtraError: the verifier needs the ``[models]`` extra.
        BackendOptionError: an unknown option, a value of the wrong type, or a model that cannot be loaded
            (one line naming the model id or folder).

    >>> build_verifier("motion-continuity") is build_verifier("motion-continuity", horizon="4")
    True
    """
    parameters = _parameters(name)
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        known = ", ".join(parameters) or "none"
        raise BackendOptionError(
            f"verifier {name!r} has no option {', '.join(map(repr, unknown))}; options: {known}"
        )
    settings = {
        key: _coerce(name, key, options[key], types) if key in options else default
        for key, (default, types) in parameters.items()
    }
    key = (name, tuple((k, _hashable(v)) for k, v in sorted(settings.items())))
    with _LOCK:
        # Held while building: a second thread asking for the same model waits instead of loading it again.
        verifier = _CACHE.get(key)
        if verifier is None:
            verifier = VERIFIERS.resolve(name)(**settings)
            _CACHE[key] = verifier
    return verifier


def clear_cache() -> None:
    """Forget every built verifier (their models are freed once nothing else holds them)."""
    with _LOCK:
        _CACHE.clear()


def _coerce(name: str, key: str, value: Any, types: tuple[type, ...]) -> Any:
    """A command-line string converted to the option's annotated type (bool, int, float or None)."""
    if not isinstance(value, str) or str in types or not types:
        return value
    text = value.strip().lower()
    if type(None) in types and text in ("none", "null", ""):
        return None
    for kind in (bool, int, float):
        if kind not in types:
            continue
        if kind is bool:
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            continue
        try:
            return kind(text)
        except ValueError:
            continue
    expected = " or ".join(t.__name__ for t in types)
    raise BackendOptionError(f"verifier {name!r}: option {key!r} must be {expected}, got {value!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return tuple(_hashable(v) for v in value)
    return value
