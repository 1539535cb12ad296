"""The Lua scripts of the queue, and running them one by one or many in a single round trip.

Scripts are plain ``.lua`` files beside this module; ``common.lua`` is prepended to each.
Pipelines call EVALSHA directly rather than through redis-py's pipeline script support,
which would spend a SCRIPT EXISTS round trip on every ``execute``; a NOSCRIPT reply (after a
Redis restart or SCRIPT FLUSH) loads the script and runs the affected calls again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["Args", "LuaScript", "create_groups", "load_scripts"]

Args = Sequence[bytes | str | int | float]


def _source(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


class LuaScript:
    """One queue script: its source (with the shared helpers) and SHA1."""

    def __init__(self, *, name: str, allow_oom: bool = False) -> None:
        # The shebang makes Redis check for OOM before the script starts (unless allowed),
        # so a write script runs whole or not at all when memory is full.
        shebang = "#!lua flags=allow-oom\n" if allow_oom else "#!lua\n"
        self.name = name
        self.source = shebang + _source("common.lua") + "\n" + _source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def run(self, redis: Redis, keys: Sequence[str], args: Args) -> Any:
        """Run the script once (one round trip unless Redis must first be given the script)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    async def run_many(self, redis: Redis, calls: Sequence[tuple[Sequence[str], Args]]) -> list[Any]:
        """Run the script once per ``(keys, args)`` in one pipeline, in order; return the replies.

        Raises the first error reply other than NOSCRIPT.
        """
        replies = await self._pipeline(redis, calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await redis.script_load(self.source)
            for i, reply in zip(missing, await self._pipeline(redis, [calls[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipeline(self, redis: Redis, calls: Sequence[tuple[Sequence[str], Args]]) -> list[Any]:
        pipe = redis.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def load_scripts(pipe: Any, scripts: Sequence[LuaScript]) -> None:
    """Queue a SCRIPT LOAD of each script on ``pipe``."""
    for script in scripts:
        pipe.script_load(script.source)


async def create_groups(redis: Redis, streams: Sequence[str], group: str, scripts: Sequence[LuaScript]) -> None:
    """Create ``group`` on each stream (and the stream) unless it exists, and load ``scripts``; one round trip."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        # From id 0, so entries written before the group existed are still delivered.
        pipe.xgroup_create(stream, group, id="0", mkstream=True)
    load_scripts(pipe, scripts)
    for reply in await pipe.execute(raise_on_error=False):
        if isinstance(reply, ResponseError) and str(reply).startswith("BUSYGROUP"):
            continue
        if isinstance(reply, Exception):
            raise reply
