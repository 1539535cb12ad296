"""What the HTTP API shows and does: links, dead letters, terminals and metrics of one gateway.

The API (:mod:`gateway.api`) only translates HTTP to calls here and back, so every
answer is built from the same objects the gateway serves with; nothing here blocks
the event loop (each Redis call is one round trip).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.api_models import (
    DeadLetterDetail,
    DeadLetterOut,
    DistressOut,
    LinkCapacity,
    LinkOut,
    LinkState,
    MessageOut,
    PositionOut,
    ReadyOut,
    StatusOut,
    TerminalCountersOut,
    TerminalOut,
    TerminalsOut,
)
from gateway.ceilings import Ceilings, Shares
from gateway.counters import Counters
from gateway.exceptions import TransientError
from gateway.links.base import Link
from gateway.links.timeline import timeline
from gateway.metrics import LinkSample, Metrics, MqttSample, Scrape
from gateway.presence import DUPLICATES, UNAUTHENTICATED
from gateway.queue import DeadLetter, Depth, Entry, Queue
from gateway.queue.presence import PresenceStore, PresenceSummary, TerminalPresence
from gateway.relay import Relay
from gateway.terminals import Registry, TerminalRecord
from protocols.envelope import Priority
from protocols.errors import DecodeError
from protocols.record import decode_record

__all__ = ["Direction", "LinkHandle", "Operations", "TerminalOrder", "next_view_in"]

_VIEW_HORIZON_S = 86_400.0
"""How far ahead the next pass is looked for."""

Direction = Literal["up", "down"]
"""Which queues: terminals' messages (up) or messages to terminals (down)."""

TerminalOrder = Literal["terminal", "last_seen"]
"""How a terminal list is sorted: by id, or most recently seen first (never seen last)."""


@dataclass(frozen=True, slots=True)
class LinkHandle:
    """A link with the relay that feeds it and, if configured, its capacity ceilings."""

    relay: Relay
    link: Link
    ceilings: Ceilings | None = None
    shares: Shares | None = None
    capacity_per_hour: float | None = None

    @property
    def name(self) -> str:
        """The link's name."""
        return self.link.name


@dataclass(frozen=True, slots=True)
class Operations:
    """The operator's view of one gateway.

    Args:
        node: the gateway's node name.
        version: the package version.
        started_at: Unix time the gateway started.
        queue: the class queues (dead letters too).
        registry: the terminal registry.
        counters: this process's counters.
        metrics: this process's metrics.
        links: the links with their relays.
        backlog: how many entries this process holds for retry.
        mqtt: the MQTT connections (``connected`` and ``reconnects``), by name.
        ready_check: whether Redis and the broker answer.
        presence: terminals' last seen, position and counters.
        online_window_s: a terminal is online if seen within this many seconds.
        clock: wall-clock time (Unix seconds), for ages and the online window.
        downlink_queue: the downlink's class queues, shown beside the uplink's; None for none.
    """

    node: str
    version: str
    started_at: float
    queue: Queue
    registry: Registry
    counters: Counters
    metrics: Metrics
    links: Sequence[LinkHandle]
    backlog: Callable[[], int]
    mqtt: Callable[[], Mapping[str, Any]]
    ready_check: Callable[[], Awaitable[dict[str, bool]]]
    presence: PresenceStore
    online_window_s: float
    clock: Callable[[], float] = time.time
    downlink_queue: Queue | None = None

    async def status(self) -> StatusOut:
        """Queue depths per class, links, this process's counters, terminals registered and online."""
        depths = await self.queue.depths()
        down = await self.downlink_queue.depths() if self.downlink_queue is not None else []
        terminals = await self.presence.summary(now=self.clock(), window_s=self.online_window_s)
        return StatusOut(
            node=self.node,
            version=self.version,
            uptime_s=round(time.time() - self.started_at, 1),
            queues={d.priority.label: _queue_json(d) for d in depths},
            downlink={d.priority.label: _queue_json(d) for d in down},
            backlog=self.backlog(),
            links=self.link_list(),
            counters=self.counters.snapshot(),
            terminals=_terminals_json(terminals),
        )

    async def ready(self) -> ReadyOut:
        """Whether Redis and the broker answer."""
        return ReadyOut(**await self.ready_check())

    def link_list(self) -> list[LinkOut]:
        """Every link's state."""
        return [self._link_json(h) for h in self.links]

    def link(self, name: str) -> LinkHandle | None:
        """The link named ``name``, if any."""
        return next((h for h in self.links if h.name == name), None)

    def pause(self, name: str) -> LinkOut | None:
        """Pause the relay of link ``name``; None if there is no such link."""
        handle = self.link(name)
        if handle is None:
            return None
        handle.relay.pause()
        return self._link_json(handle)

    def resume(self, name: str) -> LinkOut | None:
        """Resume the relay of link ``name``; None if there is no such link."""
        handle = self.link(name)
        if handle is None:
            return None
        handle.relay.resume()
        return self._link_json(handle)

    async def distress(self, limit: int) -> list[DistressOut]:
        """The oldest ``limit`` distress messages not yet acked, oldest first."""
        found = await self.queue.open_entries(Priority.DISTRESS, count=limit)
        now = time.time()
        return [_distress_json(entry, taken, now) for entry, taken in found]

    def _queue_of(self, direction: Direction) -> Queue:
        return self.downlink_queue if direction == "down" and self.downlink_queue is not None else self.queue

    async def dead_letters(self, limit: int, *, direction: Direction = "up") -> list[DeadLetterOut]:
        """The oldest ``limit`` dead letters of one direction."""
        return [_dead_json(d) for d in await self._queue_of(direction).dead_letters(count=limit)]

    async def dead_letter(self, dead_id: str, *, direction: Direction = "up") -> DeadLetterDetail | None:
        """One dead letter, or None if there is none with that id."""
        found = await self._queue_of(direction).find_dead(dead_id)
        return None if found is None else _dead_detail(found)

    async def requeue_dead(self, dead_id: str, *, direction: Direction = "up") -> bool:
        """Put a dead letter back in its class queue; False if there is none with that id."""
        return await self._queue_of(direction).requeue_dead(dead_id)

    async def purge_dead(self, *, direction: Direction = "up") -> int:
        """Drop every dead letter of one direction; return how many there were."""
        return await self._queue_of(direction).purge_dead()

    async def terminals(
        self, *, online: bool | None = None, limit: int | None = None, order: TerminalOrder = "terminal"
    ) -> list[TerminalOut]:
        """Registered terminals (never a key) with presence: only online or offline ones if asked, at most ``limit``.

        Three round trips whatever the count: the registry, every last-seen time, then the details of the page.
        """
        records = await self.registry.list()
        seen = await self.presence.last_seen()
        now = self.clock()
        since = now - self.online_window_s
        if online is not None:
            records = [r for r in records if (seen.get(r.terminal, -math.inf) >= since) == online]
        if order == "last_seen":
            records.sort(key=lambda r: -seen.get(r.terminal, -math.inf))
        page = records[:limit]
        details = await self.presence.read([r.terminal for r in page])
        return [self._terminal_json(r, details[r.terminal], now) for r in page]

    async def terminal(self, terminal: str) -> TerminalOut | None:
        """One registered terminal with presence, or None if it was never registered."""
        record = await self.registry.get(terminal)
        if record is None:
            return None
        details = await self.presence.read([terminal])
        return self._terminal_json(record, details[terminal], self.clock())

    async def metrics_text(self) -> bytes:
        """The Prometheus exposition, with queue depths read from Redis now (one round trip)."""
        depths: list[Depth] | None
        try:
            depths = await self.queue.depths()
        except TransientError:
            depths = None  # still expose the rest, with satgw_redis_up 0
        links = [_link_sample(h, self.clock()) for h in self.links]
        mqtt = [
            MqttSample(client=name, connected=bool(c.connected), reconnects=int(getattr(c, "reconnects", 0)))
            for name, c in self.mqtt().items()
        ]
        terminals: PresenceSummary | None
        down: list[Depth] | None = None
        try:
            terminals = await self.presence.summary(now=self.clock(), window_s=self.online_window_s)
            down = await self.downlink_queue.depths() if self.downlink_queue is not None else None
        except TransientError:
            terminals = None
        scrape = Scrape(
            depths=depths, links=links, mqtt=mqtt, backlog=self.backlog(), terminals=terminals, downlink=down
        )
        return self.metrics.render(scrape)

    def _terminal_json(self, record: TerminalRecord, presence: TerminalPresence, now: float) -> TerminalOut:
        fix = presence.fix
        position = None if fix is None else PositionOut(lat=fix.lat, lon=fix.lon, at=fix.at, ts=fix.ts)
        last_seen = presence.last_seen
        return TerminalOut(
            terminal=record.terminal,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
            revoked=record.revoked,
            online=presence.online(now=now, window_s=self.online_window_s),
            last_seen=last_seen,
            last_seen_age_s=None if last_seen is None else round(max(0.0, now - last_seen), 3),
            last_position=position,
            counters=_terminal_counters(presence.counts),
        )

    def _link_json(self, handle: LinkHandle) -> LinkOut:
        sample = _link_sample(handle, self.clock())
        prefix = f"link.{handle.name}."
        counts = {n.removeprefix(prefix): v for n, v in self.counters.snapshot().items() if n.startswith(prefix)}
        capacity = None
        if sample.capacity_per_hour is not None and handle.ceilings is not None:
            capacity = LinkCapacity(per_hour=sample.capacity_per_hour, used=dict(sample.used), share=dict(sample.share))
        return LinkOut(
            name=handle.name,
            state=_state(sample),
            paused=sample.paused,
            in_flight=sample.in_flight,
            next_send_s=dict(sample.ready_in),
            transmissions=counts,
            capacity=capacity,
        )


def _state(sample: LinkSample) -> LinkState:
    if sample.paused:
        return "paused"
    if sample.in_flight:
        return "sending"
    return "waiting" if sample.ready_in.get(Priority.ROUTINE.label, 0.0) > 0 else "ready"


def _link_sample(handle: LinkHandle, now: float) -> LinkSample:
    used: dict[str, float] = {}
    share: dict[str, float] = {}
    if handle.ceilings is not None and handle.shares is not None:
        for priority, value in handle.shares.shares.items():
            used[priority.label] = round(handle.ceilings.usage(priority), 6)
            share[priority.label] = value
    return LinkSample(
        name=handle.name,
        in_flight=handle.relay.in_flight,
        paused=handle.relay.paused,
        ready_in={p.label: round(max(0.0, handle.link.ready_in(p)), 3) for p in Priority},
        capacity_per_hour=handle.capacity_per_hour,
        used=used,
        share=share,
        next_view_in=next_view_in(handle.link, now),
    )


def next_view_in(link: Link, now: float) -> float | None:
    """Seconds from ``now`` until ``link`` next has a satellite in view within a day; None if it cannot tell."""
    spans = [s for s in timeline(link, now, now + _VIEW_HORIZON_S) if s.kind in ("pass", "in_view")]
    if not spans:
        return None
    return round(max(0.0, min(s.start for s in spans) - now), 3)


def _terminals_json(summary: PresenceSummary) -> TerminalsOut:
    return TerminalsOut(
        registered=summary.registered,
        online=summary.online,
        seen=summary.seen,
        online_window_s=summary.window_s,
    )


def _terminal_counters(counts: Mapping[str, int]) -> TerminalCountersOut:
    by_class = {p.label: counts.get(f"accepted.{p.label}", 0) for p in Priority}
    rejected = {n.removeprefix("rejected."): v for n, v in sorted(counts.items()) if n.startswith("rejected.")}
    return TerminalCountersOut(
        accepted=sum(by_class.values()),
        accepted_by_class=by_class,
        delivered=sum(n for name, n in counts.items() if name.startswith("delivered.")),
        duplicates=counts.get(DUPLICATES, 0),
        rejected=rejected,
        rejected_unauthenticated=counts.get(UNAUTHENTICATED, 0),
    )


def _queue_json(d: Depth) -> dict[str, Any]:
    return {"depth": d.depth, "pending": d.pending, "oldest_age_s": d.oldest_age_s}


def _distress_json(e: Entry, taken: bool, now: float) -> DistressOut:
    out = DistressOut(
        message_id=e.message_id,
        terminal=e.terminal,
        seq=e.seq,
        received_at=e.received_at,
        age_s=round(max(0.0, now - e.received_at), 3),
        taken=taken,
        position=None,
        body=None,
    )
    try:
        m = decode_record(e.record).message
    except DecodeError:
        return out
    position = None if m.position is None else {"lat": m.position.lat, "lon": m.position.lon}
    return out.model_copy(update={"body": m.body, "position": position})


def _dead_json(d: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(**_dead_fields(d))


def _dead_fields(d: DeadLetter) -> dict[str, Any]:
    e = d.entry
    message = None
    if e is not None:
        message = MessageOut(
            message_id=e.message_id,
            terminal=e.terminal,
            seq=e.seq,
            received_at=e.received_at,
            expires_at=e.expires_at,
            receipt=e.receipt,
        )
    return {
        "id": d.dead_id,
        "reason": d.reason,
        "dead_at": d.dead_at,
        "priority": d.priority.label,
        "stream_id": d.stream_id,
        "message": message,
    }


def _dead_detail(d: DeadLetter) -> DeadLetterDetail:
    fields = {k: _text_or_hex(v) for k, v in d.fields.items()}
    detail = DeadLetterDetail(**_dead_fields(d), fields=fields)
    if d.entry is None:
        return detail
    try:
        m = decode_record(d.entry.record).message
    except DecodeError:
        return detail
    position = None if m.position is None else {"lat": m.position.lat, "lon": m.position.lon}
    return detail.model_copy(update={"kind": m.kind.value, "body": m.body, "position": position})


def _text_or_hex(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.hex()
