"""Outgoing alerts waiting for their webhooks: one stream per endpoint, attempts and dead letters in Redis.

An alert is queued once per endpoint by one script call (all endpoints or none). Each endpoint's
stream is read through the consumer group ``webhook``; a delivery stays pending until it is
settled: delivered (acked and deleted) or dead (moved to the alert dead-letter stream). Its attempt
count is incremented in Redis *before* each request goes out, and the time it may next be tried is
stored after a failure, so a dispatcher killed at any moment resumes with the right count and backoff.

Keys (all under the gateway's hash tag, so every script may touch any of them):

``{p}:alerts:out:<endpoint>``
    stream, group ``webhook``: ``id`` idempotency key, ``k`` kind, ``ct`` content type, ``b`` body,
    ``at`` published at (Unix s).
``{p}:alerts:tries:<endpoint>``
    hash by stream id: ``<id>`` → attempts made, ``<id>:due`` → next try (Unix s), ``<id>:err`` → last error.
``{p}:alerts:dead``
    stream: ``e`` endpoint, ``reason``, ``status`` (HTTP, or empty), ``n`` attempts, ``err``, ``sid``,
    then the delivery's own fields.
``{p}:alerts:key:<key>``
    string: the idempotency key was queued; lives ``dedup_s``, so a repeated publish queues nothing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_int, check_keys, check_seconds, check_text
from gateway.queue.entries import flat_fields, stream_id_time
from gateway.queue.scripts import LuaScript, create_groups

__all__ = ["DEDUP_S", "AlertDelivery", "AlertKeys", "AlertStore", "DeadAlert", "EndpointQueue"]

DEDUP_S = 7 * 24 * 3600.0
"""How long a published idempotency key is remembered, so publishing it again queues nothing."""
GROUP = "webhook"
MAX_LIST = 10_000
"""The most dead alerts one listing or one requeue call handles."""

PUBLISH = LuaScript(name="alerts_publish.lua")
REQUEUE = LuaScript(name="alerts_requeue.lua")
# Settling works when Redis is out of memory: it is how the streams drain.
BEGIN = LuaScript(name="alerts_begin.lua", allow_oom=True)
DONE = LuaScript(name="alerts_done.lua", allow_oom=True)
BURY = LuaScript(name="alerts_bury.lua", allow_oom=True)
SCRIPTS = (PUBLISH, BEGIN, DONE, BURY, REQUEUE)

_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass(frozen=True, slots=True)
class AlertKeys:
    """The Redis keys of outgoing alerts, under the gateway's prefix and hash tag."""

    prefix: str

    def _k(self, *parts: str) -> str:
        return ":".join(("{" + self.prefix + "}", "alerts", *parts))

    def stream(self, endpoint: str) -> str:
        """The deliveries waiting for one endpoint."""
        return self._k("out", endpoint)

    def tries(self, endpoint: str) -> str:
        """Hash of one endpoint's attempt counts, next-try times and last errors, by stream id."""
        return self._k("tries", endpoint)

    @property
    def dead(self) -> str:
        """The dead alert deliveries of every endpoint."""
        return self._k("dead")

    def seen(self, key: str) -> str:
        """Marks an idempotency key as queued."""
        return self._k("key", key)


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One alert pending for one endpoint, as a dispatcher reads it."""

    endpoint: str
    stream_id: str
    key: str
    """The idempotency key (the CAP identifier)."""
    kind: str
    content_type: str
    body: bytes
    published_at: float
    attempts: int
    """Attempts made so far (counted before each request, so one cut short by a crash counts)."""
    due: float
    """When it may be tried next (Unix seconds); 0 when it may go at once."""
    last_error: str


@dataclass(frozen=True, slots=True)
class DeadAlert:
    """One dead alert delivery, for operators."""

    dead_id: str
    endpoint: str
    reason: str
    """``refused`` (the receiver answered a 3xx/4xx that retrying cannot fix), ``max_attempts`` or ``malformed``."""
    status: int | None
    """The receiver's last HTTP status, or None when it gave none (timeout, connection error)."""
    attempts: int
    error: str
    dead_at: float
    key: str
    kind: str
    content_type: str
    body: bytes
    published_at: float | None


class AlertStore:
    """Outgoing alert deliveries of every webhook endpoint of one gateway.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway (only its prefix is used).
        consumer: This process's consumer name; a restarted process reusing it gets its pending deliveries back.
        dedup_s: How long a published idempotency key is remembered.
    """

    def __init__(self, *, redis: Redis, keys: Keys, consumer: str, dedup_s: float = DEDUP_S) -> None:
        check_client(redis)
        check_keys(keys)
        check_text("consumer", consumer)
        if isinstance(dedup_s, bool) or not isinstance(dedup_s, int | float) or not 1 <= dedup_s <= 365 * 86_400:
            raise ValueError(f"dedup_s must be a number of seconds in [1, 1 year], got {dedup_s!r}")
        self._redis = redis
        self.keys = AlertKeys(keys.prefix)
        self._consumer = consumer
        self._dedup_ms = math.ceil(dedup_s * 1000)

    async def setup(self, endpoints: Sequence[str]) -> None:
        """Create each endpoint's stream and consumer group (idempotent), and load the scripts; one round trip."""
        for name in endpoints:
            check_text("endpoint", name)
        with map_redis_errors("alert queue setup"):
            await create_groups(self._redis, [self.keys.stream(e) for e in endpoints], GROUP, SCRIPTS)

    async def publish(
        self, endpoints: Sequence[str], *, key: str, kind: str, content_type: str, body: bytes, published_at: float
    ) -> bool:
        """Queue one alert for every endpoint, atomically, in one round trip.

        Returns:
            True if it was queued, False if an alert with ``key`` was already queued within the dedup window.
        """
        if not endpoints:
            return False
        keys = [self.keys.seen(key), *(self.keys.stream(e) for e in endpoints)]
        fields: list[bytes | str | int] = [
            "id",
            key,
            "k",
            kind,
            "ct",
            content_type,
            "b",
            body,
            "at",
            repr(published_at),
        ]
        with map_redis_errors(f"publish alert {key}"):
            return bool(await PUBLISH.run(self._redis, keys, [self._dedup_ms, *fields]))

    def queue(self, endpoint: str) -> EndpointQueue:
        """The reader of one endpoint's deliveries for this consumer."""
        check_text("endpoint", endpoint)
        return EndpointQueue(redis=self._redis, keys=self.keys, endpoint=endpoint, consumer=self._consumer)

    async def pending(self, endpoints: Sequence[str]) -> dict[str, int]:
        """Per endpoint, how many deliveries are not settled yet (waiting or under way); one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for name in endpoints:
            pipe.xlen(self.keys.stream(name))
        with map_redis_errors("count pending alert deliveries"):
            counts = await pipe.execute()
        return {name: int(n) for name, n in zip(endpoints, counts, strict=True)}

    async def dead(self, *, count: int = 100, endpoint: str | None = None, after: str | None = None) -> list[DeadAlert]:
        """The oldest ``count`` dead deliveries (of one endpoint, if given; after dead id ``after``), oldest first."""
        check_int("count", count, 1, MAX_LIST)
        if after is not None and not _STREAM_ID.fullmatch(after):
            raise ValueError(f"after must be a dead id, got {after!r}")
        start = "-" if after is None else f"({after}"
        with map_redis_errors("list dead alerts"):
            raw: Any = await self._redis.xrange(self.keys.dead, min=start, count=MAX_LIST if endpoint else count)
        found = [_dead(dead_id, fields) for dead_id, fields in raw]
        return [d for d in found if endpoint is None or d.endpoint == endpoint][:count]

    async def find_dead(self, dead_id: str) -> DeadAlert | None:
        """One dead delivery by its id, or None (also for a string that is not a stream id)."""
        if not isinstance(dead_id, str) or not _STREAM_ID.fullmatch(dead_id):
            return None
        with map_redis_errors(f"get dead alert {dead_id}"):
            raw: Any = await self._redis.xrange(self.keys.dead, min=dead_id, max=dead_id, count=1)
        return _dead(*raw[0]) if raw else None

    async def requeue(self, dead_ids: Sequence[str], endpoints: Sequence[str]) -> int:
        """Put dead deliveries back at the tail of their endpoints' streams (attempts start again at 0).

        Only deliveries of ``endpoints`` move (an endpoint no longer configured has no reader); ids
        that are not stream ids or not dead letters are skipped. Atomic, one round trip.

        Returns:
            How many moved.
        """
        ids = [i for i in dead_ids if isinstance(i, str) and _STREAM_ID.fullmatch(i)]
        if not ids or not endpoints:
            return 0
        keys = [self.keys.dead, *(self.keys.stream(e) for e in endpoints)]
        with map_redis_errors(f"requeue {len(ids)} dead alert(s)"):
            return int(await REQUEUE.run(self._redis, keys, [*endpoints, *ids]))

    async def drop_dead(self, dead_ids: Sequence[str]) -> int:
        """Delete dead deliveries for good; return how many there were."""
        ids = [i for i in dead_ids if isinstance(i, str) and _STREAM_ID.fullmatch(i)]
        if not ids:
            return 0
        with map_redis_errors(f"drop {len(ids)} dead alert(s)"):
            return int(await self._redis.xdel(self.keys.dead, *ids))


class EndpointQueue:
    """One endpoint's deliveries as one consumer reads and settles them, oldest first.

    Reading starts with the deliveries this consumer held before a restart, then takes over
    deliveries another consumer left idle (it likely died), then waits for new ones.
    """

    def __init__(self, *, redis: Redis, keys: AlertKeys, endpoint: str, consumer: str) -> None:
        self._redis = redis
        self.endpoint = endpoint
        self._consumer = consumer
        self._stream = keys.stream(endpoint)
        self._tries = keys.tries(endpoint)
        self._dead = keys.dead
        self._cursor: bytes | None = b"0"
        self._claim_at = 0.0
        self._claim_from: bytes = b"0-0"

    def rewind(self) -> None:
        """Read this consumer's own pending deliveries again first (after an error left some unsettled)."""
        self._cursor = b"0"

    async def setup(self) -> None:
        """Create the stream and group again if they vanished (idempotent)."""
        with map_redis_errors(f"alert queue setup of {self.endpoint}"):
            await create_groups(self._redis, [self._stream], GROUP, SCRIPTS)

    async def take(self, *, count: int, block_s: float, claim_idle_s: float) -> list[AlertDelivery]:
        """The next deliveries, oldest first: own pending ones, then idle ones of others, then new ones.

        Args:
            count: The most to return.
            block_s: If nothing is waiting, wait up to this long for something to arrive.
            claim_idle_s: Take over another consumer's delivery once it has been idle this long.
        """
        check_int("count", count, 1, MAX_LIST)
        check_seconds("block_s", block_s)
        check_seconds("claim_idle_s", claim_idle_s)
        with map_redis_errors(f"take alert deliveries of {self.endpoint}"):
            if self._cursor is not None:
                own = await self._read(self._cursor, count, None)
                if own:
                    self._cursor = own[-1][0]
                    return await self._decode(own)
                self._cursor = None
            now = time.monotonic()
            if now >= self._claim_at:
                self._claim_at = now + max(claim_idle_s / 2, 0.05)
                reply: Any = await self._redis.xautoclaim(
                    self._stream, GROUP, self._consumer, round(claim_idle_s * 1000), self._claim_from, count=count
                )
                # The scan resumes where it stopped, so a long list of busy deliveries is walked, not rescanned.
                self._claim_from = reply[0]
                if reply[1]:
                    return await self._decode(list(reply[1]))
            # Wake in time for the next look at idle deliveries, even when nothing new arrives.
            block_s = min(block_s, max(0.0, self._claim_at - now))
            return await self._decode(await self._read(b">", count, round(block_s * 1000) or None))

    async def _read(self, since: bytes, count: int, block_ms: int | None) -> list[tuple[bytes, Any]]:
        reply: Any = await self._redis.xreadgroup(
            GROUP, self._consumer, {self._stream: since}, count=count, block=block_ms
        )
        return list(reply[0][1]) if reply else []

    async def _decode(self, raw: Sequence[tuple[bytes, Any]]) -> list[AlertDelivery]:
        # A pending entry deleted meanwhile comes back without fields: nothing left to send.
        gone = [sid for sid, fields in raw if not fields]
        if gone:
            await self._redis.xack(self._stream, GROUP, *gone)
        present = [(sid, fields) for sid, fields in raw if fields]
        if not present:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for sid, _ in present:
            pipe.hmget(self._tries, [sid, sid + b":due", sid + b":err"])
        states = await pipe.execute()
        out: list[AlertDelivery] = []
        for (sid, fields), state in zip(present, states, strict=True):
            try:
                out.append(_delivery(self.endpoint, sid, fields, state))
            except (KeyError, ValueError):
                # An entry that does not decode could never be sent: park it for an operator.
                await BURY.run(self._redis, self._bury_keys, [GROUP, sid, self.endpoint, "malformed", "", ""])
        return out

    @property
    def _bury_keys(self) -> list[str]:
        return [self._stream, self._tries, self._dead]

    async def begin(self, delivery: AlertDelivery) -> int | None:
        """Count one more attempt durably, before the request goes out.

        Returns:
            The number of this attempt, or None if this consumer no longer holds the delivery.
        """
        args = [GROUP, self._consumer, delivery.stream_id]
        with map_redis_errors(f"begin alert {delivery.key} to {self.endpoint}"):
            attempt = int(await BEGIN.run(self._redis, [self._stream, self._tries], args))
        return None if attempt < 0 else attempt

    async def done(self, delivery: AlertDelivery) -> None:
        """The endpoint took it: acknowledge, delete, forget its attempts (atomic, one round trip)."""
        with map_redis_errors(f"settle alert {delivery.key} to {self.endpoint}"):
            await DONE.run(self._redis, [self._stream, self._tries], [GROUP, delivery.stream_id])

    async def retry(self, delivery: AlertDelivery, *, due: float, error: str) -> None:
        """Note when it may be tried again and why the last attempt failed."""
        sid = delivery.stream_id
        with map_redis_errors(f"note retry of alert {delivery.key} to {self.endpoint}"):
            await self._redis.hset(self._tries, mapping={f"{sid}:due": repr(due), f"{sid}:err": error})

    async def bury(self, delivery: AlertDelivery, *, reason: str, status: int | None, error: str) -> None:
        """Move it to the dead-letter stream with ``reason``, the last status and error (atomic)."""
        check_text("reason", reason)
        args = [GROUP, delivery.stream_id, self.endpoint, reason, "" if status is None else str(status), error]
        with map_redis_errors(f"dead-letter alert {delivery.key} to {self.endpoint}"):
            await BURY.run(self._redis, self._bury_keys, args)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode(errors="replace")


def _delivery(endpoint: str, sid: bytes, fields: Mapping[bytes, bytes], state: Sequence[bytes | None]) -> AlertDelivery:
    attempts, due, error = state
    return AlertDelivery(
        endpoint=endpoint,
        stream_id=sid.decode(),
        key=fields[b"id"].decode(),
        kind=fields[b"k"].decode(),
        content_type=fields[b"ct"].decode(),
        body=fields[b"b"],
        published_at=float(fields[b"at"]),
        attempts=int(attempts or 0),
        due=float(due or 0),
        last_error=_text(error),
    )


def _dead(dead_id: bytes, raw: Mapping[bytes, bytes] | Sequence[bytes]) -> DeadAlert:
    fields = raw if isinstance(raw, Mapping) else flat_fields(raw)
    status = fields.get(b"status", b"")
    published = fields.get(b"at")
    return DeadAlert(
        dead_id=dead_id.decode(),
        endpoint=_text(fields.get(b"e")),
        reason=_text(fields.get(b"reason")),
        status=int(status) if status.isdigit() else None,
        attempts=int(fields.get(b"n", b"0") or 0),
        error=_text(fields.get(b"err")),
        dead_at=stream_id_time(dead_id),
        key=_text(fields.get(b"id")),
        kind=_text(fields.get(b"k")),
        content_type=_text(fields.get(b"ct")),
        body=fields.get(b"b", b""),
        published_at=float(published) if published else None,
    )
