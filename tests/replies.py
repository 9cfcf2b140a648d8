"""Valid model replies for scripted VLMs in tests: every field the model-facing schemas require, with
overrides. Keeps tests readable when a schema gains a required field."""

from __future__ import annotations

import json
from typing import Any


def prediction(**fields: Any) -> dict[str, Any]:
    return {
        "objects": ["red ball"],
        "physics": "gravity pulls it down",
        "expected_outcome": "it falls",
        "prompt": "A red ball falls.",
        **fields,
    }


def critique(**fields: Any) -> dict[str, Any]:
    return {
        "observations": "the ball moves",
        "expected_physics": "it keeps moving",
        "violations": [],
        "verdict": "consistent",
        "score": 0.9,
        "suggested_changes": [],
        **fields,
    }


def rewrite(**fields: Any) -> dict[str, Any]:
    return {"reasoning": "be concrete", "prompt": "The red ball falls to the floor.", **fields}


def universal(**fields: Any) -> dict[str, Any]:
    """One reply valid for every role (extra fields are ignored by each schema)."""
    return {**prediction(), **critique(), **rewrite(), **fields}


def text(reply: dict[str, Any]) -> str:
    return json.dumps(reply)
