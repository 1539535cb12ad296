"""The ground outbox: messages that came down a link, deduplicated, waiting to be published over MQTT.

A link may hand the ground segment the same message twice (a retry after a lost ``sent``,
a relay restarting mid-frame); :meth:`Outbox.deliver` lets each (terminal, seq) through once,
with the replay rule of the uplink queue, atomically with its XADD.

Outbox entry fields: ``id`` message id, ``t`` terminal, ``s`` seq, ``p`` class value,
``r`` receipt flag ``1``/``0``, ``l`` link name, ``at`` delivery time, ``b`` the JSON payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_int, check_keys, check_seconds, check_text
from gateway.queue.entries import check_seq
from gateway.queue.scripts import BatchArgs, LuaScript, create_groups
from gateway.queue.streams import ACK, MAX_COUNT, MAX_WINDOW
from gateway.queue.trace import Trace
from protocols.envelope import Priority
from protocols.seal import REPLAY_WINDOW

__all__ = ["Delivery", "Outbox", "OutboxEntry"]

DELIVER = LuaScript(name="deliver.lua", helpers=["window.lua"])


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message the ground segment received from a link, to publish to applications."""

    message_id: str
    terminal: str
    seq: int
    priority: Priority
    payload: bytes
    """The JSON document to publish on the delivered topic."""
    receipt: bool
    link: str
    delivered_at: float

    def __post_init__(self) -> None:
        if not self.terminal:
            raise ValueError("terminal must not be empty")
        check_seq(self.seq)
        if not isinstance(self.priority, Priority):
            raise ValueError(f"priority must be a Priority, got {self.priority!r}")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox entry read back by the publisher: the :class:`Delivery` fields plus its stream id."""

    stream_id: str
    message_id: str
    terminal: str
    seq: int
    priority: Priority
    payload: bytes
    receipt: bool
    link: str
    delivered_at: float


class Outbox:
    """The ground side's deduplicating outbox, read by one publisher consumer.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
        consumer: This publisher's consumer name; reuse it after a restart to get its unacked entries back.
        window: The replay window of the ground dedup.
        trace: Where :meth:`deliver` writes each message's ``delivered`` hop; None for no traces.
    """

    def __init__(
        self, *, redis: Redis, keys: Keys, consumer: str, window: int = REPLAY_WINDOW, trace: Trace | None = None
    ) -> None:
        check_client(redis)
        check_keys(keys)
        check_text("consumer", consumer)
        check_int("window", window, 1, MAX_WINDOW)
        self._redis = redis
        self._keys = keys
        self._consumer = consumer
        self._window = window
        self._trace = trace
        # Until our own pending entries are drained, read history from here, not '>'.
        self._cursor: bytes | None = b"0"

    async def setup(self) -> None:
        """Create the outbox stream and its consumer group (idempotent), and load the scripts."""
        with map_redis_errors("outbox setup"):
            await create_groups(self._redis, [self._keys.outbox], self._keys.outbox_group, [DELIVER, ACK])

    async def deliver(self, items: Sequence[Delivery]) -> list[bool]:
        """Dedup and append deliveries atomically, in one script call (one round trip).

        Returns:
            Per item, True if it was new and is now in the outbox, False if it was a replay.
        """
        if not items:
            return []
        trace: list[str | int] = self._trace.script_args() if self._trace is not None else ["", 0, ""]
        # Uplink distress also feeds the incident worker, in the same script: no SOS is published yet unseen by it.
        fixed = [self._keys.outbox] if self._keys.is_downlink else [self._keys.outbox, self._keys.incident_events]
        call = BatchArgs(fixed=fixed, window=self._window, window_key=self._keys.ground_seen, trace=trace)
        for item in items:
            call.add(item.terminal, _head(item), (item.message_id, item.link, item.payload))
        with map_redis_errors(f"deliver {len(items)} message(s) from {items[0].message_id}"):
            replies = await DELIVER.run(self._redis, call.keys, call.args)
        return [reply == 0 for reply in replies]

    async def take(self, *, count: int = 100, block_s: float = 0.0) -> list[OutboxEntry]:
        """Take up to ``count`` entries: first this consumer's unacked ones from before a restart, then new ones.

        Args:
            count: The most entries to return.
            block_s: If nothing new is waiting, wait up to this long for something to arrive.
        """
        check_int("count", count, 1, MAX_COUNT)
        check_seconds("block_s", block_s)
        with map_redis_errors(f"outbox take for consumer {self._consumer}"):
            if self._cursor is not None:
                backlog = await self._read(self._cursor, count, None)
                if backlog:
                    self._cursor = backlog[-1][0]
                    return await self._decode(backlog)
                self._cursor = None
            return await self._decode(await self._read(b">", count, round(block_s * 1000) or None))

    async def _read(self, since: bytes, count: int, block_ms: int | None) -> list[tuple[bytes, Any]]:
        reply: Any = await self._redis.xreadgroup(
            self._keys.outbox_group, self._consumer, {self._keys.outbox: since}, count=count, block=block_ms
        )
        return list(reply[0][1]) if reply else []

    async def _decode(self, raw: Sequence[tuple[bytes, Any]]) -> list[OutboxEntry]:
        # A pending entry deleted meanwhile comes back without fields; one that does not
        # decode would fail the publisher forever. Both are acked and dropped.
        entries: list[OutboxEntry] = []
        drop: list[bytes] = []
        for stream_id, fields in raw:
            try:
                entries.append(_decode(stream_id, fields))
            except (KeyError, ValueError, TypeError):
                drop.append(stream_id)
        if drop:
            await self._redis.xack(self._keys.outbox, self._keys.outbox_group, *drop)
        return entries

    async def ack(self, entries: Sequence[OutboxEntry]) -> None:
        """Acknowledge published entries and delete them from the outbox (atomic, one round trip)."""
        if not entries:
            return
        ids, mids = [e.stream_id for e in entries], [e.message_id for e in entries]
        args: list[str | int] = [self._keys.outbox_group, "", 0, "", 0, len(entries), *ids, *mids]
        with map_redis_errors(f"outbox ack {len(entries)} entries from {entries[0].message_id}"):
            await ACK.run(self._redis, [self._keys.outbox], args)

    async def reclaim(self, *, min_idle_s: float, count: int = 100) -> list[OutboxEntry]:
        """Take over entries another publisher took and left idle for ``min_idle_s`` (it likely died)."""
        check_seconds("min_idle_s", min_idle_s)
        check_int("count", count, 1, MAX_COUNT)
        with map_redis_errors(f"outbox reclaim for consumer {self._consumer}"):
            reply: Any = await self._redis.xautoclaim(
                self._keys.outbox, self._keys.outbox_group, self._consumer, round(min_idle_s * 1000), count=count
            )
            return await self._decode(reply[1])


def _head(item: Delivery) -> str:
    # The short fields as deliver.lua reads them: seq, class, receipt flag, delivered at.
    return f"{item.seq} {item.priority:d} {'1' if item.receipt else '0'} {item.delivered_at!r}"


def _decode(stream_id: bytes, fields: Mapping[bytes, bytes]) -> OutboxEntry:
    return OutboxEntry(
        stream_id=stream_id.decode(),
        message_id=fields[b"id"].decode(),
        terminal=fields[b"t"].decode(),
        seq=int(fields[b"s"]),
        priority=Priority(int(fields[b"p"])),
        payload=fields[b"b"],
        receipt=fields[b"r"] == b"1",
        link=fields[b"l"].decode(),
        delivered_at=float(fields[b"at"]),
    )
