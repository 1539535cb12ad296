"""The profile catalogue: every BeiDou profile's caps, intervals, emergency exemption, path delay, outages and loss."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from gateway.links import Feedback, FeedbackCode, GeoLink, GeoProfile, SimClock
from gateway.links.factory import build_link
from gateway.links.geometry import LIGHT_SPEED_KM_S, MEO_ALTITUDE_KM, geo_path_delay_s, slant_range_km
from gateway.links.outages import OutagePlan, Window
from gateway.links.profiles import CATALOGUE, CardSpec, SbdSpec, configure, lookup
from gateway.links.sbd import SbdProfile
from protocols.envelope import Priority
from tests.unit.link_helpers import RecordingSink

START = 10_000.0
ROUTINE = Priority.ROUTINE
DISTRESS = Priority.DISTRESS

CARD_BYTES = {
    "bds2-rdss-l1": 13,
    "bds2-rdss-l2": 51,
    "bds2-rdss-l3": 78,
    "bds2-rdss-l4": 106,
    "bds2-rdss-l1-enc": 17,
    "bds2-rdss-l2-enc": 45,
    "bds2-rdss-l3-enc": 72,
    "bds2-rdss-l4-enc": 210,
    "bds3-rsmc": 1750,
    "bds3-gsmc": 70,
}
"""Each BeiDou profile's cap in whole bytes: the bits of domain.md §1.1-1.2 divided by 8, rounded down."""
BEIDOU = sorted(CARD_BYTES)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=START)


@pytest.fixture
def sink(clock: SimClock) -> RecordingSink:
    return RecordingSink(clock)


def card(profile: str, clock: SimClock, sink: RecordingSink, **overrides: Any) -> GeoLink:
    """A lossless link of ``profile`` (unless overridden), built by the factory."""
    settings = configure(profile, name="l", overrides={"loss_rate": 0.0, **overrides})
    link = build_link(settings, clock=clock, sink=sink)
    assert isinstance(link, GeoLink)
    return link


async def send(clock: SimClock, link: GeoLink, frame: bytes, priority: Priority = ROUTINE) -> Feedback:
    return await clock.drive(link.transmit(frame, priority=priority))


class TestCatalogue:
    def test_every_beidou_profile_has_its_cap_in_whole_bytes(self) -> None:
        """Each card level and BDS-3 service has the documented cap, in bytes rounded down (848 bits → 106)."""
        for name, nbytes in CARD_BYTES.items():
            spec = lookup(name)
            assert isinstance(spec, CardSpec)
            assert spec.max_frame_bytes == nbytes
            assert spec.max_frame_bytes * 8 <= spec.bits < (spec.max_frame_bytes + 1) * 8

    @pytest.mark.parametrize(("name", "mo", "mt"), [("iridium-sbd-9603", 340, 270), ("iridium-sbd-9522", 1960, 1890)])
    def test_sbd_profiles_have_their_mo_and_mt_caps(self, name: str, mo: int, mt: int) -> None:
        """9603-class modems carry 340/270 bytes and 9522-class 1960/1890, with a 50-message MT queue."""
        settings = configure(name, name="m")
        assert isinstance(lookup(name), SbdSpec)
        assert isinstance(settings, SbdProfile)
        assert (settings.max_frame_bytes, settings.mt_bytes, settings.mt_queue) == (mo, mt, 50)

    def test_intervals_and_loss_follow_the_domain_figures(self) -> None:
        """BeiDou cards wait the civil 60 s; loss is 1 minus the published success rate."""
        for name in BEIDOU:
            assert lookup(name).interval_s == 60.0
        assert lookup("bds2-rdss-l3").loss_rate == pytest.approx(1 - 0.955)
        assert lookup("bds3-rsmc").loss_rate == pytest.approx(1 - 0.996)
        assert lookup("bds3-gsmc").loss_rate == pytest.approx(1 - 0.9646)

    def test_lab_profile_is_the_generous_default_pool(self) -> None:
        """The lab profile is ten RSMC-size cards with a 50 ms interval and 1 % loss."""
        settings = configure("lab-geo", name="lab")
        assert isinstance(settings, GeoProfile)
        assert (settings.max_frame_bytes, settings.interval_s, settings.cards, settings.loss_rate) == (
            1750,
            0.05,
            10,
            0.01,
        )

    @pytest.mark.parametrize(
        ("profile", "overrides", "message"),
        [
            ("bds2-rdss-l9", {}, "unknown.*bds2-rdss-l3"),
            ("bds2-rdss-l3", {"max_frame_bytes": 79}, "max_frame_bytes.*78"),
            ("bds2-rdss-l3", {"elevation_deg": 40.0}, "elevation_deg"),
            ("bds3-gsmc", {"sat_lon": 80.0}, "sat_lon"),
            ("bds3-gsmc", {"terminal_lat": 10.0}, "terminal_lat"),
            ("iridium-sbd-9603", {"cards": 2}, "cards"),
            ("bds2-rdss-l3", {"interval_s": -5.0}, "interval_s"),
            ("bds2-rdss-l3", {"cards": 0}, "cards"),
        ],
    )
    def test_bad_overrides_are_refused_by_name(self, profile: str, overrides: dict[str, Any], message: str) -> None:
        """Unknown profiles, settings a profile does not have and bad values raise ValueError naming them."""
        with pytest.raises(ValueError, match=message):
            configure(profile, name="x", overrides=overrides)

    def test_overrides_replace_the_profile_values(self) -> None:
        """cards, interval_s, loss_rate and location overrides reach the link settings."""
        settings = configure(
            "bds2-rdss-l3",
            name="x",
            overrides={"cards": 5, "interval_s": 40.0, "loss_rate": 0.1, "terminal_lat": 43.8, "terminal_lon": 87.6},
        )
        assert isinstance(settings, GeoProfile)
        assert (settings.cards, settings.interval_s, settings.loss_rate) == (5, 40.0, 0.1)
        assert settings.delay_s == geo_path_delay_s(
            110.5, from_lat=43.8, from_lon=87.6, to_lat=39.9042, to_lon=116.4074
        )

    def test_catalogue_names_cover_the_issue(self) -> None:
        """The profile names the config documents all exist."""
        for name in ("bds2-rdss-l3", "bds3-rsmc", "bds3-gsmc", "iridium-sbd-9603", "iridium-sbd-9522", "lab-geo"):
            assert name in CATALOGUE


class TestSizeCaps:
    @pytest.mark.parametrize("profile", BEIDOU)
    async def test_frame_of_the_cap_goes_one_more_byte_does_not(
        self, clock: SimClock, sink: RecordingSink, profile: str
    ) -> None:
        """A routine frame of exactly the cap is sent; one byte more is TOO_LARGE, uses no card and takes no time."""
        link = card(profile, clock, sink)
        cap = CARD_BYTES[profile]
        assert link.mtu == cap
        assert (await link.transmit(bytes(cap + 1), priority=ROUTINE)).code is FeedbackCode.TOO_LARGE
        assert clock.now() == START
        assert (await send(clock, link, bytes(cap))).sent
        assert [len(frame) for frame, _, _ in sink.frames] == [cap]

    async def test_express_lets_distress_exceed_a_small_level(self, clock: SimClock, sink: RecordingSink) -> None:
        """On a level-1 card (13 B) distress may go as a 188-bit express message (23 B), never more; routine may not."""
        link = card("bds2-rdss-l1", clock, sink, cards=3)
        assert link.max_frame_bytes_for(DISTRESS) == 23
        assert (await link.transmit(bytes(14), priority=ROUTINE)).code is FeedbackCode.TOO_LARGE
        assert (await link.transmit(bytes(24), priority=DISTRESS)).code is FeedbackCode.TOO_LARGE
        assert (await send(clock, link, bytes(23), DISTRESS)).sent
        assert link.stats().express == 1

    async def test_express_cap_does_not_shrink_big_levels(self, clock: SimClock, sink: RecordingSink) -> None:
        """On a level-4 card distress keeps the full 106 bytes; the express cap only ever adds."""
        link = card("bds2-rdss-l4", clock, sink)
        assert link.max_frame_bytes_for(DISTRESS) == 106
        assert (await send(clock, link, bytes(106), DISTRESS)).sent
        assert link.stats().express == 0


class TestIntervals:
    @pytest.mark.parametrize("profile", BEIDOU)
    async def test_card_sends_once_per_sixty_seconds(self, clock: SimClock, sink: RecordingSink, profile: str) -> None:
        """After a send the card refuses routine traffic with INTERVAL and the exact wait until 60 s have passed."""
        link = card(profile, clock, sink)
        assert (await send(clock, link, b"a")).sent
        refused = await link.transmit(b"b", priority=ROUTINE)
        assert refused.code is FeedbackCode.INTERVAL
        assert clock.now() + refused.wait_s == pytest.approx(START + 60.0)
        await clock.run_until(START + 60.0)
        assert (await send(clock, link, b"c")).sent

    async def test_interval_override_applies(self, clock: SimClock, sink: RecordingSink) -> None:
        """A 5 s interval override lets the card send again after 5 s, not 60 s."""
        link = card("bds2-rdss-l3", clock, sink, interval_s=5.0)
        await send(clock, link, b"a")
        await clock.run_until(START + 5.0)
        assert (await send(clock, link, b"b")).sent

    @pytest.mark.parametrize("profile", BEIDOU)
    async def test_distress_is_exempt_then_the_card_waits_twice_its_interval(
        self, clock: SimClock, sink: RecordingSink, profile: str
    ) -> None:
        """Distress goes on a card inside its interval; other traffic then waits 2x the interval from that send."""
        link = card(profile, clock, sink)
        await send(clock, link, b"routine")
        await clock.run_until(START + 30.0)
        assert link.ready_in(DISTRESS) == 0.0
        assert (await send(clock, link, b"sos", DISTRESS)).sent
        assert link.stats().exemptions == 1
        await clock.run_until(START + 30.0 + 119.9)
        assert (await link.transmit(b"x", priority=ROUTINE)).code is FeedbackCode.INTERVAL
        await clock.run_until(START + 30.0 + 120.0)
        assert (await send(clock, link, b"y")).sent


class TestPathDelay:
    async def test_geo_profiles_take_the_geo_bent_pipe_delay(self, clock: SimClock, sink: RecordingSink) -> None:
        """An RSMC frame from Urumqi reaches a Beijing centre after both GEO legs over c."""
        link = card("bds3-rsmc", clock, sink, terminal_lat=43.8256, terminal_lon=87.6168, sat_lon=140.0)
        expected = geo_path_delay_s(140.0, from_lat=43.8256, from_lon=87.6168, to_lat=39.9042, to_lon=116.4074)
        feedback = await send(clock, link, b"x")
        assert feedback.delay_s == expected
        assert sink.frames[0][2] == pytest.approx(START + expected)

    async def test_gsmc_takes_two_meo_legs(self, clock: SimClock, sink: RecordingSink) -> None:
        """A GSMC frame takes two MEO legs, each inside the domain's 71.8-87.0 ms band; elevation tunes it."""
        link = card("bds3-gsmc", clock, sink)
        feedback = await send(clock, link, b"x")
        assert 2 * 0.0718 <= feedback.delay_s <= 2 * 0.0870
        high = card("bds3-gsmc", clock, sink, elevation_deg=90.0)
        assert high.delay_s == pytest.approx(2 * slant_range_km(MEO_ALTITUDE_KM, 90.0) / LIGHT_SPEED_KM_S)
        assert high.delay_s == pytest.approx(2 * 0.0718, abs=1e-4)

    def test_gsmc_works_where_no_geo_is_visible(self) -> None:
        """GSMC is global: a terminal in the Atlantic is accepted, whereas an RSMC GEO link there is refused."""
        assert configure("bds3-gsmc", name="x").delay_s > 0
        with pytest.raises(ValueError, match="horizon"):
            configure("bds3-rsmc", name="x", overrides={"terminal_lat": 0.0, "terminal_lon": -30.0})


class TestOutages:
    async def test_scheduled_window_blocks_every_class_until_it_ends(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """Inside a scheduled outage even distress gets OUTAGE with the wait to its end; afterwards sends go."""
        plan = OutagePlan(windows=(Window(START + 100.0, START + 400.0),))
        link = card("bds2-rdss-l3", clock, sink, outages=plan)
        await clock.run_until(START + 150.0)
        for priority in (DISTRESS, ROUTINE):
            feedback = await link.transmit(b"x", priority=priority)
            assert feedback == Feedback(FeedbackCode.OUTAGE, wait_s=250.0)
            assert link.ready_in(priority) == 250.0
        assert link.stats().outage_refusals == 2
        await clock.run_until(START + 400.0)
        assert (await send(clock, link, b"y")).sent

    async def test_outage_starting_in_flight_loses_the_frame(self, clock: SimClock, sink: RecordingSink) -> None:
        """A frame still in flight when an outage begins is LOST, and the card's interval still runs."""
        link = card("bds2-rdss-l3", clock, sink)
        plan = OutagePlan(windows=(Window(START + link.delay_s / 2, START + 10.0),))
        link = card("bds2-rdss-l3", clock, sink, outages=plan)
        feedback = await send(clock, link, b"x")
        assert feedback.code is FeedbackCode.LOST
        assert sink.frames == []
        assert clock.now() + link.ready_in(ROUTINE) == pytest.approx(START + 60.0)

    async def test_random_outages_are_seeded_and_refuse_with_their_end(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """A link with random outages refuses while one lasts, with the wait to its end, the same for one seed."""

        async def pattern() -> list[tuple[FeedbackCode, float]]:
            run_clock = SimClock(start=START)
            plan = OutagePlan(rate_per_h=6.0, mean_s=300.0, seed=42)
            link = card("lab-geo", run_clock, RecordingSink(run_clock), outages=plan, interval_s=0.0)
            seen = []
            for k in range(24 * 60):
                await run_clock.run_until(START + 60.0 * k)
                feedback = await run_clock.drive(link.transmit(b"x", priority=ROUTINE))
                seen.append((feedback.code, round(feedback.wait_s, 6)))
            return seen

        first = await pattern()
        assert first == await pattern()
        refusals = [wait for code, wait in first if code is FeedbackCode.OUTAGE]
        assert 0.05 * len(first) < len(refusals) < 0.6 * len(first)
        assert all(wait > 0 for wait in refusals)


class TestLoss:
    @pytest.mark.parametrize("profile", ["bds2-rdss-l3", "bds3-rsmc", "bds3-gsmc"])
    async def test_profile_loss_rate_holds_over_many_frames(self, clock: SimClock, profile: str) -> None:
        """With the profile's own loss rate, 20 000 frames lose that share within 4 sigma, seeded."""
        sink = RecordingSink(clock)
        rate = lookup(profile).loss_rate
        settings = configure(profile, name="l", overrides={"interval_s": 0.0, "seed": 99})
        link = build_link(settings, clock=clock, sink=sink)
        n = 20_000
        feedback = await clock.drive(asyncio.gather(*(link.transmit(b"f", priority=ROUTINE) for _ in range(n))))
        lost = sum(f.code is FeedbackCode.LOST for f in feedback)
        assert abs(lost - n * rate) < 4 * math.sqrt(n * rate * (1 - rate))
        assert len(sink.frames) == n - lost

    async def test_seed_override_repeats_losses(self, clock: SimClock, sink: RecordingSink) -> None:
        """Two links with one seed lose the same frames; the rng argument still wins over the seed."""

        async def pattern(rng: random.Random | None = None) -> list[bool]:
            settings = configure("bds2-rdss-l3", name="l", overrides={"interval_s": 0.0, "seed": 5, "loss_rate": 0.3})
            link = build_link(settings, clock=clock, sink=sink, rng=rng)
            return [(await clock.drive(link.transmit(b"x", priority=ROUTINE))).sent for _ in range(60)]

        first = await pattern()
        assert first == await pattern()
        assert not all(first)
        assert any(first)
        assert await pattern(random.Random(12345)) != first
