"""The class queues: one Redis stream per priority class, read through one consumer group.

Every hot-path call is one round trip: ``enqueue`` is one dedup+XADD script call for the whole
batch, ``take`` walks the classes inside one script (XREADGROUP's COUNT is per stream, so a
single multi-stream read could not keep strict priority), ``ack`` is one atomic XACK+XDEL script call.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_int, check_keys, check_seconds, check_text
from gateway.queue.entries import (
    Accepted,
    DeadLetter,
    Depth,
    EnqueueOutcome,
    Entry,
    decode_entry,
    enqueue_head,
    flat_fields,
    stream_id_time,
)
from gateway.queue.scripts import BatchArgs, LuaScript, create_groups
from gateway.queue.trace import HopEvent, Sent, Trace, hop_line
from protocols.envelope import Priority
from protocols.seal import REPLAY_WINDOW

__all__ = ["MAX_COUNT", "MAX_WINDOW", "Queue"]

MAX_WINDOW = 2**20
"""The largest replay window: its bitmap takes W/8 bytes per terminal; window.lua's arithmetic is exact to 2^26."""
MAX_COUNT = 10_000
"""The most entries one take/reclaim/dead-letter listing returns."""

ENQUEUE = LuaScript(name="enqueue.lua", helpers=["window.lua"])
# Taking, acking, burying and purging must work when Redis is out of memory: they are how it drains.
TAKE = LuaScript(name="take.lua", allow_oom=True)
RECLAIM = LuaScript(name="reclaim.lua", allow_oom=True)
BURY = LuaScript(name="bury.lua", allow_oom=True)
REQUEUE = LuaScript(name="requeue.lua")
PURGE = LuaScript(name="purge.lua", allow_oom=True)
ACK = LuaScript(name="ack.lua", allow_oom=True)
SCRIPTS = (ENQUEUE, TAKE, ACK, RECLAIM, BURY, REQUEUE, PURGE)

_OUTCOMES = (EnqueueOutcome.QUEUED, EnqueueOutcome.DUPLICATE, EnqueueOutcome.TOO_OLD)
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


class Queue:
    """The uplink queues of one gateway, seen by one consumer (a relay, or the ingest side).

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
        consumer: This process's consumer name in the group; a restarted process should reuse it.
        replay_window: How far below a terminal's highest seq a late message is still accepted.
        max_deliveries: How many times an entry may be delivered before :meth:`reclaim` dead-letters it.
        trace: Where the scripts write each message's hops (:mod:`gateway.queue.trace`); None for no traces.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        consumer: str,
        replay_window: int = REPLAY_WINDOW,
        max_deliveries: int = 5,
        trace: Trace | None = None,
    ) -> None:
        check_client(redis)
        check_keys(keys)
        check_text("consumer", consumer)
        check_int("replay_window", replay_window, 1, MAX_WINDOW)
        check_int("max_deliveries", max_deliveries, 1, 1_000_000)
        if trace is not None and not isinstance(trace, Trace):
            raise TypeError(f"trace must be a gateway.queue.trace.Trace or None, got {type(trace).__name__}")
        self._redis = redis
        self._keys = keys
        self._consumer = consumer
        self._window = replay_window
        self._max_deliveries = max_deliveries
        self._streams = keys.streams()
        self._with_dead = [*self._streams, keys.dead]
        self._trace = trace

    def _trace_args(self) -> list[str | int]:
        # What trace_init (common.lua) takes; a TTL of 0 makes every script skip its hops.
        return self._trace.script_args() if self._trace is not None else ["", 0, ""]

    def _line(self, event: HopEvent, at: float | None = None, **details: str | int | None) -> str:
        # One hop line for every entry of a script call, or '' when nothing is traced.
        if self._trace is None or not self._trace.enabled:
            return ""
        return hop_line(event, self._trace.now() if at is None else at, **details)

    async def setup(self) -> None:
        """Create every class stream and the consumer group (idempotent), and load the scripts."""
        with map_redis_errors("queue setup"):
            await create_groups(self._redis, self._streams, self._keys.group, SCRIPTS)

    async def enqueue(self, batch: Sequence[Accepted]) -> list[EnqueueOutcome]:
        """Dedup and queue a batch atomically, in one script call (one round trip).

        Returns:
            One outcome per message, in order. Messages of one terminal are judged in batch order.
        """
        if not batch:
            return []
        call = BatchArgs(fixed=self._streams, window=self._window, window_key=self._keys.seen, trace=self._trace_args())
        for item in batch:
            call.add(item.terminal, enqueue_head(item), (item.message_id, item.record))
        with map_redis_errors(f"enqueue {len(batch)} message(s) from {batch[0].message_id}"):
            replies = await ENQUEUE.run(self._redis, call.keys, call.args)
        return [_OUTCOMES[reply] for reply in replies]

    async def take(
        self,
        *,
        count: int = 1,
        block_s: float = 0.0,
        max_priority: Priority = Priority.ROUTINE,
        link: str | None = None,
    ) -> list[Entry]:
        """Take up to ``count`` new entries, highest class first.

        Args:
            count: The most entries to return.
            block_s: If nothing is waiting, wait up to this long for something to arrive.
            max_priority: The least urgent class to take from (``Priority.SAFETY`` leaves routine alone).
            link: The link the taker feeds, named in the ``taken`` hop of each entry's trace.

        Returns:
            The entries, now pending for this consumer until acked, dead-lettered or reclaimed.
        """
        check_int("count", count, 1, MAX_COUNT)
        check_seconds("block_s", block_s)
        if not isinstance(max_priority, Priority):
            raise ValueError(f"max_priority must be a Priority, got {max_priority!r}")
        streams = self._streams[: max_priority + 1]
        deadline = time.monotonic() + block_s
        with map_redis_errors(f"take for consumer {self._consumer}"):
            while True:
                reply = await TAKE.run(self._redis, streams, self._take_args(count, block_s > 0, link))
                entries = await self._decode(_from_script(reply[0]))
                if entries:
                    return entries
                if reply[0]:
                    continue  # everything read was malformed and buried; look again
                if block_s <= 0:
                    return []
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await self._wait(streams, reply[1], remaining):
                    return []

    def _take_args(self, count: int, report_ids: bool, link: str | None) -> list[str | int]:
        line = self._line(HopEvent.TAKEN, link=link, by=self._consumer)
        return [self._keys.group, self._consumer, count, "1" if report_ids else "0", *self._trace_args()[:2], line]

    async def _wait(self, streams: Sequence[str], last_ids: Sequence[bytes], timeout_s: float) -> bool:
        # A plain XREAD from the group's last-delivered ids wakes on exactly the entries no
        # consumer has seen yet, without taking them: the take script then picks by class.
        since: dict[Any, Any] = dict(zip(streams, last_ids, strict=True))
        arrived = await self._redis.xread(since, count=1, block=max(1, round(timeout_s * 1000)))
        return bool(arrived)

    async def recover_own(self) -> list[Entry]:
        """The entries this consumer took before a restart and never acked, highest class first; one round trip.

        Call it once at start, before taking, when reusing a consumer name. Up to ``MAX_COUNT`` per class.
        """
        pipe = self._redis.pipeline(transaction=False)
        for stream in self._streams:
            pipe.xreadgroup(self._keys.group, self._consumer, {stream: "0"}, count=MAX_COUNT)
        with map_redis_errors(f"recover pending entries of consumer {self._consumer}"):
            replies = await pipe.execute()
            raw = [
                (int(priority), stream_id, fields)
                for priority, reply in zip(Priority, replies, strict=True)
                for stream_id, fields in (reply[0][1] if reply else [])
            ]
            await self._forget_deleted([(p, i) for p, i, fields in raw if fields is None])
            return await self._decode([(p, i, f) for p, i, f in raw if f is not None])

    async def _forget_deleted(self, items: Sequence[tuple[int, bytes]]) -> None:
        # A pending id whose entry is gone (deleted by hand, say) has nothing left to send.
        if items:
            pipe = self._redis.pipeline(transaction=False)
            for priority, stream_id in items:
                pipe.xack(self._streams[priority], self._keys.group, stream_id)
            await pipe.execute()

    async def ack(self, entries: Sequence[Entry], *, sent: Sent | None = None) -> None:
        """Acknowledge entries and delete them from their streams (atomic, one round trip).

        Args:
            entries: Taken entries.
            sent: How the frame carrying ``entries`` went; each entry's trace gets a ``sent`` hop saying so.
        """
        line = "" if sent is None else self._sent_line(sent, len(entries))
        await self._ack(entries, line, "ack")

    async def expire(self, entries: Sequence[Entry], *, link: str | None = None) -> None:
        """Drop taken entries whose time to live ran out, as :meth:`ack` does, with an ``expired`` hop each."""
        await self._ack(entries, self._line(HopEvent.EXPIRED, link=link), "expire")

    def _sent_line(self, sent: Sent, records: int) -> str:
        return self._line(HopEvent.SENT, sent.at, link=sent.link, records=records, fragments=sent.fragments or None)

    async def _ack(self, entries: Sequence[Entry], line: str, verb: str) -> None:
        if not entries:
            return
        args: list[str | int] = [self._keys.group, *self._trace_args()[:2], line]
        for priority, group in _by_class(entries).items():
            args += [int(priority), len(group), *(e.stream_id for e in group), *(e.message_id for e in group)]
        with map_redis_errors(f"{verb} {len(entries)} entries from {entries[0].message_id}"):
            await ACK.run(self._redis, self._streams, args)

    async def dead_letter(self, entries: Sequence[Entry], *, reason: str) -> None:
        """Move taken entries to the dead-letter stream with ``reason`` (atomic, one round trip)."""
        check_text("reason", reason)
        if entries:
            with map_redis_errors(f"dead-letter {len(entries)} entries from {entries[0].message_id}"):
                await self._bury([(e.priority, e.stream_id) for e in entries], reason)

    async def _bury(self, items: Sequence[tuple[int, str | bytes]], reason: str) -> None:
        args: list[str | bytes | int] = [self._keys.group, reason, *self._trace_args()]
        for priority, stream_id in items:
            args += [int(priority), stream_id]
        await BURY.run(self._redis, self._with_dead, args)

    async def reclaim(self, *, min_idle_s: float, count: int = 100) -> list[Entry]:
        """Take over entries another consumer took and left idle for ``min_idle_s`` (it likely died).

        An idle entry already delivered ``max_deliveries`` times goes to the dead-letter stream
        with reason ``max_deliveries`` instead. At most ``count`` idle entries are handled per call.

        Returns:
            The entries now pending for this consumer, highest class first.
        """
        check_seconds("min_idle_s", min_idle_s)
        check_int("count", count, 1, MAX_COUNT)
        args: list[str | int] = [
            self._keys.group,
            self._consumer,
            round(min_idle_s * 1000),
            count,
            self._max_deliveries,
            *self._trace_args(),
            self._line(HopEvent.RECLAIMED, by=self._consumer),
        ]
        with map_redis_errors(f"reclaim for consumer {self._consumer}"):
            return await self._decode(_from_script(await RECLAIM.run(self._redis, self._with_dead, args)))

    async def _decode(self, raw: Sequence[tuple[int, bytes, Mapping[bytes, bytes]]]) -> list[Entry]:
        # An entry that does not decode would fail every relay that took it: bury it at once.
        entries: list[Entry] = []
        bad: list[tuple[int, bytes]] = []
        for priority, stream_id, fields in raw:
            try:
                entries.append(decode_entry(priority, stream_id, fields))
            except (KeyError, ValueError):
                bad.append((priority, stream_id))
        if bad:
            await self._bury(bad, "malformed")
        return entries

    async def depths(self) -> list[Depth]:
        """The depth, pending count and oldest age of every class queue, highest class first; one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in self._streams:
            pipe.xlen(stream)
            pipe.xpending(stream, self._keys.group)
            pipe.xrange(stream, count=1)
        with map_redis_errors("queue depths"):
            replies = await pipe.execute()
        now = time.time()
        return [
            Depth(priority=p, depth=max(0, n - pend["pending"]), pending=pend["pending"], oldest_age_s=_age(first, now))
            for p, (n, pend, first) in zip(Priority, _triples(replies), strict=True)
        ]

    async def open_entries(self, priority: Priority, *, count: int = 100) -> list[tuple[Entry, bool]]:
        """The oldest ``count`` entries of one class not yet acked, each with whether a relay has taken it.

        Read only (one round trip): malformed entries are skipped here, not buried; ``take`` buries them.
        """
        if not isinstance(priority, Priority):
            raise ValueError(f"priority must be a Priority, got {priority!r}")
        check_int("count", count, 1, MAX_COUNT)
        stream = self._streams[priority]
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(stream, count=count)
        # Acked entries are deleted, so the stream holds only waiting and taken ones; at most ``count``
        # pending ids can be among its oldest ``count`` entries, so this many pending ids cover them.
        pipe.xpending_range(stream, self._keys.group, min="-", max="+", count=count)
        with map_redis_errors(f"list open entries of class {priority.label}"):
            found, pending = await pipe.execute()
        taken = {p["message_id"] for p in pending}
        entries: list[tuple[Entry, bool]] = []
        for stream_id, fields in found:
            with contextlib.suppress(KeyError, ValueError):
                entries.append((decode_entry(priority, stream_id, fields), stream_id in taken))
        return entries

    async def dead_letters(self, *, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters, oldest first."""
        check_int("count", count, 1, MAX_COUNT)
        with map_redis_errors("list dead letters"):
            replies: Any = await self._redis.xrange(self._keys.dead, count=count)
        return [_dead_letter(dead_id, fields) for dead_id, fields in replies]

    async def find_dead(self, dead_id: str) -> DeadLetter | None:
        """One dead letter by its id, or None if there is none (or the id is not a stream id)."""
        if not isinstance(dead_id, str) or not _STREAM_ID.fullmatch(dead_id):
            return None
        with map_redis_errors(f"get dead letter {dead_id}"):
            replies: Any = await self._redis.xrange(self._keys.dead, min=dead_id, max=dead_id, count=1)
        return _dead_letter(*replies[0]) if replies else None

    async def requeue_dead(self, dead_id: str) -> bool:
        """Put a dead letter back at the tail of its class queue; False if there is no such dead letter."""
        if not isinstance(dead_id, str) or not _STREAM_ID.fullmatch(dead_id):
            return False
        with map_redis_errors(f"requeue dead letter {dead_id}"):
            return bool(await REQUEUE.run(self._redis, self._with_dead, [dead_id, *self._trace_args()]))

    async def purge_dead(self) -> int:
        """Drop every dead letter; return how many there were."""
        with map_redis_errors("purge dead letters"):
            return int(await PURGE.run(self._redis, [self._keys.dead], self._trace_args()))


def _by_class(entries: Sequence[Entry]) -> dict[Priority, list[Entry]]:
    found: dict[Priority, list[Entry]] = defaultdict(list)
    for entry in entries:
        found[entry.priority].append(entry)
    return found


def _from_script(raw: Sequence[Sequence[Any]]) -> list[tuple[int, bytes, Mapping[bytes, bytes]]]:
    # Scripts return entries as {class index, id, {field, value, ...}}.
    return [(priority, stream_id, flat_fields(flat)) for priority, stream_id, flat in raw]


def _triples(replies: Sequence[Any]) -> list[tuple[Any, Any, Any]]:
    return [(replies[i], replies[i + 1], replies[i + 2]) for i in range(0, len(replies), 3)]


def _age(first: Sequence[tuple[bytes, dict[bytes, bytes]]], now: float) -> float | None:
    if not first:
        return None
    stream_id, fields = first[0]
    try:
        received = float(fields[b"rx"])
    except (KeyError, ValueError):
        received = stream_id_time(stream_id)
    return max(0.0, now - received)


def _dead_letter(dead_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    priority = Priority(int(fields.get(b"p", b"3")))
    stream_id = fields.get(b"sid", b"").decode()
    try:
        entry: Entry | None = decode_entry(priority, stream_id, fields)
    except (KeyError, ValueError):
        entry = None
    return DeadLetter(
        dead_id=dead_id.decode(),
        reason=fields.get(b"reason", b"").decode(errors="replace"),
        dead_at=stream_id_time(dead_id),
        priority=priority,
        stream_id=stream_id,
        entry=entry,
        fields={k.decode(errors="replace"): v for k, v in fields.items()},
    )
