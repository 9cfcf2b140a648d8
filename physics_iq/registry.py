"""A small lazy registry: names map to ``"module:Attribute"`` strings imported only when asked for.

Importing a backend family can be expensive (torch, diffusers) or impossible in a light install, so nothing is
imported until a name is resolved; a typo gets a did-you-mean error and a missing optional dependency is
re-raised naming the extra to install.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Top-level modules that only the [models] extra installs.
_EXTRA_OF_MODULE = {
    "torch": "models",
    "diffusers": "models",
    "transformers": "models",
    "accelerate": "models",
    "ftfy": "models",
}


class UnknownNameError(KeyError):
    """A registry has no entry under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class MissingExtraError(ImportError):
    """A backend needs an optional dependency that is not installed."""


class BackendOptionError(ValueError):
    """A backend cannot be built from the options or checkpoint it was given (the message names the option
    or the checkpoint and what was expected). A ``ValueError``, so callers that catch bad values catch it."""


class LazyRegistry(Generic[T]):
    """Name -> ``"package.module:Attribute"`` map resolved on first use.

    Args:
        kind: What the registry holds, for error messages (e.g. ``"generator"``).

    >>> registry = LazyRegistry("codec")
    >>> registry.register("json-dumps", "json:dumps")
    >>> registry.resolve("json-dumps").__name__
    'dumps'
    >>> registry.resolve("json-dump")
    Traceback (most recent call last):
    ...
    physics_iq.registry.UnknownNameError: unknown codec 'json-dump'; did you mean 'json-dumps'? Known: json-dumps
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, target: str, description: str = "") -> None:
        """Register ``name`` for the attribute ``target`` (``"module:Attribute"``)."""
        if ":" not in target:
            raise ValueError(f"registry target must be 'module:Attribute', got {target!r}")
        self._targets[name] = target
        self._descriptions[name] = description

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._targets)

    def describe(self) -> dict[str, str]:
        """Name -> one-line description, for ``--help`` listings."""
        return {name: self._descriptions[name] for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def resolve(self, name: str) -> Any:
        """Import and return the attribute registered under ``name``.

        Raises:
            UnknownNameError: no such name (with the closest matches).
            MissingExtraError: the backend's module needs an extra that is not installed.
        """
        if name not in self._targets:
            close = difflib.get_close_matches(name, self._targets, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} Known: {', '.join(self.names())}")
        module_name, attribute = self._targets[name].split(":", 1)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            extra = _EXTRA_OF_MODULE.get(top)
            if extra is None:
                raise
            raise MissingExtraError(
                f"{self.kind} {name!r} needs the optional dependency {top!r}: "
                f"pip install 'physrefine[{extra}]'"
            ) from exc
        return getattr(module, attribute)
