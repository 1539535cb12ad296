"""gateway.presence: per-terminal activity gathered in memory and flushed in one call per interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from gateway.counters import Counters
from gateway.exceptions import QueueUnavailable
from gateway.presence import DUPLICATES, UNAUTHENTICATED, Presence
from gateway.queue.presence import Fix, Sighting
from protocols.envelope import Kind, Message, Position, Priority
from protocols.errors import Reason


class Sink:
    """Records each flush; fails while ``failing`` is set, as Redis would."""

    def __init__(self) -> None:
        self.flushes: list[list[Sighting]] = []
        self.failing = False

    async def merge(self, sightings: Sequence[Sighting]) -> None:
        if self.failing:
            raise QueueUnavailable("merge presence: Redis unreachable")
        self.flushes.append(list(sightings))


def message(
    terminal: str = "T1", seq: int = 1, priority: Priority = Priority.ROUTINE, at: tuple[float, float] | None = None
) -> Message:
    position = None if at is None else Position(*at)
    kind = Kind.SOS if priority is Priority.DISTRESS else Kind.POSITION
    return Message(terminal=terminal, seq=seq, priority=priority, kind=kind, position=position, ts=1000.0 + seq)


def by_terminal(sightings: Sequence[Sighting]) -> dict[str, Sighting]:
    return {s.terminal: s for s in sightings}


@pytest.fixture
def sink() -> Sink:
    """A sink that records flushes."""
    return Sink()


@pytest.fixture
def presence(sink: Sink) -> Presence:
    """An aggregator over ``sink``."""
    return Presence(sink=sink, counters=Counters())


class TestGather:
    def test_accepted_messages_set_last_seen_position_and_counts_by_class(self, presence: Presence) -> None:
        """Accepted messages keep the latest receive time, the latest fix and a count per class."""
        presence.accepted(message(seq=1, at=(10.0, 20.0)), received_at=100.0)
        presence.accepted(message(seq=2, priority=Priority.DISTRESS, at=(11.0, 21.0)), received_at=101.0)
        presence.accepted(message(seq=3), received_at=102.0)  # no position: the fix stays
        (s,) = presence.take()
        assert s.last_seen == 102.0
        assert s.fix == Fix(11.0, 21.0, at=101.0, ts=1002.0)
        assert s.counts == {"accepted.routine": 2, "accepted.distress": 1}

    def test_last_seen_and_fix_never_go_back(self, presence: Presence) -> None:
        """A message received earlier but reported later (the other lane's batch) moves neither last seen nor fix."""
        presence.accepted(message(seq=2, at=(1.0, 1.0)), received_at=200.0)
        presence.accepted(message(seq=1, at=(2.0, 2.0)), received_at=150.0)
        (s,) = presence.take()
        assert (s.last_seen, s.fix) == (200.0, Fix(1.0, 1.0, 200.0, 1002.0))

    def test_refusals_count_but_do_not_make_a_terminal_seen(self, presence: Presence) -> None:
        """Replays count as duplicates, sealed refusals by reason, forged ones as unauthenticated; none is seen."""
        presence.refused("T1", Reason.REPLAY)
        presence.refused("T1", Reason.REPLAY)
        presence.refused("T1", Reason.QUOTA_EXCEEDED)
        presence.unauthenticated("T2")
        got = by_terminal(presence.take())
        assert got["T1"].counts == {DUPLICATES: 2, "rejected.quota_exceeded": 1}
        assert got["T2"].counts == {UNAUTHENTICATED: 1}
        assert all(s.last_seen is None and s.fix is None for s in got.values())

    def test_deliveries_count_by_class(self, presence: Presence) -> None:
        """The ground's deliveries count per class and say nothing about when the terminal was heard."""
        presence.delivered("T1", Priority.DISTRESS)
        presence.delivered("T1", Priority.ROUTINE)
        presence.delivered("T1", Priority.ROUTINE)
        (s,) = presence.take()
        assert s.counts == {"delivered.distress": 1, "delivered.routine": 2}
        assert s.last_seen is None

    def test_take_empties(self, presence: Presence) -> None:
        """What was taken is not taken again."""
        presence.accepted(message(), received_at=1.0)
        assert len(presence) == 1
        assert len(presence.take()) == 1
        assert presence.take() == []
        assert len(presence) == 0


class TestFlush:
    async def test_flush_hands_everything_over_in_one_call(self, presence: Presence, sink: Sink) -> None:
        """One flush is one merge call holding every terminal with activity; an idle flush makes none."""
        for i in range(50):
            presence.accepted(message(terminal=f"T{i % 5}", seq=i), received_at=float(i))
        await presence.flush()
        await presence.flush()
        assert len(sink.flushes) == 1
        got = by_terminal(sink.flushes[0])
        assert sorted(got) == [f"T{i}" for i in range(5)]
        assert sum(s.counts["accepted.routine"] for s in got.values()) == 50

    async def test_a_failed_flush_keeps_the_activity_for_the_next(self, sink: Sink) -> None:
        """While Redis fails nothing is lost: counts add up, last seen and fix take the newer of old and new."""
        counters = Counters()
        presence = Presence(sink=sink, counters=counters)
        presence.accepted(message(seq=1, at=(1.0, 1.0)), received_at=10.0)
        presence.refused("T1", Reason.REPLAY)
        sink.failing = True
        await presence.flush()
        presence.accepted(message(seq=2), received_at=20.0)
        presence.refused("T1", Reason.REPLAY)
        await presence.flush()
        sink.failing = False
        await presence.flush()
        assert counters.get("presence.flush_failed") == 2
        assert counters.get("presence.flushes") == 1
        (s,) = sink.flushes[0]
        assert s.counts == {"accepted.routine": 2, DUPLICATES: 2}
        assert (s.last_seen, s.fix) == (20.0, Fix(1.0, 1.0, 10.0, 1001.0))

    async def test_a_failure_is_logged_once_per_outage(
        self, presence: Presence, sink: Sink, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Three failed flushes in a row log one warning; the first success after them logs one line."""
        caplog.set_level(logging.INFO, logger="satgw.presence")
        sink.failing = True
        for _ in range(3):
            presence.unauthenticated("T1")
            await presence.flush()
        sink.failing = False
        await presence.flush()
        messages = [r.getMessage() for r in caplog.records if r.name == "satgw.presence"]
        assert len(messages) == 2
        assert "waits for Redis" in messages[0]
        assert "flushed again" in messages[1]

    async def test_flush_forever_flushes_each_interval(self, sink: Sink) -> None:
        """The background task flushes what comes in while it runs."""
        presence = Presence(sink=sink, counters=Counters(), interval_s=0.01)
        task = asyncio.create_task(presence.flush_forever(), name="test.presence")
        try:
            presence.accepted(message(), received_at=1.0)
            async with asyncio.timeout(5):
                while not sink.flushes:
                    await asyncio.sleep(0.005)
        finally:
            task.cancel()
        assert sink.flushes[0][0].terminal == "T1"

    def test_interval_must_be_positive(self, sink: Sink) -> None:
        """A zero interval is refused at construction."""
        with pytest.raises(ValueError, match="interval_s"):
            Presence(sink=sink, counters=Counters(), interval_s=0)
