"""Test-wide options: real checkpoints, GPUs and remote APIs are opt-in."""

from __future__ import annotations

import pytest

_OPT_IN = {"slow": "--run-slow", "gpu": "--run-gpu", "api": "--run-api"}


def pytest_addoption(parser: pytest.Parser) -> None:
    for marker, flag in _OPT_IN.items():
        parser.addoption(flag, action="store_true", default=False, help=f"run tests marked '{marker}'")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, flag in _OPT_IN.items():
            if marker in item.keywords and not config.getoption(flag):
                item.add_marker(pytest.mark.skip(reason=f"needs {flag}"))
