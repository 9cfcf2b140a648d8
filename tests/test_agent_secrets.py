"""A secret given as an option is refused, and its value is never echoed: not by the CLI, not in a traceback,
not in any file. Every path that reports a config/option error is covered (flag, TOML, YAML)."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from agent.cli import app
from agent.runs import looks_secret, redact
from agent.settings import SettingsError, resolve_settings

SECRET = "sk-LEAK-c0ffee-9b1d"
runner = CliRunner()


def everything_printed(result: Result) -> str:
    """stdout + stderr + any traceback, with whitespace and rich's box drawing removed (a wrapped line
    would otherwise hide the secret from a plain substring check)."""
    text = result.output + str(result.exception or "")
    if result.exc_info is not None:
        text += "".join(traceback.format_exception(*result.exc_info))
    return re.sub(r"[\s│╭╮╰╯─]", "", text)


def files_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--vlm-opt", f"api_key={SECRET}"], "'api_key'lookslikeasecret"),
        (["--vlm-opt", f"Authorization=Bearer {SECRET}"], "'Authorization'lookslikeasecret"),
        (["--generator-opt", f"hf_token={SECRET}"], "'hf_token'lookslikeasecret"),
        (["--vlm-opt", SECRET], "expectedKEY=VALUE"),
        (["--vlm-opt", f"password={SECRET}", "--loops", "0"], "option--loops:Inputshouldbegreater"),
    ],
    ids=["api-key", "authorization", "generator-token", "no-equals-sign", "with-another-error"],
)
def test_cli_flag_secret_is_refused_without_echo(tmp_path: Path, options: list[str], expected: str) -> None:
    run_dir = tmp_path / "run"
    args = ["refine", "--dataset", str(tmp_path / "data"), "--run-dir", str(run_dir), "--vlm", "openai"]
    result = runner.invoke(app, [*args, *options], terminal_width=200)
    printed = everything_printed(result)
    assert result.exit_code != 0
    assert expected in printed  # the field and what was expected are still said
    assert SECRET not in printed
    assert not run_dir.exists() or SECRET.encode() not in files_under(run_dir)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "run.toml",
            f'vlm_options = {{ api_key = "{SECRET}" }}\n',
            r"run\.toml: field 'vlm_options'.*'api_key' looks like a secret",
        ),
        (
            "run.toml",
            f'generator_options = {{ hf_token = ["{SECRET}"] }}\n',
            r"run\.toml: field 'generator_options' \(key 'hf_token'\): Input should be a valid string",
        ),
        (
            "run.toml",
            f'loops = 0\nvlm_options = {{ model = "m", secret = "{SECRET}" }}\n',
            r"\{'model': 'm', 'secret': '<redacted>'\}.*field 'loops': Input should be greater than or equal to 1",
        ),
        (
            "run.yaml",
            f"vlm_options: {{api_key: {SECRET}: x}}\n",
            r"run\.yaml: not valid YAML: .*\(line 3, column",
        ),
        ("run.toml", f'vlm_options = {{ api_key = "{SECRET}" \n', r"run\.toml: not valid TOML"),
    ],
    ids=["toml-secret", "toml-secret-wrong-type", "toml-other-error-too", "yaml-syntax", "toml-syntax"],
)
def test_settings_file_secret_is_refused_without_echo(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    run_dir = tmp_path / "run"
    file = tmp_path / name
    if name.endswith(".toml"):
        file.write_text(f'dataset = "{tmp_path / "data"}"\nrun_dir = "{run_dir}"\n{text}')
    else:
        file.write_text(f"dataset: {tmp_path / 'data'}\nrun_dir: {run_dir}\n{text}")
    with pytest.raises(SettingsError, match=expected) as caught:
        resolve_settings({}, file)
    assert SECRET not in "".join(traceback.format_exception(caught.value))  # chained causes included

    result = runner.invoke(app, ["refine", "--config", str(file)], terminal_width=200)
    assert result.exit_code != 0
    assert re.sub(r"\s", "", name) in everything_printed(result)
    assert SECRET not in everything_printed(result)
    assert not run_dir.exists() or SECRET.encode() not in files_under(run_dir)


def test_redaction_keeps_what_is_not_secret() -> None:
    assert not any(looks_secret(k) for k in ("model", "base_url", "api_key_env", "max_tokens", "fps"))
    assert redact({"model": "m", "nested": {"token": "t"}, "list": [{"password": "p"}]}) == {
        "model": "m",
        "nested": {"token": "<redacted>"},
        "list": [{"password": "<redacted>"}],
    }
