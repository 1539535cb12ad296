"""Incidents and their event stream in the real Redis (gateway/queue/incidents.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from gateway.alerts.sinks import OutgoingAlert
from gateway.alerts.sos import IncidentWorker
from gateway.counters import Counters
from gateway.exceptions import QueueUnavailable
from gateway.incidents import Incident, OperatorAction, OperatorEvent, TerminalEvent, apply_operator, apply_terminal
from gateway.names import Keys
from gateway.queue.incidents import IncidentStore
from protocols.envelope import Kind, Position

pytestmark = pytest.mark.asyncio


def event(seq: int, body: str = "help") -> TerminalEvent:
    return TerminalEvent(f"T9:{seq}", "T9", seq, Kind.SOS, body, Position(10.0, 20.0), 1000.0 + seq)


async def store_for(redis: Redis, keys: Keys, consumer: str = "n1") -> IncidentStore:
    store = IncidentStore(redis=redis, keys=keys, consumer=consumer)
    await store.setup()
    return store


async def declare(store: IncidentStore, seq: int, body: str = "help") -> Incident | None:
    async def apply(current: Incident | None) -> Incident | None:
        notice = apply_terminal(current, event(seq, body))
        return None if notice is None else notice.incident

    return await store.transition(apply, terminal="T9")


async def test_declared_incident_is_active_listed_and_readable(redis: Redis, keys: Keys) -> None:
    """Saving an opened incident makes it the terminal's active one, listed and readable by id."""
    store = await store_for(redis, keys)
    saved = await declare(store, 1)
    assert saved is not None
    assert await store.active_id("T9") == "T9-1"
    assert await store.active_terminals() == {"T9"}
    assert await store.get("T9-1") == saved
    assert [i.id for i in await store.list(limit=10)] == ["T9-1"]


async def test_cancel_clears_the_active_map(redis: Redis, keys: Keys) -> None:
    """A cancelled incident stays readable but is no longer the terminal's active one."""
    store = await store_for(redis, keys)
    await declare(store, 1)
    cancelled = await declare(store, 2, "cancel")
    assert cancelled is not None
    assert cancelled.state.value == "cancelled"
    assert await store.active_id("T9") is None
    assert (await store.get("T9-1")) == cancelled


async def test_concurrent_updates_of_one_incident_both_land(redis: Redis, keys: Keys) -> None:
    """Two gateways acking and updating the same incident at once: both changes survive (optimistic retry)."""
    a, b = await store_for(redis, keys, "a"), await store_for(redis, keys, "b")
    await declare(a, 1)
    gate, read = asyncio.Event(), asyncio.Event()

    async def slow_update(current: Incident | None) -> Incident | None:
        read.set()  # it has read (and watches) the incident
        await gate.wait()
        notice = apply_terminal(current, event(2, "confirm"))
        return None if notice is None else notice.incident

    async def ack(current: Incident | None) -> Incident | None:
        assert current is not None
        return apply_operator(current, OperatorEvent("T9-1", OperatorAction.ACK, "on our way", "MRCC", 2000.0)).incident

    update = asyncio.create_task(a.transition(slow_update, terminal="T9"))
    await read.wait()  # the update has the incident before the ack changes it
    await b.transition(ack, incident_id="T9-1")
    gate.set()
    final = await update
    assert final is not None
    assert final.state.value == "acknowledged"
    assert [e["event"] for e in final.log] == ["declare", "ack", "confirm"]


async def test_operator_events_are_read_once_then_redelivered_until_acked(redis: Redis, keys: Keys) -> None:
    """An operator event read but not acked comes back to the same consumer; after ack it is gone."""
    store = await store_for(redis, keys)
    sid = await store.add_operator_event(OperatorEvent("T9-1", OperatorAction.ACK, "hi", "MRCC", 5.0))
    first = await store.read(count=10)
    assert [e.stream_id for e in first] == [sid]
    assert first[0].fields[b"op"] == b"ack"
    again = await store.read(count=10)
    assert [e.stream_id for e in again] == [sid]
    await store.ack(sid)
    assert await store.read(count=10) == []


class _Kept:
    """An alert sink that keeps what it is given (the worker's own seam; Redis and the stream stay real)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def publish(self, alert: OutgoingAlert) -> None:
        self.keys.append(alert.key)


async def _distress_event(redis: Redis, keys: Keys, seq: int, body: str) -> str:
    """A distress delivery on the incident stream, as deliver.lua appends it."""
    doc = {"id": f"T9:{seq}", "terminal": "T9", "seq": seq, "kind": "sos", "body": body,
           "position": {"lat": 1.0, "lon": 2.0}, "received_at": 1_800_000_000.0 + seq}  # fmt: skip
    raw = await redis.xadd(keys.incident_events, {"id": f"T9:{seq}", "t": "T9", "s": str(seq), "b": json.dumps(doc)})
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class _AckFailsOnce(IncidentStore):
    """The real store, but its first ack fails as if the process died right after saving."""

    failed = False

    async def ack(self, stream_id: str) -> None:
        if not self.failed:
            self.failed = True
            raise QueueUnavailable("ack: Redis unreachable (the test's crash)")
        await super().ack(stream_id)


async def test_an_event_read_again_after_a_crash_is_applied_once(redis: Redis, keys: Keys) -> None:
    """If the worker dies after saving but before acking, the event comes back and is skipped: one alert, one save."""
    store = _AckFailsOnce(redis=redis, keys=keys, consumer="node")
    await store.setup()
    sink = _Kept()
    worker = IncidentWorker(store=store, sinks=[sink], downlink=None, sender="t", counters=Counters())
    await _distress_event(redis, keys, 1, "help")
    (entry,) = await store.read(count=10)
    with pytest.raises(QueueUnavailable):
        await worker.apply(entry)
    (again,) = await store.read(count=10)  # this consumer's unacked event comes back first
    assert again.stream_id == entry.stream_id
    await worker.apply(again)
    incident = await store.get("T9-1")
    assert incident is not None
    assert sink.keys == ["t.T9-1.1"]
    assert [e["event"] for e in incident.log] == ["declare"]
    assert await store.read(count=10) == []


async def test_a_cancel_after_a_crash_repeat_keeps_one_cancel(redis: Redis, keys: Keys) -> None:
    """Declare then cancel, with the cancel applied twice (a crash repeat): the incident is cancelled once."""
    store = await store_for(redis, keys, "node")
    sink = _Kept()
    worker = IncidentWorker(store=store, sinks=[sink], downlink=None, sender="t", counters=Counters())
    await _distress_event(redis, keys, 1, "help")
    await _distress_event(redis, keys, 2, "cancel: found")
    entries = await store.read(count=10)
    for entry in entries:
        await worker.apply(entry)
    await worker.apply(entries[1])  # redelivered after a crash: the terminal has no active incident now
    incident = await store.get("T9-1")
    assert incident is not None
    assert incident.state.value == "cancelled"
    assert sink.keys == ["t.T9-1.1", "t.T9-1.2"]
