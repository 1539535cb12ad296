"""gateway.queue.presence against the real Redis: merges from several processes, monotonic times, GEO search."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.exceptions import QueueUnavailable
from gateway.names import Keys
from gateway.queue.presence import MERGE_CHUNK, Fix, PresenceStore, Sighting
from gateway.terminals import Registry
from tests.integration.conftest import Counted

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis: Redis, keys: Keys) -> PresenceStore:
    """A presence store under the test's prefix."""
    return PresenceStore(redis=redis, keys=keys)


async def test_merges_add_counts_and_keep_the_newest_times(store: PresenceStore) -> None:
    """Two processes' flushes, in either order: counts add up, last seen and fix are the newest of both."""
    await store.merge([Sighting("T1", 200.0, Fix(1.0, 2.0, 200.0, 199.0), {"accepted.routine": 3, "duplicates": 1})])
    await store.merge([Sighting("T1", 150.0, Fix(5.0, 6.0, 150.0, 149.0), {"accepted.routine": 2})])  # older
    await store.merge([Sighting("T1", None, None, {"rejected.quota_exceeded": 4})])
    got = (await store.read(["T1"]))["T1"]
    assert got.last_seen == 200.0
    assert got.fix == Fix(1.0, 2.0, 200.0, 199.0)
    assert got.counts == {"accepted.routine": 5, "duplicates": 1, "rejected.quota_exceeded": 4}
    await store.merge([Sighting("T1", 250.0, Fix(7.0, 8.0, 250.0, 0.0))])
    got = (await store.read(["T1"]))["T1"]
    assert (got.last_seen, got.fix) == (250.0, Fix(7.0, 8.0, 250.0, 0.0))


async def test_a_never_seen_terminal_reads_empty(store: PresenceStore) -> None:
    """A terminal with no activity has no last seen, no fix and no counts."""
    got = (await store.read(["NOPE"]))["NOPE"]
    assert (got.last_seen, got.fix, dict(got.counts)) == (None, None, {})
    assert not got.online(now=1e9, window_s=900)


async def test_a_flush_is_one_round_trip(counted: Counted, keys: Keys) -> None:
    """A flush of four chunks of terminals is one round trip to Redis."""
    store = PresenceStore(redis=counted.client, keys=keys)
    counted.writes = 0
    sightings = [
        Sighting(f"T{i}", 100.0 + i, Fix(10.0, 20.0, 100.0 + i, 0.0), {"accepted.routine": 1})
        for i in range(4 * MERGE_CHUNK)
    ]
    await store.merge(sightings)
    assert counted.writes == 1
    assert len(await store.positions()) == 4 * MERGE_CHUNK


async def test_summary_counts_registered_online_and_seen(redis: Redis, keys: Keys, store: PresenceStore) -> None:
    """Online is seen within the window before now; registered comes from the registry; recent is newest first."""
    registry = Registry(redis=redis, keys=keys)
    for terminal in ("A", "B", "C", "D"):
        await registry.add(terminal)
    await store.merge([Sighting("A", 1000.0), Sighting("B", 1890.0), Sighting("C", 1950.0)])
    summary = await store.summary(now=2000.0, window_s=900.0, recent=2)
    assert (summary.registered, summary.online, summary.seen) == (4, 2, 3)  # A was seen 1000 s ago
    assert [t.terminal for t in summary.recent] == ["C", "B"]
    assert await store.last_seen() == {"C": 1950.0, "B": 1890.0, "A": 1000.0}


async def test_near_finds_fixes_within_a_radius_and_every_polar_one(store: PresenceStore) -> None:
    """GEOSEARCH finds Oslo from Oslo and not Bergen; a fix beyond GEO's latitude range is always a candidate."""
    oslo, bergen = Fix(59.9139, 10.7522, 1.0, 0.0), Fix(60.3913, 5.3221, 1.0, 0.0)
    pole = Fix(89.5, 0.0, 1.0, 0.0)
    await store.merge([Sighting("OSLO", 1.0, oslo), Sighting("BERGEN", 1.0, bergen), Sighting("POLE", 1.0, pole)])
    assert await store.near(lat=59.91, lon=10.75, radius_m=10_000) == {"OSLO": oslo, "POLE": pole}
    assert set(await store.near(lat=60.0, lon=8.0, radius_m=400_000)) == {"OSLO", "BERGEN", "POLE"}
    moved = Fix(59.0, 10.0, 2.0, 0.0)  # the pole station moved south: GEO holds it now, the polar set not
    await store.merge([Sighting("POLE", 2.0, moved)])
    assert await store.near(lat=-45.0, lon=170.0, radius_m=1000) == {}


async def test_near_refuses_bad_coordinates(store: PresenceStore) -> None:
    """A latitude outside -90..90 or a radius of zero is a ValueError, not a Redis error."""
    with pytest.raises(ValueError, match="lat"):
        await store.near(lat=91.0, lon=0.0, radius_m=1.0)
    with pytest.raises(ValueError, match="radius"):
        await store.near(lat=0.0, lon=0.0, radius_m=0.0)


async def test_corrupt_values_are_replaced_not_fatal(redis: Redis, keys: Keys, store: PresenceStore) -> None:
    """A hand-written bad value in the fix or counts hash does not stop later merges."""
    await redis.hset("{" + keys.prefix + "}:presence:pos", "T1", b"not json")
    await redis.hset("{" + keys.prefix + "}:presence:counts", "T1", b"[1, 2")
    assert (await store.read(["T1"]))["T1"].fix is None
    await store.merge([Sighting("T1", 5.0, Fix(1.0, 1.0, 5.0, 0.0), {"accepted.routine": 1})])
    got = (await store.read(["T1"]))["T1"]
    assert (got.fix, dict(got.counts)) == (Fix(1.0, 1.0, 5.0, 0.0), {"accepted.routine": 1})


async def test_redis_down_is_queue_unavailable(keys: Keys) -> None:
    """A merge against a Redis that does not answer raises QueueUnavailable (the flusher keeps the data)."""
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(QueueUnavailable):
            await PresenceStore(redis=dead, keys=keys).merge([Sighting("T1", 1.0)])
    finally:
        await dead.aclose()
