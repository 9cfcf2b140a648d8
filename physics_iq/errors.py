"""Exceptions raised by the evaluator and the data layer.

Every error names the file (and field or frame) at fault and what was expected, so a user can fix the input
without reading our code.
"""

from __future__ import annotations

from pathlib import Path


class PhysicsIQError(Exception):
    """Base class of all physrefine data and evaluation errors."""


class VideoReadError(PhysicsIQError):
    """A file could not be decoded as a video (missing, truncated, not a video, no frames)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot read as a video: {reason}")


class VideoWriteError(PhysicsIQError):
    """Frames could not be written as the requested video."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot write video: {reason}")


class DatasetError(PhysicsIQError):
    """The benchmark folder or its descriptions.csv does not follow the Physics-IQ layout."""


class ValidationError(PhysicsIQError):
    """A folder of generated videos failed validation; `problems` lists every problem found at once."""

    def __init__(self, folder: str | Path, problems: list[str]) -> None:
        self.folder = Path(folder)
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.folder}: {len(self.problems)} problem(s) found:\n{listing}")
