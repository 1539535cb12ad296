"""An Iridium SBD-like link: one modem's MO (mobile-originated) sessions and its MT (mobile-terminated) queue.

What is modelled (domain.md §3, §3.1, §5.2):

* **Sizes**: an MO message carries at most ``mo_bytes`` (340 on 9602/9603, 1960 on 9522B);
  an MT message at most ``mt_bytes`` (270 / 1890).
* **Sessions**: each transmission is an SBD session that takes ``session_base_s +
  session_s_per_byte * bytes`` plus propagation (≈5 s for 70 B to ≈20 s for 1960 B on a
  9522B). A modem runs one session at a time, and starts sessions at most every
  ``interval_s`` (a RockBLOCK's data cycle is about 40 s). There is no emergency exemption:
  distress waits like every class.
* **MT queue** (DirectIP): at most 50 messages wait for the modem; a high-priority message
  goes to the front; every MO session also brings down the next MT message.
* **Loss and outages**: a session fails with probability ``loss_rate`` (and when an outage
  starts during it); an MT message taken for a failed session goes back to the front.

A link is one modem (one IMEI); a pool of modems is several links.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.links.base import Clock, Feedback, FeedbackCode, FrameSink
from gateway.links.geometry import IRIDIUM_ALTITUDE_KM, bent_pipe_delay_s
from gateway.links.outages import NO_OUTAGES, OutagePlan, Outages
from gateway.links.timeline import Span, busy_spans, ordered, outage_spans
from protocols.envelope import Priority

__all__ = [
    "MT_QUEUE_FULL",
    "MT_TOO_BIG",
    "MT_MISSING",
    "MtConfirmation",
    "MtMessage",
    "MtQueue",
    "SbdLink",
    "SbdProfile",
    "SbdStats",
]

MT_TOO_BIG = -3
"""DirectIP MT confirmation status: payload size exceeded the maximum."""
MT_MISSING = -4
"""DirectIP MT confirmation status: payload expected but none received."""
MT_QUEUE_FULL = -5
"""DirectIP MT confirmation status: the MT queue is full (max 50)."""
_MTMSN_MAX = 65_535
_EPS_S = 1e-9
_ELEVATION_DEG = 30.0
"""Elevation of both legs (modem and gateway): the model does not track the satellite, so it assumes a mid-sky one."""


@dataclass(frozen=True, slots=True)
class MtMessage:
    """A mobile-terminated message waiting for, or delivered to, the modem."""

    mtmsn: int
    """MT message sequence number, 1-65535, wrapping."""
    payload: bytes
    high_priority: bool = False


@dataclass(frozen=True, slots=True)
class MtConfirmation:
    """The answer to an MT enqueue, as DirectIP's confirmation: position in the queue, or a negative error status."""

    status: int
    """1-50: the message's position in the queue (1 = next); negative: a DirectIP error (``MT_*``)."""
    mtmsn: int | None = None

    @property
    def queued(self) -> bool:
        """True if the message waits in the queue."""
        return self.status > 0


class MtQueue:
    """One modem's MT queue at the Iridium gateway: bounded, first in first out, high priority first."""

    def __init__(self, *, capacity: int = 50, max_bytes: int = 270) -> None:
        """Create an empty queue.

        Raises:
            ValueError: ``capacity`` or ``max_bytes`` is not a positive integer.
        """
        _check_count("mt_queue", capacity)
        _check_count("mt_bytes", max_bytes)
        self._capacity, self._max_bytes = capacity, max_bytes
        self._queue: deque[MtMessage] = deque()
        self._last_mtmsn = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def messages(self) -> tuple[MtMessage, ...]:
        """The queued messages, next to be delivered first."""
        return tuple(self._queue)

    def enqueue(self, payload: bytes, *, high_priority: bool = False) -> MtConfirmation:
        """Queue ``payload`` (at the front if ``high_priority``); a refusal leaves the queue unchanged."""
        if not payload:
            return MtConfirmation(MT_MISSING)
        if len(payload) > self._max_bytes:
            return MtConfirmation(MT_TOO_BIG)
        if len(self._queue) >= self._capacity:
            return MtConfirmation(MT_QUEUE_FULL)
        self._last_mtmsn = self._last_mtmsn % _MTMSN_MAX + 1
        message = MtMessage(self._last_mtmsn, bytes(payload), high_priority)
        if high_priority:
            # Behind earlier high-priority messages, ahead of every normal one.
            position = sum(1 for m in self._queue if m.high_priority)
            self._queue.insert(position, message)
            return MtConfirmation(position + 1, message.mtmsn)
        self._queue.append(message)
        return MtConfirmation(len(self._queue), message.mtmsn)

    def pop(self) -> MtMessage | None:
        """Take the next message, or return None if the queue is empty."""
        return self._queue.popleft() if self._queue else None

    def push_front(self, message: MtMessage) -> None:
        """Put back a message whose delivery failed, as the next one (even if the queue filled up meanwhile)."""
        self._queue.appendleft(message)

    def flush(self) -> int:
        """Drop every queued message (DirectIP flush flag); return how many were dropped."""
        dropped = len(self._queue)
        self._queue.clear()
        return dropped


@dataclass(frozen=True, slots=True)
class SbdStats:
    """A snapshot of an SBD link's counters since it was built."""

    sent: int = 0
    """MO messages the ground segment took."""
    lost: int = 0
    """Sessions that failed (the MO message did not arrive)."""
    too_large: int = 0
    busy_refusals: int = 0
    """Transmissions refused because the modem was in a session or its data cycle."""
    outage_refusals: int = 0
    bytes_sent: int = 0
    mt_delivered: int = 0
    """MT messages brought down to the modem."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SbdProfile:
    """The settings of an :class:`SbdLink`, as data (for config); validated on construction.

    Raises:
        ValueError: a setting cannot work; the message says which and why.
    """

    name: str
    max_frame_bytes: int
    """Largest MO message, bytes."""
    mt_bytes: int
    """Largest MT message, bytes."""
    session_base_s: float
    session_s_per_byte: float
    interval_s: float = 0.0
    """Least time between the starts of two sessions, seconds."""
    mt_queue: int = 50
    loss_rate: float = 0.0
    elevation_deg: float = _ELEVATION_DEG
    """Elevation of the satellite from modem and gateway, degrees (crosslink hops are not modelled)."""
    outages: OutagePlan = NO_OUTAGES
    seed: int | None = None
    profile: str = "custom"
    """The catalogue profile these settings came from (informational)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        for what in ("max_frame_bytes", "mt_bytes", "mt_queue"):
            _check_count(what, getattr(self, what))
        for what in ("session_base_s", "session_s_per_byte", "interval_s"):
            value = getattr(self, what)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.loss_rate) and 0.0 <= self.loss_rate < 1.0):
            raise ValueError(f"loss_rate must be at least 0 and below 1, got {self.loss_rate!r}")
        if not (math.isfinite(self.elevation_deg) and 0.0 < self.elevation_deg <= 90.0):
            raise ValueError(f"elevation_deg must be above 0 and at most 90, got {self.elevation_deg!r}")
        if not isinstance(self.outages, OutagePlan):
            raise ValueError("outages must be an OutagePlan")

    @property
    def delay_s(self) -> float:
        """Propagation delay modem → satellite → gateway, seconds (milliseconds: sessions dominate)."""
        return bent_pipe_delay_s(
            IRIDIUM_ALTITUDE_KM, up_elevation=self.elevation_deg, down_elevation=self.elevation_deg
        )

    def session_s(self, nbytes: int) -> float:
        """How long a session carrying ``nbytes`` (MO plus MT) lasts, propagation included, seconds."""
        return self.session_base_s + self.session_s_per_byte * nbytes + self.delay_s

    def build(self, *, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> SbdLink:
        """Return an :class:`SbdLink` with these settings that delivers to ``sink`` on ``clock``'s time."""
        return SbdLink(self, sink=sink, clock=clock, rng=rng)


MtHandler = Callable[[MtMessage], None]
"""Called with each MT message a session brought down to the modem."""


class SbdLink:
    """One SBD modem; implements :class:`~gateway.links.base.Link` for MO traffic and holds the modem's MT queue."""

    def __init__(self, profile: SbdProfile, *, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> None:
        """Build the link from ``profile``; ``rng`` (default: seeded from ``profile.seed``) draws session failures."""
        self._profile, self._sink, self._clock = profile, sink, clock
        self._rng = rng if rng is not None else random.Random(profile.seed)
        self._outages = None if profile.outages.empty else Outages(profile.outages, origin=clock.now())
        self._mt = MtQueue(capacity=profile.mt_queue, max_bytes=profile.mt_bytes)
        self._mt_handler: MtHandler | None = None
        self._free_at = -math.inf
        """When the modem may start its next session (end of the current one, or of its data cycle)."""
        self._stats = SbdStats()

    @property
    def name(self) -> str:
        """The link's unique name."""
        return self._profile.name

    @property
    def mtu(self) -> int:
        """The largest MO message, bytes."""
        return self._profile.max_frame_bytes

    @property
    def profile(self) -> SbdProfile:
        """The settings this link was built from."""
        return self._profile

    @property
    def mt(self) -> MtQueue:
        """The modem's MT queue (ground → modem)."""
        return self._mt

    def on_mt(self, handler: MtHandler | None) -> None:
        """Have sessions bring MT messages down to ``handler``; without one, MT messages stay queued."""
        self._mt_handler = handler

    def stats(self) -> SbdStats:
        """Return a snapshot of the counters."""
        return self._stats

    def timeline(self, start: float, end: float) -> list[Span]:
        """The constellation in view all along, the outages known now, and the modem's session or data cycle."""
        now = self._clock.now()
        sky = Span(kind="in_view", start=start, end=end, label="Iridium")
        outages = outage_spans(self._outages, start, end, now=now)
        return ordered([sky, *outages, *busy_spans([self._free_at], start, end, now=now, label="modem")])

    def ready_in(self, priority: Priority) -> float:
        """Seconds until the modem may start a session: the same for every class (SBD has no exemption)."""
        now = self._clock.now()
        wait = max(self._free_at - now, self._outage_left(now))
        return wait if wait > _EPS_S else 0.0

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Run an MO session carrying ``frame``; return once the ground segment has it, or why it did not go.

        A modem in a session or its data cycle answers ``INTERVAL`` with the wait. An exception
        from the sink propagates; the frame then counts as neither sent nor lost.
        """
        if len(frame) > self.mtu:
            self._count(too_large=1)
            return Feedback(FeedbackCode.TOO_LARGE)
        return await self._session(frame, priority)

    async def check_mailbox(self) -> Feedback:
        """Run a session without an MO message, to bring down the next MT message."""
        return await self._session(None, Priority.ROUTINE)

    async def _session(self, frame: bytes | None, priority: Priority) -> Feedback:
        start = self._clock.now()
        if self._outage_left(start) > 0.0:
            self._count(outage_refusals=1)
            return Feedback(FeedbackCode.OUTAGE, wait_s=self.ready_in(priority))
        if self._free_at - start > _EPS_S:
            self._count(busy_refusals=1)
            return Feedback(FeedbackCode.INTERVAL, wait_s=self.ready_in(priority))
        mt = self._mt.pop() if self._mt_handler is not None else None
        duration = self._profile.session_s(len(frame or b"") + (len(mt.payload) if mt else 0))
        self._free_at = start + max(duration, self._profile.interval_s)
        await self._clock.sleep(duration)
        cut = self._outages is not None and self._outages.first_start(start, start + duration) is not None
        if (self._rng.random() < self._profile.loss_rate) or cut:
            if mt is not None:
                self._mt.push_front(mt)
            self._count(lost=1)
            return Feedback(FeedbackCode.LOST, wait_s=self.ready_in(priority))
        if mt is not None and self._mt_handler is not None:
            # First: the modem has the MT message whatever then happens to our ground segment.
            self._mt_handler(mt)
            self._count(mt_delivered=1)
        if frame is not None:
            await self._sink.receive(frame, link=self.name)
            self._count(sent=1, bytes_sent=len(frame))
        return Feedback(FeedbackCode.SENT, wait_s=self.ready_in(priority), delay_s=duration)

    def _outage_left(self, now: float) -> float:
        end = None if self._outages is None else self._outages.until(now)
        return 0.0 if end is None else end - now

    def _count(self, **increments: int) -> None:
        self._stats = replace(
            self._stats, **{field: getattr(self._stats, field) + n for field, n in increments.items()}
        )


def _check_count(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
