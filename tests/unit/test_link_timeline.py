"""Link timelines: LEO passes as the orbit module computes them, GEO sky with outages and busy cards, SBD, RDSS."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest

from gateway.links import SimClock
from gateway.links.geo import GeoProfile
from gateway.links.leo import LeoProfile
from gateway.links.mock import MockLink
from gateway.links.orbits import find_passes
from gateway.links.outages import REMEMBERED, OutagePlan, Outages, Window
from gateway.links.rdss_serial import RdssTerminalLink, SerialPort, TerminalOptions
from gateway.links.sbd import SbdProfile
from gateway.links.timeline import HasTimeline, Span, busy_spans, pass_span, timeline
from gateway.operations import next_view_in
from gateway.sim.rdss_terminal import EmulatedCard, RdssTerminalEmulator
from protocols.envelope import Priority
from tests.unit.link_helpers import RecordingSink

T0 = datetime(2026, 11, 26, 6, 17, 23, tzinfo=UTC).timestamp()  # not on an hour: chunks must not show
HOUR = 3600.0


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=T0)


@pytest.fixture
def sink(clock: SimClock) -> RecordingSink:
    return RecordingSink(clock)


def leo(**overrides: object) -> LeoProfile:
    values: dict[str, object] = {
        "name": "leo1",
        "tle": "swarm-like",
        "gateway_lat": 59.91,
        "gateway_lon": 10.75,
        "pass_capacity_frames": 4,
        "mtu": 100,
    }
    return LeoProfile(**(values | overrides))  # type: ignore[arg-type]


def geo(**overrides: object) -> GeoProfile:
    values: dict[str, object] = {"name": "geo1", "max_frame_bytes": 100, "interval_s": 60.0, "cards": 2}
    return GeoProfile(**(values | overrides))  # type: ignore[arg-type]


class TestSpan:
    @pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (6.0, 5.0), (math.nan, 5.0), (0.0, math.inf)])
    def test_empty_or_endless_spans_are_refused(self, start: float, end: float) -> None:
        """A span must be finite and end after it starts."""
        with pytest.raises(ValueError, match="span"):
            Span(kind="outage", start=start, end=end)

    def test_a_link_without_a_timeline_has_none(self) -> None:
        """A link model without ``timeline`` (a scripted test link) answers an empty list, not an error."""

        async def never(frame: bytes, priority: Priority) -> object:
            raise AssertionError("not called")

        link = MockLink(never)  # type: ignore[arg-type]
        assert not isinstance(link, HasTimeline)
        assert timeline(link, 0.0, 10.0) == []

    def test_the_stretch_must_be_ordered(self, clock: SimClock, sink: RecordingSink) -> None:
        """Asking for a stretch that ends before it starts is refused."""
        with pytest.raises(ValueError, match="stretch"):
            timeline(geo().build(sink=sink, clock=clock), 10.0, 10.0)


class TestLeo:
    @pytest.mark.parametrize(("back", "hours"), [(600.0, 6.0), (0.0, 0.5), (1800.0, 24.0)])
    def test_passes_equal_the_orbit_module(
        self, clock: SimClock, sink: RecordingSink, back: float, hours: float
    ) -> None:
        """The timeline's passes are exactly find_passes over the same stretch: rise, set, peak time and elevation."""
        p = leo()
        link = p.build(sink=sink, clock=clock)
        start, end = T0 - back, T0 + hours * HOUR
        want = find_passes(p.satellites(), p.site(), start, end, min_elevation_deg=p.min_elevation_deg)
        got = timeline(link, start, end)
        assert got == [pass_span(q) for q in want]
        assert all(s.kind == "pass" and s.peak_elevation_deg is not None for s in got)
        if hours >= 6:
            assert len(got) >= 3  # enough passes that the comparison means something

    def test_asking_again_later_keeps_the_same_passes(self, clock: SimClock, sink: RecordingSink) -> None:
        """A later, overlapping stretch gives the passes they share unchanged (the hourly cache is invisible)."""
        link = leo().build(sink=sink, clock=clock)
        first = timeline(link, T0, T0 + 6 * HOUR)
        later = timeline(link, T0 + 2 * HOUR, T0 + 8 * HOUR)
        shared = [s for s in first if s.end > T0 + 2 * HOUR]
        assert later[: len(shared)] == shared

    async def test_scheduled_outages_show_with_the_passes(self, clock: SimClock, sink: RecordingSink) -> None:
        """A scheduled outage of a LEO link shows beside its passes, labelled scheduled."""
        down = Window(T0 + HOUR, T0 + 2 * HOUR)
        link = leo(outages=OutagePlan(windows=(down,))).build(sink=sink, clock=clock)
        spans = timeline(link, T0, T0 + 3 * HOUR)
        assert [s for s in spans if s.kind == "outage"] == [
            Span(kind="outage", start=down.start, end=down.end, label="scheduled")
        ]
        assert any(s.kind == "pass" for s in spans)


class TestGeo:
    async def test_in_view_with_a_scheduled_outage(self, clock: SimClock, sink: RecordingSink) -> None:
        """A GEO is in view the whole stretch; a scheduled outage ahead shows whole, one outside does not."""
        plan = OutagePlan(windows=(Window(T0 + 600, T0 + 1200), Window(T0 + 10 * HOUR, T0 + 11 * HOUR)))
        link = geo(outages=plan).build(sink=sink, clock=clock)
        spans = timeline(link, T0 - 600, T0 + HOUR)
        assert spans == [
            Span(kind="in_view", start=T0 - 600, end=T0 + HOUR, label="GEO 110.5°E"),
            Span(kind="outage", start=T0 + 600, end=T0 + 1200, label="scheduled"),
        ]

    async def test_busy_cards_show_until_they_may_send(self, clock: SimClock, sink: RecordingSink) -> None:
        """After one send, that card's interval shows from now to when it may send again; an idle card shows nothing."""
        link = geo().build(sink=sink, clock=clock)
        assert (await clock.drive(link.transmit(b"x", priority=Priority.ROUTINE))).sent
        now = clock.now()
        busy = [s for s in timeline(link, T0, T0 + HOUR) if s.kind == "interval"]
        assert busy == [Span(kind="interval", start=now, end=T0 + 60.0, label="card 1")]
        assert link.ready_in(Priority.ROUTINE) == 0.0  # the other card is free
        await clock.run_until(T0 + 60.0)
        assert [s for s in timeline(link, T0, T0 + HOUR) if s.kind == "interval"] == []

    async def test_random_outages_show_only_once_begun(self, clock: SimClock, sink: RecordingSink) -> None:
        """A random outage is absent before it starts, shows whole once begun, and still shows after it ended."""
        plan = OutagePlan(rate_per_h=2.0, mean_s=120.0, seed=3)
        link = geo(outages=plan).build(sink=sink, clock=clock)
        first = first_random_outage(plan)
        assert first.start > T0
        assert [s for s in timeline(link, T0, T0 + 10 * HOUR) if s.kind == "outage"] == []
        await clock.run_until(first.start)
        assert link.ready_in(Priority.ROUTINE) == pytest.approx(first.end - first.start)
        shown = [s for s in timeline(link, T0, T0 + 10 * HOUR) if s.kind == "outage"]
        assert shown == [Span(kind="outage", start=first.start, end=first.end, label="random")]
        await clock.run_until(first.end)
        assert link.ready_in(Priority.ROUTINE) == 0.0  # the model has done with it; the timeline still shows it
        assert shown[0] in timeline(link, T0, T0 + 10 * HOUR)


def first_random_outage(plan: OutagePlan) -> Window:
    """The first random outage of ``plan`` from T0, read from an independent model with the same seed."""
    twin = Outages(plan, origin=T0)
    t = T0
    while twin.until(t) is None:
        t += 1.0
    return min((w for _, w in twin.known(T0, t + 1.0, now=t)), key=lambda w: w.start)


class TestOutagesKnown:
    def test_ended_random_outages_are_remembered_up_to_a_bound(self) -> None:
        """The model remembers the last REMEMBERED random outages that ended, no more, oldest dropped first."""
        outages = Outages(OutagePlan(rate_per_h=60.0, mean_s=5.0, seed=1), origin=0.0)
        far = 400 * 120.0
        outages.until(far)
        begun = [w for why, w in outages.known(0.0, far, now=far) if why == "random"]
        assert REMEMBERED <= len(begun) <= REMEMBERED + 10
        assert begun == sorted(begun, key=lambda w: w.start)
        assert all(w.start <= far for w in begun)


class TestOthers:
    async def test_sbd_shows_the_constellation_and_the_modem_cycle(self, clock: SimClock, sink: RecordingSink) -> None:
        """An SBD modem is always in view; after a session its data cycle shows until the next session may start."""
        profile = SbdProfile(
            name="sbd1", max_frame_bytes=340, mt_bytes=270, session_base_s=3.0, session_s_per_byte=0.01, interval_s=40.0
        )
        link = profile.build(sink=sink, clock=clock)
        assert (await clock.drive(link.transmit(b"x", priority=Priority.ROUTINE))).sent
        now = clock.now()
        spans = timeline(link, now, now + HOUR)
        assert Span(kind="in_view", start=now, end=now + HOUR, label="Iridium") in spans
        [busy] = [s for s in spans if s.kind == "interval"]
        assert (busy.label, busy.start, busy.end) == ("modem", now, now + link.ready_in(Priority.ROUTINE))

    def test_busy_spans_number_the_cards(self) -> None:
        """Several cards are numbered from 1; cards free by now, or busy only before the stretch, are left out."""
        spans = busy_spans([5.0, 20.0, 30.0, 500.0], 0.0, 100.0, now=10.0, label="card")
        assert [(s.label, s.end) for s in spans] == [("card 2", 20.0), ("card 3", 30.0), ("card 4", 500.0)]
        assert all(s.start == 10.0 for s in spans)
        assert [s.label for s in busy_spans([5.0, 20.0, 30.0, 500.0], 25.0, 100.0, now=10.0, label="card")] == [
            "card 3",
            "card 4",
        ]
        assert busy_spans([-math.inf], 0.0, 100.0, now=10.0, label="modem") == []


class TestRdssTerminal:
    GROUND = "0242407"

    async def test_an_unopened_terminal_shows_it_is_not_open(self, clock: SimClock) -> None:
        """Before the card is queried the terminal can send nothing: one outage span from now, labelled not open."""
        options = TerminalOptions(recipient=self.GROUND)
        link = RdssTerminalLink(name="bd", connector=SerialPort("/dev/null"), clock=clock, options=options)
        [span] = timeline(link, T0 - 600, T0 + HOUR)
        assert (span.kind, span.label, span.start) == ("outage", "not open", T0)
        assert span.end == T0 + link.ready_in(Priority.ROUTINE)

    @pytest.mark.timeout(10)
    async def test_beams_and_the_interval_booking_show(self, clock: SimClock) -> None:
        """No usable beam shows as an outage until the next report; a sent frame books the card's interval."""
        card = EmulatedCard(address="15240507", generation="bds3", level=5, interval_s=60)
        async with RdssTerminalEmulator(card=card, clock=clock, beams=(0,) * 10) as term:
            options = TerminalOptions(recipient=self.GROUND, generation="bds3", beam_interval_s=10)
            async with RdssTerminalLink(
                name="bd", connector=SerialPort(term.port), clock=clock, options=options
            ) as link:
                assert link.beams_ok is False
                now = clock.now()
                assert timeline(link, now, now + HOUR) == [
                    Span(kind="outage", start=now, end=now + 10.0, label="no usable beam")
                ]
                await term.set_beams((4,) * 10)
                async with asyncio.timeout(5):
                    while link.beams_ok is not True:
                        await asyncio.sleep(0.001)
                assert (await link.transmit(b"hi", priority=Priority.ROUTINE)).sent
                now = clock.now()
                assert timeline(link, now, now + HOUR) == [
                    Span(kind="in_view", start=now, end=now + 10.0, label="beam usable"),
                    Span(kind="interval", start=now, end=now + link.ready_in(Priority.ROUTINE), label="card"),
                ]


class TestNextView:
    def test_next_pass_is_the_first_pass_ahead_or_zero_inside_one(self, clock: SimClock, sink: RecordingSink) -> None:
        """The next-pass figure of /metrics: seconds to the next LEO pass, 0 during one, 0 for a GEO link."""
        link = leo().build(sink=sink, clock=clock)
        first = next(s for s in timeline(link, T0, T0 + 24 * HOUR) if s.kind == "pass")
        before = first.start - 100.0
        assert next_view_in(link, before) == pytest.approx(100.0, abs=0.01)
        assert next_view_in(link, first.start + 1.0) == 0.0
        assert next_view_in(geo().build(sink=sink, clock=clock), T0) == 0.0

    def test_a_link_that_cannot_tell_has_no_figure(self) -> None:
        """A scripted test link has no next pass at all (the gauge is left out)."""

        async def never(frame: bytes, priority: Priority) -> object:
            raise AssertionError("not called")

        assert next_view_in(MockLink(never), T0) is None  # type: ignore[arg-type]
