"""Prompt sets: jinja2 templates in ``prompts/<set>/<role>.j2``, rendered with strict undefined variables.

A set is named (a folder shipped in ``prompts/``) or a path to a folder of one's own. Every role a run uses is
recorded with its sha256, so results say exactly which wording produced them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2

from prompts import PROMPTS_ROOT, builtin_sets

#: ``fallback`` renders the loop-1 prompt from the description alone when the prediction failed; ``repair``
#: is the follow-up turn that shows a model why its reply did not validate.
ROLES: tuple[str, ...] = ("predict", "critique", "rewrite", "judge", "compose", "fallback", "repair")


class PromptSetError(ValueError):
    """A prompt set is missing or lacks a role's template."""


class PromptSet:
    """The templates of one prompt set.

    Args:
        name_or_path: A built-in set name (``default``, ``minimal``) or a folder holding ``<role>.j2`` files.
    """

    def __init__(self, name_or_path: str | Path) -> None:
        candidate = Path(name_or_path)
        if candidate.is_dir():
            self.root = candidate.resolve()
        elif (PROMPTS_ROOT / str(name_or_path)).is_dir():
            self.root = PROMPTS_ROOT / str(name_or_path)
        else:
            raise PromptSetError(
                f"prompt set {str(name_or_path)!r} is neither a folder nor a built-in set "
                f"(built-in: {', '.join(builtin_sets())})"
            )
        missing = [role for role in ROLES if not (self.root / f"{role}.j2").is_file()]
        if missing:
            raise PromptSetError(f"{self.root}: missing template(s) {[m + '.j2' for m in missing]}")
        self.name = self.root.name
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.root)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text prompts, not HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, role: str, **variables: Any) -> str:
        """Render ``<role>.j2``; a variable the template uses but was not given raises ``UndefinedError``."""
        return self._env.get_template(f"{role}.j2").render(**variables).strip()

    def hashes(self) -> dict[str, str]:
        """Role -> sha256 of its template file."""
        return {role: hashlib.sha256((self.root / f"{role}.j2").read_bytes()).hexdigest() for role in ROLES}

    def record(self) -> dict[str, Any]:
        """What a run records about the set: name, folder and per-template hashes."""
        return {"name": self.name, "path": str(self.root), "templates": self.hashes()}
