"""The last minutes of the gateway, sampled in memory: queue depth and oldest age per class, throughput, rejections.

A :class:`Sampler` task records one :class:`Sample` every ``every_s`` seconds into a
:class:`History`, a ring buffer holding ``window_s`` seconds of them, so a dashboard
opened now (or any API user) sees the recent past at once instead of only what it
polls from then on.

Per process: the queue figures are read from Redis and so cover every gateway sharing
it, but the throughput and rejections are this process's counters, and the buffer
starts empty when the process starts. Nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.counters import Counters
from gateway.exceptions import TransientError, stop_if_cancelling
from gateway.queue import Depth
from protocols.envelope import Priority

__all__ = ["ClassSample", "History", "Sample", "Sampler"]

_FLOWS = ("accepted", "sent", "delivered")
_REJECTED = "rejected."


@dataclass(frozen=True, slots=True)
class ClassSample:
    """One class queue at the time of a sample."""

    depth: int
    """Entries waiting to be taken."""
    pending: int
    """Entries taken by a relay and not yet acked."""
    oldest_age_s: float | None
    """Seconds since the oldest entry was received; None when the queue is empty."""


@dataclass(frozen=True, slots=True)
class Sample:
    """The gateway at ``at`` (Unix seconds), and what flowed since the sample before it."""

    at: float
    interval_s: float
    """Seconds since the previous sample (0 for the first: its counts are then all 0)."""
    queues: Mapping[str, ClassSample]
    """By class label, most urgent first."""
    accepted: Mapping[str, int] = field(default_factory=dict)
    """Messages accepted in the interval, by class (classes with none left out)."""
    sent: Mapping[str, int] = field(default_factory=dict)
    """Messages a link took in the interval, by class."""
    delivered: Mapping[str, int] = field(default_factory=dict)
    """Messages the ground delivered in the interval, by class."""
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Messages rejected in the interval, by reason."""


class History:
    """The samples of the last ``window_s`` seconds, oldest first, at most ``window_s / every_s`` of them (plus one).

    Raises:
        ValueError: a period that is not positive and finite, or a window shorter than one period.
    """

    def __init__(self, *, every_s: float, window_s: float) -> None:
        if not (math.isfinite(every_s) and every_s > 0):
            raise ValueError(f"every_s must be a positive number of seconds, got {every_s!r}")
        if not (math.isfinite(window_s) and window_s >= every_s):
            raise ValueError(f"window_s must be at least every_s ({every_s}), got {window_s!r}")
        self.every_s, self.window_s = every_s, window_s
        self._samples: deque[Sample] = deque(maxlen=math.ceil(window_s / every_s) + 1)

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(tuple(self._samples))

    @property
    def capacity(self) -> int:
        """The most samples the buffer holds."""
        return self._samples.maxlen or 0

    def add(self, sample: Sample) -> None:
        """Append ``sample``, dropping the oldest when full.

        Raises:
            ValueError: ``sample`` is not later than the last one (the buffer stays ordered).
        """
        if self._samples and sample.at <= self._samples[-1].at:
            raise ValueError(f"samples must be added in time order: {sample.at} is not after {self._samples[-1].at}")
        self._samples.append(sample)

    def since(self, t: float) -> list[Sample]:
        """The samples taken at ``t`` or later, oldest first."""
        return [s for s in self._samples if s.at >= t]


class Sampler:
    """Records a :class:`Sample` into ``history`` every ``history.every_s`` seconds (run :meth:`run` as a task).

    Args:
        history: where the samples go.
        depths: reads every class queue (``Queue.depths``: one round trip).
        counters: this process's counters; each sample carries their increase since the one before.
        clock: Unix time, for the samples' ``at``.
    """

    def __init__(
        self,
        *,
        history: History,
        depths: Callable[[], Awaitable[Sequence[Depth]]],
        counters: Counters,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self._history, self._depths, self._counters, self._clock = history, depths, counters, clock
        self._log = logger or logging.getLogger("satgw.history")
        self._last: tuple[float, dict[str, int]] | None = None

    async def run(self) -> None:
        """Sample now and then every period, until cancelled; a sample Redis cannot give is skipped."""
        while True:
            stop_if_cancelling()
            await self.sample()
            await asyncio.sleep(self._history.every_s)

    async def sample(self) -> Sample | None:
        """Take one sample and add it; None (and nothing added) while Redis fails: the next one covers the gap."""
        try:
            depths = await self._depths()
        except TransientError as exc:
            self._log.debug("history sample skipped: %s", exc)
            return None
        at, totals = self._clock(), self._counters.snapshot()
        if self._last is not None and at <= self._last[0]:
            return None  # the wall clock stepped back: wait until it passes the last sample
        sample = _sample(at, depths, totals, self._last)
        self._history.add(sample)
        self._last = (at, totals)
        return sample


def _sample(
    at: float, depths: Sequence[Depth], totals: dict[str, int], last: tuple[float, dict[str, int]] | None
) -> Sample:
    queues = {d.priority.label: ClassSample(d.depth, d.pending, d.oldest_age_s) for d in depths}
    if last is None:
        return Sample(at=at, interval_s=0.0, queues=queues)
    before, previous = last
    grown = Counter(totals)
    grown.subtract(previous)
    flows = {kind: _by_class(grown, kind) for kind in _FLOWS}
    rejected = {name.removeprefix(_REJECTED): n for name, n in grown.items() if name.startswith(_REJECTED) and n > 0}
    return Sample(at=at, interval_s=round(at - before, 6), queues=queues, rejected=rejected, **flows)


def _by_class(grown: Counter[str], kind: str) -> dict[str, int]:
    return {p.label: n for p in Priority if (n := grown[f"{kind}.{p.label}"]) > 0}
