"""Link outages: scheduled windows (maintenance, known blockage) and random ones from a seeded random source.

A link asks :meth:`Outages.until` at the time of a transmission; while a window covers that
time nothing goes, whatever its class (an outage blocks distress too: there is no signal).

Random outages form a Poisson process: gaps between outage starts are exponential with mean
``3600 / rate_per_h`` seconds and durations are exponential with mean ``mean_s``. They are
drawn forward from the time the link was built, from their own seeded source, so the same
seed gives the same outages however often and whenever the link asks. The model keeps
the windows that have not ended yet, which assumes its clock does not run backwards, and
remembers the last :data:`REMEMBERED` random ones that ended, for a link's timeline.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

__all__ = ["NO_OUTAGES", "REMEMBERED", "OutagePlan", "Outages", "Window"]

REMEMBERED = 256
"""How many ended random outages a link remembers (for its timeline)."""


@dataclass(frozen=True, slots=True)
class Window:
    """An outage from ``start`` (inclusive) to ``end`` (exclusive), in the link clock's seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"outage window times must be finite, got {self.start!r}..{self.end!r}")
        if self.end <= self.start:
            raise ValueError(f"outage window must end after it starts, got {self.start!r}..{self.end!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutagePlan:
    """Which outages a link suffers, as data (for config); validated on construction.

    Raises:
        ValueError: a setting cannot work; the message says which.
    """

    windows: tuple[Window, ...] = ()
    """Scheduled outages; they may overlap."""
    rate_per_h: float = 0.0
    """Mean number of random outages starting per hour (0: none)."""
    mean_s: float = 60.0
    """Mean duration of a random outage, seconds."""
    seed: int | None = None
    """Seed of the random outages; None draws a fresh one (production), a number repeats them (tests)."""

    def __post_init__(self) -> None:
        if not all(isinstance(w, Window) for w in self.windows):
            raise ValueError("windows must be Window values")
        if not (math.isfinite(self.rate_per_h) and self.rate_per_h >= 0):
            raise ValueError(f"outage_rate_per_h must be a finite number >= 0, got {self.rate_per_h!r}")
        if not (math.isfinite(self.mean_s) and self.mean_s > 0):
            raise ValueError(f"outage_mean_s must be a finite number > 0, got {self.mean_s!r}")

    @property
    def empty(self) -> bool:
        """True if the plan never blocks the link."""
        return not self.windows and self.rate_per_h == 0


NO_OUTAGES = OutagePlan()
"""The plan of a link that is never down."""


class Outages:
    """The outages a link meets, from ``origin`` on: the plan's scheduled windows plus random ones drawn lazily."""

    def __init__(self, plan: OutagePlan, *, origin: float) -> None:
        """Start the random process at ``origin`` (the link clock's time when the link is built).

        Raises:
            ValueError: ``origin`` is not finite.
        """
        if not math.isfinite(origin):
            raise ValueError(f"origin must be finite, got {origin!r}")
        self._plan = plan
        self._scheduled = sorted(plan.windows, key=lambda w: w.start)
        # A string seed hashes the same in every process, unlike hash(); it keeps losses and outages independent.
        self._rng = random.Random(None if plan.seed is None else f"outages/{plan.seed}")
        self._random: deque[Window] = deque()
        self._ended: deque[Window] = deque(maxlen=REMEMBERED)
        """Random outages that have ended, oldest first; the model no longer needs them, a timeline does."""
        self._drawn_to = origin
        """Start time of the latest random outage drawn (or the origin)."""

    @property
    def plan(self) -> OutagePlan:
        """The plan these outages follow."""
        return self._plan

    def until(self, t: float) -> float | None:
        """Return when the outage covering time ``t`` ends (the latest end of overlapping ones), or None if up."""
        self._draw_to(t)
        while self._random and self._random[0].end <= t:
            self._ended.append(self._random.popleft())
        end: float | None = None
        probe = t
        # Windows can chain (one starts before the other ends); follow them to the real end.
        while (covering := self._covering(probe)) is not None:
            end = covering
            probe = covering
        return end

    def first_start(self, start: float, end: float) -> float | None:
        """Return the start of the first outage beginning in ``(start, end]``, or None."""
        self._draw_to(end)
        starts = [w.start for w in (*self._scheduled, *self._random) if start < w.start <= end]
        return min(starts, default=None)

    def known(self, start: float, end: float, *, now: float) -> list[tuple[str, Window]]:
        """The outages overlapping ``[start, end)`` that are known at ``now``, each with ``scheduled`` or ``random``.

        Scheduled ones are known ahead; a random one only once it has begun (it is drawn ahead,
        but nobody could foresee it). Of the random ones that ended, the last :data:`REMEMBERED` are kept.
        """
        self._draw_to(now)
        scheduled = [("scheduled", w) for w in self._scheduled if w.start < end and start < w.end]
        begun = [w for w in (*self._ended, *self._random) if w.start <= now and w.start < end and start < w.end]
        return scheduled + [("random", w) for w in begun]

    def _covering(self, t: float) -> float | None:
        """The latest end of the windows covering ``t``; prunes nothing, since ``t`` may lie ahead of the clock."""
        self._draw_to(t)
        ends = [w.end for w in (*self._scheduled, *self._random) if w.start <= t < w.end]
        return max(ends, default=None)

    def _draw_to(self, t: float) -> None:
        """Draw random outages until one starts after ``t``, so every outage that may cover ``t`` is known."""
        rate = self._plan.rate_per_h
        if rate == 0:
            return
        while self._drawn_to <= t:
            start = self._drawn_to + self._rng.expovariate(rate / 3600.0)
            duration = self._rng.expovariate(1.0 / self._plan.mean_s)
            self._random.append(Window(start, start + max(duration, 1e-3)))
            self._drawn_to = start
