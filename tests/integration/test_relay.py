"""The relay against the real Redis queue and a scripted MockLink: retries, dead letters, expiry, packing, intervals."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

from gateway.ceilings import Ceilings, Shares
from gateway.counters import Counters
from gateway.links.base import Feedback, FeedbackCode
from gateway.links.clock import RealClock
from gateway.links.mock import Handler, MockLink
from gateway.names import Keys
from gateway.queue import Accepted, Queue
from gateway.queue.fragments import FragmentStore
from gateway.receipts import Receipt, ReceiptKind
from gateway.relay import Backlog, Relay
from protocols.envelope import Kind, Message, Priority
from protocols.fragments import Reassembly
from protocols.frame import Record, decode_record, encode_record, read_frame

if TYPE_CHECKING:
    from tests.integration.conftest import Counted

from tests.harness import until

pytestmark = pytest.mark.integration

DISTRESS, URGENCY, SAFETY, ROUTINE = Priority.DISTRESS, Priority.URGENCY, Priority.SAFETY, Priority.ROUTINE
SENT = Feedback(FeedbackCode.SENT)
LOST = Feedback(FeedbackCode.LOST)


class Receipts:
    """A ReceiptSink that keeps every receipt in order."""

    def __init__(self) -> None:
        self.all: list[Receipt] = []

    def send(self, receipt: Receipt) -> None:
        self.all.append(receipt)

    def of(self, message_id: str) -> list[Receipt]:
        """The receipts of one message, in order."""
        return [r for r in self.all if r.message_id == message_id]

    def kinds(self, message_id: str) -> list[ReceiptKind]:
        """The receipt kinds of one message, in order."""
        return [r.kind for r in self.of(message_id)]


_seqs = itertools.count(1)


def accepted(
    *,
    priority: Priority = ROUTINE,
    terminal: str = "T1",
    body: str = "hello",
    expires_at: float | None = None,
    receipt: bool = False,
) -> Accepted:
    """An accepted message with a real link record and a fresh seq."""
    now = time.time()
    kind = Kind.SOS if priority is DISTRESS else Kind.TEXT
    message = Message(
        terminal=terminal, seq=next(_seqs), priority=priority, kind=kind, body=body, ts=now, receipt=receipt
    )
    return Accepted(
        message_id=f"{terminal}:{message.seq}",
        terminal=terminal,
        seq=message.seq,
        priority=priority,
        record=encode_record(Record(message=message, received_at=now)),
        received_at=now,
        expires_at=expires_at,
        receipt=receipt,
    )


def frame_ids(frame: bytes) -> list[str]:
    """The message ids a frame carries, in frame order."""
    return [f"{r.message.terminal}:{r.message.seq}" for r in read_frame(frame).records]


def frame_classes(frame: bytes) -> list[Priority]:
    """The classes of a frame's records, in frame order."""
    return [r.message.priority for r in read_frame(frame).records]


@dataclass
class Rig:
    """A relay wired to a real queue, a collecting receipt sink and a mock link."""

    queue: Queue
    link: MockLink
    relay: Relay
    backlog: Backlog
    receipts: Receipts
    counters: Counters
    ids: list[str] = field(default_factory=list)

    async def enqueue(self, *items: Accepted) -> list[str]:
        """Queue ``items`` (all must be new) and return their ids."""
        outcomes = await self.queue.enqueue(items)
        assert all(o.value == "queued" for o in outcomes), outcomes
        self.ids += [i.message_id for i in items]
        return [i.message_id for i in items]

    async def in_queue(self) -> int:
        """Entries still in the class streams, waiting or pending."""
        return sum(d.depth + d.pending for d in await self.queue.depths())

    def transmitted(self) -> list[str]:
        """Every message id handed to the link, in order, retries included."""
        return [i for frame, _ in self.link.transmissions for i in frame_ids(frame)]


async def make_rig(
    redis: Redis, keys: Keys, handler: Handler, *, mtu: int = 1024, ready_in: Any = None, **options: Any
) -> Rig:
    """Set up the queue and build a relay over a MockLink with ``handler``."""
    queue = Queue(redis=redis, keys=keys, consumer="relay-test")
    await queue.setup()
    link = MockLink(handler, mtu=mtu, **({} if ready_in is None else {"ready_in": ready_in}))
    backlog, receipts, counters = Backlog(), Receipts(), Counters()
    relay = Relay(
        link=link, queue=queue, backlog=backlog, receipts=receipts, counters=counters, clock=RealClock(), **options
    )
    return Rig(queue=queue, link=link, relay=relay, backlog=backlog, receipts=receipts, counters=counters)


@contextlib.asynccontextmanager
async def relaying(relay: Relay) -> AsyncIterator[None]:
    """Run ``relay`` for the block; then stop it and wait for transmissions under way."""
    task = asyncio.create_task(relay.run(), name="test.relay")
    try:
        yield
    finally:
        relay.stop()
        # run() would return only after its idle read (up to 1 s) ends; cancelling it there loses
        # nothing, since taken entries stay pending and drain() still waits for every transmission.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.drain()


def lose_every(n: int, delivered: list[str]) -> Handler:
    """A handler that loses every ``n``-th frame and records the ids of the frames that arrive."""
    calls = itertools.count(1)

    async def handle(frame: bytes, priority: Priority) -> Feedback:
        if next(calls) % n == 0:
            return LOST
        delivered.extend(frame_ids(frame))
        return SENT

    return handle


def always(feedback: Feedback) -> Handler:
    """A handler that answers every frame with ``feedback``."""

    async def handle(frame: bytes, priority: Priority) -> Feedback:
        await asyncio.sleep(0)
        return feedback

    return handle


class TestLossyLink:
    async def test_every_message_arrives_exactly_once(self, redis: Redis, keys: Keys) -> None:
        """A link that loses every third frame still carries each message to the ground exactly once."""
        delivered: list[str] = []
        rig = await make_rig(redis, keys, lose_every(3, delivered), pack_max=4, max_attempts=100)
        ids = await rig.enqueue(*(accepted() for _ in range(30)))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="every message acked")
        assert sorted(delivered) == sorted(ids)
        assert Counter(delivered).most_common(1)[0][1] == 1
        assert rig.counters.get("link.mock.lost") >= 1
        assert rig.counters.get("sent.routine") == 30
        assert await rig.queue.dead_letters() == []


async def _done(rig: Rig) -> bool:
    return len(rig.backlog) == 0 and rig.relay.in_flight == 0 and await rig.in_queue() == 0


class TestDeadLetters:
    async def test_routine_is_dead_lettered_after_max_attempts(self, redis: Redis, keys: Keys) -> None:
        """On a link that loses everything, routine goes to the dead letters as link_failed after max_attempts."""
        rig = await make_rig(redis, keys, always(LOST), max_attempts=3)
        ids = await rig.enqueue(accepted(receipt=True), accepted(receipt=False))
        async with relaying(rig.relay):
            await until(lambda: _dead_count(rig, 2), what="two dead letters")
        dead = await rig.queue.dead_letters()
        assert sorted(d.entry.message_id for d in dead if d.entry) == sorted(ids)
        assert {d.reason for d in dead} == {"link_failed"}
        assert Counter(rig.transmitted()) == {ids[0]: 3, ids[1]: 3}
        rejected = rig.receipts.of(ids[0])
        assert [(r.kind, r.reason) for r in rejected] == [(ReceiptKind.REJECTED, "link_failed")]
        assert rig.receipts.of(ids[1]) == []
        assert rig.counters.get("dead.routine") == 2
        assert await rig.in_queue() == 0

    async def test_distress_is_never_dead_lettered(self, redis: Redis, keys: Keys) -> None:
        """On a link that loses everything, distress is retried past max_attempts while routine is dead-lettered."""
        rig = await make_rig(redis, keys, always(LOST), max_attempts=1)
        sos, routine = await rig.enqueue(accepted(priority=DISTRESS, receipt=True), accepted(receipt=True))
        async with relaying(rig.relay):
            await until(_async(lambda: rig.transmitted().count(sos) >= 2), what="a second distress attempt")
        dead = await rig.queue.dead_letters()
        assert [d.entry.message_id for d in dead if d.entry] == [routine]
        assert rig.receipts.of(sos) == []
        depths = {d.priority: d for d in await rig.queue.depths()}
        assert depths[DISTRESS].pending == 1  # still the relay's, to retry

    async def test_lost_distress_is_retried_at_once(self, redis: Redis, keys: Keys) -> None:
        """A distress frame the link lost is sent again without waiting out the relay's idle read."""
        started: list[float] = []

        async def lose(frame: bytes, priority: Priority) -> Feedback:
            started.append(time.monotonic())
            return LOST

        rig = await make_rig(redis, keys, lose)
        await rig.enqueue(accepted(priority=DISTRESS))
        async with relaying(rig.relay):
            await until(_async(lambda: len(started) >= 2), what="a second attempt")
        assert started[1] - started[0] < 0.3

    async def test_too_large_record_is_dead_lettered(self, redis: Redis, keys: Keys) -> None:
        """A record bigger than the link's mtu is dead-lettered as too_large and does not hold back the others."""
        rig = await make_rig(redis, keys, always(SENT), mtu=60)
        big, small = await rig.enqueue(accepted(body="x" * 100, receipt=True), accepted(body="ok", receipt=True))
        async with relaying(rig.relay):
            await until(lambda: _dead_count(rig, 1), what="a dead letter")
            await until(_async(lambda: ReceiptKind.SENT in rig.receipts.kinds(small)), what="the small one sent")
        (dead,) = await rig.queue.dead_letters()
        assert (dead.reason, dead.entry and dead.entry.message_id) == ("too_large", big)
        assert [(r.kind, r.reason) for r in rig.receipts.of(big)] == [(ReceiptKind.REJECTED, "too_large")]
        assert rig.transmitted() == [small]  # the mock never saw the oversize frame
        assert await rig.in_queue() == 0


async def _dead_count(rig: Rig, n: int) -> bool:
    return len(await rig.queue.dead_letters()) >= n and rig.relay.in_flight == 0


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


class TestExpiry:
    async def test_expired_routine_is_dropped_with_a_receipt(self, redis: Redis, keys: Keys) -> None:
        """A routine message past its expiry is never transmitted: it gets an expired receipt and a counter."""
        rig = await make_rig(redis, keys, always(SENT))
        stale, fresh = await rig.enqueue(
            accepted(expires_at=time.time() - 1, receipt=True), accepted(expires_at=time.time() + 600, receipt=True)
        )
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="the queue to empty")
        assert rig.transmitted() == [fresh]
        assert rig.receipts.kinds(stale) == [ReceiptKind.EXPIRED]
        assert rig.receipts.kinds(fresh) == [ReceiptKind.SENT]
        assert rig.counters.get("expired.routine") == 1

    async def test_distress_never_expires(self, redis: Redis, keys: Keys) -> None:
        """A distress entry that carries a past expiry time is still transmitted, never expired."""
        rig = await make_rig(redis, keys, always(SENT))
        (sos,) = await rig.enqueue(accepted(priority=DISTRESS, expires_at=time.time() - 60, receipt=True))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="the queue to empty")
        assert rig.transmitted() == [sos]
        assert rig.receipts.kinds(sos) == [ReceiptKind.SENT]
        assert rig.counters.get("expired.distress") == 0


class TestPacking:
    async def test_forty_messages_fit_in_five_frames(self, redis: Redis, keys: Keys) -> None:
        """With pack_max=8 and a roomy mtu, 40 queued messages go in at most 5 frames, each message once."""
        rig = await make_rig(redis, keys, always(SENT), mtu=4096, pack_max=8)
        ids = await rig.enqueue(*(accepted() for _ in range(40)))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="the queue to empty")
        assert len(rig.link.transmissions) <= 5
        assert sorted(rig.transmitted()) == sorted(ids)

    async def test_a_frame_never_exceeds_the_mtu(self, redis: Redis, keys: Keys) -> None:
        """Packing records of mixed sizes under a small mtu keeps every frame within it and still packs."""
        rig = await make_rig(redis, keys, always(SENT), mtu=160, pack_max=32)
        ids = await rig.enqueue(*(accepted(body="y" * (5 + 11 * (i % 6))) for i in range(30)))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="the queue to empty")
        sizes = [len(frame) for frame, _ in rig.link.transmissions]
        assert max(sizes) <= 160
        assert len(sizes) < len(ids)  # several records per frame
        assert sorted(rig.transmitted()) == sorted(ids)

    async def test_records_in_a_frame_go_distress_first(self, redis: Redis, keys: Keys) -> None:
        """Queued in reverse class order, packed frames still carry distress, then urgency, safety, routine."""
        rig = await make_rig(redis, keys, always(SENT), pack_max=8)
        for priority in (ROUTINE, SAFETY, URGENCY, DISTRESS):
            await rig.enqueue(*(accepted(priority=priority) for _ in range(4)))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="the queue to empty")
        frames = [frame_classes(frame) for frame, _ in rig.link.transmissions]
        assert frames[0] == [DISTRESS] * 4 + [URGENCY] * 4
        assert all(classes == sorted(classes) for classes in frames)
        assert sorted(c for f in frames for c in f) == sorted([ROUTINE, SAFETY, URGENCY, DISTRESS] * 4)
        assert next(p for _, p in rig.link.transmissions) is DISTRESS  # the frame goes at its top class


class TestInterval:
    async def test_only_distress_goes_while_the_interval_runs(self, redis: Redis, keys: Keys) -> None:
        """While ready_in(ROUTINE) > 0 only distress is transmitted; the rest goes once the interval ends."""
        interval_over = asyncio.Event()

        def ready_in(priority: Priority) -> float:
            return 0.0 if priority is DISTRESS or interval_over.is_set() else 0.2

        rig = await make_rig(redis, keys, always(SENT), ready_in=ready_in)
        routine = await rig.enqueue(accepted(), accepted(priority=URGENCY))
        (sos,) = await rig.enqueue(accepted(priority=DISTRESS))
        async with relaying(rig.relay):
            await until(_async(lambda: sos in rig.transmitted()), what="the distress frame")
            await asyncio.sleep(0.5)  # more than two interval polls
            assert rig.transmitted() == [sos]
            assert await rig.in_queue() == 2
            interval_over.set()
            await until(lambda: _done(rig), what="the queue to empty")
        assert sorted(rig.transmitted()) == sorted([sos, *routine])

    async def test_held_routine_does_not_spin_during_the_interval(self, counted: Counted, keys: Keys) -> None:
        """A ready routine entry held in the backlog while the interval runs costs no Redis round trips per loop."""
        rig = await make_rig(counted.client, keys, always(SENT), ready_in=lambda p: 0.0 if p is DISTRESS else 5.0)
        await rig.enqueue(accepted())
        for entry in await rig.queue.take(count=1):
            rig.backlog.push(entry)  # as the service does with reclaimed entries
        counted.writes = 0
        async with relaying(rig.relay):
            await asyncio.sleep(0.5)
        assert rig.transmitted() == []
        assert counted.writes < 20, f"{counted.writes} Redis round trips in 0.5 s"


class TestSentAndStop:
    async def test_sent_receipt_waits_for_the_link(self, redis: Redis, keys: Keys) -> None:
        """The sent receipt, and the ack, come only after the link reports the frame sent."""
        gate = asyncio.Event()

        async def held(frame: bytes, priority: Priority) -> Feedback:
            await gate.wait()
            return SENT

        rig = await make_rig(redis, keys, held)
        asked, quiet = await rig.enqueue(accepted(receipt=True), accepted(receipt=False))
        async with relaying(rig.relay):
            await until(_async(lambda: rig.relay.in_flight == 1), what="a transmission under way")
            await asyncio.sleep(0.1)
            assert rig.receipts.all == []
            assert await rig.in_queue() == 2  # taken, pending, not acked
            gate.set()
            await until(lambda: _done(rig), what="the ack")
        assert rig.receipts.kinds(asked) == [ReceiptKind.SENT]
        assert rig.receipts.of(asked)[0].link == "mock"
        assert rig.receipts.of(quiet) == []

    async def test_stop_and_drain_let_transmissions_finish(self, redis: Redis, keys: Keys) -> None:
        """After stop(), drain() waits for the frame under way, which is then acked; run() returns."""
        gate = asyncio.Event()

        async def held(frame: bytes, priority: Priority) -> Feedback:
            await gate.wait()
            return SENT

        rig = await make_rig(redis, keys, held)
        (only,) = await rig.enqueue(accepted(receipt=True))
        running = asyncio.create_task(rig.relay.run())
        await until(_async(lambda: rig.relay.in_flight == 1), what="a transmission under way")
        rig.relay.stop()
        draining = asyncio.create_task(rig.relay.drain())
        await asyncio.sleep(0.1)
        assert not draining.done()
        gate.set()
        await asyncio.wait_for(draining, 1.0)
        await asyncio.wait_for(running, 2.0)
        assert rig.receipts.kinds(only) == [ReceiptKind.SENT]
        assert rig.transmitted() == [only]
        assert await rig.in_queue() == 0


class TestCeilings:
    async def test_routine_keeps_to_its_share_while_safety_goes(self, redis: Redis, keys: Keys) -> None:
        """With routine capped at 30 % of a 10-frame window, three routine frames go, then only safety and above."""
        shares = Shares(shares={ROUTINE: 0.3}, window_s=10, aging_s=60)
        ceilings = Ceilings(shares=shares, capacity_per_hour=3600)
        rig = await make_rig(redis, keys, always(SENT), pack_max=1, ceilings=ceilings)
        await rig.enqueue(*(accepted() for _ in range(10)))
        async with relaying(rig.relay):
            await until(lambda: _count(rig, "sent.routine", 3), what="three routine frames")
            safety = await rig.enqueue(*(accepted(priority=SAFETY) for _ in range(3)))
            await until(lambda: _count(rig, "sent.safety", 3), what="the safety frames")
        assert rig.counters.get("sent.routine") == 3
        assert set(safety) <= set(rig.transmitted())
        assert await rig.in_queue() == 7


async def _count(rig: Rig, counter: str, n: int) -> bool:
    return rig.counters.get(counter) >= n


class TestFragments:
    async def test_oversized_messages_arrive_whole_over_a_lossy_link(self, redis: Redis, keys: Keys) -> None:
        """Messages three times the MTU go as fragments; with every third frame lost, each is rebuilt exactly once."""
        ground = Reassembly(max_age_s=3600)
        rebuilt: list[str] = []
        calls = itertools.count(1)

        async def handle(frame: bytes, priority: Priority) -> Feedback:
            if next(calls) % 3 == 0:
                return LOST
            carried = read_frame(frame)
            rebuilt.extend(f"{r.message.terminal}:{r.message.seq}" for r in carried.records)
            for part in carried.fragments:
                record = ground.add(part, now=0.0)
                if record is not None:
                    message = decode_record(record).message
                    rebuilt.append(f"{message.terminal}:{message.seq}")
            return SENT

        store = FragmentStore(redis=redis, keys=keys)
        rig = await make_rig(redis, keys, handle, mtu=40, fragments=store, max_attempts=100)
        ids = await rig.enqueue(*(accepted(body="x" * 90, receipt=True) for _ in range(4)))
        small = await rig.enqueue(accepted(body="hi"))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="every message acked")
        assert sorted(rebuilt) == sorted(ids + small)
        assert rig.counters.get("link.mock.fragments") >= 4 * 3
        assert all(rig.receipts.kinds(i) == [ReceiptKind.SENT] for i in ids)
        assert await rig.queue.dead_letters() == []

    async def test_distress_overtakes_a_message_between_its_fragments(self, redis: Redis, keys: Keys) -> None:
        """An SOS queued while a long routine message is half sent goes in the very next transmission."""
        sent: list[list[Priority]] = []
        queued_sos: list[str] = []

        async def handle(frame: bytes, priority: Priority) -> Feedback:
            carried = read_frame(frame)
            sent.append([r.message.priority for r in carried.records] or [priority])
            if len(sent) == 2 and not queued_sos:
                queued_sos.extend(await rig.enqueue(accepted(priority=DISTRESS, body="sos")))
            return SENT

        store = FragmentStore(redis=redis, keys=keys)
        rig = await make_rig(redis, keys, handle, mtu=30, fragments=store, max_in_flight=1)
        await rig.enqueue(accepted(body="y" * 200))
        async with relaying(rig.relay):
            await until(lambda: _done(rig), what="both messages acked")
        assert sent[2] == [DISTRESS]
        assert len(sent) > 4
