"""The Lua scripts of the queue, and running them.

Scripts are plain ``.lua`` files beside this module; ``common.lua`` is prepended to each, and
``window.lua`` (the replay window) to those that dedup. Every hot-path call is one script run
over a whole batch: one EVALSHA packs far faster in redis-py than a pipeline of one call per
message. A NOSCRIPT reply (after a Redis restart or SCRIPT FLUSH) loads the script and runs it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["Args", "BatchArgs", "LuaScript", "create_groups", "load_scripts"]

Args = Sequence[bytes | str | int | float]


def _source(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


class LuaScript:
    """One queue script: its source (with the shared helpers) and SHA1."""

    def __init__(self, *, name: str, allow_oom: bool = False, helpers: Sequence[str] = ()) -> None:
        # The shebang makes Redis check for OOM before the script starts (unless allowed),
        # so a write script runs whole or not at all when memory is full.
        shebang = "#!lua flags=allow-oom\n" if allow_oom else "#!lua\n"
        self.name = name
        self.source = shebang + "\n".join(_source(part) for part in ("common.lua", *helpers, name))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def run(self, redis: Redis, keys: Sequence[str], args: Args) -> Any:
        """Run the script once (one round trip unless Redis must first be given the script)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


class BatchArgs:
    """KEYS and ARGV of one run of a script built on ``admit`` (window.lua) over a whole batch.

    Args:
        fixed: The keys the script addresses by position (class streams, outbox).
        window: The replay window.
        window_key: The window key of a terminal; each terminal's key is passed once, after ``fixed``.
        trace: What ``trace_init`` (common.lua) takes: trace prefix, TTL, time (``Trace.script_args``).
    """

    def __init__(
        self, *, fixed: Sequence[str], window: int, window_key: Callable[[str], str], trace: Sequence[str | int]
    ) -> None:
        self._fixed = fixed
        self._window = window
        self._window_key = window_key
        self._trace = trace
        self._numbers: dict[str, int] = {}
        self._messages: list[bytes | str] = []

    def add(self, terminal: str, head: str, tail: Sequence[bytes | str]) -> None:
        """Append one message: the text ``"<window number> <head>"`` (head starts with the seq), then ``tail``."""
        number = self._numbers.get(terminal)
        if number is None:
            number = self._numbers[terminal] = len(self._numbers) + 1
        self._messages += (f"{number} {head}", *tail)

    @property
    def keys(self) -> list[str]:
        """The fixed keys, then one window key per terminal."""
        return [*self._fixed, *map(self._window_key, self._numbers)]

    @property
    def args(self) -> list[bytes | str | int]:
        """The window, the number of terminals, the trace arguments, the terminals, then every message's arguments."""
        return [self._window, len(self._numbers), *self._trace, *self._numbers, *self._messages]


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
