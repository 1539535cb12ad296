"""Iridium SBD-like link: MO sessions with their timing, data cycle, outages and loss, and the 50-message MT queue."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from gateway.links import FeedbackCode, Link, SimClock
from gateway.links.factory import build_link
from gateway.links.geometry import IRIDIUM_ALTITUDE_KM, LIGHT_SPEED_KM_S, slant_range_km
from gateway.links.outages import OutagePlan, Window
from gateway.links.profiles import configure
from gateway.links.sbd import (
    MT_MISSING,
    MT_QUEUE_FULL,
    MT_TOO_BIG,
    MtConfirmation,
    MtMessage,
    MtQueue,
    SbdLink,
    SbdProfile,
)
from protocols.envelope import Priority

START = 5_000.0
ROUTINE = Priority.ROUTINE
DISTRESS = Priority.DISTRESS


class RecordingSink:
    """A ground segment that remembers what arrived and when."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.frames: list[tuple[bytes, float]] = []

    async def receive(self, frame: bytes, *, link: str) -> None:
        self.frames.append((frame, self.clock.now()))


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=START)


@pytest.fixture
def sink(clock: SimClock) -> RecordingSink:
    return RecordingSink(clock)


def modem(clock: SimClock, sink: RecordingSink, profile: str = "iridium-sbd-9603", **overrides: Any) -> SbdLink:
    """A lossless SBD link of ``profile`` (unless overridden), built by the factory."""
    settings = configure(profile, name="sbd", overrides={"loss_rate": 0.0, **overrides})
    link = build_link(settings, clock=clock, sink=sink)
    assert isinstance(link, SbdLink)
    return link


class TestMtQueue:
    def test_fifty_messages_fit_the_fifty_first_is_refused(self) -> None:
        """The queue takes 50 messages at positions 1-50; the 51st gets status -5 and changes nothing."""
        queue = MtQueue()
        for k in range(50):
            assert queue.enqueue(bytes([k])) == MtConfirmation(k + 1, k + 1)
        assert queue.enqueue(b"late") == MtConfirmation(MT_QUEUE_FULL)
        assert queue.enqueue(b"urgent", high_priority=True) == MtConfirmation(MT_QUEUE_FULL)
        assert len(queue) == 50
        assert [m.payload for m in queue.messages] == [bytes([k]) for k in range(50)]

    def test_high_priority_goes_to_the_front(self) -> None:
        """A high-priority message is delivered before every normal one, after earlier high-priority ones."""
        queue = MtQueue()
        for payload in (b"n1", b"n2"):
            queue.enqueue(payload)
        assert queue.enqueue(b"h1", high_priority=True).status == 1
        assert queue.enqueue(b"h2", high_priority=True).status == 2
        assert queue.enqueue(b"n3").status == 5
        delivered = []
        while (message := queue.pop()) is not None:
            delivered.append(message.payload)
        assert delivered == [b"h1", b"h2", b"n1", b"n2", b"n3"]

    def test_size_limits_follow_directip(self) -> None:
        """An MT payload over the cap is -3 and an empty one -4; the cap itself is taken."""
        queue = MtQueue(max_bytes=270)
        assert queue.enqueue(bytes(271)) == MtConfirmation(MT_TOO_BIG)
        assert queue.enqueue(b"") == MtConfirmation(MT_MISSING)
        assert queue.enqueue(bytes(270)).queued
        assert not MtConfirmation(MT_TOO_BIG).queued

    def test_mtmsn_wraps_after_65535(self) -> None:
        """MT message sequence numbers run 1-65535 and then start again at 1."""
        queue = MtQueue(capacity=1)
        numbers = []
        for _ in range(65_536):
            numbers.append(queue.enqueue(b"x").mtmsn)
            queue.pop()
        assert numbers[0] == 1
        assert numbers[-2:] == [65_535, 1]

    def test_flush_empties_the_queue(self) -> None:
        """Flush drops every queued message and says how many."""
        queue = MtQueue()
        for _ in range(3):
            queue.enqueue(b"x")
        assert queue.flush() == 3
        assert queue.pop() is None

    @pytest.mark.parametrize(("kwargs", "message"), [({"capacity": 0}, "mt_queue"), ({"max_bytes": 0}, "mt_bytes")])
    def test_rejects_bad_sizes(self, kwargs: dict[str, int], message: str) -> None:
        """A non-positive capacity or cap raises ValueError naming it."""
        with pytest.raises(ValueError, match=message):
            MtQueue(**kwargs)


class TestMoCaps:
    @pytest.mark.parametrize(("profile", "cap"), [("iridium-sbd-9603", 340), ("iridium-sbd-9522", 1960)])
    async def test_mo_cap_is_exact(self, clock: SimClock, sink: RecordingSink, profile: str, cap: int) -> None:
        """An MO message of exactly the cap goes; one byte more is TOO_LARGE for every class, distress included."""
        link: Link = modem(clock, sink, profile)
        assert link.mtu == cap
        assert (await link.transmit(bytes(cap + 1), priority=DISTRESS)).code is FeedbackCode.TOO_LARGE
        assert (await clock.drive(link.transmit(bytes(cap), priority=ROUTINE))).sent
        assert [len(frame) for frame, _ in sink.frames] == [cap]


class TestSessions:
    async def test_session_time_grows_with_size_from_five_to_twenty_seconds(
        self, clock: SimClock, sink: RecordingSink
    ) -> None:
        """A 70-byte session lasts about 5 s and a 1960-byte one about 20 s, plus the propagation delay."""
        link = modem(clock, sink, "iridium-sbd-9522")
        propagation = 2 * slant_range_km(IRIDIUM_ALTITUDE_KM, 30.0) / LIGHT_SPEED_KM_S
        assert link.profile.delay_s == pytest.approx(propagation)
        small = await clock.drive(link.transmit(bytes(70), priority=ROUTINE))
        assert small.delay_s == pytest.approx(5.0 + propagation)
        assert sink.frames[0][1] == pytest.approx(START + 5.0 + propagation)
        big = await clock.drive(link.transmit(bytes(1960), priority=ROUTINE))
        assert big.delay_s == pytest.approx(20.0 + propagation)

    async def test_one_session_at_a_time_without_exemption(self, clock: SimClock, sink: RecordingSink) -> None:
        """While a session runs, every class (distress too) is refused with INTERVAL and the wait to its end."""
        link = modem(clock, sink, "iridium-sbd-9522")
        task = asyncio.create_task(link.transmit(bytes(70), priority=ROUTINE))
        await clock.advance(1.0)
        for priority in (DISTRESS, ROUTINE):
            refused = await link.transmit(b"x", priority=priority)
            assert refused.code is FeedbackCode.INTERVAL
            assert refused.wait_s == pytest.approx(link.profile.session_s(70) - 1.0)
        await clock.advance(10.0)
        assert (await task).sent
        assert link.ready_in(DISTRESS) == 0.0
        assert link.stats().busy_refusals == 2

    async def test_9603_waits_its_forty_second_data_cycle(self, clock: SimClock, sink: RecordingSink) -> None:
        """A 9603 starts sessions at most every 40 s (the interval counts from the session start)."""
        link = modem(clock, sink)
        first = await clock.drive(link.transmit(b"a", priority=ROUTINE))
        assert first.sent
        assert clock.now() + first.wait_s == pytest.approx(START + 40.0)
        await clock.run_until(START + 39.9)
        assert (await link.transmit(b"b", priority=DISTRESS)).code is FeedbackCode.INTERVAL
        await clock.run_until(START + 40.0)
        assert (await clock.drive(link.transmit(b"c", priority=ROUTINE))).sent

    async def test_pacing_by_ready_in_is_never_refused(self, clock: SimClock, sink: RecordingSink) -> None:
        """A sender sleeping ready_in() before each send gets 90 sessions an hour from a 9603 and no refusal."""
        link = modem(clock, sink)

        async def hour() -> list[FeedbackCode]:
            codes: list[FeedbackCode] = []
            while True:
                await clock.sleep(link.ready_in(ROUTINE))
                if clock.now() >= START + 3600.0:
                    return codes
                codes.append((await link.transmit(b"tick", priority=ROUTINE)).code)

        codes = await clock.drive(hour())
        assert set(codes) == {FeedbackCode.SENT}
        assert len(codes) == 90


class TestMtDelivery:
    async def test_each_session_brings_down_the_next_mt_message(self, clock: SimClock, sink: RecordingSink) -> None:
        """With a handler, every successful session delivers one MT message, high priority first."""
        link = modem(clock, sink, "iridium-sbd-9522")
        got: list[MtMessage] = []
        link.on_mt(got.append)
        link.mt.enqueue(b"normal")
        link.mt.enqueue(b"urgent", high_priority=True)
        await clock.drive(link.transmit(b"mo", priority=ROUTINE))
        assert [m.payload for m in got] == [b"urgent"]
        assert (await clock.drive(link.check_mailbox())).sent
        assert [m.payload for m in got] == [b"urgent", b"normal"]
        assert [frame for frame, _ in sink.frames] == [b"mo"]
        assert link.stats().mt_delivered == 2

    async def test_mt_bytes_lengthen_the_session(self, clock: SimClock, sink: RecordingSink) -> None:
        """A session that also brings down an MT message lasts as long as one carrying both sizes."""
        link = modem(clock, sink, "iridium-sbd-9522")
        link.on_mt(lambda message: None)
        link.mt.enqueue(bytes(1000))
        feedback = await clock.drive(link.transmit(bytes(100), priority=ROUTINE))
        assert feedback.delay_s == pytest.approx(link.profile.session_s(1100))

    async def test_without_a_handler_mt_messages_stay_queued(self, clock: SimClock, sink: RecordingSink) -> None:
        """Nobody listening for MT means sessions leave the MT queue alone."""
        link = modem(clock, sink, "iridium-sbd-9522")
        link.mt.enqueue(b"wait")
        await clock.drive(link.transmit(b"mo", priority=ROUTINE))
        assert len(link.mt) == 1

    async def test_failed_session_puts_the_mt_message_back_in_front(self, clock: SimClock, sink: RecordingSink) -> None:
        """A lost session delivers nothing; its MT message is again the next one."""
        plan = OutagePlan(windows=(Window(START + 1.0, START + 2.0),))
        link = modem(clock, sink, "iridium-sbd-9522", outages=plan)
        got: list[MtMessage] = []
        link.on_mt(got.append)
        link.mt.enqueue(b"first")
        link.mt.enqueue(b"second")
        assert (await clock.drive(link.transmit(b"mo", priority=ROUTINE))).code is FeedbackCode.LOST
        assert got == []
        assert [m.payload for m in link.mt.messages] == [b"first", b"second"]


class TestOutagesAndLoss:
    async def test_scheduled_outage_refuses_with_its_end(self, clock: SimClock, sink: RecordingSink) -> None:
        """Inside a scheduled outage a session is refused with OUTAGE and the seconds until it ends."""
        plan = OutagePlan(windows=(Window(START, START + 600.0),))
        link = modem(clock, sink, outages=plan)
        feedback = await link.transmit(b"x", priority=DISTRESS)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.OUTAGE, 600.0)
        await clock.run_until(START + 600.0)
        assert (await clock.drive(link.transmit(b"x", priority=ROUTINE))).sent

    async def test_random_outages_block_some_sessions(self, clock: SimClock, sink: RecordingSink) -> None:
        """With random outages (seeded) some sessions of a paced day are refused with OUTAGE, most go."""
        link = modem(clock, sink, outages=OutagePlan(rate_per_h=1.0, mean_s=300.0, seed=3))

        async def day() -> list[FeedbackCode]:
            codes = []
            while clock.now() < START + 86_400.0:
                await clock.sleep(max(link.ready_in(ROUTINE), 1.0))
                codes.append((await link.transmit(b"x", priority=ROUTINE)).code)
            return codes

        codes = await clock.drive(day())
        assert codes.count(FeedbackCode.SENT) > 0.7 * len(codes)
        assert codes.count(FeedbackCode.OUTAGE) > 0
        assert codes.count(FeedbackCode.INTERVAL) == 0

    async def test_loss_rate_holds_over_many_sessions(self, clock: SimClock, sink: RecordingSink) -> None:
        """At the 9522 profile's 2 % session failure, 5000 sessions fail 100 within 4 sigma, seeded."""
        link = modem(clock, sink, "iridium-sbd-9522", loss_rate=0.02, seed=8)

        async def run() -> list[FeedbackCode]:
            codes = []
            for _ in range(5000):
                await clock.sleep(link.ready_in(ROUTINE))
                codes.append((await link.transmit(b"x", priority=ROUTINE)).code)
            return codes

        codes = await clock.drive(run())
        lost = codes.count(FeedbackCode.LOST)
        assert abs(lost - 100) < 4 * math.sqrt(5000 * 0.02 * 0.98)
        assert len(sink.frames) == 5000 - lost


class TestProfileValidation:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"name": ""}, "name"),
            ({"max_frame_bytes": 0}, "max_frame_bytes"),
            ({"mt_queue": 0}, "mt_queue"),
            ({"session_base_s": -1.0}, "session_base_s"),
            ({"loss_rate": 1.0}, "loss_rate"),
            ({"elevation_deg": 0.0}, "elevation_deg"),
            ({"interval_s": math.inf}, "interval_s"),
        ],
    )
    def test_rejects_settings_that_cannot_work(self, overrides: dict[str, Any], message: str) -> None:
        """Each impossible SBD setting raises ValueError naming it."""
        values: dict[str, Any] = {
            "name": "m",
            "max_frame_bytes": 340,
            "mt_bytes": 270,
            "session_base_s": 4.0,
            "session_s_per_byte": 0.01,
        }
        with pytest.raises(ValueError, match=message):
            SbdProfile(**(values | overrides))
