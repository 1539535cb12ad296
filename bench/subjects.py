"""The systems under test: satgw's ingest (``satgw run`` with role ``ingest``) and the naive bridge.

Each runs as a process of its own under a fresh key/topic prefix, and says how many messages it
holds durably in Redis: for satgw the sum of XLEN over the class streams (nothing reads them,
as no relay runs), for the naive bridge the XLEN of its one stream.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import uuid4

from redis.asyncio import Redis

from bench.procs import Child
from bench.publisher import discard_session
from bench.workload import Workload
from gateway.exceptions import GatewayError
from gateway.mqtt import BrokerAddress
from gateway.names import Keys, Topics
from gateway.terminals import Registry

__all__ = ["BenchError", "Naive", "Satgw", "Services", "Subject"]

# `python -m gateway.cli` has no __main__ guard; this runs the same entry point as the `satgw` script.
_SATGW = "import sys; from gateway.cli import main; sys.exit(main())"


class BenchError(GatewayError):
    """The bench could not measure (a process died, the count stalled, a service is missing)."""


class Subject(Protocol):
    """A system under test, started and stopped as a process."""

    label: str
    topics: Topics
    child: Child | None

    async def prepare(self) -> None:
        """Provision what the process needs before its first start."""

    async def start(self) -> None:
        """Start the process (again, for a drain; its MQTT session is persistent)."""

    async def stop(self) -> None:
        """Stop the process; raise :class:`BenchError` if it failed."""

    async def durable(self) -> int:
        """How many messages it holds in Redis."""

    async def cleanup(self, *, broker_is_private: bool) -> None:
        """Delete its keys (and its MQTT sessions when the broker outlives the bench)."""


@dataclass(frozen=True, slots=True)
class Services:
    """Where the subjects find Redis and the broker, and where their logs go."""

    redis: Redis
    redis_url: str
    mqtt_url: str
    workdir: Path


class _Base:
    label = "?"

    def __init__(self, *, services: Services) -> None:
        # SATGW_BENCH_TAG lets a caller (the smoke test) tell its runs' keys from a concurrent bench's.
        self.prefix = f"bench{os.environ.get('SATGW_BENCH_TAG', '')}{uuid4().hex[:10]}"
        self.keys, self.topics = Keys(self.prefix), Topics(self.prefix)
        self._services = services
        self._redis = services.redis
        self.child: Child | None = None
        self._starts = 0

    async def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        if self.child is not None and not self.child.exited:
            raise RuntimeError(f"{self.label} is already running")
        self._starts += 1
        log = self._services.workdir / f"{self.prefix}-{self._starts}.log"
        self.child = await Child.start(argv, name=self.label, log=log, env=env)

    async def stop(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        code = await child.stop()
        if code != 0:
            raise BenchError(f"{self.label} exited with {code} on SIGTERM; its last output:\n{child.tail()}")

    async def _delete_keys(self) -> None:
        found = [key async for key in self._redis.scan_iter(match=self.keys.pattern, count=1000)]
        for start in range(0, len(found), 500):
            await self._redis.delete(*found[start : start + 500])

    async def _discard_sessions(self, client_ids: list[str]) -> None:
        address = BrokerAddress.from_url(self._services.mqtt_url)
        for client_id in client_ids:
            await discard_session(address.host, address.port, client_id)


class Satgw(_Base):
    """``satgw run`` with only the ingest role, as production runs it."""

    label = "satgw"

    def __init__(self, *, services: Services, workload: Workload, config: Path | None = None) -> None:
        super().__init__(services=services)
        self.node = self.prefix
        self._workload, self._config = workload, config

    async def prepare(self) -> None:
        registry = Registry(redis=self._redis, keys=self.keys)
        for terminal, key in self._workload.keys.items():  # one at a time: concurrent adds collide on WATCH
            await registry.add(terminal, key=key)

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SATGW_")}
        env.update(
            SATGW_REDIS_URL=self._services.redis_url,
            SATGW_MQTT_URL=self._services.mqtt_url,
            SATGW_TOPIC_PREFIX=self.prefix,
            SATGW_NODE=self.node,
            SATGW_HTTP="127.0.0.1:0",
            SATGW_ROLES="ingest",
        )
        if self._config is not None:
            env["SATGW_CONFIG"] = str(self._config)
        await self._spawn([sys.executable, "-c", _SATGW, "run"], env)

    async def durable(self) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for stream in self.keys.streams():
            pipe.xlen(stream)
        return sum(await pipe.execute())

    async def cleanup(self, *, broker_is_private: bool) -> None:
        await self._delete_keys()
        if not broker_is_private:
            await self._discard_sessions([f"satgw-{self.node}-up", f"satgw-{self.node}-sos"])


class Naive(_Base):
    """The naive bridge (:mod:`bench.naive_bridge`)."""

    label = "naive"
    module = "bench.naive_bridge"

    def __init__(self, *, services: Services) -> None:
        super().__init__(services=services)
        self.stream = f"{{{self.prefix}}}:naive"  # under Keys.pattern, so cleanup finds it
        self.client_id = f"{self.prefix}-naive"

    async def prepare(self) -> None:
        return None

    async def start(self) -> None:
        topic_filter = f"{self.prefix}/up/+"
        urls = [self._services.mqtt_url, self._services.redis_url]
        argv = [sys.executable, "-m", self.module, *urls, topic_filter, self.stream, "--client-id", self.client_id]
        await self._spawn(argv)

    async def durable(self) -> int:
        count: int = await self._redis.xlen(self.stream)
        return count

    async def cleanup(self, *, broker_is_private: bool) -> None:
        await self._delete_keys()
        if not broker_is_private:
            await self._discard_sessions([self.client_id])


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
