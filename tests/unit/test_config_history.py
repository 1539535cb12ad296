"""The ``[history]`` table of the TOML config: the dashboard's sampling period and window."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_file
from gateway.exceptions import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "satgw.toml"
    path.write_text(text)
    return path


def test_defaults_sample_every_5_s_for_15_minutes() -> None:
    """Without a [history] table the gateway samples every 5 s and keeps 900 s."""
    config = load_file(None)
    assert (config.history_every_s, config.history_window_s) == (5.0, 900.0)


def test_the_table_sets_period_and_window(tmp_path: Path) -> None:
    """every_s and window_s of [history] become the config's history settings."""
    config = load_file(write(tmp_path, "[history]\nevery_s = 2\nwindow_s = 600\n"))
    assert (config.history_every_s, config.history_window_s) == (2.0, 600.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("every_s = 0", "history.every_s"),
        ("window_s = 30", "history.window_s"),
        ("every_s = 0.1\nwindow_s = 86400", "at most 20000 samples"),
        ("size = 3", "history.size"),
    ],
)
def test_impossible_settings_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    """A zero period, a window under a minute, too many samples or an unknown key stops start-up, naming it."""
    with pytest.raises(ConfigError, match=message):
        load_file(write(tmp_path, f"[history]\n{text}\n"))
