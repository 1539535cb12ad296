"""The ground outbox against the real Redis: dedup across restarts, pending entries first, blocking, ack, reclaim."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis

from gateway.names import Keys
from gateway.queue import MAX_SEQ, Delivery, Outbox, OutboxEntry
from protocols.envelope import Priority
from tests.harness import blocked_clients, until, until_blocked

if TYPE_CHECKING:
    from conftest import Counted

pytestmark = pytest.mark.integration


def delivery(seq: int, *, terminal: str = "T1", priority: Priority = Priority.ROUTINE) -> Delivery:
    """A delivery of message ``terminal:seq`` over link ``geo``."""
    return Delivery(
        message_id=f"{terminal}:{seq}",
        terminal=terminal,
        seq=seq,
        priority=priority,
        payload=b'{"seq": %d}' % seq,
        receipt=seq % 2 == 0,
        link="geo",
        delivered_at=1.7e9 + seq / 8,
    )


async def new_outbox(redis: Redis, keys: Keys, consumer: str = "pub-1", window: int = 8) -> Outbox:
    """A set-up outbox."""
    outbox = Outbox(redis=redis, keys=keys, consumer=consumer, window=window)
    await outbox.setup()
    return outbox


def seqs(entries: list[OutboxEntry]) -> list[int]:
    """The seqs of outbox entries, in order."""
    return [e.seq for e in entries]


class TestDeliver:
    async def test_round_trip_keeps_every_field(self, redis: Redis, keys: Keys) -> None:
        """What take returns carries every field of the delivery, plus its stream id."""
        outbox = await new_outbox(redis, keys)
        sent = delivery(MAX_SEQ, priority=Priority.DISTRESS)
        assert await outbox.deliver([sent]) == [True]
        [got] = await outbox.take()
        assert got.stream_id
        assert OutboxEntry(stream_id=got.stream_id, **{f: getattr(sent, f) for f in Delivery.__slots__}) == got

    async def test_dedup_and_window(self, redis: Redis, keys: Keys) -> None:
        """A repeated (terminal, seq) or one older than the window is not delivered again; other terminals are apart."""
        outbox = await new_outbox(redis, keys)
        batch = [delivery(20), delivery(20), delivery(11), delivery(12), delivery(20, terminal="T2")]
        assert await outbox.deliver(batch) == [True, False, False, True, True]
        assert await redis.xlen(keys.outbox) == 3

    async def test_batch_is_one_round_trip(self, counted: Counted, keys: Keys) -> None:
        """Delivering 500 items costs one socket write."""
        outbox = await new_outbox(counted.client, keys, window=4096)
        counted.writes = 0
        assert await outbox.deliver([delivery(s) for s in range(500)]) == [True] * 500
        assert counted.writes == 1

    def test_bad_arguments(self, redis: Redis, keys: Keys) -> None:
        """The constructor and Delivery refuse bad arguments at once."""
        with pytest.raises(ValueError, match="consumer"):
            Outbox(redis=redis, keys=keys, consumer="")
        with pytest.raises(ValueError, match="window"):
            Outbox(redis=redis, keys=keys, consumer="p", window=0)
        with pytest.raises(ValueError, match="seq"):
            delivery(-1)


class TestTake:
    async def test_restart_sees_own_pending_first(self, redis: Redis, keys: Keys) -> None:
        """A new Outbox with the same consumer name gets its unacked entries first, then new ones, and still dedups."""
        first = await new_outbox(redis, keys)
        await first.deliver([delivery(1), delivery(2), delivery(3)])
        taken = await first.take(count=10)
        await first.ack(taken[:1])
        # The publisher dies here with 2 and 3 taken but not published.
        again = await new_outbox(redis, keys)
        assert await again.deliver([delivery(3), delivery(4)]) == [False, True]
        assert seqs(await again.take(count=1)) == [2]
        assert seqs(await again.take(count=10)) == [3]
        assert seqs(await again.take(count=10)) == [4]
        assert await again.take(count=10) == []

    async def test_pending_entry_deleted_meanwhile_is_dropped(self, redis: Redis, keys: Keys) -> None:
        """After a restart, a pending entry whose data was deleted is acked and skipped, the others come back."""
        first = await new_outbox(redis, keys)
        await first.deliver([delivery(1), delivery(2)])
        taken = await first.take(count=2)
        await redis.xdel(keys.outbox, taken[0].stream_id)
        again = await new_outbox(redis, keys)
        assert seqs(await again.take(count=10)) == [2]
        assert (await redis.xpending(keys.outbox, keys.outbox_group))["pending"] == 1

    async def test_other_consumer_does_not_get_pending(self, redis: Redis, keys: Keys) -> None:
        """Another consumer name starts with new entries only, not someone else's pending ones."""
        first = await new_outbox(redis, keys, consumer="pub-1")
        await first.deliver([delivery(1)])
        await first.take()
        other = await new_outbox(redis, keys, consumer="pub-2")
        await first.deliver([delivery(2)])
        assert seqs(await other.take(count=10)) == [2]

    async def test_block_wakes_on_delivery(self, redis: Redis, keys: Keys) -> None:
        """A blocked take returns a delivery made meanwhile by another task."""
        publisher = await new_outbox(redis, keys)
        ground = await new_outbox(redis, keys, consumer="ground")
        assert await publisher.take() == []
        before = await blocked_clients(redis)
        waiter = asyncio.create_task(publisher.take(block_s=5))
        await until_blocked(redis, before=before)
        started = time.monotonic()
        await ground.deliver([delivery(1)])
        assert seqs(await waiter) == [1]
        assert time.monotonic() - started < 1

    async def test_ack_removes(self, redis: Redis, keys: Keys) -> None:
        """Acked entries leave the outbox stream and are not given back after a restart."""
        outbox = await new_outbox(redis, keys)
        await outbox.deliver([delivery(1), delivery(2)])
        await outbox.ack(await outbox.take(count=2))
        assert await redis.xlen(keys.outbox) == 0
        assert await (await new_outbox(redis, keys)).take(count=10) == []

    async def test_reclaim_from_dead_publisher(self, redis: Redis, keys: Keys) -> None:
        """Entries a dead publisher left idle are taken over by another."""
        dead = await new_outbox(redis, keys, consumer="pub-1")
        alive = await new_outbox(redis, keys, consumer="pub-2")
        await dead.deliver([delivery(1), delivery(2)])
        await dead.take(count=2)
        assert await alive.reclaim(min_idle_s=5) == []
        idle = await until(lambda: alive.reclaim(min_idle_s=0.05), what="the dead publisher's entries idle")
        assert seqs(idle) == [1, 2]
