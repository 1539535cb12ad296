"""build_link: one entry point that turns any link kind's settings into a running link."""

from __future__ import annotations

import pytest

from gateway.links import GeoLink, SimClock
from gateway.links.factory import build_link
from gateway.links.profiles import CATALOGUE, configure
from gateway.links.sbd import SbdLink


class NullSink:
    """A ground segment that takes frames and forgets them."""

    async def receive(self, frame: bytes, *, link: str) -> None:
        return None


@pytest.mark.parametrize("profile", sorted(CATALOGUE))
def test_every_catalogue_profile_builds_its_link(profile: str) -> None:
    """Each profile builds a link of the right kind whose name and MTU come from the settings."""
    settings = configure(profile, name=f"link-{profile}")
    link = build_link(settings, clock=SimClock(), sink=NullSink())
    assert link.name == f"link-{profile}"
    assert link.mtu == settings.max_frame_bytes
    expected = SbdLink if profile.startswith("iridium-sbd-") else GeoLink
    assert type(link) is expected


def test_unknown_settings_are_refused() -> None:
    """Settings of no known link kind raise TypeError naming their type."""
    with pytest.raises(TypeError, match="dict"):
        build_link({"name": "x"}, clock=SimClock(), sink=NullSink())  # type: ignore[arg-type]
