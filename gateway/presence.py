"""Terminal activity gathered in memory by ingest, merged into Redis once per flush interval.

Ingest handles ~20,000 messages a second; a Redis command per message would cost more than the
rest of the path. So each lane calls :class:`Presence` (a dict update, no I/O) and a background
task flushes everything gathered in one script call (:meth:`gateway.queue.presence.PresenceStore.merge`).
A process killed with SIGKILL loses at most one interval of this monitoring data; a clean stop flushes.

Attribution: only a message whose seal verified says anything about its terminal. An accepted
message moves *last seen* and, if it carries one, the *last position*; refusals of sealed messages
count under ``rejected.<reason>`` (a replay under ``duplicates``). A message that names a registered
terminal but whose seal failed (or that came after revocation) proves nothing: it counts only as
``unauthenticated`` under the id it claims, and never makes the terminal look alive. Messages
naming an unknown id are not counted per terminal at all, so a flood of invented ids grows nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from gateway.counters import Counters
from gateway.exceptions import TransientError, stop_if_cancelling
from gateway.queue.presence import Fix, Sighting
from protocols.envelope import Message, Priority
from protocols.errors import Reason

__all__ = ["DUPLICATES", "UNAUTHENTICATED", "Presence", "PresenceSink"]

_ACCEPTED = tuple(f"accepted.{p.label}" for p in Priority)  # indexed by class: no string building per message
_DELIVERED = tuple(f"delivered.{p.label}" for p in Priority)
DUPLICATES = "duplicates"
"""Counter of sealed messages refused as replays: the terminal (or a copy of its traffic) sent a seq again."""
UNAUTHENTICATED = "unauthenticated"
"""Counter of messages that claimed the terminal but did not verify (bad seal, or sent after revocation)."""


class PresenceSink(Protocol):
    """Where flushes go (:class:`gateway.queue.presence.PresenceStore`)."""

    async def merge(self, sightings: Sequence[Sighting]) -> None:
        """Fold ``sightings`` into the shared store; raise ``TransientError`` if it cannot."""


class _Pending:
    __slots__ = ("counts", "fix", "last_seen")

    def __init__(self) -> None:
        self.last_seen: float | None = None
        self.fix: tuple[float, float, float, float] | None = None
        """lat, lon, at, ts: a tuple costs a fifth of a frozen dataclass per position message."""
        self.counts: dict[str, int] = {}

    def merge(self, s: Sighting) -> None:
        if s.last_seen is not None and (self.last_seen is None or s.last_seen > self.last_seen):
            self.last_seen = s.last_seen
        if s.fix is not None and (self.fix is None or s.fix.at > self.fix[2]):
            self.fix = (s.fix.lat, s.fix.lon, s.fix.at, s.fix.ts)
        for name, n in s.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def sighting(self, terminal: str) -> Sighting:
        return Sighting(terminal, self.last_seen, None if self.fix is None else Fix(*self.fix), self.counts)


class Presence:
    """Per-terminal activity since the last flush: last seen, last fix, counters.

    Args:
        sink: where flushes go.
        counters: this process's counters (``presence.flushes``, ``presence.flush_failed``).
        interval_s: seconds between flushes of :meth:`flush_forever`.
    """

    def __init__(
        self,
        *,
        sink: PresenceSink,
        counters: Counters,
        interval_s: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._sink = sink
        self._counters = counters
        self._interval_s = interval_s
        self._log = logger or logging.getLogger("satgw.presence")
        self._pending: dict[str, _Pending] = {}
        self._failing = False

    def accepted(self, message: Message, received_at: float) -> None:
        """A message of ``message.terminal`` was accepted (queued) at ``received_at``."""
        pending = self._entry(message.terminal)
        if pending.last_seen is None or received_at > pending.last_seen:
            pending.last_seen = received_at
        name = _ACCEPTED[message.priority]
        pending.counts[name] = pending.counts.get(name, 0) + 1
        position = message.position
        if position is not None and (pending.fix is None or received_at >= pending.fix[2]):
            pending.fix = (position.lat, position.lon, received_at, message.ts)

    def refused(self, terminal: str, reason: Reason) -> None:
        """A message whose seal verified was refused for ``reason`` (a replay counts as a duplicate)."""
        self._count(terminal, DUPLICATES if reason is Reason.REPLAY else f"rejected.{reason.value}")

    def delivered(self, terminal: str, priority: Priority) -> None:
        """The ground published a message of ``terminal`` to applications."""
        self._count(terminal, _DELIVERED[priority])

    def unauthenticated(self, terminal: str) -> None:
        """A message claimed to come from registered ``terminal`` but its seal did not verify."""
        self._count(terminal, UNAUTHENTICATED)

    def __len__(self) -> int:
        """Terminals with activity not yet flushed."""
        return len(self._pending)

    def take(self) -> list[Sighting]:
        """Return and forget the activity gathered since the last call."""
        pending, self._pending = self._pending, {}
        return [p.sighting(t) for t, p in pending.items()]

    def restore(self, sightings: Sequence[Sighting]) -> None:
        """Put back activity that could not be flushed, merged with what came meanwhile."""
        for s in sightings:
            self._entry(s.terminal).merge(s)

    async def flush(self) -> None:
        """Merge what was gathered into the store; on a Redis failure keep it for the next flush."""
        sightings = self.take()
        if not sightings:
            return
        try:
            await self._sink.merge(sightings)
        except TransientError as exc:
            self.restore(sightings)
            self._counters.add("presence.flush_failed")
            if not self._failing:  # once per outage, not once a second
                self._log.warning("presence of %d terminals waits for Redis: %s", len(sightings), exc)
            self._failing = True
            return
        self._counters.add("presence.flushes")
        if self._failing:
            self._log.info("presence flushed again (%d terminals)", len(sightings))
        self._failing = False

    async def flush_forever(self) -> None:
        """Flush every ``interval_s`` until cancelled."""
        while True:
            stop_if_cancelling()
            await asyncio.sleep(self._interval_s)
            await self.flush()

    def _entry(self, terminal: str) -> _Pending:
        pending = self._pending.get(terminal)
        if pending is None:
            pending = self._pending[terminal] = _Pending()
        return pending

    def _count(self, terminal: str, name: str) -> None:
        counts = self._entry(terminal).counts
        counts[name] = counts.get(name, 0) + 1
