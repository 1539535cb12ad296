"""``type = "rdss-serial"`` links in the TOML config (runs once gateway/config.py and factory.py know the type)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from gateway.exceptions import ConfigError
from gateway.links import SimClock, factory
from gateway.links.rdss_serial import RdssSerialProfile, RdssTerminalLink

pytestmark = pytest.mark.skipif(
    RdssSerialProfile not in typing.get_args(factory.LinkConfig) or not hasattr(config._LinkFile, "rdss_serial"),
    reason="gateway/config.py and gateway/links/factory.py do not know rdss-serial links yet",
)

TABLE = '[[links]]\ntype = "rdss-serial"\nname = "bd1"\nport = "/dev/ttyUSB0"\n'


class NullSink:
    """A ground segment that takes nothing."""

    async def receive(self, frame: bytes, *, link: str) -> None:
        raise AssertionError("a sent frame must not reach the ground through a real terminal")


def _load(tmp_path: Path, text: str) -> config.GatewayConfig:
    path = tmp_path / "satgw.toml"
    path.write_text(text)
    return config.load_file(path)


def test_an_rdss_serial_table_becomes_a_profile_and_an_unopened_link(tmp_path: Path) -> None:
    """The table's keys reach the profile; the factory builds the driver; a stated interval gives a capacity."""
    text = TABLE + 'recipient = "0242407"\nbaudrate = 9600\nfki_timeout_s = 2.5\ninterval_s = 60\n'
    links: tuple[object, ...] = _load(tmp_path, text).links  # object: LinkConfig may not name the type yet
    (profile,) = links
    assert isinstance(profile, RdssSerialProfile)
    assert (profile.port, profile.recipient, profile.baudrate, profile.fki_timeout_s) == (
        "/dev/ttyUSB0", "0242407", 9600, 2.5)  # fmt: skip
    cfg: Any = profile  # the factory's LinkConfig may not name the type yet
    assert factory.capacity_per_hour(cfg) == pytest.approx(60.0)
    assert isinstance(factory.build_link(cfg, clock=SimClock(), sink=NullSink()), RdssTerminalLink)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "needs port and recipient"),
        ("recipient = 242407\n", "recipient"),
        ('recipient = "0242407"\ntle = "swarm-like"\n', "tle"),
        ('recipient = "0242407"\ngeneration = "bds4"\n', "generation"),
        ('recipient = "0242407"\nfki_timeout_s = 0\n', "fki_timeout_s"),
    ],
)
def test_bad_rdss_serial_tables_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    """A missing recipient, an unquoted one (zero padding would be lost), or a foreign key is a ConfigError."""
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, TABLE + extra)


def test_serial_keys_are_refused_on_other_links(tmp_path: Path) -> None:
    """A modelled card pool does not take a serial port."""
    with pytest.raises(ConfigError, match="rdss-serial"):
        _load(tmp_path, '[[links]]\nname = "bd1"\nprofile = "bds2-rdss-l3"\nport = "/dev/ttyUSB0"\n')
