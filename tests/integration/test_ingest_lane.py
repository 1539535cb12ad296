"""An ingest lane against the real Redis: overlapping batches persist everything and ack in arrival order."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.counters import Counters
from gateway.credentials import Credentials
from gateway.ingest import Lane
from gateway.mqtt import Inbound
from gateway.names import Keys, Topics
from gateway.queue import Queue
from gateway.receipts import Receipt
from gateway.sim.terminal import SimTerminal
from gateway.terminals import KeyCache, Registry
from tests.harness import eventually

pytestmark = pytest.mark.integration


class _AckLog:
    """Stands in for the MQTT connection's ack writer: records which payloads were acknowledged, in order."""

    def __init__(self) -> None:
        self.acked: list[bytes] = []

    def add(self, packet: bytes) -> None:
        self.acked.append(packet)


class _Receipts:
    def __init__(self) -> None:
        self.sent: list[Receipt] = []

    def send(self, receipt: Receipt) -> None:
        self.sent.append(receipt)


@pytest.fixture(name="lane_parts")
async def _lane_parts(redis: Redis, keys: Keys, topics: Topics) -> tuple[Lane, list[SimTerminal]]:
    registry = Registry(redis=redis, keys=keys)
    sims = []
    for i in range(5):
        record = await registry.add(f"L{i:05d}")
        creds = Credentials(terminal=record.terminal, key=record.key, mqtt_url="mqtt://x", topic_prefix=topics.prefix)
        sims.append(SimTerminal(creds=creds, topics=topics))
    queue = Queue(redis=redis, keys=keys, consumer="lane-test")
    await queue.setup()
    lane = Lane(
        name="up",
        distress=False,
        queue=queue,
        keys=KeyCache(registry=registry),
        topics=topics,
        receipts=_Receipts(),
        counters=Counters(),
        max_batch=40,
    )
    return lane, sims


async def test_overlapping_batches_ack_in_arrival_order(
    lane_parts: tuple[Lane, list[SimTerminal]], redis: Redis, keys: Keys
) -> None:
    """1000 messages through batches of 40 (two in flight at once) are all queued and acked in the order they came."""
    lane, sims = lane_parts
    log = _AckLog()
    runner = asyncio.create_task(lane.run(), name="test.lane")
    try:
        sent = []
        for i in range(1000):
            topic, payload = sims[i % len(sims)].wire(sims[i % len(sims)].message(text=f"m{i}"))
            lane.handle(Inbound(topic, payload, False, b"%d" % i, log))  # the "ack packet" is the arrival index
            sent.append(b"%d" % i)
            if i % 97 == 0:
                await asyncio.sleep(0)  # let batches start while messages keep arriving
        await eventually(lambda: len(log.acked) == 1000, what="1000 acks")
        assert log.acked == sent
        assert lane.backlog == 0
        assert sum([await redis.xlen(stream) for stream in keys.streams()]) == 1000
    finally:
        runner.cancel()
