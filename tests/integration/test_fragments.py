"""Fragments at the ground on the real Redis and Mosquitto: durable partials, one completion, never a partial record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis

from gateway.counters import Counters
from gateway.exceptions import LinkError
from gateway.ground import Ground
from gateway.mqtt import ExactlyOncePublisher, Inbound, MqttClient
from gateway.names import Keys, Topics
from gateway.queue import Outbox
from gateway.queue.fragments import FragmentStore
from gateway.queue.release import ReleaseLog
from gateway.receipts import Receipt
from protocols.envelope import Kind, Message, Priority
from protocols.fragments import (
    Fragment,
    Reassembly,
    decode_fragment,
    encode_fragment,
    fragment,
    fragment_for_mtu,
    join_fragments,
)
from protocols.frame import encode_frame, encode_frame_v2, encode_record
from protocols.record import Record
from tests.harness import MQTT_URL, eventually

if TYPE_CHECKING:
    from conftest import Counted

pytestmark = pytest.mark.integration

LINK = "bds2-l1"
MTU = 13  # a BDS-2 level-1 card: 110 bits


def record(seq: int, body: str = "冰面有裂缝 绕行北侧", terminal: str = "bd-000042") -> bytes:
    """An encoded text record from ``terminal``."""
    message = Message(terminal=terminal, seq=seq, priority=Priority.SAFETY, kind=Kind.TEXT, body=body, ts=1.7e9)
    return encode_record(Record(message=message, received_at=1.7e9 + 1))


def compact_frames(raw: bytes, ref: int) -> list[bytes]:
    """``raw`` as compact fragment frames for a 13-byte card."""
    return [encode_frame_v2(fragments=[part], compact=True) for part in fragment_for_mtu(raw, mtu=MTU, message_ref=ref)]


def parts_of(raw: bytes, ref: int, payload: int = 7) -> list[Fragment]:
    """``raw`` split into decoded fragments of ``payload`` bytes."""
    return [decode_fragment(p) for p in fragment(raw, max_fragment_payload=payload, message_ref=ref)]


@dataclass
class Receipts:
    """A receipt sink that keeps what it is sent."""

    sent: list[Receipt] = field(default_factory=list)

    def send(self, receipt: Receipt) -> None:
        """Keep ``receipt``."""
        self.sent.append(receipt)


@dataclass
class Side:
    """A ground segment and what it writes to, as one process would build it."""

    ground: Ground
    outbox: Outbox
    store: FragmentStore
    counters: Counters


async def ground_side(redis: Redis, keys: Keys, *, with_store: bool = True) -> Side:
    """A fresh ground (a new process, as far as state goes) over ``keys``."""
    outbox = Outbox(redis=redis, keys=keys, consumer="ground-1")
    await outbox.setup()
    store = FragmentStore(redis=redis, keys=keys, ttl_s=3600)
    counters = Counters()
    ground = Ground(
        outbox=outbox,
        releases=ReleaseLog(redis=redis, keys=keys, node="n1"),
        topics=Topics(keys.prefix),
        receipts=Receipts(),
        counters=counters,
        clock=lambda: 1.7e9 + 5,
        fragments=store if with_store else None,
    )
    return Side(ground=ground, outbox=outbox, store=store, counters=counters)


async def delivered(side: Side) -> list[dict[str, object]]:
    """The outbox entries waiting, as the JSON applications will get."""
    return [json.loads(entry.payload) for entry in await side.outbox.take(count=100)]


class TestFragmentStore:
    @pytest.mark.parametrize("seed", range(6))
    async def test_completes_like_the_model_in_any_order(self, redis: Redis, keys: Keys, seed: int) -> None:
        """Shuffled fragments with repeats complete in Redis exactly when the Reassembly model completes."""
        store = FragmentStore(redis=redis, keys=keys)
        raw = record(seed, body="x" * (20 + seed * 13))
        parts = parts_of(raw, ref=seed)
        rng = random.Random(seed)
        arrivals = parts + [rng.choice(parts) for _ in range(4)]
        rng.shuffle(arrivals)
        model = Reassembly(max_age_s=60)
        for part in arrivals:
            expected = model.add(part, now=0)
            done = await store.add(LINK, [part])
            if expected is not None:
                assert [join_fragments(parts) for parts in done] == [expected]
                break
            assert done == []
            assert await store.missing(LINK, seed) == model.missing(seed, now=0)

    async def test_one_frame_is_one_round_trip(self, counted: Counted) -> None:
        """Storing every fragment of a frame takes one script call, whatever their number."""
        store = FragmentStore(redis=counted.client, keys=Keys(f"t{uuid.uuid4().hex[:10]}"))
        parts = parts_of(record(1), ref=3)
        await store.add(LINK, parts[:1])  # loads the script
        counted.writes = 0
        done = await store.add(LINK, parts[1:] + parts[1:3])
        assert counted.writes == 1
        assert [join_fragments(p) for p in done] == [record(1)]
        await store.forget(LINK, [3])

    async def test_each_fragment_renews_the_ttl(self, redis: Redis, keys: Keys) -> None:
        """A partial lives ttl_s after its latest fragment: each fragment sets the hash's TTL again."""
        store = FragmentStore(redis=redis, keys=keys, ttl_s=100)
        parts = parts_of(record(1), ref=0)
        await store.add(LINK, parts[:1])
        assert 99_000 < await redis.pttl(store.key(LINK, 0)) <= 100_000
        await redis.pexpire(store.key(LINK, 0), 5_000)
        await store.add(LINK, parts[1:2])
        assert 99_000 < await redis.pttl(store.key(LINK, 0)) <= 100_000

    async def test_a_new_total_replaces_a_stale_partial(self, redis: Redis, keys: Keys) -> None:
        """A fragment under a held ref with another total drops the old partial first."""
        store = FragmentStore(redis=redis, keys=keys)
        await store.add(LINK, parts_of(record(1, body="x" * 60), ref=2)[:3])
        new = parts_of(record(2, body="y"), ref=2)
        await store.add(LINK, new[1:2])
        assert await store.missing(LINK, 2) == [i for i in range(len(new)) if i != 1]

    async def test_links_are_apart(self, redis: Redis, keys: Keys) -> None:
        """The same ref on two links names two messages."""
        store = FragmentStore(redis=redis, keys=keys)
        a, b = parts_of(record(1), ref=1), parts_of(record(2, body="other text"), ref=1)
        await store.add("a", a[:-1])
        await store.add("b", b[:-1])
        assert [join_fragments(p) for p in await store.add("a", a[-1:])] == [record(1)]
        assert [join_fragments(p) for p in await store.add("b", b[-1:])] == [record(2, body="other text")]

    async def test_new_ref_counts_wraps_and_clears_what_the_ref_held(self, redis: Redis, keys: Keys) -> None:
        """Refs go 0, 1, … refs-1, 0 across store objects (restarts), and handing one out deletes its old partial."""
        first = FragmentStore(redis=redis, keys=keys, refs=3)
        assert [await first.new_ref(LINK) for _ in range(2)] == [0, 1]
        await first.add(LINK, parts_of(record(1), ref=0)[:1])
        second = FragmentStore(redis=redis, keys=keys, refs=3)
        assert await second.new_ref(LINK) == 2
        assert await second.missing(LINK, 0) is not None
        assert await second.new_ref(LINK) == 0
        assert await second.missing(LINK, 0) is None
        assert await second.new_ref("other") == 0

    @pytest.mark.parametrize(("ttl_s", "refs"), [(0, 128), (float("nan"), 128), (True, 128), (60, 1), (60, 2**33)])
    def test_bad_arguments(self, redis: Redis, keys: Keys, ttl_s: float, refs: int) -> None:
        """A ttl_s under a second or not a number, or a ref count out of range, is a ValueError."""
        with pytest.raises(ValueError, match=r"ttl_s|refs"):
            FragmentStore(redis=redis, keys=keys, ttl_s=ttl_s, refs=refs)


class TestGround:
    async def test_a_record_is_delivered_only_when_its_last_fragment_arrives(self, redis: Redis, keys: Keys) -> None:
        """Frames of fragments deliver nothing until the last one, then the whole record once; the partial is gone."""
        side = await ground_side(redis, keys)
        raw = record(7)
        frames = compact_frames(raw, ref=4)
        assert len(frames) > 3
        for frame in frames[:-1]:
            await side.ground.receive(frame, link=LINK)
            assert await delivered(side) == []
        await side.ground.receive(frames[-1], link=LINK)
        [got] = await delivered(side)
        assert (got["seq"], got["body"], got["link"]) == (7, "冰面有裂缝 绕行北侧", LINK)
        assert await side.store.missing(LINK, 4) is None
        assert side.counters.get("ground.reassembled") == 1

    async def test_fragments_outlive_a_ground_restart(self, redis: Redis, keys: Keys) -> None:
        """A fragment reported sent is kept in Redis: a new ground process completes the message with the rest."""
        frames = compact_frames(record(8), ref=0)
        before = await ground_side(redis, keys)
        for frame in frames[:-1]:
            await before.ground.receive(frame, link=LINK)
        after = await ground_side(redis, keys)
        await after.ground.receive(frames[-1], link=LINK)
        assert [d["seq"] for d in await delivered(after)] == [8]

    async def test_retransmissions_deliver_once(self, redis: Redis, keys: Keys) -> None:
        """Every fragment sent twice, in any order (retries after lost feedback), gives one delivery."""
        side = await ground_side(redis, keys)
        frames = compact_frames(record(9), ref=1)
        resent = frames + frames[::-1]
        for frame in resent:
            await side.ground.receive(frame, link=LINK)
        assert [d["seq"] for d in await delivered(side)] == [9]
        assert side.counters.get("ground.duplicates") == 1

    async def test_mixed_messages_are_refused_and_nothing_is_delivered(self, redis: Redis, keys: Keys) -> None:
        """Parts of two same-sized messages under one ref fail the CRC: LinkError, no delivery, the partial dropped."""
        side = await ground_side(redis, keys)
        one, two = parts_of(record(1, body="aaaa"), ref=6), parts_of(record(2, body="bbbb"), ref=6)
        assert len(one) == len(two)
        await side.ground.receive(encode_frame_v2(fragments=[encode_fragment(p) for p in one[:-1]]), link=LINK)
        with pytest.raises(LinkError, match="does not decode"):
            await side.ground.receive(encode_frame_v2(fragments=[encode_fragment(two[-1])]), link=LINK)
        assert await delivered(side) == []
        assert await side.store.missing(LINK, 6) is None
        assert side.counters.get("ground.bad_messages") == 1

    async def test_a_ground_without_a_store_refuses_fragments(self, redis: Redis, keys: Keys) -> None:
        """Without a fragment store, a frame with fragments is a LinkError (so it is retried) and delivers nothing."""
        side = await ground_side(redis, keys, with_store=False)
        frame = encode_frame_v2(
            records=[record(1)], fragments=fragment(record(2), max_fragment_payload=9, message_ref=0)
        )
        with pytest.raises(LinkError, match="no fragment store"):
            await side.ground.receive(frame, link=LINK)
        assert await delivered(side) == []
        await side.ground.receive(encode_frame_v2(records=[record(3)]), link=LINK)
        assert [d["seq"] for d in await delivered(side)] == [3]

    async def test_v1_v2_and_mixed_frames(self, redis: Redis, keys: Keys) -> None:
        """A v1 frame, and a v2 frame with whole records beside fragments of two messages, all deliver."""
        side = await ground_side(redis, keys)
        await side.ground.receive(encode_frame([record(1), record(2)], frame_seq=0), link=LINK)
        a, b = (
            fragment(record(5), max_fragment_payload=30, message_ref=1),
            fragment(record(6), max_fragment_payload=30, message_ref=2),
        )
        await side.ground.receive(encode_frame_v2(records=[record(3)], fragments=[a[0], b[0]]), link=LINK)
        await side.ground.receive(encode_frame_v2(records=[record(4)], fragments=a[1:] + b[1:]), link=LINK)
        assert sorted(int(str(d["seq"])) for d in await delivered(side)) == [1, 2, 3, 4, 5, 6]

    async def test_garbage_is_a_link_error(self, redis: Redis, keys: Keys) -> None:
        """A frame that does not decode is a LinkError counted as a bad frame."""
        side = await ground_side(redis, keys)
        with pytest.raises(LinkError, match="does not decode"):
            await side.ground.receive(b"\xb4\x01", link=LINK)
        assert side.counters.get("ground.bad_frames") == 1


class TestOverMqtt:
    async def test_chinese_text_over_a_13_byte_card_reaches_the_application(self, redis: Redis, keys: Keys) -> None:
        """A Chinese text sent as 13-byte fragments is published once, whole, on the delivered topic."""
        side = await ground_side(redis, keys)
        topics = Topics(keys.prefix)
        got: list[dict[str, object]] = []

        def collect(message: Inbound) -> None:
            got.append(json.loads(message.payload))
            message.ack()

        def connect(clean_start: bool) -> ExactlyOncePublisher:
            return ExactlyOncePublisher(url=MQTT_URL, client_id=f"{keys.prefix}-ground", clean_start=clean_start)

        subscriber = MqttClient(url=MQTT_URL, client_id=f"{keys.prefix}-app")
        subscriber.route(topics.delivered("+"), collect)
        async with subscriber, publishing(side.ground, connect):
            await subscriber.subscribe(topics.delivered("+"), qos=2)
            body = "北斗短报文测试\uff1a冰面有裂缝\uff0c请绕行北侧\u3002电量百分之七十一\u3002"
            for frame in compact_frames(record(11, body=body), ref=5):
                await side.ground.receive(frame, link=LINK)
            await eventually(lambda: len(got) == 1, what="the delivery")
        assert [(d["seq"], d["body"]) for d in got] == [(11, body)]


@contextlib.asynccontextmanager
async def publishing(ground: Ground, connect: Callable[[bool], ExactlyOncePublisher]) -> AsyncIterator[None]:
    """Run ``ground.publish_forever`` for the duration of a block."""
    task = asyncio.create_task(ground.publish_forever(connect))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
