"""RealClock and SimClock: simulated time moves only when told, waking sleepers in order."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from gateway.links import Clock, RealClock, SimClock


class TestRealClock:
    async def test_reads_and_sleeps_wall_clock_time(self) -> None:
        """RealClock.now is Unix time and sleep waits real time."""
        clock: Clock = RealClock()
        before = time.time()
        await clock.sleep(0.01)
        assert before + 0.009 <= clock.now() <= time.time()


class TestSimClockBasics:
    def test_starts_where_told(self) -> None:
        """A new SimClock reads its start time."""
        clock: Clock = SimClock(start=1_700_000_000.0)
        assert clock.now() == 1_700_000_000.0

    async def test_sleep_waits_until_advanced(self) -> None:
        """A sleeper stays asleep until the clock reaches its wake-up time, and wakes exactly then."""
        clock = SimClock(start=100.0)
        woke: list[float] = []

        async def sleeper() -> None:
            await clock.sleep(10.0)
            woke.append(clock.now())

        task = asyncio.create_task(sleeper())
        await clock.advance(9.999)
        assert woke == []
        assert clock.sleepers == 1
        await clock.advance(0.001)
        await task
        assert woke == [110.0]

    async def test_zero_and_negative_sleeps_do_not_wait_for_the_clock(self) -> None:
        """sleep(0) and sleep(-1) return without anyone advancing the clock."""
        clock = SimClock()
        await asyncio.wait_for(clock.sleep(0), timeout=1)
        await asyncio.wait_for(clock.sleep(-1), timeout=1)
        assert clock.now() == 0.0

    async def test_advance_with_nobody_asleep_just_moves_time(self) -> None:
        """advance moves the time even when no task sleeps."""
        clock = SimClock()
        await clock.advance(86_400)
        assert clock.now() == 86_400

    @pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
    async def test_advance_rejects_bad_amounts(self, bad: float) -> None:
        """Negative or non-finite advances raise ValueError."""
        with pytest.raises(ValueError, match="advance"):
            await SimClock().advance(bad)

    async def test_time_never_goes_back(self) -> None:
        """run_until to an earlier time raises ValueError."""
        clock = SimClock(start=50.0)
        with pytest.raises(ValueError, match="back"):
            await clock.run_until(49.0)

    async def test_nan_sleep_is_refused(self) -> None:
        """sleep(nan) raises ValueError instead of sleeping forever."""
        with pytest.raises(ValueError, match="nan"):
            await SimClock().sleep(math.nan)

    def test_start_must_be_finite(self) -> None:
        """SimClock(start=inf) raises ValueError."""
        with pytest.raises(ValueError, match="start"):
            SimClock(start=math.inf)


class TestSimClockOrder:
    async def test_wakes_in_time_order_then_call_order(self) -> None:
        """Sleepers wake by wake-up time, and those due together in the order they slept, each seeing its own time."""
        clock = SimClock()
        woke: list[tuple[str, float]] = []

        async def sleeper(label: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append((label, clock.now()))

        tasks = [asyncio.create_task(sleeper(label, s)) for label, s in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2)]]
        await clock.run_until(10)
        await asyncio.gather(*tasks)
        assert woke == [("a", 1), ("b1", 2), ("b2", 2), ("c", 3)]
        assert clock.now() == 10

    async def test_sleeps_started_by_woken_tasks_run_in_the_same_call(self) -> None:
        """A task that sleeps again after waking is woken again within one run_until, at the right times."""
        clock = SimClock()
        ticks: list[float] = []

        async def ticker() -> None:
            for _ in range(5):
                await clock.sleep(1.5)
                ticks.append(clock.now())

        task = asyncio.create_task(ticker())
        await clock.run_until(6.0)
        assert ticks == [1.5, 3.0, 4.5, 6.0]
        await clock.advance(1.5)
        await task
        assert ticks[-1] == 7.5

    async def test_in_process_chains_finish_before_time_moves(self) -> None:
        """Work handed between tasks through an event completes before the clock takes its next step."""
        clock = SimClock()
        event = asyncio.Event()
        seen: list[float] = []

        async def setter() -> None:
            await clock.sleep(1)
            event.set()

        async def waiter() -> None:
            await event.wait()
            seen.append(clock.now())
            await clock.sleep(0.5)
            seen.append(clock.now())

        tasks = [asyncio.create_task(setter()), asyncio.create_task(waiter())]
        await clock.run_until(2)
        assert seen == [1.0, 1.5]
        await asyncio.gather(*tasks)

    async def test_cancelled_sleeper_is_forgotten(self) -> None:
        """Cancelling a sleeper removes it; the next wake-up is the next live sleeper's."""
        clock = SimClock()
        early = asyncio.create_task(clock.sleep(1))
        late = asyncio.create_task(clock.sleep(5))
        await clock.settle()
        assert clock.next_wakeup == 1
        early.cancel()
        await clock.settle()
        assert clock.next_wakeup == 5
        assert clock.sleepers == 1
        await clock.run_until(5)
        await late
        assert clock.next_wakeup is None


class TestSimClockDrive:
    async def test_drive_jumps_to_each_wakeup(self) -> None:
        """drive runs a coroutine to completion by jumping the clock, returning its result."""
        clock = SimClock()

        async def two_waits() -> str:
            await clock.sleep(30)
            await clock.sleep(12.5)
            return "done"

        assert await clock.drive(two_waits()) == "done"
        assert clock.now() == 42.5

    async def test_drive_refuses_work_blocked_off_the_clock(self) -> None:
        """drive raises RuntimeError when the coroutine waits on something the clock cannot move."""
        clock = SimClock()
        with pytest.raises(RuntimeError, match="other than the clock"):
            await clock.drive(asyncio.Event().wait())

    async def test_a_day_of_minute_ticks_takes_well_under_a_second(self) -> None:
        """1440 sleeps of 60 s run in under a second of real time and end exactly a day later."""
        clock = SimClock(start=1_700_000_000.0)

        async def day() -> int:
            ticks = 0
            for _ in range(1440):
                await clock.sleep(60)
                ticks += 1
            return ticks

        started = time.perf_counter()
        assert await clock.drive(day()) == 1440
        assert time.perf_counter() - started < 1.0
        assert clock.now() == pytest.approx(1_700_000_000.0 + 86_400)
