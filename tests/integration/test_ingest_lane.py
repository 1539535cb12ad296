"""An ingest lane against the real Redis: overlapping batches persist everything and ack in arrival order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.counters import Counters
from gateway.credentials import Credentials
from gateway.ingest import Lane
from gateway.mqtt import Inbound
from gateway.names import Keys, Topics
from gateway.queue import Queue
from gateway.quotas import Quota, Quotas
from gateway.receipts import Receipt
from gateway.sim.terminal import SimTerminal
from gateway.terminals import KeyCache, Registry
from protocols.envelope import Priority
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


async def _lane(redis: Redis, keys: Keys, topics: Topics, **options: Any) -> tuple[Lane, list[SimTerminal]]:
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
        receipts=options.pop("receipts", _Receipts()),
        counters=Counters(),
        **({"max_batch": 40} | options),
    )
    return lane, sims


@pytest.fixture(name="lane_parts")
async def _lane_parts(redis: Redis, keys: Keys, topics: Topics) -> tuple[Lane, list[SimTerminal]]:
    return await _lane(redis, keys, topics)


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


async def test_quota_refuses_with_a_receipt_and_a_replay_costs_nothing(
    redis: Redis, keys: Keys, topics: Topics
) -> None:
    """Past its routine burst a terminal gets quota_exceeded receipts naming the quota; a replay does not spend it."""
    receipts = _Receipts()
    quotas = Quotas(limits={Priority.ROUTINE: Quota(count=1, period_s=3600, burst=3)})
    lane, sims = await _lane(redis, keys, topics, quotas=quotas, receipts=receipts)
    sim, log = sims[0], _AckLog()
    runner = asyncio.create_task(lane.run(), name="test.lane")
    try:
        first = sim.message(text="one", receipt=True)
        for message in [first, first]:
            lane.handle(Inbound(*sim.wire(message), False, b"x", log))
        await eventually(lambda: len(log.acked) == 2, what="the first batch")
        for i in range(3):
            lane.handle(Inbound(*sim.wire(sim.message(text=f"m{i}", receipt=True)), False, b"x", log))
        await eventually(lambda: len(log.acked) == 5, what="the second batch")
        kinds = [(r.kind.value, r.reason) for r in receipts.sent]
        assert kinds.count(("accepted", None)) == 3  # first, then two of three: the replay was refunded
        assert ("rejected", "replay") in kinds
        assert ("rejected", "quota_exceeded") in kinds
        assert "routine quota 1 per 3600 s (burst 3)" in next(
            r.detail or "" for r in receipts.sent if r.reason == "quota_exceeded"
        )
    finally:
        runner.cancel()


class _Intake:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


async def test_a_full_buffer_pauses_the_connection_until_the_lane_catches_up(
    redis: Redis, keys: Keys, topics: Topics
) -> None:
    """Past max_buffered messages the lane stops reading its connection (idempotently), and resumes at half."""
    lane, sims = await _lane(redis, keys, topics, max_buffered=200)
    intake, log = _Intake(), _AckLog()
    lane.attach(intake)
    for i in range(1000):
        sim = sims[i % len(sims)]
        lane.handle(Inbound(*sim.wire(sim.message(text=f"m{i}")), False, b"%d" % i, log))
    # Paused at 200, and told again every max_batch (40) messages while over: a reconnect reads afresh.
    assert intake.calls == ["pause"] * (1 + (1000 - 200) // 40)
    runner = asyncio.create_task(lane.run(), name="test.lane")
    try:
        await eventually(lambda: len(log.acked) == 1000, what="1000 acks")
        assert intake.calls[-1] == "resume"
        assert intake.calls.count("resume") == 1
    finally:
        runner.cancel()
