"""GeoLink (the GEO RDSS link model) and MockLink, on simulated time with seeded randomness."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from typing import Any

import pytest

from gateway.links import (
    Feedback,
    FeedbackCode,
    GeoLink,
    GeoProfile,
    Link,
    LinkStats,
    MockLink,
    SimClock,
    geo_path_delay_s,
    one_way_delay_s,
)
from protocols.envelope import Priority
from tests.unit.link_helpers import RecordingSink

URUMQI = (43.8256, 87.6168)
BEIJING = (39.9042, 116.4074)
START = 1_000.0
INTERVAL = 60.0
ROUTINE = Priority.ROUTINE
DISTRESS = Priority.DISTRESS


class AlwaysLoses(random.Random):
    """A random source whose every draw is 0.0, so any loss_rate > 0 loses the frame."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=START)


@pytest.fixture
def sink(clock: SimClock) -> RecordingSink:
    return RecordingSink(clock)


def settings(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for a GeoLink/GeoProfile: Urumqi terminal, Beijing centre, one 60 s card, 78-byte frames."""
    base: dict[str, Any] = {
        "name": "geo1",
        "max_frame_bytes": 78,
        "interval_s": INTERVAL,
        "terminal_lat": URUMQI[0],
        "terminal_lon": URUMQI[1],
        "ground_lat": BEIJING[0],
        "ground_lon": BEIJING[1],
    }
    return base | overrides


def make(clock: SimClock, sink: RecordingSink, rng: random.Random | None = None, **overrides: Any) -> GeoLink:
    return GeoLink(sink=sink, clock=clock, rng=rng or random.Random(7), **settings(**overrides))


class TestConstruction:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"name": ""}, "name"),
            ({"max_frame_bytes": 0}, "max_frame_bytes"),
            ({"max_frame_bytes": True}, "max_frame_bytes"),
            ({"cards": 0}, "cards"),
            ({"cards": 1.5}, "cards"),
            ({"interval_s": -1.0}, "interval_s"),
            ({"interval_s": math.nan}, "interval_s"),
            ({"loss_rate": 1.0}, "loss_rate"),
            ({"loss_rate": -0.01}, "loss_rate"),
            ({"terminal_lat": 91.0}, "terminal position: latitude"),
            ({"ground_lon": -70.0}, "below the ground station's horizon"),
            ({"terminal_lon": -69.5, "terminal_lat": 0.0}, "below the terminal's horizon"),
        ],
    )
    def test_rejects_settings_that_cannot_work(
        self, clock: SimClock, sink: RecordingSink, overrides: dict[str, Any], message: str
    ) -> None:
        """Each impossible setting raises ValueError with a message naming it."""
        with pytest.raises(ValueError, match=message):
            make(clock, sink, **overrides)

    def test_profile_builds_an_equal_link(self, clock: SimClock, sink: RecordingSink) -> None:
        """GeoProfile.build gives a link with the profile's settings; the profile is immutable data."""
        profile = GeoProfile(**settings(cards=2, sat_lon=140.0))
        link: Link = profile.build(sink=sink, clock=clock, rng=random.Random(1))
        assert isinstance(link, GeoLink)
        assert link.profile == profile == make(clock, sink, cards=2, sat_lon=140.0).profile
        assert (link.name, link.mtu) == ("geo1", 78)
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.cards = 3  # type: ignore[misc]

    def test_positions_default_to_beijing(self, clock: SimClock, sink: RecordingSink) -> None:
        """Without positions, terminal and centre sit in Beijing: two 125 ms legs via 110.5°E."""
        link = GeoLink(name="lab", sink=sink, clock=clock, max_frame_bytes=1750, interval_s=0.05)
        assert link.delay_s == pytest.approx(2 * one_way_delay_s(110.5, *BEIJING))
        assert link.delay_s == pytest.approx(0.2503, abs=1e-4)

    def test_zero_interval_is_allowed_for_lab_links(self, clock: SimClock, sink: RecordingSink) -> None:
        """interval_s = 0 builds a link that is always ready."""
        link = make(clock, sink, interval_s=0.0)
        assert link.ready_in(ROUTINE) == 0.0


class TestSizeCap:
    async def test_oversize_frame_is_refused_at_once(self, clock: SimClock, sink: RecordingSink) -> None:
        """A frame one byte over the MTU is TOO_LARGE without time passing, a card being used or the sink called."""
        link = make(clock, sink)
        feedback = await link.transmit(bytes(79), priority=DISTRESS)
        assert feedback == Feedback(FeedbackCode.TOO_LARGE)
        assert clock.now() == START
        assert sink.frames == []
        assert link.ready_in(ROUTINE) == 0.0
        assert link.stats() == LinkStats(too_large=1)

    async def test_frame_of_exactly_mtu_goes(self, clock: SimClock, sink: RecordingSink) -> None:
        """A frame of exactly the MTU is sent."""
        link = make(clock, sink)
        feedback = await clock.drive(link.transmit(bytes(78), priority=ROUTINE))
        assert feedback.sent
        assert link.stats().bytes_sent == 78


class TestInterval:
    async def test_second_send_is_refused_with_the_exact_wait(self, clock: SimClock, sink: RecordingSink) -> None:
        """After a send, the card refuses others with INTERVAL until exactly one interval after the send."""
        link = make(clock, sink)
        first = await clock.drive(link.transmit(b"a", priority=ROUTINE))
        delay = link.delay_s
        assert (first.code, first.delay_s) == (FeedbackCode.SENT, delay)
        assert first.wait_s == pytest.approx(INTERVAL - delay)
        await clock.advance(20.0)
        assert link.ready_in(ROUTINE) == pytest.approx(INTERVAL - delay - 20.0)
        refused = await link.transmit(b"b", priority=Priority.URGENCY)
        assert refused.code is FeedbackCode.INTERVAL
        assert refused.wait_s == pytest.approx(INTERVAL - delay - 20.0)
        await clock.sleep(0)
        await clock.run_until(START + INTERVAL - 1e-6)
        assert (await link.transmit(b"c", priority=ROUTINE)).code is FeedbackCode.INTERVAL
        await clock.run_until(START + INTERVAL)
        assert link.ready_in(ROUTINE) == 0.0
        assert (await clock.drive(link.transmit(b"d", priority=ROUTINE))).sent
        assert link.stats() == LinkStats(sent=2, interval_refusals=2, bytes_sent=2)

    async def test_sleeping_ready_in_is_always_enough(self, clock: SimClock, sink: RecordingSink) -> None:
        """A sender that sleeps ready_in() before each send is never refused, whatever the float rounding."""
        link = make(clock, sink, interval_s=0.1)

        async def sender() -> list[FeedbackCode]:
            codes = []
            for _ in range(50):
                await clock.sleep(link.ready_in(ROUTINE))
                codes.append((await link.transmit(b"x", priority=ROUTINE)).code)
            return codes

        assert set(await clock.drive(sender())) == {FeedbackCode.SENT}

    async def test_n_cards_give_n_sends_per_interval(self, clock: SimClock, sink: RecordingSink) -> None:
        """With 3 cards, exactly 3 frames go per interval and the 4th is refused until the next interval."""
        link = make(clock, sink, cards=3)
        for k in range(4):
            await clock.run_until(START + k * INTERVAL)
            burst = [link.transmit(bytes([k, i]), priority=ROUTINE) for i in range(4)]
            feedback = await clock.drive(asyncio.gather(*burst))
            assert [f.code for f in feedback] == [FeedbackCode.SENT] * 3 + [FeedbackCode.INTERVAL]
            assert feedback[3].wait_s == pytest.approx(INTERVAL)
        assert link.stats().sent == 12
        assert len(sink.frames) == 12


class TestDistress:
    async def test_distress_is_exempt_then_the_card_waits_twice_the_interval(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """Distress goes while the card is busy; afterwards other classes wait 2x the interval from that send."""
        link = make(clock, sink)
        await clock.drive(link.transmit(b"routine", priority=ROUTINE))
        await clock.run_until(START + 10.0)
        assert link.ready_in(DISTRESS) == 0.0
        sos = await clock.drive(link.transmit(b"sos", priority=DISTRESS))
        assert sos.sent
        assert sos.wait_s == 0.0
        assert link.ready_in(ROUTINE) == pytest.approx(2 * INTERVAL - link.delay_s)
        await clock.run_until(START + 10.0 + 2 * INTERVAL - 0.001)
        refused = await link.transmit(b"late", priority=ROUTINE)
        assert refused.code is FeedbackCode.INTERVAL
        assert refused.wait_s == pytest.approx(0.001)
        await clock.run_until(START + 10.0 + 2 * INTERVAL)
        assert (await clock.drive(link.transmit(b"now", priority=ROUTINE))).sent
        assert link.stats().exemptions == 1

    async def test_distress_on_a_ready_card_costs_one_interval(self, clock: SimClock, sink: RecordingSink) -> None:
        """Distress sent on a free card uses no exemption, so the card waits only its normal interval."""
        link = make(clock, sink)
        await clock.drive(link.transmit(b"sos", priority=DISTRESS))
        assert link.ready_in(ROUTINE) == pytest.approx(INTERVAL - link.delay_s)
        assert link.stats().exemptions == 0

    async def test_repeated_distress_always_goes(self, clock: SimClock, sink: RecordingSink) -> None:
        """Distress frames every second all go; each pushes the card's next routine slot to 2x the interval."""
        link = make(clock, sink)
        for k in range(5):
            await clock.run_until(START + k)
            assert (await clock.drive(link.transmit(bytes([k]), priority=DISTRESS))).sent
        assert link.stats() == LinkStats(sent=5, bytes_sent=5, exemptions=4)
        assert clock.now() + link.ready_in(ROUTINE) == pytest.approx(START + 4 + 2 * INTERVAL)


class TestPropagation:
    async def test_frame_arrives_after_the_geometric_delay(self, clock: SimClock, sink: RecordingSink) -> None:
        """The sink gets the frame exactly terminal leg + centre leg over c after the send, not before."""
        link = make(clock, sink, sat_lon=140.0)
        expected = geo_path_delay_s(140.0, from_lat=URUMQI[0], from_lon=URUMQI[1], to_lat=BEIJING[0], to_lon=BEIJING[1])
        assert link.delay_s == expected
        task = asyncio.create_task(link.transmit(b"hello", priority=ROUTINE))
        await clock.advance(expected - 1e-6)
        assert sink.frames == []
        assert not task.done()
        await clock.advance(1e-6)
        feedback = await task
        assert feedback.delay_s == expected
        [(frame, name, at)] = sink.frames
        assert (frame, name) == (b"hello", "geo1")
        assert at == pytest.approx(START + expected)

    async def test_transmissions_on_different_cards_overlap_in_flight(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """Two cards carry two frames at once; a third concurrent frame is refused without waiting."""
        link = make(clock, sink, cards=2)
        first = asyncio.create_task(link.transmit(b"1", priority=ROUTINE))
        second = asyncio.create_task(link.transmit(b"2", priority=ROUTINE))
        await clock.settle()
        assert clock.sleepers == 2
        third = await link.transmit(b"3", priority=ROUTINE)
        assert third.code is FeedbackCode.INTERVAL
        await clock.advance(link.delay_s)
        assert [(await first).code, (await second).code] == [FeedbackCode.SENT, FeedbackCode.SENT]
        assert [frame for frame, _, _ in sink.frames] == [b"1", b"2"]
        assert all(at == pytest.approx(START + link.delay_s) for _, _, at in sink.frames)

    async def test_lab_link_has_no_limit_in_flight(self, clock: SimClock, sink: RecordingSink) -> None:
        """With interval 0 one card has many frames in flight together, all arriving after one delay."""
        link = make(clock, sink, interval_s=0.0)
        feedback = await clock.drive(asyncio.gather(*(link.transmit(b"f", priority=ROUTINE) for _ in range(100))))
        assert all(f.sent for f in feedback)
        assert clock.now() == pytest.approx(START + link.delay_s)


class TestLoss:
    async def test_loss_rate_holds_over_ten_thousand_frames(self, clock: SimClock, sink: RecordingSink) -> None:
        """At 5 % loss, 10 000 frames lose 500 ± 4 sigma, and only the others reach the sink."""
        link = make(clock, sink, rng=random.Random(20260101), interval_s=0.0, loss_rate=0.05)
        frames = [link.transmit(i.to_bytes(2, "big"), priority=ROUTINE) for i in range(10_000)]
        feedback = await clock.drive(asyncio.gather(*frames))
        lost = sum(f.code is FeedbackCode.LOST for f in feedback)
        sigma = math.sqrt(10_000 * 0.05 * 0.95)
        assert abs(lost - 500) < 4 * sigma
        stats = link.stats()
        assert (stats.lost, stats.sent) == (lost, 10_000 - lost)
        assert len(sink.frames) == stats.sent
        assert stats.bytes_sent == 2 * stats.sent

    async def test_lost_frame_reports_when_the_card_may_send_again(self, clock: SimClock, sink: RecordingSink) -> None:
        """A lost frame still used its card: LOST carries the time until the card's interval ends."""
        link = make(clock, sink, rng=AlwaysLoses(), loss_rate=0.01)
        feedback = await clock.drive(link.transmit(b"gone", priority=ROUTINE))
        assert feedback.code is FeedbackCode.LOST
        assert feedback.wait_s == pytest.approx(INTERVAL - link.delay_s)
        assert sink.frames == []

    async def test_same_seed_gives_same_losses(self, clock: SimClock, sink: RecordingSink) -> None:
        """Two links with the same seed lose the same frames."""

        async def pattern() -> list[bool]:
            link = make(clock, sink, rng=random.Random(3), interval_s=0.0, loss_rate=0.3)
            return [(await clock.drive(link.transmit(b"x", priority=ROUTINE))).sent for _ in range(50)]

        first = await pattern()
        assert first == await pattern()
        assert not all(first)
        assert any(first)


class TestSinkFailure:
    async def test_sink_error_propagates_and_is_not_counted_as_sent(self, clock: SimClock) -> None:
        """If the ground segment fails, transmit raises and the frame is not counted as sent."""

        class BrokenSink:
            async def receive(self, frame: bytes, *, link: str) -> None:
                raise OSError("ground down")

        link = GeoLink(sink=BrokenSink(), clock=clock, **settings())
        with pytest.raises(OSError, match="ground down"):
            await clock.drive(link.transmit(b"x", priority=ROUTINE))
        assert link.stats().sent == 0


class TestSimulatedDay:
    async def test_a_day_of_sixty_second_intervals_in_under_a_second(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """A sender pacing itself by ready_in sends 1440 frames in a simulated day, in under 1 s of real time."""
        link = make(clock, sink)

        async def day() -> None:
            while clock.now() < START + 86_400 - INTERVAL:
                await clock.sleep(link.ready_in(ROUTINE))
                assert (await link.transmit(b"tick", priority=ROUTINE)).sent

        started = time.perf_counter()
        await clock.drive(day())
        assert time.perf_counter() - started < 1.0
        assert link.stats().sent == 1440
        assert sink.frames[-1][2] == pytest.approx(START + 1439 * INTERVAL + link.delay_s)


class TestMockLink:
    async def test_handler_decides_each_answer(self) -> None:
        """MockLink passes frames to the handler, returns its feedback and records what it saw."""
        answers = iter([Feedback(FeedbackCode.LOST, wait_s=5.0), Feedback(FeedbackCode.SENT, delay_s=0.25)])

        async def handler(frame: bytes, priority: Priority) -> Feedback:
            return next(answers)

        link: Link = MockLink(handler, name="m1", mtu=10, ready_in=lambda p: 0.0 if p is DISTRESS else 3.0)
        assert (await link.transmit(b"a", priority=ROUTINE)).code is FeedbackCode.LOST
        assert (await link.transmit(b"b", priority=DISTRESS)).sent
        assert (link.name, link.mtu, link.ready_in(ROUTINE), link.ready_in(DISTRESS)) == ("m1", 10, 3.0, 0.0)
        assert isinstance(link, MockLink)
        assert link.transmissions == [(b"a", ROUTINE), (b"b", DISTRESS)]

    async def test_oversize_frames_never_reach_the_handler(self) -> None:
        """A frame over the mock's MTU is TOO_LARGE and the handler is not called."""

        async def handler(frame: bytes, priority: Priority) -> Feedback:
            raise AssertionError("handler must not be called")

        link = MockLink(handler, mtu=4)
        assert (await link.transmit(b"12345", priority=ROUTINE)).code is FeedbackCode.TOO_LARGE
        assert link.transmissions == []

    @pytest.mark.parametrize(("kwargs", "message"), [({"name": ""}, "name"), ({"mtu": 0}, "mtu")])
    def test_rejects_bad_settings(self, kwargs: dict[str, Any], message: str) -> None:
        """An empty name or non-positive MTU raises ValueError."""

        async def handler(frame: bytes, priority: Priority) -> Feedback:
            return Feedback(FeedbackCode.SENT)

        with pytest.raises(ValueError, match=message):
            MockLink(handler, **kwargs)
