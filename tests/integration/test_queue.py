"""The class queues against the real Redis: dedup, strict priority, blocking, ack, reclaim, dead letters, depths."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.exceptions import QueueUnavailable
from gateway.names import Keys
from gateway.queue import MAX_SEQ, Accepted, DeadLetter, Delivery, EnqueueOutcome, Entry, Outbox, Queue, Stats
from gateway.queue.scripts import LuaScript
from protocols.envelope import Priority
from protocols.seal import ReplayWindow, Verdict
from tests.harness import blocked_clients, until, until_blocked

if TYPE_CHECKING:
    from conftest import Counted

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("SATGW_REDIS_URL", "redis://127.0.0.1:6379/0")

QUEUED, DUPLICATE, TOO_OLD = EnqueueOutcome.QUEUED, EnqueueOutcome.DUPLICATE, EnqueueOutcome.TOO_OLD


def msg(
    seq: int,
    *,
    terminal: str = "T1",
    priority: Priority = Priority.ROUTINE,
    record: bytes = b"rec",
    received_at: float | None = None,
    expires_at: float | None = None,
    receipt: bool = False,
) -> Accepted:
    """An accepted message with defaults for everything but the seq."""
    return Accepted(
        message_id=f"{terminal}:{seq}",
        terminal=terminal,
        seq=seq,
        priority=priority,
        record=record,
        received_at=time.time() if received_at is None else received_at,
        expires_at=expires_at,
        receipt=receipt,
    )


async def new_queue(redis: Redis, keys: Keys, consumer: str = "a", **options: int) -> Queue:
    """A queue whose streams and group exist."""
    queue = Queue(redis=redis, keys=keys, consumer=consumer, **options)
    await queue.setup()
    return queue


@pytest.fixture
async def queue(redis: Redis, keys: Keys) -> Queue:
    """A set-up queue with consumer ``a`` and a replay window of 8."""
    return await new_queue(redis, keys, replay_window=8)


def ids(entries: Sequence[Entry]) -> list[str]:
    """The message ids of entries, in order."""
    return [e.message_id for e in entries]


class TestArguments:
    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"consumer": ""}, ValueError),
            ({"replay_window": 0}, ValueError),
            ({"replay_window": 10**10}, ValueError),
            ({"max_deliveries": 0}, ValueError),
            ({"keys": "satgw"}, TypeError),
        ],
    )
    def test_bad_constructor_arguments(self, redis: Redis, keys: Keys, options: dict[str, object], error: type) -> None:
        """The constructor refuses bad arguments at once."""
        arguments: dict[str, object] = {"redis": redis, "keys": keys, "consumer": "a", **options}
        with pytest.raises(error):
            Queue(**arguments)  # type: ignore[arg-type]

    def test_text_client_refused(self, keys: Keys) -> None:
        """A client that decodes replies to str is refused, since records are bytes."""
        with pytest.raises(ValueError, match="decode_responses"):
            Queue(redis=Redis.from_url(REDIS_URL, decode_responses=True), keys=keys, consumer="a")

    @pytest.mark.parametrize("seq", [-1, MAX_SEQ + 1, True, 1.0])
    def test_bad_seq_refused(self, seq: int) -> None:
        """An Accepted with a seq outside 0..2^63-1 cannot be built."""
        with pytest.raises(ValueError, match="seq"):
            msg(seq)

    async def test_bad_take_arguments(self, queue: Queue) -> None:
        """take refuses a zero count and a negative wait."""
        with pytest.raises(ValueError, match="count"):
            await queue.take(count=0)
        with pytest.raises(ValueError, match="block_s"):
            await queue.take(block_s=-1)


class TestEnqueueTake:
    async def test_round_trip_keeps_every_field(self, queue: Queue) -> None:
        """What take returns is exactly what was enqueued, binary record included."""
        sent = msg(
            7,
            priority=Priority.SAFETY,
            record=bytes(range(256)),
            received_at=1.25e9 + 0.1,
            expires_at=2e9 + 0.5,
            receipt=True,
        )
        assert await queue.enqueue([sent]) == [QUEUED]
        [got] = await queue.take()
        assert _fields(got) | {"stream_id": ""} == _fields(sent) | {"stream_id": ""}
        assert got.stream_id
        assert got.expired(2e9 + 0.5)
        assert not got.expired(2e9)

    async def test_stream_fields_are_the_documented_ones(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """The stream entry carries the fields of docs/internals.md, with x empty when there is no expiry."""
        await queue.enqueue([msg(3, priority=Priority.DISTRESS, record=b"\x00m", received_at=12.5)])
        [(_, fields)] = await redis.xrange(keys.stream(Priority.DISTRESS)) or []
        assert fields == {
            b"id": b"T1:3",
            b"t": b"T1",
            b"s": b"3",
            b"r": b"0",
            b"rx": b"12.5",
            b"x": b"",
            b"m": b"\x00m",
        }

    async def test_empty_queue_takes_nothing(self, queue: Queue) -> None:
        """take on an empty queue returns an empty list without waiting."""
        assert await queue.take(count=5) == []

    async def test_setup_is_idempotent(self, queue: Queue) -> None:
        """A second setup on existing streams and group succeeds and keeps queued entries."""
        await queue.enqueue([msg(1)])
        await queue.setup()
        assert ids(await queue.take()) == ["T1:1"]

    async def test_thousand_message_batch_is_one_round_trip(self, counted: Counted, keys: Keys) -> None:
        """Enqueueing, taking and acking 1000 messages costs one socket write each."""
        queue = await new_queue(counted.client, keys)
        counted.writes = 0
        assert await queue.enqueue([msg(s) for s in range(1000)]) == [QUEUED] * 1000
        assert counted.writes == 1
        taken = await queue.take(count=1000)
        assert len(taken) == 1000
        await queue.ack(taken)
        assert counted.writes == 3
        assert await counted.client.xlen(keys.stream(Priority.ROUTINE)) == 0


class TestReplay:
    async def test_same_seq_twice_is_one_entry(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """A repeated seq is DUPLICATE, in a later batch or the same one, and queued once."""
        assert await queue.enqueue([msg(5), msg(5)]) == [QUEUED, DUPLICATE]
        assert await queue.enqueue([msg(5)]) == [DUPLICATE]
        assert await redis.xlen(keys.stream(Priority.ROUTINE)) == 1

    async def test_too_old(self, queue: Queue) -> None:
        """A seq more than the window below the highest is TOO_OLD; one exactly at the edge is accepted."""
        assert await queue.enqueue([msg(100), msg(91), msg(92)]) == [QUEUED, TOO_OLD, QUEUED]

    async def test_terminals_are_independent(self, queue: Queue) -> None:
        """The same seq from two terminals is two messages."""
        assert await queue.enqueue([msg(5, terminal="T1"), msg(5, terminal="T2")]) == [QUEUED, QUEUED]

    async def test_seqs_beyond_double_precision(self, queue: Queue) -> None:
        """Seqs near 2^63 and seqs one apart above 2^53 are told apart exactly."""
        big = [msg(2**53 + 1), msg(2**53 + 2), msg(MAX_SEQ - 1, terminal="T2"), msg(MAX_SEQ, terminal="T2")]
        assert await queue.enqueue(big) == [QUEUED] * 4
        assert await queue.enqueue(big) == [DUPLICATE] * 4
        taken = await queue.take(count=10)
        assert [e.seq for e in taken] == [m.seq for m in big]

    @pytest.mark.parametrize("boundary", [10**10, 10**18])
    async def test_seq_skipped_across_halves_boundary(self, redis: Redis, keys: Keys, boundary: int) -> None:
        """A seq the top skips while crossing a 10^10 boundary of the script's halves is fresh once, then duplicate."""
        queue = await new_queue(redis, keys, replay_window=3)
        sent = [msg(boundary - 1), msg(boundary + 1), msg(boundary), msg(boundary), msg(boundary - 1)]
        assert await queue.enqueue(sent) == [QUEUED, QUEUED, QUEUED, DUPLICATE, DUPLICATE]

    async def test_window_edge_near_max_seq(self, queue: Queue) -> None:
        """The too-old edge is exact at the top of the seq range (window 8)."""
        assert await queue.enqueue([msg(MAX_SEQ), msg(MAX_SEQ - 9), msg(MAX_SEQ - 8)]) == [QUEUED, TOO_OLD, QUEUED]

    async def test_window_key_layout(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """After a long run the window key is the documented 30-digit header plus one bit per seq below the top."""
        await queue.enqueue([msg(s) for s in range(200) if s != 195])
        seen = {s for s in range(191, 199) if s != 195}  # window 8 covers 191..199; the top, 199, is implicit
        bitmap = sum(0x80 >> (s % 8) for s in seen)
        assert await redis.get(keys.seen("T1")) == b"%020d%010d" % (199, 8) + bytes([bitmap])

    async def test_window_change_keeps_what_both_windows_cover(self, redis: Redis, keys: Keys) -> None:
        """A queue with another window reads an existing key: seqs both windows cover keep their verdict."""
        narrow = await new_queue(redis, keys, replay_window=8)
        assert await narrow.enqueue([msg(100), msg(95), msg(93)]) == [QUEUED] * 3
        wide = await new_queue(redis, keys, replay_window=16)
        assert await wide.enqueue([msg(95), msg(93), msg(100), msg(90), msg(84), msg(83)]) == [
            DUPLICATE,
            DUPLICATE,
            DUPLICATE,
            QUEUED,
            QUEUED,
            TOO_OLD,
        ]
        small = await new_queue(redis, keys, replay_window=3)
        assert await small.enqueue([msg(95), msg(97), msg(97), msg(101), msg(90)]) == [
            TOO_OLD,
            QUEUED,
            DUPLICATE,
            QUEUED,
            TOO_OLD,
        ]

    async def test_foreign_key_fails_before_any_write(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """A window key holding something else fails the whole batch, and nothing of the batch is queued."""
        await redis.set(keys.seen("T2"), b"not a window")
        with pytest.raises(QueueUnavailable, match="not a satgw replay window"):
            await queue.enqueue([msg(1), msg(1, terminal="T2")])
        assert await redis.xlen(keys.stream(Priority.ROUTINE)) == 0

    @settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    @given(
        base=st.sampled_from([0, 10**10 - 6, 2**53 - 6, 10**18 - 6, MAX_SEQ - 2000]),
        window=st.sampled_from([1, 2, 3, 8, 13, 20]),
        steps=st.lists(st.tuples(st.sampled_from("ABCD"), st.integers(-12, 12)), min_size=40, max_size=200),
        cut=st.integers(0, 200),
    )
    def test_script_agrees_with_reference_model(
        self, base: int, window: int, steps: list[tuple[str, int]], cut: int
    ) -> None:
        """On random walks of four terminals' seqs, the enqueue and deliver verdicts equal ReplayWindow's."""
        # Steps scaled to the window make walks resend recent seqs, jump within and beyond the window and
        # fall behind it, all often; the bases put seqs beyond 2^53 and across the 10^10 boundary of the
        # script's halves.
        at = dict.fromkeys("ABCD", base)
        batch = []
        for terminal, step in steps:
            at[terminal] = min(max(at[terminal] + step * (window + 2) // 12, 0), MAX_SEQ)
            batch.append(msg(at[terminal], terminal=terminal))
        models = {terminal: ReplayWindow(size=window) for terminal in "ABCD"}
        expected = [models[m.terminal].accept(m.seq) for m in batch]
        queued, delivered = asyncio.run(_admit_in_two_batches(batch, window, cut))
        assert queued == [_OUTCOME[v] for v in expected]
        assert delivered == [v is Verdict.FRESH for v in expected]


_OUTCOME = {Verdict.FRESH: QUEUED, Verdict.DUPLICATE: DUPLICATE, Verdict.TOO_OLD: TOO_OLD}


async def _admit_in_two_batches(
    batch: list[Accepted], window: int, cut: int
) -> tuple[list[EnqueueOutcome], list[bool]]:
    redis = Redis.from_url(REDIS_URL)
    keys = Keys(prefix=f"t{uuid4().hex[:10]}")
    try:
        queue = await new_queue(redis, keys, replay_window=window)
        outbox = Outbox(redis=redis, keys=keys, consumer="p", window=window)
        await outbox.setup()
        parts = (batch[:cut], batch[cut:])
        deliveries = [[_delivery(m) for m in part] for part in parts]
        queued = await queue.enqueue(parts[0]) + await queue.enqueue(parts[1])
        return queued, await outbox.deliver(deliveries[0]) + await outbox.deliver(deliveries[1])
    finally:
        found = [key async for key in redis.scan_iter(match=keys.pattern)]
        if found:
            await redis.delete(*found)
        await redis.aclose()


def _delivery(m: Accepted) -> Delivery:
    return Delivery(
        message_id=m.message_id,
        terminal=m.terminal,
        seq=m.seq,
        priority=m.priority,
        payload=b"{}",
        receipt=m.receipt,
        link="geo",
        delivered_at=m.received_at,
    )


class TestPriority:
    async def test_distress_overtakes_routine_backlog(self, queue: Queue) -> None:
        """With 500 routine queued and then one distress, the next take returns the distress."""
        await queue.enqueue([msg(s) for s in range(500)])
        await queue.enqueue([msg(1, terminal="SOS", priority=Priority.DISTRESS)])
        assert ids(await queue.take()) == ["SOS:1"]
        assert ids(await queue.take()) == ["T1:0"]

    async def test_take_walks_classes_in_order(self, queue: Queue) -> None:
        """One take returns the classes highest first, and each class in arrival order."""
        await queue.enqueue([msg(s, priority=Priority(3 - s % 4)) for s in range(8)])
        taken = await queue.take(count=6)
        assert [(e.priority, e.seq) for e in taken] == [(0, 3), (0, 7), (1, 2), (1, 6), (2, 1), (2, 5)]

    async def test_max_priority_leaves_lesser_classes(self, queue: Queue) -> None:
        """take with max_priority only takes classes at least that urgent, waiting or not."""
        await queue.enqueue([msg(1), msg(2, priority=Priority.URGENCY)])
        assert ids(await queue.take(count=5, max_priority=Priority.DISTRESS, block_s=0.05)) == []
        assert ids(await queue.take(count=5, max_priority=Priority.SAFETY)) == ["T1:2"]
        assert ids(await queue.take(count=5)) == ["T1:1"]


class TestBlocking:
    async def test_wakes_on_concurrent_enqueue(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """A blocked take returns an entry another task enqueues meanwhile, well before its timeout."""
        producer = await new_queue(redis, keys, consumer="ingest")
        before = await blocked_clients(redis)
        waiter = asyncio.create_task(queue.take(block_s=5))
        await until_blocked(redis, before=before)
        started = time.monotonic()
        await producer.enqueue([msg(1, priority=Priority.URGENCY)])
        assert ids(await waiter) == ["T1:1"]
        assert time.monotonic() - started < 1

    async def test_times_out_empty(self, queue: Queue) -> None:
        """A blocked take with nothing arriving returns an empty list after about block_s."""
        started = time.monotonic()
        assert await queue.take(block_s=0.3) == []
        assert 0.25 < time.monotonic() - started < 2

    async def test_one_entry_goes_to_one_of_two_waiters(self, redis: Redis, keys: Keys) -> None:
        """Two blocked consumers woken by one entry: exactly one gets it, the other keeps waiting and times out."""
        a, b = await new_queue(redis, keys, consumer="a"), await new_queue(redis, keys, consumer="b")
        before = await blocked_clients(redis)
        waiters = [asyncio.create_task(q.take(block_s=1)) for q in (a, b)]
        await until_blocked(redis, before=before, more=2)
        await a.enqueue([msg(1)])
        results = await asyncio.gather(*waiters)
        assert sorted(len(r) for r in results) == [0, 1]


class TestAck:
    async def test_ack_removes_entries(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """Acked entries leave both the pending list and the stream."""
        await queue.enqueue([msg(1), msg(2, priority=Priority.DISTRESS)])
        await queue.ack(await queue.take(count=2))
        for priority in (Priority.DISTRESS, Priority.ROUTINE):
            assert await redis.xlen(keys.stream(priority)) == 0
        assert all(d.pending == 0 and d.depth == 0 for d in await queue.depths())

    async def test_ack_of_thousands_in_two_classes(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """One ack of 2500 entries over two classes (beyond the 1000 ids per XACK of the script) removes them all."""
        await queue.enqueue([msg(s, priority=Priority.SAFETY if s % 5 else Priority.DISTRESS) for s in range(2500)])
        taken = await queue.take(count=2500)
        assert len(taken) == 2500
        await queue.ack(taken)
        assert [(d.depth, d.pending) for d in await queue.depths()] == [(0, 0)] * 4
        assert await redis.xlen(keys.stream(Priority.SAFETY)) == 0


class TestRecoverOwn:
    async def test_restart_gets_own_unacked_entries(self, redis: Redis, keys: Keys) -> None:
        """A queue reusing a consumer name recovers what it took and never acked, highest class first; others do not."""
        before = await new_queue(redis, keys, consumer="relay-1")
        await before.enqueue([msg(1), msg(2, priority=Priority.DISTRESS), msg(3), msg(4)])
        taken = await before.take(count=3)
        await before.ack(taken[1:2])
        await redis.xdel(keys.stream(Priority.ROUTINE), taken[2].stream_id)  # gone while pending
        after = await new_queue(redis, keys, consumer="relay-1")
        assert ids(await after.recover_own()) == ["T1:2"]
        assert ids(await after.take(count=5)) == ["T1:4"]
        assert await (await new_queue(redis, keys, consumer="relay-2")).recover_own() == []
        assert [(d.depth, d.pending) for d in await after.depths()] == [(0, 1), (0, 0), (0, 0), (0, 1)]


class TestReclaim:
    async def test_dead_consumer_entries_move_then_die(self, redis: Redis, keys: Keys) -> None:
        """A's idle entries go to B after min_idle; once delivered max_deliveries times they are dead-lettered."""
        a = await new_queue(redis, keys, consumer="a", max_deliveries=2)
        b = await new_queue(redis, keys, consumer="b", max_deliveries=2)
        await a.enqueue([msg(1)])
        assert ids(await a.take()) == ["T1:1"]
        assert await b.reclaim(min_idle_s=5) == []
        assert ids(await until(lambda: b.reclaim(min_idle_s=0.05), what="A's entry idle")) == ["T1:1"]

        async def buried() -> list[DeadLetter]:
            assert await b.reclaim(min_idle_s=0.05) == []  # over max_deliveries: buried, never handed out
            return await b.dead_letters()

        [dead] = await until(buried, what="the entry dead-lettered")
        assert (dead.reason, dead.entry and dead.entry.message_id) == ("max_deliveries", "T1:1")
        assert [(d.depth, d.pending) for d in await b.depths()] == [(0, 0)] * 4

    async def test_reclaimed_highest_class_first(self, redis: Redis, keys: Keys) -> None:
        """Reclaimed entries come back highest class first."""
        a, b = await new_queue(redis, keys, consumer="a"), await new_queue(redis, keys, consumer="b")
        await a.enqueue([msg(1), msg(2, priority=Priority.SAFETY), msg(3, priority=Priority.DISTRESS)])
        assert len(await a.take(count=3)) == 3
        reclaimed = await until(lambda: b.reclaim(min_idle_s=0.02), what="A's entries idle")
        assert [e.seq for e in reclaimed] == [3, 2, 1]


class TestDeadLetters:
    async def test_find_dead_reads_one_by_id(self, queue: Queue) -> None:
        """find_dead returns the dead letter with that id, None for an unknown or malformed id."""
        await queue.enqueue([msg(1), msg(2)])
        await queue.dead_letter(await queue.take(count=2), reason="link_rejected")
        dead = await queue.dead_letters()
        assert [await queue.find_dead(d.dead_id) for d in dead] == dead
        assert await queue.find_dead("0-1") is None
        assert await queue.find_dead("not-an-id") is None

    async def test_list_requeue_purge(self, queue: Queue) -> None:
        """Dead letters are listed with reason, time and entry; requeue puts one back; purge drops the rest."""
        await queue.enqueue([msg(1, receipt=True), msg(2, priority=Priority.URGENCY)])
        taken = await queue.take(count=2)
        await queue.dead_letter(taken, reason="link_rejected")
        assert await queue.take(count=2) == []
        dead = await queue.dead_letters()
        assert [(d.reason, d.priority, d.entry) for d in dead] == [("link_rejected", e.priority, e) for e in taken]
        assert all(abs(d.dead_at - time.time()) < 5 for d in dead)
        assert await queue.requeue_dead(dead[0].dead_id)
        assert not await queue.requeue_dead(dead[0].dead_id)
        [back] = await queue.take()
        assert _fields(back) | {"stream_id": ""} == _fields(taken[0]) | {"stream_id": ""}
        assert await queue.purge_dead() == 1
        assert await queue.dead_letters() == []

    async def test_requeue_unknown_or_malformed_id(self, queue: Queue) -> None:
        """Requeueing an id that is not a dead letter, or not an id at all, returns False."""
        assert not await queue.requeue_dead("1-1")
        assert not await queue.requeue_dead("nonsense")

    async def test_malformed_entry_is_buried_not_returned(self, queue: Queue, redis: Redis, keys: Keys) -> None:
        """An entry missing its fields is dead-lettered as malformed, and take returns the good one behind it."""
        await redis.xadd(keys.stream(Priority.ROUTINE), {"junk": "1"})
        await queue.enqueue([msg(1)])
        assert ids(await queue.take()) == ["T1:1"]
        [dead] = await queue.dead_letters()
        assert (dead.reason, dead.entry, dead.fields["junk"]) == ("malformed", None, b"1")


class TestDepths:
    async def test_depth_pending_and_oldest_age(self, queue: Queue) -> None:
        """depths reports waiting entries, pending entries and the age of the oldest per class, highest first."""
        now = time.time()
        await queue.enqueue([msg(1, received_at=now - 10), msg(2, received_at=now - 5)])
        await queue.enqueue([msg(1, terminal="S", priority=Priority.DISTRESS, received_at=now - 1)])
        await queue.take()
        depths = await queue.depths()
        assert [(d.priority, d.depth, d.pending) for d in depths] == [(0, 0, 1), (1, 0, 0), (2, 0, 0), (3, 2, 0)]
        assert depths[1].oldest_age_s is None
        assert depths[3].oldest_age_s == pytest.approx(10, abs=1)
        assert depths[0].oldest_age_s == pytest.approx(1, abs=1)


class TestStats:
    async def test_counters_add_up(self, redis: Redis, keys: Keys) -> None:
        """incr adds to the shared counters, skipping zeros, and read returns them."""
        stats = Stats(redis=redis, keys=keys)
        await stats.incr({"accepted": 3, "rejected": 0})
        await stats.incr({"accepted": 2, "sent": 1})
        assert await stats.read() == {"accepted": 5, "sent": 1}


class TestScripts:
    async def test_unknown_script_is_loaded_on_noscript(self, counted: Counted, keys: Keys) -> None:
        """A script Redis has never seen is loaded on NOSCRIPT and the call runs."""
        script = LuaScript(name="purge.lua")
        script.source += f"\n-- {uuid4().hex}"
        script.sha = hashlib.sha1(script.source.encode()).hexdigest()
        await counted.client.xadd(keys.dead, {"a": "1"})
        counted.writes = 0
        assert await script.run(counted.client, [keys.dead], []) == 1
        assert counted.writes == 3  # the failed EVALSHA, SCRIPT LOAD, EVALSHA again
        assert await script.run(counted.client, [keys.dead], []) == 0


class TestUnavailable:
    async def test_closed_port_is_queue_unavailable(self, keys: Keys) -> None:
        """Every call against a Redis that does not answer raises QueueUnavailable, never a redis error."""
        client = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
        queue = Queue(redis=client, keys=keys, consumer="a")
        stats = Stats(redis=client, keys=keys)
        outbox = Outbox(redis=client, keys=keys, consumer="p")
        sent = Delivery(
            message_id="T:1",
            terminal="T",
            seq=1,
            priority=Priority.ROUTINE,
            payload=b"{}",
            receipt=False,
            link="geo",
            delivered_at=1.0,
        )
        calls: list[Callable[[], Awaitable[object]]] = [
            outbox.setup,
            lambda: outbox.deliver([sent]),
            outbox.take,
            queue.setup,
            lambda: queue.enqueue([msg(1)]),
            queue.take,
            queue.depths,
            queue.purge_dead,
            stats.read,
        ]
        try:
            for call in calls:
                with pytest.raises(QueueUnavailable, match="unreachable"):
                    await call()
        finally:
            await client.aclose()


def _fields(item: Accepted | Entry) -> dict[str, object]:
    names = ("message_id", "terminal", "seq", "priority", "record", "received_at", "expires_at", "receipt", "stream_id")
    return {name: getattr(item, name, "") for name in names if hasattr(item, name)}
