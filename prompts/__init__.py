"""Prompt templates, installed with the package as data files: ``prompts/<set>/<role>.j2``.

Each folder is a prompt set (``default`` and others); a user may also point at a folder of their own.
"""

from __future__ import annotations

from pathlib import Path

PROMPTS_ROOT = Path(__file__).resolve().parent


def builtin_sets() -> list[str]:
    """Names of the prompt sets shipped with physrefine."""
    return sorted(p.name for p in PROMPTS_ROOT.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
