"""Cumulative counters shared by every gateway process, in one Redis hash (``Keys.stats``)."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_keys

__all__ = ["Stats"]


class Stats:
    """Counters that survive restarts and add up across processes.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
    """

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        check_client(redis)
        check_keys(keys)
        self._redis = redis
        self._key = keys.stats

    async def incr(self, counts: Mapping[str, int]) -> None:
        """Add each count to its counter, in one round trip; zero counts are skipped."""
        changes = {name: n for name, n in counts.items() if n}
        if not changes:
            return
        pipe = self._redis.pipeline(transaction=False)
        for name, n in changes.items():
            pipe.hincrby(self._key, name, n)
        with map_redis_errors(f"count {', '.join(changes)}"):
            await pipe.execute()

    async def read(self) -> dict[str, int]:
        """Every counter and its value."""
        with map_redis_errors("read counters"):
            raw: dict[bytes, bytes] = await self._redis.hgetall(self._key)  # type: ignore[assignment]
        return {name.decode(): int(value) for name, value in raw.items()}
