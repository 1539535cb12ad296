"""The seqs the gateway gives its own messages to a terminal: one Redis counter per terminal (``Keys.next_seq``).

A terminal numbers what it sends; on the downlink the gateway is the sender, so it numbers what it
sends to each terminal: 1, 2, 3, … from an INCR that every gateway process shares. The counter
outlives restarts, so a message id ``"{terminal}:{seq}"`` on the downlink is never reused (a crash
between the INCR and the enqueue only leaves a gap).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_keys, check_text

__all__ = ["SeqCounter"]


class SeqCounter:
    """Hands out increasing seqs per terminal, shared by every process of one gateway.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of the direction whose seqs these are (the downlink's).
    """

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        check_client(redis)
        check_keys(keys)
        self._redis = redis
        self._keys = keys

    async def next(self, terminal: str) -> int:
        """The next seq for ``terminal`` (1 for its first message); one round trip.

        Raises:
            QueueUnavailable: Redis failed, or refused (the counter is not an integer, or reached 2^63-1,
                the largest seq: INCR stops there).
        """
        check_text("terminal", terminal)
        with map_redis_errors(f"next seq of terminal {terminal}"):
            return int(await self._redis.incr(self._keys.next_seq(terminal)))

    async def next_many(self, terminals: Sequence[str]) -> list[int]:
        """The next seq of each of ``terminals`` (distinct), in one round trip."""
        for terminal in terminals:
            check_text("terminal", terminal)
        with map_redis_errors(f"next seqs of {len(terminals)} terminals"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for terminal in terminals:
                    pipe.incr(self._keys.next_seq(terminal))
                return [int(n) for n in await pipe.execute()]
