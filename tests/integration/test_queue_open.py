"""Queue.open_entries: a read-only list of one class's entries not yet acked, waiting or taken."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.names import Keys
from gateway.queue import Queue
from protocols.envelope import Priority
from tests.integration.test_queue import msg, new_queue

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue(redis: Redis, keys: Keys) -> Queue:
    """A set-up queue with consumer ``a``."""
    return await new_queue(redis, keys)


class TestOpenEntries:
    async def test_lists_waiting_and_taken_oldest_first_and_forgets_acked(self, queue: Queue) -> None:
        """Entries of the class come oldest first, the taken one marked, other classes left out; acked ones vanish."""
        await queue.enqueue([msg(s, priority=Priority.DISTRESS) for s in (1, 2, 3)] + [msg(9)])
        [taken] = await queue.take(count=1)
        found = await queue.open_entries(Priority.DISTRESS)
        assert [(e.message_id, t) for e, t in found] == [("T1:1", True), ("T1:2", False), ("T1:3", False)]
        await queue.ack([taken])
        assert [e.message_id for e, _ in await queue.open_entries(Priority.DISTRESS)] == ["T1:2", "T1:3"]
        assert [e.message_id for e, _ in await queue.open_entries(Priority.ROUTINE)] == ["T1:9"]

    async def test_reading_takes_nothing(self, queue: Queue) -> None:
        """Listing leaves every entry waiting: depth is unchanged and a relay still takes them all."""
        await queue.enqueue([msg(s, priority=Priority.DISTRESS) for s in (1, 2)])
        assert len(await queue.open_entries(Priority.DISTRESS, count=1)) == 1
        [distress, *_] = await queue.depths()
        assert (distress.depth, distress.pending) == (2, 0)
        assert len(await queue.take(count=10)) == 2

    async def test_bad_arguments_are_refused(self, queue: Queue) -> None:
        """A class that is no Priority or a count out of range is refused with ValueError."""
        with pytest.raises(ValueError, match="priority"):
            await queue.open_entries(0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="count"):
            await queue.open_entries(Priority.DISTRESS, count=0)
