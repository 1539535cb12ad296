"""Where terminals were last heard and what they sent: the Redis side of presence.

Ingest gathers activity in memory (:mod:`gateway.presence`) and hands it here once per flush
interval; :meth:`PresenceStore.merge` writes a whole flush with one script call. Keys, all
under the gateway's hash tag:

``{p}:presence:seen``
    sorted set, terminal → last seen (Unix seconds). ``ZADD GT`` keeps it from going back,
    so "online" (seen within a window) is one ``ZCOUNT`` and the most recent are one ``ZREVRANGE``.
``{p}:presence:pos``
    hash, terminal → last fix as JSON ``{"lat", "lon", "at", "ts"}``: ``at`` is the gateway's
    receive time of the message that carried it (the order that counts), ``ts`` the terminal's own.
``{p}:presence:geo`` and ``{p}:presence:polar``
    the same fixes as a GEO set, for a radius prefilter (``GEOSEARCH``); GEO holds latitudes
    only up to ±85.05°, so fixes nearer a pole go to the plain set, which every search returns.
``{p}:presence:counts``
    hash, terminal → JSON object of counters (``accepted.<class>``, ``duplicates``,
    ``rejected.<reason>``, ``unauthenticated``), summed across processes by the script.

A killed process loses at most the activity of its last flush interval; this is monitoring data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_keys
from gateway.queue.entries import as_text
from gateway.queue.scripts import LuaScript, load_scripts

__all__ = ["GEO_MAX_LAT", "MERGE_CHUNK", "Fix", "PresenceStore", "PresenceSummary", "Sighting", "TerminalPresence"]

GEO_MAX_LAT = 85.05112878
"""The largest latitude a Redis GEO set accepts (the Web Mercator limit)."""
MERGE_CHUNK = 250
"""Terminals per script call (about 3 ms of Redis time): a flush of more sends several calls in its one round
trip, so other clients (distress ingest) are never held up long by one."""

MERGE = LuaScript(name="presence.lua")
NEAR = LuaScript(name="presence_near.lua")


@dataclass(frozen=True, slots=True)
class Fix:
    """A terminal's reported position and when the gateway received it."""

    lat: float
    lon: float
    at: float
    """Gateway receive time (Unix seconds) of the message that carried it."""
    ts: float
    """The terminal's own time in that message (0 if it gave none)."""

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps({"lat": self.lat, "lon": self.lon, "at": self.at, "ts": self.ts})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Fix | None:
        """Parse the stored form; None if it is corrupt."""
        try:
            data = orjson.loads(raw)
            return cls(float(data["lat"]), float(data["lon"]), float(data["at"]), float(data.get("ts", 0.0)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Sighting:
    """One terminal's activity in one process since its last flush."""

    terminal: str
    last_seen: float | None = None
    """Receive time of its latest accepted message, if any."""
    fix: Fix | None = None
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TerminalPresence:
    """What Redis knows of one terminal, from every process's flushes."""

    terminal: str
    last_seen: float | None
    fix: Fix | None
    counts: Mapping[str, int]

    def online(self, *, now: float, window_s: float) -> bool:
        """Whether it was seen within ``window_s`` before ``now``."""
        return self.last_seen is not None and self.last_seen >= now - window_s


@dataclass(frozen=True, slots=True)
class PresenceSummary:
    """Terminal numbers at a glance, and the most recently seen ones."""

    registered: int
    """Records in the registry, revoked ones included."""
    online: int
    seen: int
    """Terminals ever seen (accepted a message from)."""
    window_s: float
    recent: tuple[TerminalPresence, ...] = ()
    """Most recently seen first."""


class PresenceStore:
    """Terminal presence in Redis: merged from every ingest process, read by the API and ``satgw status``.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
    """

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        check_client(redis)
        check_keys(keys)
        self._redis = redis
        self._registry = keys.terminals
        self._seen, self._positions, self._geo = keys.presence("seen"), keys.presence("pos"), keys.presence("geo")
        self._polar, self._counts = keys.presence("polar"), keys.presence("counts")

    async def merge(self, sightings: Sequence[Sighting]) -> None:
        """Fold one flush into Redis in one round trip: the script (loaded in the same pipeline, so a
        restarted Redis never answers NOSCRIPT) runs once per :data:`MERGE_CHUNK` terminals.

        Raises:
            QueueUnavailable: Redis failed. Chunks that ran stay merged, so a retry may count them twice;
                acceptable for monitoring counters, and last seen and fixes are unaffected (max).
        """
        if not sightings:
            return
        keys = [self._seen, self._positions, self._geo, self._polar, self._counts]
        pipe = self._redis.pipeline(transaction=False)
        load_scripts(pipe, [MERGE])
        for start in range(0, len(sightings), MERGE_CHUNK):
            args: list[bytes | str | float] = []
            for s in sightings[start : start + MERGE_CHUNK]:
                args += _merge_args(s)
            pipe.evalsha(MERGE.sha, len(keys), *keys, *args)
        with map_redis_errors(f"merge presence of {len(sightings)} terminals"):
            await pipe.execute()

    async def summary(self, *, now: float, window_s: float, recent: int = 0) -> PresenceSummary:
        """Registered, online and seen counts, plus the ``recent`` most recently seen terminals.

        One round trip, and a second for the details of the recent ones when ``recent`` > 0.
        """
        with map_redis_errors("read presence summary"):
            pipe = self._redis.pipeline(transaction=False)
            pipe.hlen(self._registry)
            pipe.zcount(self._seen, now - window_s, "+inf")
            pipe.zcard(self._seen)
            if recent > 0:
                pipe.zrevrange(self._seen, 0, recent - 1)
            replies = await pipe.execute()
        details = await self.read([as_text(t) for t in replies[3]]) if recent > 0 else {}
        return PresenceSummary(
            registered=int(replies[0]),
            online=int(replies[1]),
            seen=int(replies[2]),
            window_s=window_s,
            recent=tuple(details.values()),
        )

    async def last_seen(self) -> dict[str, float]:
        """Every terminal ever seen → its last seen time, most recent first (one round trip)."""
        with map_redis_errors("read last seen"):
            pairs: list[tuple[bytes, float]] = await self._redis.zrevrange(  # type: ignore[assignment]
                self._seen, 0, -1, withscores=True
            )
        return {as_text(t): float(score) for t, score in pairs}

    async def read(self, terminals: Sequence[str]) -> dict[str, TerminalPresence]:
        """What is known of each of ``terminals`` (in that order; empty fields for never seen), one round trip."""
        if not terminals:
            return {}
        with map_redis_errors(f"read presence of {len(terminals)} terminals"):
            pipe = self._redis.pipeline(transaction=False)
            pipe.zmscore(self._seen, list(terminals))
            pipe.hmget(self._positions, list(terminals))
            pipe.hmget(self._counts, list(terminals))
            seen, fixes, counts = await pipe.execute()
        return {
            t: TerminalPresence(
                terminal=t,
                last_seen=None if s is None else float(s),
                fix=None if f is None else Fix.from_json(f),
                counts=_counts(c),
            )
            for t, s, f, c in zip(terminals, seen, fixes, counts, strict=True)
        }

    async def positions(self) -> dict[str, Fix]:
        """Every terminal's last fix (one round trip)."""
        with map_redis_errors("read positions"):
            raw: dict[bytes, bytes] = await self._redis.hgetall(self._positions)  # type: ignore[assignment]
        return {as_text(t): fix for t, value in raw.items() if (fix := Fix.from_json(value)) is not None}

    async def near(self, *, lat: float, lon: float, radius_m: float) -> dict[str, Fix]:
        """Terminals whose last fix may lie within ``radius_m`` of (lat, lon), with their fixes (one round trip).

        A superset: GEO hits (to about a metre) plus every fix beyond ±85.05° latitude; narrow it
        with the exact fixes.

        Raises:
            ValueError: a coordinate or the radius is out of range.
        """
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius_m < math.inf):
            raise ValueError(f"need -90 <= lat <= 90, -180 <= lon <= 180, 0 < radius_m < inf; got {lat, lon, radius_m}")
        centre_lat = max(-GEO_MAX_LAT, min(GEO_MAX_LAT, lat))  # GEOSEARCH refuses a centre GEO could not hold
        with map_redis_errors("search positions"):
            flat = await NEAR.run(self._redis, [self._geo, self._polar, self._positions], [lon, centre_lat, radius_m])
        pairs = zip(flat[0::2], flat[1::2], strict=True)
        return {as_text(t): fix for t, raw in pairs if (fix := Fix.from_json(raw)) is not None}


def _merge_args(s: Sighting) -> list[bytes | str | float]:
    last_seen: str | float = "" if s.last_seen is None else s.last_seen
    counts: bytes | str = orjson.dumps(dict(s.counts)) if s.counts else ""
    if s.fix is None:
        return [s.terminal, last_seen, "", "", "", "", "", counts]
    f = s.fix
    mappable = "1" if abs(f.lat) <= GEO_MAX_LAT else "0"
    return [s.terminal, last_seen, f.to_json(), f.at, f.lon, f.lat, mappable, counts]


def _counts(raw: bytes | None) -> dict[str, int]:
    if raw is None:
        return {}
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int | float)}
