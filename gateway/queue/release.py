"""The ground publisher's release log: which QoS 2 packet ids were committed but may not be released yet.

Committing a batch removes its entries from the outbox and notes each packet id
with its (topic, payload) in one MULTI/EXEC, so either the outbox still has the
entry (publish it again) or the log has its packet id (send PUBREL again). The same
transaction appends a ``published`` hop to each message's trace (gateway/queue/trace.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.outbox import OutboxEntry
from gateway.queue.trace import HopEvent, Trace, hop_line

__all__ = ["ReleaseLog"]

_SEP = b"\x00"  # MQTT forbids U+0000 in topic names, so it cannot occur in the topic part


class ReleaseLog:
    """Durable notes of QoS 2 releases under way, one hash per ground publisher (node).

    Args:
        trace: Where :meth:`commit` writes each message's ``published`` hop; None for no traces.
    """

    def __init__(self, *, redis: Redis, keys: Keys, node: str, trace: Trace | None = None) -> None:
        if not node:
            raise ValueError("node must not be empty")
        self._redis = redis
        self._keys = keys
        self._key = keys.released(node)
        self._trace = trace if trace is not None and trace.enabled else None

    async def commit(self, entries: Sequence[OutboxEntry], mids: Sequence[int], topics: Sequence[str]) -> None:
        """Ack ``entries`` in the outbox and note their packet ids, atomically."""
        ids = [e.stream_id for e in entries]
        notes: list[str | bytes] = []
        for mid, topic, entry in zip(mids, topics, entries, strict=True):
            notes += [str(mid), topic.encode() + _SEP + entry.payload]
        with map_redis_errors(f"commit {len(ids)} deliveries"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self._keys.outbox, self._keys.outbox_group, *ids)
                pipe.xdel(self._keys.outbox, *ids)
                pipe.hset(self._key, items=notes)
                if self._trace is not None:
                    line = hop_line(HopEvent.PUBLISHED, self._trace.now()) + "\n"
                    for entry in entries:
                        # EXPIRE NX gives a key the append created its TTL and leaves an existing one alone
                        pipe.append(self._keys.trace(entry.message_id), line)
                        pipe.expire(self._keys.trace(entry.message_id), self._trace.ttl_s, nx=True)
                await pipe.execute()

    async def pending(self) -> dict[int, tuple[str, bytes]]:
        """Packet ids committed but not known to be released, with their (topic, payload)."""
        with map_redis_errors("read the release log"):
            raw = await self._redis.hgetall(self._key)
        out: dict[int, tuple[str, bytes]] = {}
        for mid, note in raw.items():
            note_bytes = note if isinstance(note, bytes) else note.encode()
            topic, _, payload = note_bytes.partition(_SEP)
            out[int(mid)] = (topic.decode(), payload)
        return out

    async def forget(self, mids: Sequence[int]) -> None:
        """Drop the notes of ``mids``: the broker confirmed their release (PUBCOMP)."""
        if not mids:
            return
        with map_redis_errors(f"forget {len(mids)} releases"):
            await self._redis.hdel(self._key, *(str(m) for m in mids))
