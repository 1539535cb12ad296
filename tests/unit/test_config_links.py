"""``[[links]]`` in the TOML config: catalogue profiles with per-link overrides, and errors naming link and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import DEFAULT_LINKS, load_file
from gateway.exceptions import ConfigError
from gateway.links.geo import GeoProfile
from gateway.links.outages import OutagePlan, Window
from gateway.links.sbd import SbdProfile


def load(tmp_path: Path, text: str) -> tuple[GeoProfile | SbdProfile, ...]:
    path = tmp_path / "satgw.toml"
    path.write_text(text)
    return load_file(path).links


def test_default_pool_is_the_lab_profile() -> None:
    """Without a file the two lab links carry traffic: ten 1750-byte cards each at a 50 ms interval."""
    assert [link.name for link in DEFAULT_LINKS] == ["lab-geo-1", "lab-geo-2"]
    for link in DEFAULT_LINKS:
        assert isinstance(link, GeoProfile)
        assert (link.profile, link.max_frame_bytes, link.interval_s, link.cards) == ("lab-geo", 1750, 0.05, 10)
        # Ten cards every 50 ms on each of two links: 400 frames/s, each carrying many messages.
        assert 2 * link.cards / link.interval_s >= 400


def test_profiles_are_chosen_by_name(tmp_path: Path) -> None:
    """Each profile name gives its settings: RDSS level 3, RSMC, GSMC over MEO, and both SBD classes."""
    text = "".join(
        f'[[links]]\nname = "{name}"\nprofile = "{profile}"\n'
        for name, profile in [
            ("card", "bds2-rdss-l3"),
            ("rsmc", "bds3-rsmc"),
            ("gsmc", "bds3-gsmc"),
            ("rock", "iridium-sbd-9603"),
            ("big", "iridium-sbd-9522"),
        ]
    )
    card, rsmc, gsmc, rock, big = load(tmp_path, text)
    assert isinstance(card, GeoProfile)
    assert isinstance(gsmc, GeoProfile)
    assert isinstance(rsmc, GeoProfile)
    assert (card.max_frame_bytes, card.express_bytes, card.interval_s) == (78, 23, 60.0)
    assert (rsmc.max_frame_bytes, rsmc.orbit) == (1750, "geo")
    assert (gsmc.max_frame_bytes, gsmc.orbit) == (70, "meo")
    assert isinstance(rock, SbdProfile)
    assert isinstance(big, SbdProfile)
    assert (rock.max_frame_bytes, rock.mt_bytes, big.max_frame_bytes, big.mt_bytes) == (340, 270, 1960, 1890)


def test_overrides_reach_the_link(tmp_path: Path) -> None:
    """cards, interval, loss, location, seed and both kinds of outage override the profile."""
    links = load(
        tmp_path,
        """
[[links]]
name = "card"
profile = "bds2-rdss-l4-enc"
cards = 8
interval_s = 30
loss_rate = 0.1
terminal_lat = 43.8
terminal_lon = 87.6
seed = 17
outages = [{start = 2026-11-25T10:00:00Z, end = 2026-11-25T18:30:00+08:00}, {start = 100, end = 250.5}]
outage_rate_per_h = 0.5
outage_mean_s = 90
""",
    )
    (card,) = links
    assert isinstance(card, GeoProfile)
    assert (card.max_frame_bytes, card.cards, card.interval_s, card.loss_rate, card.seed) == (210, 8, 30.0, 0.1, 17)
    assert (card.terminal_lat, card.terminal_lon) == (43.8, 87.6)
    ten = datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()
    assert card.outages == OutagePlan(
        windows=(Window(ten, ten + 1800), Window(100.0, 250.5)), rate_per_h=0.5, mean_s=90.0, seed=17
    )


def test_sbd_overrides(tmp_path: Path) -> None:
    """An SBD link takes interval, loss, elevation, a smaller cap and outages."""
    text = (
        '[[links]]\nname = "m"\nprofile = "iridium-sbd-9603"\ninterval_s = 60\nloss_rate = 0.05\n'
        "elevation_deg = 50\nmax_frame_bytes = 300\noutage_rate_per_h = 2\n"
    )
    (link,) = load(tmp_path, text)
    assert isinstance(link, SbdProfile)
    assert (link.interval_s, link.loss_rate, link.elevation_deg, link.max_frame_bytes) == (60.0, 0.05, 50.0, 300)
    assert link.outages.rate_per_h == 2.0


def test_legacy_geo_tables_still_work(tmp_path: Path) -> None:
    """A table without a profile is a custom GEO pool, as before profiles, and may have outages too."""
    text = '[[links]]\ntype = "geo"\nname = "old"\nmax_frame_bytes = 78\ninterval_s = 60\ncards = 3\nsat_lon = 140\n'
    (link,) = load(tmp_path, text + "outages = [{start = 0, end = 10}]\n")
    assert isinstance(link, GeoProfile)
    assert (link.max_frame_bytes, link.interval_s, link.cards, link.sat_lon, link.loss_rate) == (
        78,
        60.0,
        3,
        140.0,
        0.0,
    )
    assert link.outages.windows == (Window(0.0, 10.0),)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('profile = "bds2-rdss-l7"', r"link bad: profile 'bds2-rdss-l7' is unknown"),
        ('profile = "bds2-rdss-l3"\nmax_frame_bytes = 79', r"link bad: max_frame_bytes: .*78"),
        ('profile = "bds2-rdss-l3"\ninterval_s = -1', r"link bad: interval_s"),
        ('profile = "bds2-rdss-l3"\nloss_rate = 1.5', r"link bad: loss_rate"),
        ('profile = "bds2-rdss-l3"\ncards = 0', r"link bad: cards"),
        ('profile = "bds2-rdss-l3"\ncolour = "red"', r"link bad: colour"),
        ('profile = "bds2-rdss-l3"\nelevation_deg = 40', r"link bad: elevation_deg"),
        ('profile = "iridium-sbd-9603"\ncards = 2', r"link bad: cards"),
        ('profile = "iridium-sbd-9603"\ntype = "geo"', r"link bad: type: 'geo' does not match .* 'sbd'"),
        ('profile = "bds3-rsmc"\noutages = [{start = 10, end = 5}]', r"link bad: outages\[0\]: .*end after"),
        ('profile = "bds3-rsmc"\noutages = [{start = 10}]', r"link bad: outages.0.end"),
        ('profile = "bds3-rsmc"\noutages = [{start = 2026-11-25T10:00:00, end = 5}]', r"link bad: .*UTC offset"),
        ('profile = "bds3-rsmc"\noutage_mean_s = 0', r"link bad: outage_mean_s"),
        ('profile = "bds3-rsmc"\nterminal_lat = 0\nterminal_lon = -30', r"link bad: .*horizon"),
        ("max_frame_bytes = 9", r"link bad: interval_s is required"),
        ('type = "sbd"\nmax_frame_bytes = 9\ninterval_s = 1', r"link bad: type 'sbd' is not supported"),
    ],
)
def test_errors_name_the_link_and_the_field(tmp_path: Path, body: str, named: str) -> None:
    """Each bad link table fails start-up with a message naming the link and what is wrong."""
    with pytest.raises(ConfigError, match=named):
        load(tmp_path, f'[[links]]\nname = "good"\nprofile = "bds3-rsmc"\n[[links]]\nname = "bad"\n{body}\n')


def test_unnamed_link_is_named_by_position(tmp_path: Path) -> None:
    """A table without a name is reported by its position."""
    with pytest.raises(ConfigError, match=r"link #2: name"):
        load(tmp_path, '[[links]]\nname = "a"\nprofile = "bds3-rsmc"\n[[links]]\nprofile = "bds3-rsmc"\n')
