"""SOS incidents in Redis, and the stream of events that moves them.

Keys (``gateway.names.Keys``): ``incident(id)`` the incident as JSON, ``incidents`` a sorted set
of ids by opening time, ``incidents_active`` terminal → its active incident, and
``incident_events``: a stream read through the ``incidents`` consumer group. The ground appends
every distress delivery to it (``deliver.lua``, outbox fields) and the API appends operator
actions (fields ``op``, ``inc``, ``text``, ``by``, ``at``).

Each event is applied once: the incident's log names the event ids it took, and saving is one
MULTI/EXEC under WATCH of the incident and the active map, so two gateways applying events of
the same terminal at once cannot both win.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError, WatchError

from gateway.exceptions import map_redis_errors
from gateway.incidents import Incident, OperatorEvent
from gateway.names import Keys
from gateway.queue.checks import check_client, check_keys, check_text
from gateway.queue.entries import as_text

__all__ = ["EventEntry", "IncidentStore"]

GROUP = "incidents"


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One event read from the stream: its id and raw fields."""

    stream_id: str
    fields: dict[bytes, bytes]


class IncidentStore:
    """Incidents and their event stream, seen by one consumer."""

    def __init__(self, *, redis: Redis, keys: Keys, consumer: str) -> None:
        check_client(redis)
        check_keys(keys)
        check_text("consumer", consumer)
        self._redis, self._keys, self._consumer = redis, keys, consumer

    async def setup(self) -> None:
        """Create the event stream's consumer group if it does not exist."""
        with map_redis_errors("create the incident event group"):
            try:
                await self._redis.xgroup_create(self._keys.incident_events, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def add_operator_event(self, event: OperatorEvent) -> str:
        """Append an acknowledgement or closing; return its event id."""
        fields: dict[Any, Any] = {
            "op": event.action.value,
            "inc": event.incident,
            "text": event.text,
            "by": event.by,
            "at": repr(event.at),
        }
        with map_redis_errors(f"add {event.action.value} of incident {event.incident}"):
            raw = await self._redis.xadd(self._keys.incident_events, fields)
        return as_text(raw)

    async def read(self, *, count: int) -> list[EventEntry]:
        """This consumer's unacknowledged events first (after a crash), then new ones; never waits in Redis.

        A server-side blocking read would hold a connection, and redis-py can swallow a cancellation
        that lands during one; callers poll instead (events are rare).
        """
        with map_redis_errors("read incident events"):
            own = await self._xread("0", count)
            return own or await self._xread(">", count)

    async def _xread(self, start: str, count: int) -> list[EventEntry]:
        streams: dict[Any, Any] = {self._keys.incident_events: start}
        reply: Any = await self._redis.xreadgroup(GROUP, self._consumer, streams, count=count)
        entries = reply[0][1] if reply else []
        return [EventEntry(as_text(sid), fields) for sid, fields in entries if fields]

    async def ack(self, stream_id: str) -> None:
        """Forget an applied (or refused) event."""
        with map_redis_errors(f"ack incident event {stream_id}"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self._keys.incident_events, GROUP, stream_id)
                pipe.xdel(self._keys.incident_events, stream_id)
                await pipe.execute()

    async def get(self, incident_id: str) -> Incident | None:
        """The incident named ``incident_id``, or None."""
        with map_redis_errors(f"read incident {incident_id}"):
            raw = await self._redis.get(self._keys.incident(incident_id))
        return None if raw is None else Incident.from_json(raw)

    async def active_id(self, terminal: str) -> str | None:
        """The id of the terminal's open or acknowledged incident, or None."""
        with map_redis_errors(f"read the active incident of terminal {terminal}"):
            raw = await self._redis.hget(self._keys.incidents_active, terminal)
        return None if raw is None else as_text(raw)

    async def active_terminals(self) -> builtins.set[str]:
        """Every terminal with an active incident (ingest lifts their positions into distress)."""
        with map_redis_errors("read the terminals in distress"):
            raw = await self._redis.hkeys(self._keys.incidents_active)
        return {as_text(t) for t in raw}

    async def list(self, *, limit: int) -> builtins.list[Incident]:
        """The most recently opened incidents, newest first."""
        with map_redis_errors("list incidents"):
            ids: Any = await self._redis.zrevrange(self._keys.incidents, 0, limit - 1)
            raws = await self._redis.mget([self._keys.incident(as_text(i)) for i in ids]) if ids else []
        return [Incident.from_json(r) for r in raws if r is not None]

    async def transition(
        self,
        apply: Callable[[Incident | None], Awaitable[Incident | None]],
        *,
        incident_id: str | None = None,
        terminal: str | None = None,
    ) -> Incident | None:
        """Read an incident, let ``apply`` say what it becomes, and save that atomically.

        The incident is ``incident_id``, or the active one of ``terminal`` (None if it has none).
        ``apply`` may run more than once if another gateway changed the incident meanwhile.
        Returns what was saved, or None when ``apply`` returned None (nothing to do).
        """
        if (incident_id is None) == (terminal is None):
            raise ValueError("give exactly one of incident_id and terminal")
        with map_redis_errors(f"update incident {incident_id or 'of terminal ' + str(terminal)}"):
            while True:
                try:
                    return await self._transition_once(apply, incident_id, terminal)
                except WatchError:
                    continue

    async def _transition_once(
        self,
        apply: Callable[[Incident | None], Awaitable[Incident | None]],
        incident_id: str | None,
        terminal: str | None,
    ) -> Incident | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._keys.incidents_active)
            if terminal is not None:
                found = await pipe.hget(self._keys.incidents_active, terminal)
                incident_id = None if found is None else as_text(found)
            current = None
            if incident_id is not None:
                await pipe.watch(self._keys.incident(incident_id))
                raw = await pipe.get(self._keys.incident(incident_id))
                current = None if raw is None else Incident.from_json(raw)
            after = await apply(current)
            if after is None:
                return None
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            self._queue_save(pipe, after)
            await pipe.execute()
            return after

    def _queue_save(self, pipe: Pipeline, incident: Incident) -> None:
        pipe.set(self._keys.incident(incident.id), incident.to_json())
        pipe.zadd(self._keys.incidents, {incident.id: incident.opened_at})
        if incident.state.active:
            pipe.hset(self._keys.incidents_active, incident.terminal, incident.id)
        else:
            pipe.hdel(self._keys.incidents_active, incident.terminal)
