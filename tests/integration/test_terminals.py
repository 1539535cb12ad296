"""The terminal registry and the key cache, against the real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.exceptions import QueueUnavailable, TerminalExists, TerminalNotFound
from gateway.names import Keys
from gateway.terminals import MISSING, KeyCache, Registry, TerminalRecord
from protocols.seal import KEY_BYTES, decode_key, new_key

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("SATGW_REDIS_URL", "redis://127.0.0.1:6379/0")


# These two stand in until tests/integration/conftest.py provides fixtures of the same names.
@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def keys(redis: Redis) -> AsyncIterator[Keys]:
    keys = Keys(prefix=f"t{uuid4().hex[:10]}")
    yield keys
    found = [k async for k in redis.scan_iter(match=keys.pattern)]
    if found:
        await redis.delete(*found)


class CountingRedis(Redis):
    """The real client, recording every command it sends and every pipeline it opens."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands: list[tuple[Any, ...]] = []
        self.pipelines = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(args)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)

    def names(self) -> list[str]:
        return [str(c[0]).upper() for c in self.commands]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(redis: Redis, keys: Keys) -> Registry:
    return Registry(redis=redis, keys=keys)


@pytest.fixture
async def counting(redis: Redis) -> AsyncIterator[CountingRedis]:
    client = CountingRedis(connection_pool=redis.connection_pool)
    yield client
    client.commands.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(counting: CountingRedis, keys: Keys, clock: FakeClock) -> KeyCache:
    return KeyCache(registry=Registry(redis=counting, keys=keys), ttl_s=30.0, negative_ttl_s=5.0, clock=clock)


def _unreachable() -> Redis:
    # A real client aimed at a port nobody listens on: the failure path without a mock.
    return Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


class TestRegistry:
    async def test_add_get_round_trip(self, registry: Registry) -> None:
        """add returns a fresh 32-byte key record that get reads back equal."""
        before = time.time()
        record = await registry.add("boat-1")
        assert len(record.key) == KEY_BYTES
        assert before <= record.created_at <= time.time()
        assert record.revoked_at is None
        assert not record.revoked
        assert await registry.get("boat-1") == record

    async def test_add_with_given_key(self, registry: Registry) -> None:
        """A key passed to add is the key stored."""
        key = new_key()
        await registry.add("boat-1", key=key)
        got = await registry.get("boat-1")
        assert got is not None
        assert got.key == key

    async def test_fresh_keys_differ(self, registry: Registry) -> None:
        """Two terminals added without keys get different keys."""
        a = await registry.add("a")
        b = await registry.add("b")
        assert a.key != b.key

    async def test_stored_shape(self, registry: Registry, redis: Redis, keys: Keys) -> None:
        """The hash field is the terminal id and the value is JSON with key, created_at and revoked_at."""
        record = await registry.add("boat-1")
        raw = await redis.hget(keys.terminals, "boat-1")
        assert raw is not None
        stored = json.loads(raw)
        assert stored == {"key": stored["key"], "created_at": record.created_at, "revoked_at": None}
        assert decode_key(stored["key"]) == record.key

    async def test_get_unknown(self, registry: Registry) -> None:
        """get of a terminal never added is None."""
        assert await registry.get("nobody") is None

    async def test_duplicate_add_refused(self, registry: Registry) -> None:
        """Adding a registered, unrevoked id again fails and keeps the original key."""
        first = await registry.add("boat-1")
        with pytest.raises(TerminalExists, match="boat-1") as info:
            await registry.add("boat-1")
        assert info.value.terminal == "boat-1"
        assert await registry.get("boat-1") == first

    async def test_concurrent_adds_one_wins(self, registry: Registry) -> None:
        """Of several simultaneous adds of one id exactly one succeeds, and its key is the one stored."""
        results = await asyncio.gather(*(registry.add("race") for _ in range(8)), return_exceptions=True)
        winners = [r for r in results if isinstance(r, TerminalRecord)]
        assert len(winners) == 1
        assert all(isinstance(r, TerminalExists) for r in results if r is not winners[0])
        assert await registry.get("race") == winners[0]

    @pytest.mark.parametrize("terminal", ["", "has space", "x" * 33, "a/b"])
    async def test_bad_id_refused(self, registry: Registry, terminal: str) -> None:
        """An id outside 1-32 of A-Za-z0-9_.- is refused before touching Redis."""
        with pytest.raises(ValueError, match="terminal id"):
            await registry.add(terminal)

    async def test_bad_key_refused(self, registry: Registry) -> None:
        """A key that is not 32 bytes is refused."""
        with pytest.raises(ValueError, match="32 bytes"):
            await registry.add("boat-1", key=b"short")
        assert await registry.get("boat-1") is None

    async def test_revoke(self, registry: Registry) -> None:
        """revoke stamps revoked_at, keeps the key, and get shows it."""
        added = await registry.add("boat-1")
        before = time.time()
        revoked = await registry.revoke("boat-1")
        assert revoked.key == added.key
        assert revoked.created_at == added.created_at
        assert revoked.revoked_at is not None
        assert before <= revoked.revoked_at <= time.time()
        assert await registry.get("boat-1") == revoked

    async def test_revoke_twice_keeps_first_time(self, registry: Registry) -> None:
        """Revoking an already revoked terminal changes nothing."""
        await registry.add("boat-1")
        first = await registry.revoke("boat-1")
        assert await registry.revoke("boat-1") == first
        assert await registry.get("boat-1") == first

    async def test_revoke_unknown(self, registry: Registry) -> None:
        """Revoking a terminal never added raises TerminalNotFound naming it."""
        with pytest.raises(TerminalNotFound, match="ghost") as info:
            await registry.revoke("ghost")
        assert info.value.terminal == "ghost"

    async def test_readd_after_revoke(self, registry: Registry) -> None:
        """After revocation the id can be added again, with a new key and no revocation."""
        old = await registry.add("boat-1")
        await registry.revoke("boat-1")
        new = await registry.add("boat-1")
        assert new.key != old.key
        assert not new.revoked
        assert await registry.get("boat-1") == new

    async def test_list(self, registry: Registry) -> None:
        """list returns every record, revoked ones included, sorted by id."""
        c = await registry.add("c")
        a = await registry.add("a")
        b = await registry.add("b")
        b = await registry.revoke("b")
        assert await registry.list() == [a, b, c]

    async def test_list_empty(self, registry: Registry) -> None:
        """list of an empty registry is empty."""
        assert await registry.list() == []

    async def test_text_client(self, registry: Registry, keys: Keys) -> None:
        """A client with decode_responses=True reads the same records."""
        record = await registry.add("boat-1")
        text = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            other = Registry(redis=text, keys=keys)
            assert await other.get("boat-1") == record
            assert await other.list() == [record]
            assert await other.get_many(["boat-1", "x"]) == {"boat-1": record, "x": None}
        finally:
            await text.aclose()

    async def test_corrupt_record(self, registry: Registry, redis: Redis, keys: Keys) -> None:
        """A corrupt record makes get fail naming the terminal, while get_many treats it as unknown."""
        await redis.hset(keys.terminals, "bad", '{"key": "short"}')
        good = await registry.add("good")
        with pytest.raises(ValueError, match="terminal bad is corrupt"):
            await registry.get("bad")
        assert await registry.get_many(["bad", "good"]) == {"bad": None, "good": good}

    async def test_redis_down(self, keys: Keys) -> None:
        """Every operation turns an unreachable Redis into QueueUnavailable naming the terminal."""
        client = _unreachable()
        try:
            down = Registry(redis=client, keys=keys)
            with pytest.raises(QueueUnavailable, match="add terminal boat-1"):
                await down.add("boat-1")
            with pytest.raises(QueueUnavailable, match="get terminal boat-1"):
                await down.get("boat-1")
            with pytest.raises(QueueUnavailable, match="revoke terminal boat-1"):
                await down.revoke("boat-1")
            with pytest.raises(QueueUnavailable, match="list terminals"):
                await down.list()
        finally:
            await client.aclose()

    def test_keys_checked(self, redis: Redis) -> None:
        """The constructor refuses a keys argument that is not a Keys."""
        with pytest.raises(TypeError, match="Keys"):
            Registry(redis=redis, keys="satgw")  # type: ignore[arg-type]


class TestKeyCache:
    async def test_one_hmget_for_a_batch_of_misses(
        self, cache: KeyCache, registry: Registry, counting: CountingRedis
    ) -> None:
        """A batch of misses, known and unknown alike, costs exactly one HMGET and no pipeline."""
        added = {t: await registry.add(t) for t in ("a", "b", "c")}
        got = await cache.fetch(["a", "b", "c", "x", "y", "a"])
        assert got == {**added, "x": None, "y": None}
        assert counting.names() == ["HMGET"]
        assert counting.pipelines == 0

    async def test_hits_cost_nothing(self, cache: KeyCache, registry: Registry, counting: CountingRedis) -> None:
        """Within the TTLs, cached positives and negatives are answered with no Redis command."""
        a = await registry.add("a")
        await cache.fetch(["a", "x"])
        counting.commands.clear()
        assert await cache.fetch(["a", "x"]) == {"a": a, "x": None}
        assert cache.get_cached("a") == a
        assert cache.get_cached("x") is None
        assert counting.commands == []

    async def test_only_misses_are_asked(self, cache: KeyCache, registry: Registry, counting: CountingRedis) -> None:
        """In a mixed batch the HMGET names only the terminals not cached."""
        a = await registry.add("a")
        b = await registry.add("b")
        await cache.fetch(["a"])
        counting.commands.clear()
        assert await cache.fetch(["a", "b"]) == {"a": a, "b": b}
        assert len(counting.commands) == 1
        assert counting.commands[0][2:] == ("b",)

    async def test_get_cached_missing(self, cache: KeyCache) -> None:
        """get_cached of a terminal never fetched is the MISSING sentinel, not None."""
        assert cache.get_cached("a") is MISSING

    async def test_empty_batch(self, cache: KeyCache, counting: CountingRedis) -> None:
        """Fetching nothing sends nothing."""
        assert await cache.fetch([]) == {}
        assert counting.commands == []

    async def test_negative_cache_expires(
        self, cache: KeyCache, registry: Registry, counting: CountingRedis, clock: FakeClock
    ) -> None:
        """An unknown terminal stays unknown for negative_ttl_s, then a fetch sees it once added."""
        assert await cache.fetch(["late"]) == {"late": None}
        record = await registry.add("late")
        clock.now += 4.9
        assert await cache.fetch(["late"]) == {"late": None}
        clock.now += 0.1
        assert cache.get_cached("late") is MISSING
        assert await cache.fetch(["late"]) == {"late": record}
        assert counting.names().count("HMGET") == 2

    async def test_flood_from_unknown(self, cache: KeyCache, counting: CountingRedis, clock: FakeClock) -> None:
        """A thousand batches from one unknown terminal within negative_ttl_s cost one HMGET."""
        for _ in range(1000):
            assert await cache.fetch(["intruder"]) == {"intruder": None}
            clock.now += 0.004
        assert counting.names() == ["HMGET"]

    async def test_revocation_visible_after_ttl(self, cache: KeyCache, registry: Registry, clock: FakeClock) -> None:
        """A revocation is not seen while the positive entry is fresh, and is seen once ttl_s has passed."""
        added = await registry.add("boat-1")
        await cache.fetch(["boat-1"])
        revoked = await registry.revoke("boat-1")
        clock.now += 29.9
        assert await cache.fetch(["boat-1"]) == {"boat-1": added}
        clock.now += 0.1
        assert await cache.fetch(["boat-1"]) == {"boat-1": revoked}
        assert cache.get_cached("boat-1") == revoked

    async def test_new_key_visible_after_ttl(self, cache: KeyCache, registry: Registry, clock: FakeClock) -> None:
        """A terminal revoked and re-added is served with its new key once ttl_s has passed."""
        await registry.add("boat-1")
        await registry.revoke("boat-1")
        assert (await cache.fetch(["boat-1"]))["boat-1"].revoked  # type: ignore[union-attr]
        new = await registry.add("boat-1")
        clock.now += 30.0
        assert await cache.fetch(["boat-1"]) == {"boat-1": new}

    async def test_invalidate(self, cache: KeyCache, registry: Registry) -> None:
        """invalidate forgets one terminal, or all of them, so the next fetch reads Redis."""
        await registry.add("a")
        await cache.fetch(["a", "b"])
        cache.invalidate("a")
        assert cache.get_cached("a") is MISSING
        assert cache.get_cached("b") is None
        cache.invalidate()
        assert cache.get_cached("b") is MISSING

    async def test_negative_ttl_zero_disables(self, counting: CountingRedis, keys: Keys, clock: FakeClock) -> None:
        """With negative_ttl_s=0 unknown terminals are never cached."""
        cache = KeyCache(registry=Registry(redis=counting, keys=keys), negative_ttl_s=0, clock=clock)
        await cache.fetch(["x"])
        await cache.fetch(["x"])
        assert cache.get_cached("x") is MISSING
        assert counting.names() == ["HMGET", "HMGET"]

    async def test_bounded(self, counting: CountingRedis, keys: Keys, clock: FakeClock) -> None:
        """A flood of distinct ids never grows the cache past max_entries; the oldest go first."""
        cache = KeyCache(registry=Registry(redis=counting, keys=keys), clock=clock, max_entries=100)
        for start in range(0, 1000, 50):
            await cache.fetch([f"id{i}" for i in range(start, start + 50)])
            assert len(cache) <= 100
        assert cache.get_cached("id999") is None
        assert cache.get_cached("id0") is MISSING

    async def test_redis_down(self, keys: Keys, clock: FakeClock) -> None:
        """A failed HMGET raises QueueUnavailable naming the terminals and caches nothing."""
        client = _unreachable()
        try:
            cache = KeyCache(registry=Registry(redis=client, keys=keys), clock=clock)
            with pytest.raises(QueueUnavailable, match="boat-1, boat-2"):
                await cache.fetch(["boat-1", "boat-2"])
            assert cache.get_cached("boat-1") is MISSING
        finally:
            await client.aclose()

    async def test_corrupt_record_refused_and_logged(
        self, cache: KeyCache, redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A corrupt record is served as unknown (fail closed) and logged, without failing the batch."""
        await redis.hset(keys.terminals, "bad", "not json")
        with caplog.at_level(logging.ERROR, logger="gateway.terminals"):
            assert await cache.fetch(["bad", "x"]) == {"bad": None, "x": None}
        assert "bad" in caplog.text

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"ttl_s": 0}, "ttl_s must be positive"),
            ({"ttl_s": float("nan")}, "ttl_s must be positive"),
            ({"negative_ttl_s": -1}, "negative_ttl_s"),
            ({"max_entries": 0}, "max_entries"),
        ],
    )
    def test_settings_checked(self, registry: Registry, kwargs: dict[str, Any], message: str) -> None:
        """Impossible TTLs or sizes are refused at construction with a plain message."""
        with pytest.raises(ValueError, match=message):
            KeyCache(registry=registry, **kwargs)
