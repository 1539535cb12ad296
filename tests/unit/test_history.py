"""The dashboard's history: a bounded, ordered ring buffer of samples, and the sampler that fills it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.counters import Counters
from gateway.exceptions import QueueUnavailable
from gateway.history import ClassSample, History, Sample, Sampler
from gateway.queue import Depth
from protocols.envelope import Priority


def sample(at: float) -> Sample:
    return Sample(at=at, interval_s=1.0, queues={})


class Depths:
    """Stands in for ``Queue.depths``: answers set figures, or fails like Redis down."""

    def __init__(self) -> None:
        self.waiting = 0
        self.fail = False

    async def __call__(self) -> Sequence[Depth]:
        if self.fail:
            raise QueueUnavailable("queue depths: connection refused")
        age = None if self.waiting == 0 else 2.5
        return [
            Depth(p, self.waiting if p is Priority.SAFETY else 0, 0, age if p is Priority.SAFETY else None)
            for p in Priority
        ]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class TestHistory:
    @pytest.mark.parametrize(("every_s", "window_s"), [(0.0, 60.0), (float("nan"), 60.0), (10.0, 5.0)])
    def test_impossible_settings_are_refused(self, every_s: float, window_s: float) -> None:
        """A period that is not positive, or a window shorter than one period, is refused."""
        with pytest.raises(ValueError, match=r"every_s|window_s"):
            History(every_s=every_s, window_s=window_s)

    def test_bounded_keeping_the_newest_in_order(self) -> None:
        """Past its capacity (window / period + 1) the buffer drops the oldest; what stays is in time order."""
        history = History(every_s=5.0, window_s=60.0)
        assert history.capacity == 13
        for i in range(40):
            history.add(sample(1000.0 + 5 * i))
        kept = [s.at for s in history]
        assert len(kept) == 13
        assert kept == [1000.0 + 5 * i for i in range(27, 40)]

    def test_out_of_order_samples_are_refused(self) -> None:
        """A sample not later than the last one is refused and the buffer is unchanged."""
        history = History(every_s=1.0, window_s=60.0)
        history.add(sample(10.0))
        for at in (10.0, 9.0):
            with pytest.raises(ValueError, match="time order"):
                history.add(sample(at))
        assert [s.at for s in history] == [10.0]

    def test_since_returns_the_samples_from_a_time(self) -> None:
        """since(t) gives the samples at t or later, oldest first."""
        history = History(every_s=1.0, window_s=60.0)
        for at in (1.0, 2.0, 3.0, 4.0):
            history.add(sample(at))
        assert [s.at for s in history.since(2.5)] == [3.0, 4.0]
        assert [s.at for s in history.since(2.0)] == [2.0, 3.0, 4.0]


class TestSampler:
    async def test_samples_carry_queues_and_what_flowed_since_the_last(self) -> None:
        """Each sample holds every class queue and the counter increases since the one before, by class and reason."""
        history, depths, counters, clock = History(every_s=5.0, window_s=60.0), Depths(), Counters(), Clock(100.0)
        counters.add("accepted.routine", 7)  # before the first sample: not in any interval
        sampler = Sampler(history=history, depths=depths, counters=counters, clock=clock)
        first = await sampler.sample()
        assert first is not None
        assert (first.interval_s, first.accepted, first.rejected) == (0.0, {}, {})
        assert list(first.queues) == ["distress", "urgency", "safety", "routine"]
        depths.waiting = 3
        counters.add("accepted.safety", 3)
        counters.add("sent.distress", 2)
        counters.add("delivered.distress")
        counters.add("rejected.bad_seal", 4)
        counters.add("ingest.batch.le10")  # not a flow of a class: left out
        clock.t = 105.0
        second = await sampler.sample()
        assert second is not None
        assert second.interval_s == 5.0
        assert second.queues["safety"] == ClassSample(depth=3, pending=0, oldest_age_s=2.5)
        assert second.queues["distress"] == ClassSample(depth=0, pending=0, oldest_age_s=None)
        assert (second.accepted, second.sent, second.delivered) == ({"safety": 3}, {"distress": 2}, {"distress": 1})
        assert second.rejected == {"bad_seal": 4}
        assert [s.at for s in history] == [100.0, 105.0]

    async def test_a_redis_failure_skips_a_sample_and_the_next_covers_the_gap(self) -> None:
        """While Redis fails nothing is added; the next sample's counts and interval cover the whole gap."""
        history, depths, counters, clock = History(every_s=5.0, window_s=60.0), Depths(), Counters(), Clock(100.0)
        sampler = Sampler(history=history, depths=depths, counters=counters, clock=clock)
        await sampler.sample()
        depths.fail, clock.t = True, 105.0
        counters.add("accepted.urgency", 2)
        assert await sampler.sample() is None
        depths.fail, clock.t = False, 110.0
        counters.add("accepted.urgency", 1)
        after = await sampler.sample()
        assert after is not None
        assert (after.interval_s, after.accepted) == (10.0, {"urgency": 3})
        assert [s.at for s in history] == [100.0, 110.0]

    async def test_a_clock_stepping_back_adds_nothing(self) -> None:
        """If the wall clock steps back, samples are skipped until it passes the last one (the buffer stays ordered)."""
        history, clock = History(every_s=5.0, window_s=60.0), Clock(100.0)
        sampler = Sampler(history=history, depths=Depths(), counters=Counters(), clock=clock)
        await sampler.sample()
        clock.t = 90.0
        assert await sampler.sample() is None
        assert len(history) == 1

    async def test_run_samples_at_once_and_then_every_period(self) -> None:
        """The task takes a sample at start, then one per period, until cancelled."""
        history = History(every_s=0.01, window_s=60.0)
        task = asyncio.create_task(Sampler(history=history, depths=Depths(), counters=Counters()).run(), name="t")
        try:
            async with asyncio.timeout(5.0):
                while len(history) < 3:
                    await asyncio.sleep(0.005)
        finally:
            task.cancel()
        ats = [s.at for s in history]
        assert ats == sorted(ats)
