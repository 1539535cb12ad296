"""The terminal registry in Redis, and the key cache ingest reads on its hot path.

Every terminal has one record in the hash ``Keys.terminals`` (field: terminal id,
value: JSON ``{"key", "created_at", "revoked_at"}``). Revoking keeps the record, so
its messages are refused as *revoked* rather than *unknown*; adding the id again
issues a new key.

:class:`KeyCache` keeps records in memory for a few seconds so that ingest makes
no Redis round trip per message, and one round trip (HMGET) per batch of misses.
"""

from __future__ import annotations

import builtins
import enum
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.exceptions import TerminalExists, TerminalNotFound, map_redis_errors
from gateway.names import Keys
from protocols.envelope import validate_terminal_id
from protocols.errors import DecodeError
from protocols.seal import KEY_BYTES, decode_key, encode_key, new_key

__all__ = ["MISSING", "KeyCache", "Missing", "Registry", "TerminalRecord"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TerminalRecord:
    """One registered terminal: its key, when it was added and, if so, when it was revoked (Unix seconds)."""

    terminal: str
    key: bytes = field(repr=False)
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        """True if the terminal's messages must be refused."""
        return self.revoked_at is not None

    def to_json(self) -> str:
        """Return the record as stored in the registry hash (the id is the hash field)."""
        return json.dumps({"key": encode_key(self.key), "created_at": self.created_at, "revoked_at": self.revoked_at})

    @classmethod
    def from_json(cls, terminal: str, raw: str | bytes) -> TerminalRecord:
        """Parse a stored record, or raise ``ValueError`` naming the terminal and the bad field."""
        try:
            data = json.loads(raw)
            key = decode_key(data["key"])
            created_at = float(data["created_at"])
            revoked_at = data["revoked_at"]
            return cls(terminal, key, created_at, None if revoked_at is None else float(revoked_at))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"registry record of terminal {terminal} is corrupt: {exc!r}") from None


class Registry:
    """Add, look up, list and revoke terminals in Redis."""

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        if not isinstance(keys, Keys):
            raise TypeError(f"keys must be a gateway.names.Keys, got {type(keys).__name__}")
        self._redis = redis
        self._keys = keys

    async def add(self, terminal: str, *, key: bytes | None = None) -> TerminalRecord:
        """Register ``terminal`` with ``key`` (a fresh random key if None) and return its record.

        Raises:
            ValueError: the id or the key is malformed.
            TerminalExists: the id is registered and not revoked.
            QueueUnavailable: Redis failed.
        """
        _check_terminal(terminal)
        if key is not None and len(key) != KEY_BYTES:
            raise ValueError(f"a terminal key is {KEY_BYTES} bytes, got {len(key)}")
        record = TerminalRecord(terminal, new_key() if key is None else key, time.time(), None)

        async def write(pipe: Pipeline) -> None:
            current = await self._read(pipe, terminal)
            if current is not None and not current.revoked:
                raise TerminalExists(terminal)
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.hset(self._keys.terminals, terminal, record.to_json())

        with map_redis_errors(f"add terminal {terminal}"):
            await self._redis.transaction(write, self._keys.terminals)
        return record

    async def get(self, terminal: str) -> TerminalRecord | None:
        """Return the record of ``terminal`` (revoked or not), or None if it was never added."""
        with map_redis_errors(f"get terminal {terminal}"):
            return await self._read(self._redis, terminal)

    async def get_many(self, terminals: builtins.list[str]) -> dict[str, TerminalRecord | None]:
        """Return the records of ``terminals`` in one round trip (HMGET); None for unknown ones.

        A corrupt record is logged and reported as None, so one bad entry cannot stall
        ingest of every other terminal, and its messages are refused (fail closed).
        """
        if not terminals:
            return {}
        with map_redis_errors(f"get keys of terminals {_sample(terminals)}"):
            raws = await self._redis.hmget(self._keys.terminals, terminals)
        return {t: _decode_or_none(t, raw) for t, raw in zip(terminals, raws, strict=True)}

    async def revoke(self, terminal: str) -> TerminalRecord:
        """Mark ``terminal`` revoked and return its record; revoking twice keeps the first time.

        Raises:
            TerminalNotFound: the id was never added.
            QueueUnavailable: Redis failed.
        """

        async def write(pipe: Pipeline) -> TerminalRecord:
            current = await self._read(pipe, terminal)
            if current is None:
                raise TerminalNotFound(terminal)
            if current.revoked:
                return current
            revoked = replace(current, revoked_at=time.time())
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.hset(self._keys.terminals, terminal, revoked.to_json())
            return revoked

        with map_redis_errors(f"revoke terminal {terminal}"):
            result: TerminalRecord = await self._redis.transaction(
                write, self._keys.terminals, value_from_callable=True
            )
        return result

    async def list(self) -> builtins.list[TerminalRecord]:
        """Return every record, revoked ones included, sorted by terminal id."""
        with map_redis_errors("list terminals"):
            raw: dict[Any, Any] = await self._redis.hgetall(self._keys.terminals)
        records = (TerminalRecord.from_json(_text(t), value) for t, value in raw.items())
        return sorted(records, key=lambda r: r.terminal)

    async def _read(self, client: Redis | Pipeline, terminal: str) -> TerminalRecord | None:
        raw = await client.hget(self._keys.terminals, terminal)
        return None if raw is None else TerminalRecord.from_json(terminal, raw)


class Missing(enum.Enum):
    """The type of :data:`MISSING`."""

    MISSING = "missing"


MISSING: Final = Missing.MISSING
"""What :meth:`KeyCache.get_cached` returns when it holds nothing fresh for a terminal."""


class KeyCache:
    """Terminal records held in memory for ingest: no Redis round trip per message.

    Known terminals (revoked ones too) are kept ``ttl_s`` seconds, so a revocation or
    re-issued key takes effect within ``ttl_s``; unknown ids are kept ``negative_ttl_s``
    seconds, so a flood from an unregistered terminal costs one HMGET per interval.
    """

    def __init__(
        self,
        *,
        registry: Registry,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        if not negative_ttl_s >= 0:
            raise ValueError(f"negative_ttl_s must be zero or more, got {negative_ttl_s}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._registry = registry
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, TerminalRecord | None]] = OrderedDict()

    def get_cached(self, terminal: str) -> TerminalRecord | Missing | None:
        """Return the cached record, None if cached as unknown, or :data:`MISSING` if not cached or expired."""
        entry = self._entries.get(terminal)
        if entry is None:
            return MISSING
        if self._clock() >= entry[0]:
            del self._entries[terminal]
            return MISSING
        return entry[1]

    async def fetch(self, terminals: Iterable[str]) -> dict[str, TerminalRecord | None]:
        """Return the record (None if unknown) of every terminal, reading all misses in one round trip.

        Raises:
            QueueUnavailable: Redis failed; nothing is cached for the misses.
        """
        found: dict[str, TerminalRecord | None] = {}
        misses: builtins.list[str] = []
        for terminal in dict.fromkeys(terminals):
            cached = self.get_cached(terminal)
            if cached is MISSING:
                misses.append(terminal)
            else:
                found[terminal] = cached
        if misses:
            fetched = await self._registry.get_many(misses)
            self._store(fetched)
            found.update(fetched)
        return found

    def invalidate(self, terminal: str | None = None) -> None:
        """Forget ``terminal`` (or everything), so the next fetch reads Redis."""
        if terminal is None:
            self._entries.clear()
        else:
            self._entries.pop(terminal, None)

    def __len__(self) -> int:
        """Return how many entries are held, fresh or not yet swept."""
        return len(self._entries)

    def _store(self, fetched: dict[str, TerminalRecord | None]) -> None:
        now = self._clock()
        for terminal, record in fetched.items():
            ttl = self._ttl_s if record is not None else self._negative_ttl_s
            if ttl > 0:
                self._entries[terminal] = (now + ttl, record)
                self._entries.move_to_end(terminal)
        # A flood of distinct ids must not grow memory without bound: drop the entries
        # stored longest ago, which are the next to expire anyway.
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _check_terminal(terminal: str) -> None:
    try:
        validate_terminal_id(terminal)
    except DecodeError as exc:
        raise ValueError(exc.detail) from None


def _decode_or_none(terminal: str, raw: str | bytes | None) -> TerminalRecord | None:
    if raw is None:
        return None
    try:
        return TerminalRecord.from_json(terminal, raw)
    except ValueError:
        _log.exception("refusing terminal %s until its registry record is fixed", terminal)
        return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _sample(terminals: builtins.list[str]) -> str:
    shown = ", ".join(terminals[:3])
    return shown if len(terminals) <= 3 else f"{shown} and {len(terminals) - 3} more"
