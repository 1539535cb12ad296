"""Packed frames at the ground on the real Redis: every record delivered, a corrupted frame refused whole."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.exceptions import LinkError
from gateway.names import Keys
from protocols.envelope import Kind, Message, Priority
from protocols.frame import encode_best, encode_record
from protocols.record import Record
from tests.integration.test_fragments import delivered, ground_side

pytestmark = pytest.mark.integration

LINK = "bds2-l3"
MTU = 78  # a BDS-2 level-3 card: 628 bits


def telemetry(number: int, seq: int) -> bytes:
    """An encoded routine telemetry record from fleet terminal T{number:06d}."""
    message = Message(
        terminal=f"T{number:06d}",
        seq=seq,
        priority=Priority.ROUTINE,
        kind=Kind.TELEMETRY,
        body=f"b=3.{seq % 10}",
        ts=1.7e9 + seq,
    )
    return encode_record(Record(message=message, received_at=1.7e9 + seq + 1.25))


async def test_a_packed_frame_delivers_every_record(redis: Redis, keys: Keys) -> None:
    """Four small telemetry records in one 78-byte packed frame all reach the outbox with their fields."""
    side = await ground_side(redis, keys)
    raws = [telemetry(123, 4001), telemetry(877, 4002), telemetry(123, 4003)]
    raws.append(telemetry(45, 4004))
    frame = encode_best(raws)
    assert frame[0] == 0xBA
    assert len(frame) <= MTU
    await side.ground.receive(frame, link=LINK)
    got = [(d["terminal"], d["seq"], d["body"]) for d in await delivered(side)]
    expected = [("T000123", 4001), ("T000877", 4002), ("T000123", 4003), ("T000045", 4004)]
    assert got == [(terminal, seq, f"b=3.{seq % 10}") for terminal, seq in expected]


async def test_a_corrupted_packed_frame_delivers_nothing(redis: Redis, keys: Keys) -> None:
    """A packed frame with one byte changed fails its CRC: a LinkError, and no record is delivered."""
    side = await ground_side(redis, keys)
    frame = bytearray(encode_best([telemetry(1, 10), telemetry(2, 11), telemetry(3, 12)]))
    frame[len(frame) // 2] ^= 0x10
    with pytest.raises(LinkError, match="does not decode"):
        await side.ground.receive(bytes(frame), link=LINK)
    assert await delivered(side) == []
