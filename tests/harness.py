"""Shared helpers for integration and end-to-end tests: a running gateway, terminals, an observer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis

from gateway.config import GatewayConfig, Settings
from gateway.credentials import Credentials
from gateway.links.geo import GeoProfile
from gateway.mqtt import Inbound, MqttClient
from gateway.names import Keys, Topics
from gateway.queue import Accepted
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal
from gateway.terminals import Registry
from protocols.envelope import Kind, Message, Priority
from protocols.record import Record, encode_record

T = TypeVar("T")

REDIS_URL = os.environ.get("SATGW_REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_URL = os.environ.get("SATGW_MQTT_URL", "mqtt://127.0.0.1:1883")

FAST_LINK = GeoProfile(name="fast", max_frame_bytes=1750, interval_s=0.0, cards=4, loss_rate=0.0)


def unique_prefix() -> str:
    """A key and topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


def settings_for(prefix: str, **overrides: Any) -> Settings:
    """Settings for a gateway under ``prefix`` with a free HTTP port."""
    values: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "mqtt_url": MQTT_URL,
        "topic_prefix": prefix,
        "node": prefix,
        "http": "127.0.0.1:0",
    }
    values.update(overrides)
    return Settings(**values)


def config_with(*links: GeoProfile, **overrides: Any) -> GatewayConfig:
    """A gateway config with ``links`` (default: one fast lossless link) and quick reclaim."""
    values: dict[str, Any] = {"links": links or (FAST_LINK,), "reclaim_idle_s": 2.0}
    values.update(overrides)
    return GatewayConfig(**values)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, config: GatewayConfig) -> AsyncIterator[Gateway]:
    """A serving gateway; stopped (drained) when the block ends."""
    stop = asyncio.Event()
    async with Gateway(settings=settings, config=config) as gateway:
        serving = asyncio.create_task(gateway.serve(stop), name="test.serve")
        try:
            yield gateway
        finally:
            stop.set()
            await serving


async def provision(settings: Settings, terminal: str) -> SimTerminal:
    """Add ``terminal`` to the registry and return a simulated terminal for it."""
    async with Redis.from_url(settings.redis_url) as redis:
        record = await Registry(redis=redis, keys=Keys(settings.topic_prefix)).add(terminal)
    creds = Credentials(
        terminal=terminal, key=record.key, mqtt_url=settings.mqtt_url, topic_prefix=settings.topic_prefix
    )
    return SimTerminal(creds=creds, topics=Topics(settings.topic_prefix))


async def delete_prefix(redis_url: str, prefix: str) -> None:
    """Remove every key under ``prefix``."""
    async with Redis.from_url(redis_url) as redis:
        keys = [k async for k in redis.scan_iter(match=Keys(prefix).pattern, count=1000)]
        if keys:
            await redis.delete(*keys)


@dataclass
class Observer:
    """Collects what applications and terminals see: deliveries and receipts."""

    topics: Topics
    delivered: list[dict[str, Any]] = field(default_factory=list)
    receipts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def attach(self, client: MqttClient) -> None:
        """Route the delivered and down topics of ``client`` here (call before connecting)."""
        client.route(f"{self.topics.prefix}/delivered/+", self._on_delivered)
        client.route(f"{self.topics.prefix}/down/+", self._on_receipt)

    async def subscribe(self, client: MqttClient) -> None:
        """Subscribe ``client`` to the delivered and down topics and wait for the broker's SUBACKs."""
        await client.subscribe(f"{self.topics.prefix}/delivered/+", qos=1)
        await client.subscribe(f"{self.topics.prefix}/down/+", qos=1)

    def _on_delivered(self, message: Inbound) -> None:
        self.delivered.append(json.loads(message.payload) | {"_seen_at": time.time()})
        message.ack()

    def _on_receipt(self, message: Inbound) -> None:
        receipt = json.loads(message.payload)
        self.receipts[receipt["terminal"]].append(receipt)
        message.ack()

    def receipts_of(self, terminal: str, seq: int) -> list[str]:
        """The receipt kinds seen for one message, in arrival order."""
        return [r["receipt"] for r in self.receipts[terminal] if r.get("seq") == seq]

    def delivered_ids(self) -> list[str]:
        """Ids of delivered messages in arrival order (duplicates kept)."""
        return [d["id"] for d in self.delivered]


@contextlib.asynccontextmanager
async def observing(settings: Settings) -> AsyncIterator[Observer]:
    """An observer connected and subscribed to the gateway's output topics."""
    observer = Observer(Topics(settings.topic_prefix))
    client = MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-obs-{uuid.uuid4().hex[:6]}")
    observer.attach(client)
    async with client:
        await observer.subscribe(client)
        yield observer


async def eventually(check: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``check()`` is true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def until(check: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "condition") -> T:
    """Await ``check()`` until it gives something truthy and return that, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last answer {found!r}"[:2000])
        await asyncio.sleep(0.02)
    return found


async def blocked_clients(redis: Redis) -> int:
    """How many clients are waiting in a blocking command in Redis now."""
    return int((await redis.info("clients"))["blocked_clients"])


async def until_blocked(redis: Redis, *, before: int, more: int = 1) -> None:
    """Wait until ``more`` clients beyond ``before`` are blocked in Redis (a BLOCK read has really started)."""

    async def blocked() -> bool:
        return await blocked_clients(redis) >= before + more

    await until(blocked, timeout=5, what=f"{more} more blocked Redis client(s)")


def accepted_entry(terminal: str, seq: int, priority: Priority = Priority.ROUTINE) -> Accepted:
    """A message as ingest hands it to the queue (a text note), for tests that fill queues directly."""
    now = time.time()
    message = Message(terminal=terminal, seq=seq, priority=priority, kind=Kind.TEXT, body=f"note {seq}", ts=now)
    return Accepted(
        message_id=f"{terminal}:{seq}",
        terminal=terminal,
        seq=seq,
        priority=priority,
        record=encode_record(Record(message=message, received_at=now)),
        received_at=now,
        expires_at=None,
        receipt=False,
    )


@dataclass
class Inbox:
    """What one simulated terminal received on its down topic."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def ids(self) -> list[str]:
        """Ids of the downlink messages in arrival order (repeats kept)."""
        return [m["id"] for m in self.messages]


@asynccontextmanager
async def listening(settings: Settings, terminal: SimTerminal) -> AsyncIterator[Inbox]:
    """``terminal`` connected and subscribed (QoS 2) to its down topic."""
    inbox = Inbox()
    client_id = f"{settings.topic_prefix}-{terminal.creds.terminal}-{uuid.uuid4().hex[:6]}"
    client = MqttClient(url=settings.mqtt_url, client_id=client_id)
    terminal.listen(client, on_message=inbox.messages.append, on_receipt=inbox.receipts.append)
    async with client:
        await client.subscribe(terminal.down_topic, qos=2)
        yield inbox
