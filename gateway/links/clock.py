"""Clocks for the link models: the real one, and a simulated one that tests move by hand.

Link models never read the time themselves; they are given a :class:`~gateway.links.base.Clock`.
In production that is :class:`RealClock`. Tests use :class:`SimClock`, so a day of 60 s
send intervals runs in milliseconds and every wait is exact.

SimClock semantics, precisely:

* ``now()`` returns the simulated time. It changes only inside :meth:`SimClock.run_until`
  (and :meth:`~SimClock.advance` / :meth:`~SimClock.drive`, which call it).
* ``await sleep(s)`` with ``s > 0`` registers a wake-up at ``now() + s`` and suspends the
  caller until the clock reaches that time. ``sleep(s)`` with ``s <= 0`` does not wait for the
  clock; like ``asyncio.sleep(0)`` it only yields to the event loop once.
* ``await run_until(t)`` moves time forward to ``t``, one wake-up time at a time, in order.
  At each wake-up time ``d``: ``now()`` becomes ``d``, every sleeper due at ``d`` is woken in
  the order it called ``sleep``, and the clock then *settles* (see below) before moving on, so
  a woken task that sleeps again, even for less than ``t - d``, is woken in the same call.
  Finally ``now()`` becomes ``t``.
* *Settling* means yielding to the event loop until no callback is ready to run. Work that
  waits only on the clock or on other in-process tasks (events, queues, futures) therefore
  finishes before time moves. Work blocked on real I/O or on real timers is not waited for;
  such code should run with :class:`RealClock`.
* A sleeper that is cancelled is forgotten; it never affects the order of the others.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["RealClock", "SimClock"]

T = TypeVar("T")

_SETTLE_LIMIT = 10_000
"""Most event-loop turns one settle may take; bounds tasks that yield forever without sleeping."""
_FALLBACK_TURNS = 50
"""Loop turns per settle on event loops that do not expose their ready queue (e.g. uvloop)."""


class RealClock:
    """Wall-clock time: ``time.time()`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Return the current Unix time in seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        await asyncio.sleep(seconds)


class SimClock:
    """Simulated time for tests; see the module docstring for the exact semantics."""

    def __init__(self, *, start: float = 0.0) -> None:
        """Create a clock reading ``start``.

        Args:
            start: the initial time, seconds (any finite number; Unix time if the code under test expects it).

        Raises:
            ValueError: ``start`` is not finite.
        """
        _check_finite("start", start)
        self._now = float(start)
        self._seq = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        """Return the simulated time in seconds."""
        return self._now

    @property
    def next_wakeup(self) -> float | None:
        """The earliest time a live sleeper is due, or None if nobody sleeps."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller until the clock has been moved ``seconds`` forward (yield once if ``seconds <= 0``).

        Raises:
            ValueError: ``seconds`` is NaN.
        """
        if math.isnan(seconds):
            raise ValueError("sleep time must be a number, got nan")
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self._now + seconds, self._seq, fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in order (see :meth:`run_until`).

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        _check_finite("advance", seconds)
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative time, got {seconds!r}")
        await self.run_until(self._now + seconds)

    async def run_until(self, t: float) -> None:
        """Move time forward to ``t``, waking every sleeper due by then in time order and settling after each step.

        Raises:
            ValueError: ``t`` is not finite or lies in the past.
        """
        _check_finite("run_until", t)
        if t < self._now:
            raise ValueError(f"cannot move the clock back from {self._now!r} to {t!r}")
        await self.settle()
        await self._jump(t)

    async def drive(self, aw: Awaitable[T]) -> T:
        """Run ``aw`` to completion, jumping the clock to each next wake-up whenever everything else is idle.

        Returns:
            What ``aw`` returns (its exception propagates).

        Raises:
            RuntimeError: ``aw`` is stuck on something other than this clock (nobody sleeps, yet it is not done).
        """
        task = asyncio.ensure_future(aw)
        try:
            while True:
                await self.settle()
                if task.done():
                    return task.result()
                due = self.next_wakeup
                if due is None:
                    raise RuntimeError("SimClock.drive: the awaitable waits on something other than the clock")
                await self._jump(due)
        finally:
            if not task.done():
                task.cancel()

    async def settle(self) -> None:
        """Yield to the event loop until no callback is ready to run (bounded; see the module docstring)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's run queue; no public way to ask "is the loop idle?"
        if ready is None:
            for _ in range(_FALLBACK_TURNS):
                await asyncio.sleep(0)
            return
        for _ in range(_SETTLE_LIMIT):
            await asyncio.sleep(0)
            if not ready:
                return

    async def _jump(self, t: float) -> None:
        """Step through the wake-up times up to ``t``, settling after each; the loop must be settled on entry."""
        while (due := self.next_wakeup) is not None and due <= t:
            self._now = due
            self._wake_due()
            await self.settle()
        self._now = t

    def _wake_due(self) -> None:
        """Wake, in call order, every sleeper due at the current time."""
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


def _check_finite(what: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
