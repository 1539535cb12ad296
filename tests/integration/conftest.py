"""Shared fixtures for integration tests: the real Redis (SATGW_REDIS_URL, default 127.0.0.1:6379) and unique prefixes.

Every test gets its own prefix, so tests may run side by side (and beside other people's) on one
Redis and one broker; the ``keys`` fixture deletes every key under its prefix afterwards.
Mark test modules with ``pytestmark = pytest.mark.integration``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis

from gateway.config import Settings
from gateway.names import Keys, Topics
from tests.harness import REDIS_URL, delete_prefix, settings_for, unique_prefix


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the real Redis (bytes replies, RESP2)."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def keys(redis: Redis) -> AsyncIterator[Keys]:
    """Key names under a unique prefix; every key under it is deleted after the test."""
    names = Keys(prefix=unique_prefix())
    yield names
    found = [key async for key in redis.scan_iter(match=names.pattern, count=1000)]
    for start in range(0, len(found), 500):
        await redis.delete(*found[start : start + 500])


@pytest.fixture
def topics() -> Topics:
    """MQTT topic names under a unique prefix."""
    return Topics(prefix=unique_prefix())


class Counted:
    """A real Redis client that counts its socket writes: one write per round trip (command or pipeline)."""

    def __init__(self) -> None:
        counter = self

        class CountingConnection(Connection):
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.writes += 1
                await super().send_packed_command(command, check_health)

        self.writes = 0
        self.client = Redis.from_pool(ConnectionPool.from_url(REDIS_URL, connection_class=CountingConnection))


@pytest.fixture
async def counted() -> AsyncIterator[Counted]:
    """A :class:`Counted` client, already connected so the handshake is not counted."""
    counted = Counted()
    await counted.client.ping()
    counted.writes = 0
    yield counted
    await counted.client.aclose()


@pytest.fixture(name="settings")
async def _settings() -> AsyncIterator[Settings]:
    """Gateway settings under a unique prefix (keys and topics); its keys are deleted afterwards."""
    prefix = unique_prefix()
    yield settings_for(prefix)
    await delete_prefix(settings_for(prefix).redis_url, prefix)
