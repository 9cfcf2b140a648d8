"""``physrefine refine --config FILE``: a TOML or YAML settings file merged with command-line overrides.

The file holds the same names as the command-line options (underscores, e.g. ``prompt_set``), plus
``run_dir`` and the limits. The command line wins over the file; the result is validated by the run's own
pydantic models (:class:`~agent.runs.RunConfig`, :class:`~agent.budget.RunLimits`), and every error names
where the offending value came from (the file and field, or the command-line flag).

Example file (TOML)::

    dataset = "physics-iq-synthetic"
    run_dir = "runs/baseline"
    fps = 8
    loops = 4
    seeds = 2
    categories = ["Solid Mechanics"]
    max_cost_usd = 2.5
    time_limit = "30m"
    jobs = 2
    devices = "cuda:0,cuda:1"   # or a count: devices = 2; one generator instance per device

On a Ray cluster instead (``docs/ray.md``)::

    executor = "ray"
    ray_address = "auto"                     # unset: RAY_ADDRESS, else Ray started on this machine
    generator_resources = {num_gpus = 1}     # per actor; also "num_gpus=1,num_cpus=4"
    generator_workers = 8                    # actors; default: as many as the cluster holds
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from pydantic import BaseModel, ValidationError

from agent.budget import RunLimits
from agent.pool import parse_devices
from agent.runs import REDACTED, RunConfig, looks_secret, redact

#: Execution settings: where and how widely a run works (RunLimits fields, not part of the results).
EXECUTION_KEYS: tuple[str, ...] = (
    "jobs",
    "devices",
    "generator_workers",
    "executor",
    "ray_address",
    "generator_resources",
)
#: Keys of the file that are not RunConfig fields.
EXTRA_KEYS = ("run_dir", "max_vlm_tokens", "max_cost_usd", "time_limit", *EXECUTION_KEYS)
#: Execution settings that only the Ray executor reads.
_RAY_KEYS = ("ray_address", "generator_resources")
_LIMIT_FIELDS = {
    "max_vlm_tokens": "max_vlm_tokens",
    "max_cost_usd": "max_cost_usd",
    "time_limit": "time_limit_s",
}


class SettingsError(ValueError):
    """A settings file or an option value is invalid; the message names the file/field or flag."""


@dataclass(frozen=True)
class Settings:
    """The effective, validated settings of one ``refine`` invocation."""

    config: RunConfig
    limits: RunLimits
    run_dir: Path


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``.

    >>> parse_duration("1h30m"), parse_duration(45), parse_duration("2.5m")
    (5400.0, 45.0, 150.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90, '90s', '10m' or '1h30m', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or re.sub(r"\s+", "", "".join(n + u for n, u in parts)) != re.sub(r"\s+", "", text):
        raise ValueError(f"expected a duration such as 90, '90s', '10m' or '1h30m', got {value!r}")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def load_settings_file(path: Path) -> dict[str, Any]:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` settings file into a dict (keys checked, values not yet).

    Raises:
        SettingsError: missing/unreadable file, bad syntax, not a mapping, or an unknown key (with a
            did-you-mean hint).
    """
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsError(f"{path}: expected a .toml, .yaml or .yml settings file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file ({exc.strerror or exc})") from exc
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:  # says where, never quotes the line
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path}: expected a mapping of option names to values, got {type(data).__name__}"
        )
    known = [*RunConfig.model_fields, *EXTRA_KEYS]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key).replace("-", "_"), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SettingsError(f"{path}: unknown field {key!r}{hint} Known fields: {', '.join(known)}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's snippet of the offending line (it may hold a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{exc.problem or exc.context or 'syntax error'}{where}"
    return type(exc).__name__


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return value


def parse_resources(value: Any, where: str) -> dict[str, float]:
    """Per-actor Ray resources from a mapping, ``"KEY=VALUE,KEY=VALUE"`` or a list of ``KEY=VALUE`` items.

    Raises:
        SettingsError: an item without ``=`` or a value that is not a number, naming ``where``.

    >>> parse_resources("num_gpus=1, num_cpus=0.5", "x")
    {'num_gpus': 1.0, 'num_cpus': 0.5}
    >>> parse_resources({"num_gpus": 1}, "x"), parse_resources(["GPU_A100=1"], "x")
    ({'num_gpus': 1.0}, {'GPU_A100': 1.0})
    """
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        pairs: dict[str, Any] = {}
        for item in value:
            key, sep, amount = str(item).partition("=")
            if not sep or not key.strip():
                raise SettingsError(f"{where}: expected KEY=VALUE (e.g. num_gpus=1), got {item!r}")
            pairs[key.strip()] = amount.strip()
        value = pairs
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: expected KEY=VALUE items or a table, got {type(value).__name__}")
    out: dict[str, float] = {}
    for key, amount in value.items():
        try:
            if isinstance(amount, bool):
                raise ValueError
            out[str(key)] = float(amount)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: {key}: expected a number, got {amount!r}") from None
    return out


def _check_executor(values: dict[str, Any], origin: dict[str, str]) -> None:
    """The Ray-only settings with another executor, and local devices with Ray: named where they were given."""
    executor = values.get("executor", "local")
    if executor != "ray":
        given = [key for key in _RAY_KEYS if values.get(key)]
        if given:
            raise SettingsError(
                f"{origin[given[0]]}: applies to executor 'ray' only (executor is {executor!r}: "
                'add --executor ray, or executor = "ray" in the settings file)'
            )
    elif values.get("devices"):
        raise SettingsError(
            f"{origin['devices']}: devices place local generator instances; with executor 'ray' each actor "
            "gets its GPU from Ray (--generator-resources num_gpus=1)"
        )


def _where(key: str, cli: dict[str, Any], file: Path | None) -> str:
    if key in cli or file is None:
        return f"option --{key.replace('_', '-')}"
    return f"{file}: field {key!r}"


def _validate(model: type[BaseModel], values: dict[str, Any], origin: dict[str, str]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=True):
            loc = error["loc"]
            field = str(loc[0]) if loc else ""
            where = origin.get(field, f"field {field!r}")
            if len(loc) > 1:
                where += f" (key {'.'.join(str(p) for p in loc[1:])!r})"
            # The value is shown so the user sees what was wrong -- except under a secret-looking name.
            shown = REDACTED if any(looks_secret(p) for p in loc) else redact(error.get("input"))
            problems.append(f"{where}: {error['msg']} (got {shown!r})")
        # ``from None``: the pydantic error holds the raw input, secrets included, and a traceback of this
        # error would print it; the message above already names every field.
        raise SettingsError("; ".join(problems)) from None


def check_backend(kind: Literal["generator", "vlm"], name: Any, where: str) -> None:
    """Refuse an unknown generator/VLM name here, naming the flag or file field it came from.

    The registries would refuse it too, later and without saying where the name was given (and the VLM
    registry does not know ``offline``, which is not a registered backend but the rule-based critic).

    Raises:
        SettingsError: ``{where}: unknown {kind} {name!r}; did you mean ...? Known: ...``.
    """
    from agent.vlm import VLMS
    from generators import GENERATORS

    known = GENERATORS.names() if kind == "generator" else ["offline", *VLMS.names()]
    if not isinstance(name, str) or name in known:
        return  # a non-string is left to the model's own type error
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise SettingsError(f"{where}: unknown {kind} {name!r}{hint} Known: {', '.join(known)}")


def check_selector(spec: Any, where: str) -> None:
    """Refuse a selector spec that names no selector, naming the flag or file field (did-you-mean).

    Only names are checked here; a verifier's model is loaded (and checked) when the run starts.

    Raises:
        SettingsError: ``{where}: unknown selector ...``.
    """
    if not isinstance(spec, str):
        return
    from agent.selection import SelectionError, check_selector_spec

    try:
        check_selector_spec(spec)
    except SelectionError as exc:
        raise SettingsError(f"{where}: {exc}") from exc


def check_prompt_set(name: Any, where: str) -> None:
    """Refuse a prompt set that is neither a folder nor a built-in set, or lacks a role's template.

    Raises:
        SettingsError: naming ``where`` and what is wrong with the set.
    """
    if not isinstance(name, str):
        return
    from agent.prompting import PromptSet, PromptSetError

    try:
        PromptSet(name)  # loading checks that every role's template is there
    except PromptSetError as exc:
        raise SettingsError(f"{where}: {exc}") from exc


def execution_settings(values: dict[str, Any], origin: dict[str, str]) -> dict[str, Any]:
    """Take the execution keys (jobs, devices, generator_workers, executor, ray_address, generator_resources)
    out of ``values``, parsed (a device list or count, resources as numbers) and checked together.

    Raises:
        SettingsError: naming ``origin[key]`` of the offending value.
    """
    if "devices" in values and not isinstance(values["devices"], list):
        raw = str(values["devices"])  # "cuda:0,cuda:1", or a count N meaning cuda:0..N-1
        try:
            values["devices"] = parse_devices(None, int(raw)) if raw.isdigit() else parse_devices(raw, None)
        except ValueError as exc:
            raise SettingsError(f"{origin['devices']}: {exc}") from exc
    if values.get("generator_resources") is not None:
        values["generator_resources"] = parse_resources(
            values["generator_resources"], origin["generator_resources"]
        )
    _check_executor(values, origin)
    return {key: values.pop(key) for key in EXECUTION_KEYS if key in values}


def execution_limits(values: dict[str, Any], where: str) -> RunLimits:
    """The :class:`RunLimits` of the execution keys in a mapping of settings (other keys are ignored), e.g. a
    sweep's ``[base]``; errors name ``where`` and the key.

    >>> execution_limits({"executor": "ray", "generator_resources": "num_gpus=1", "loops": 2}, "sweep.toml: [base]").generator_resources
    {'num_gpus': 1.0}

    Raises:
        SettingsError: an invalid value, naming ``{where} {key}``.
    """
    chosen = {key: values[key] for key in EXECUTION_KEYS if key in values}
    origin = {key: f"{where} {key}" for key in chosen}
    limits: RunLimits = _validate(RunLimits, execution_settings(chosen, origin), origin)
    return limits


def resolve_settings(cli: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Merge the file (if any) with the command-line values given (CLI wins) and validate them.

    Args:
        cli: Options given on the command line (names as in the file; omit those not given).
        config_file: Optional settings file.

    Raises:
        SettingsError: naming the file and field or the flag of every invalid value (an unknown generator
            or VLM name with a did-you-mean hint).
    """
    values = load_settings_file(config_file) if config_file is not None else {}
    values = {**values, **cli}
    origin = {key: _where(key, cli, config_file) for key in values}
    for key in ("scenarios", "categories", "critic_signals"):
        if key in values:
            values[key] = _split_list(values[key])
    run_dir = values.pop("run_dir", None)
    if run_dir in (None, ""):
        raise SettingsError("no run directory: pass --run-dir or set run_dir in the settings file")
    if "dataset" not in values:
        raise SettingsError("no dataset: pass --dataset or set dataset in the settings file")
    values["dataset"] = str(Path(values["dataset"]).expanduser().resolve())
    values.setdefault("fps", 8)  # the demo's and the synthetic suite's default frame rate
    limit_values = execution_settings(values, origin)
    for key in _LIMIT_FIELDS:
        if key in values:
            limit_values[_LIMIT_FIELDS[key]] = values.pop(key)
    if "time_limit_s" in limit_values and limit_values["time_limit_s"] is not None:
        try:
            limit_values["time_limit_s"] = parse_duration(limit_values["time_limit_s"])
        except ValueError as exc:
            raise SettingsError(f"{origin['time_limit']}: {exc}") from exc
    if "generator" in values:
        check_backend("generator", values["generator"], origin["generator"])
    if "vlm" in values:
        check_backend("vlm", values["vlm"], origin["vlm"])
    if "prompt_set" in values:
        check_prompt_set(values["prompt_set"], origin["prompt_set"])
    if "selector" in values:
        check_selector(values["selector"], origin["selector"])
    for name in values.get("critic_signals") or []:
        if name in ("critic", "judge"):
            raise SettingsError(f"{origin['critic_signals']}: {name!r} is not a verifier")
        check_selector(name, origin["critic_signals"])
    limit_origin = {_LIMIT_FIELDS.get(k, k): v for k, v in origin.items()}
    config = _validate(RunConfig, values, origin)
    limits = _validate(RunLimits, limit_values, limit_origin)
    return Settings(config=config, limits=limits, run_dir=Path(str(run_dir)).expanduser())


__all__ = [
    "EXECUTION_KEYS",
    "EXTRA_KEYS",
    "Settings",
    "SettingsError",
    "check_backend",
    "check_prompt_set",
    "check_selector",
    "execution_limits",
    "execution_settings",
    "load_settings_file",
    "parse_duration",
    "parse_resources",
    "resolve_settings",
]
