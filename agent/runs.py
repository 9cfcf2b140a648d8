"""Run directories: frozen config, provenance (templates + hashes, versions, git commit), JSONL trace.

Layout::

    RUN_DIR/
      config.json            frozen RunConfig (rerunning with a different config is refused)
      provenance.json        prompt templates and sha256, package versions, git commit
      checkpoints.sqlite     LangGraph SqliteSaver, one thread per scenario
      trace.jsonl            append-only node events (no secrets: configs never hold keys)
      scenarios/<name>/      prompts, attempts/<hash>.mp4 (+ .json, critiques), scores.json
      summary.json, summary.csv
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

_PACKAGES = (
    "physrefine",
    "langgraph",
    "langgraph-checkpoint-sqlite",
    "numpy",
    "opencv-python-headless",
    "av",
    "pymunk",
    "pydantic",
    "jinja2",
    "torch",
    "diffusers",
    "transformers",
    "openai",
)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a crash leaves the old file or none, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


class RunConfigError(ValueError):
    """A run directory holds a run made with a different configuration."""


class RunConfig(BaseModel):
    """Everything that determines a run's results. Frozen and saved as ``config.json``.

    Secrets never go here: API keys are read by backends from the environment.

    ``view_options`` says what a VLM critique shows (:class:`agent.views.ViewOptions`) and ``critic_signals``
    which verifiers' measurements it is told (their options: ``selector_options`` ``NAME.KEY``); ``selector``
    names the honest ensemble selector (see :func:`agent.selection.build_selector`) and
    ``selector_options`` its settings. ``best_of_n_baseline`` adds the equal-budget baseline (the selector
    over ``loops x seeds`` loop-1 attempts, no refinement); ``None`` turns it on for the offline stack only,
    where generations cost nothing worth saving.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    fps: int = Field(gt=0)
    mode: Literal["i2v", "v2v"] = "v2v"
    generator: str = "physics-prior"
    generator_options: dict[str, str] = Field(default_factory=dict)
    vlm: str = "offline"
    vlm_options: dict[str, str] = Field(default_factory=dict)
    loops: int = Field(default=4, ge=1, le=50)
    seeds: int = Field(default=2, ge=1, le=64)
    seed: int = 0
    scenarios: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    prompt_set: str = "default"
    grounding: bool = True
    score: bool = True
    view_options: dict[str, str] = Field(default_factory=dict)
    critic_signals: list[str] = Field(default_factory=list)
    selector: str = "critic"  # the offline stack's default is OFFLINE_SELECTOR (see _default_selector)
    selector_options: dict[str, str] = Field(default_factory=dict)
    best_of_n_baseline: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_selector(cls, data: Any) -> Any:
        """Without a selector, the offline stack (rule critic and physics prior) ranks with OFFLINE_SELECTOR
        and everything else with the critic."""
        if isinstance(data, dict) and not data.get("selector"):
            offline = data.get("vlm", "offline") == "offline" and data.get("generator", "physics-prior") == (
                "physics-prior"
            )
            data = {**data, "selector": OFFLINE_SELECTOR if offline else "critic"}
        return data

    @field_validator("generator_options", "vlm_options", "selector_options")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if looks_secret(key):
                raise ValueError(f"option {key!r} looks like a secret; pass secrets through the environment")
        return value


#: The offline stack's honest selector: the critic, its ties broken by the velocity jump at the switch frame
#: (v2v) and then by feature-path geometry. Chosen on the development look (equal to the critic in v2v, 22.59
#: against 21.10 in i2v) and checked on the held-out one (equal in v2v, 22.76 against 22.64 in i2v):
#: docs/selectors.md.
OFFLINE_SELECTOR = "critic+feature-path"

#: Words that make an option name look like it holds a credential (matched case-insensitively in the name).
SECRET_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "auth",
    "credential",
    "cookie",
)
REDACTED = "<redacted>"


def looks_secret(name: object) -> bool:
    """Whether an option name looks like it holds a secret (so its value must never be stored or shown).

    ``*_env`` names an environment variable and ``max_*tokens`` is a budget: neither holds a secret.

    >>> [looks_secret(k) for k in ("api_key", "Authorization", "hf_token", "api_key_env", "max_tokens", "model")]
    [True, True, True, False, False, False]
    """
    key = str(name).lower()
    if key.endswith("_env") or (key.startswith("max_") and key.endswith("tokens")):
        return False
    return any(word in key for word in SECRET_WORDS)


def redact(value: Any, name: object = "") -> Any:
    """``value`` with the values of secret-looking keys (at any depth) replaced by ``<redacted>``.

    Args:
        value: Any option value (mappings and lists are walked).
        name: The name ``value`` is stored under; a secret-looking name redacts the whole value.

    >>> redact({"model": "m", "api_key": "sk-1", "headers": {"Authorization": "Bearer x"}})
    {'model': 'm', 'api_key': '<redacted>', 'headers': {'Authorization': '<redacted>'}}
    >>> redact("sk-1", name="token")
    '<redacted>'
    """
    if looks_secret(name):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (absent ones omitted)."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit(where: Path) -> str:
    """The git commit of the source tree (``"unknown"`` outside a checkout)."""
    try:
        done = subprocess.run(  # argument list, no shell
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


class RunDir:
    """A run directory; :meth:`open` creates it or checks that it belongs to the same config.

    Args:
        root: The folder.
        config: The run's frozen configuration.
    """

    def __init__(self, root: str | Path, config: RunConfig) -> None:
        self.root = Path(root)
        self.config = config
        self._lock = threading.Lock()

    @property
    def checkpoint_path(self) -> Path:
        return self.root / "checkpoints.sqlite"

    def scenario_dir(self, name: str) -> Path:
        path = self.root / "scenarios" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def open(self, provenance: dict[str, Any]) -> bool:
        """Create the folder (returns ``False``) or confirm a resumable one (returns ``True``).

        Raises:
            RunConfigError: the folder holds a run with a different config (naming the differing fields).
        """
        config_path = self.root / "config.json"
        wanted = self.config.model_dump(mode="json")
        if config_path.is_file():
            existing = json.loads(config_path.read_text(encoding="utf-8"))
            # Fields added since (with their defaults) do not make an older run look different.
            with contextlib.suppress(ValueError):
                existing = RunConfig.model_validate(existing).model_dump(mode="json")
            if existing != wanted:
                fields = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
                raise RunConfigError(
                    f"{config_path}: this run directory was made with a different configuration "
                    f"(differs in {fields}); use another --run-dir or the same options to resume"
                )
            self._warn_other_code(provenance)
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "provenance.json").write_text(
            json.dumps(provenance, indent=2, sort_keys=True), encoding="utf-8"
        )
        config_path.write_text(json.dumps(wanted, indent=2, sort_keys=True), encoding="utf-8")
        return False

    def _warn_other_code(self, provenance: dict[str, Any]) -> None:
        """Say so when a run made by other code is resumed: its finished attempts and scores are reused as
        they are, so its numbers are not this code's."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            made = json.loads((self.root / "provenance.json").read_text(encoding="utf-8")).get("git_commit")
            now = provenance.get("git_commit")
            if made and now and "unknown" not in (made, now) and made != now:
                logger.warning(
                    "%s was made at commit %s and is resumed at commit %s: its finished attempts and scores "
                    "are reused as they are (a new folder measures this code)",
                    self.root,
                    made[:12],
                    now[:12],
                )

    def trace(self, event: dict[str, Any]) -> None:
        """Append one event to ``trace.jsonl`` (thread-safe; parallel generate branches share it)."""
        line = json.dumps({"time": round(time.time(), 3), **event}, sort_keys=True, default=str)
        with self._lock, (self.root / "trace.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
