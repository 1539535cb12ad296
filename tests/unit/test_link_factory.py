"""The link factory: one entry point per link kind, and each kind's capacity for the ceilings."""

from __future__ import annotations

import pytest

from gateway.links.factory import capacity_per_hour
from gateway.links.leo import LeoProfile
from gateway.links.orbits import find_passes
from gateway.links.profiles import configure


def test_card_pool_capacity_is_cards_times_slots() -> None:
    """A BDS-2 level-3 card at the civil 60 s interval carries 60 frames an hour; three cards 180."""
    assert capacity_per_hour(configure("bds2-rdss-l3", name="a")) == pytest.approx(60.0)
    assert capacity_per_hour(configure("bds2-rdss-l3", name="b", overrides={"cards": 3})) == pytest.approx(180.0)


def test_links_without_an_interval_have_no_capacity_figure() -> None:
    """A custom link with no send interval has no frames-per-hour limit, so no ceiling applies."""
    assert capacity_per_hour(configure("lab-geo", name="lab", overrides={"interval_s": 0})) is None


def test_sbd_capacity_is_bounded_by_the_data_cycle() -> None:
    """An Iridium 9603 modem with a 40 s data cycle starts at most 90 sessions an hour."""
    assert capacity_per_hour(configure("iridium-sbd-9603", name="m")) == pytest.approx(90.0)


def test_leo_capacity_is_frames_per_pass_times_passes_per_hour() -> None:
    """A LEO link's hourly capacity is its frames per pass times the coming day's passes over 24 h."""
    leo = LeoProfile(name="s", tle="swarm-like", gateway_lat=39.9, gateway_lon=116.4, pass_capacity_frames=10)
    start = 1_795_000_000.0
    passes = find_passes(leo.satellites(), leo.site(), start, start + 86_400, min_elevation_deg=10)
    assert len(passes) > 5
    assert capacity_per_hour(leo, now=start) == pytest.approx(len(passes) * 10 / 24)
    no_frame_limit = LeoProfile(name="b", tle="swarm-like", gateway_lat=0, gateway_lon=0, pass_capacity_bytes=4096)
    assert capacity_per_hour(no_frame_limit, now=start) is None
