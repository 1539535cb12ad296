"""The ground's partial messages in Redis: fragments kept until their message is whole.

Follows the rules of :class:`protocols.fragments.Reassembly` (its reference model): one hash per
(link, message ref), living :attr:`FragmentStore.ttl_s` after its latest fragment; a fragment with
another total replaces a stale partial. A fragment is durable once :meth:`FragmentStore.add` returns,
so a link may report its frame ``sent``. Refs come from :meth:`FragmentStore.new_ref`, a counter per
link in Redis that survives restarts and clears whatever partial the ref it hands out last held.

Keys (all under the gateway's hash tag): ``{p}:frag:<link>:<ref>`` hash ``n`` → total, ``<index>`` →
chunk; ``{p}:fragref:<link>`` the link's ref counter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_int, check_keys, check_text
from gateway.queue.scripts import LuaScript
from protocols.fragments import MAX_MESSAGE_REF, Fragment

__all__ = ["PARTIAL_TTL_S", "FragmentStore"]

PARTIAL_TTL_S = 7 * 24 * 3600.0
"""Default life of a partial message after its latest fragment: the longest message TTL."""
ADD = LuaScript(name="fragments.lua")


class FragmentStore:
    """Partial messages of every link of one gateway, in Redis.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
        ttl_s: How long a partial message outlives its latest fragment.
        refs: Refs cycle through ``0..refs-1`` (128 keeps each a single byte on the link); a sender
            must have fewer than ``refs`` messages in fragments at once on one link.
    """

    def __init__(self, *, redis: Redis, keys: Keys, ttl_s: float = PARTIAL_TTL_S, refs: int = 128) -> None:
        check_client(redis)
        check_keys(keys)
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not (math.isfinite(ttl_s) and ttl_s >= 1):
            raise ValueError(f"ttl_s must be at least 1 second, got {ttl_s!r}")
        check_int("refs", refs, 2, MAX_MESSAGE_REF + 1)
        self._redis = redis
        self._keys = keys
        self.ttl_s = float(ttl_s)
        self._refs = refs

    def key(self, link: str, message_ref: int) -> str:
        """The hash of one partial message."""
        return self._keys.fragment(link, message_ref)

    async def add(self, link: str, fragments: Sequence[Fragment]) -> list[list[Fragment]]:
        """Store fragments durably (one round trip); return every message they complete, as all its fragments.

        A message completed twice in one call (a duplicate fragment) is returned once.
        """
        check_text("link", link)
        if not fragments:
            return []
        args: list[bytes | str | int] = [math.ceil(self.ttl_s * 1000)]
        for part in fragments:
            args += [part.index, part.total, part.data]
        keys = [self.key(link, part.message_ref) for part in fragments]
        with map_redis_errors(f"store {len(fragments)} fragment(s) from link {link}"):
            replies: Any = await ADD.run(self._redis, keys, args)
        done: dict[int, list[Fragment]] = {}
        for part, chunks in zip(fragments, replies, strict=True):
            if chunks:
                done[part.message_ref] = [
                    Fragment(part.message_ref, index, part.total, chunk) for index, chunk in enumerate(chunks)
                ]
        return list(done.values())

    async def forget(self, link: str, refs: Sequence[int]) -> None:
        """Delete the partial messages of ``refs`` (once their records are in the outbox)."""
        if refs:
            with map_redis_errors(f"forget {len(refs)} partial message(s) of link {link}"):
                await self._redis.delete(*(self.key(link, ref) for ref in refs))

    async def missing(self, link: str, message_ref: int) -> list[int] | None:
        """The indices a partial message still lacks, or None if no partial message has this ref."""
        with map_redis_errors(f"read partial message {message_ref} of link {link}"):
            held: dict[Any, Any] = await self._redis.hgetall(self.key(link, message_ref))
        if b"n" not in held:
            return None
        return [i for i in range(int(held[b"n"])) if str(i).encode() not in held]

    async def new_ref(self, link: str) -> int:
        """Hand out the link's next message ref, first deleting any partial message left under it."""
        check_text("link", link)
        counter = self._keys.fragment_refs(link)
        with map_redis_errors(f"new message ref for link {link}"):
            ref = (await self._redis.incr(counter) - 1) % self._refs
            await self._redis.delete(self.key(link, ref))
        return int(ref)
