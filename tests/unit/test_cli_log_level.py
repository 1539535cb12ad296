"""Which log level a ``satgw`` command runs at: flag, then SATGW_LOG_LEVEL, then the command's default."""

from __future__ import annotations

import pytest

from gateway import cli


def _level(argv: list[str]) -> str:
    return cli._log_level(cli._parser().parse_args(argv))


def test_run_defaults_to_info_and_other_commands_to_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without flag or environment, satgw run logs at INFO and the tools at WARNING."""
    monkeypatch.delenv("SATGW_LOG_LEVEL", raising=False)
    assert _level(["run"]) == "INFO"
    assert _level(["status"]) == "WARNING"


def test_environment_then_flag_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """SATGW_LOG_LEVEL (as deploy/compose.yaml sets it) overrides the default; --log-level overrides both."""
    monkeypatch.setenv("SATGW_LOG_LEVEL", "debug")
    assert _level(["run"]) == "DEBUG"
    assert _level(["--log-level", "ERROR", "run"]) == "ERROR"


def test_a_bad_level_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A level that does not exist stops the command with exit 2 and a one-line message."""
    monkeypatch.setenv("SATGW_LOG_LEVEL", "loud")
    assert cli.main(["status"]) == 2
