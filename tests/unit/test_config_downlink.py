"""``downlink = false`` in a ``[[links]]`` table: that link carries no downlink; every other link does."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_file
from gateway.exceptions import ConfigError


def _load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "satgw.toml"
    path.write_text(text)
    return load_file(path)


def test_every_link_carries_the_downlink_unless_told_otherwise(tmp_path: Path) -> None:
    """Without the key, and by default without a file, no link is left out of the downlink."""
    assert GatewayConfig().downlink_off == frozenset()
    config = _load(tmp_path, '[[links]]\nname = "a"\nprofile = "lab-geo"\n')
    assert config.downlink_off == frozenset()


def test_downlink_false_leaves_that_link_out(tmp_path: Path) -> None:
    """A catalogue and a custom link may each say ``downlink = false``; the flag never reaches the profile."""
    text = (
        '[[links]]\nname = "cat"\nprofile = "bds3-rsmc"\ndownlink = false\n'
        '[[links]]\nname = "own"\nmax_frame_bytes = 100\ninterval_s = 1\ndownlink = false\n'
        '[[links]]\nname = "both"\nprofile = "lab-geo"\ndownlink = true\n'
    )
    config = _load(tmp_path, text)
    assert config.downlink_off == frozenset({"cat", "own"})
    assert [link.name for link in config.links] == ["cat", "own", "both"]


def test_downlink_must_be_a_boolean(tmp_path: Path) -> None:
    """A value that is not true or false is refused, naming the link and the key."""
    with pytest.raises(ConfigError, match=r"link x: downlink"):
        _load(tmp_path, '[[links]]\nname = "x"\nprofile = "lab-geo"\ndownlink = "sometimes"\n')
