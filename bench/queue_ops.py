"""Queue hot-path costs against the real Redis: enqueue vs plain pipelined XADD, take+ack, replay-window memory.

Run ``.venv/bin/python bench/queue_ops.py`` (as a script, so ``PYTHONPATH`` may point at another
checkout of ``gateway``; SATGW_REDIS_URL picks the server). Every figure is the median of
``--runs`` runs; each run writes under a fresh key prefix and deletes it afterwards. Messages come
from 1000 terminals with rising seqs, so every enqueue is fresh and judged against a real window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import redis as redis_py
from redis.asyncio import Redis

from gateway.names import Keys
from gateway.queue import Accepted, Delivery, Outbox, Queue
from protocols.envelope import Priority

REDIS_URL = os.environ.get("SATGW_REDIS_URL", "redis://127.0.0.1:6379/0")
SIZES = (1, 10, 100, 500)
TERMINALS = 1000
RECORD = bytes(range(256))[:120]
Timed = Callable[[Redis, Keys, list[list[Accepted]]], Awaitable[None]]


def messages(count: int, batch: int) -> list[list[Accepted]]:
    """``count`` fresh messages from ``TERMINALS`` terminals, cut into batches."""
    flat = [accepted(f"T{i % TERMINALS:06d}", i // TERMINALS) for i in range(count)]
    return [flat[i : i + batch] for i in range(0, count, batch)]


def accepted(terminal: str, seq: int) -> Accepted:
    """One routine message with a 120-byte record and a one-hour expiry."""
    now = time.time()
    return Accepted(
        message_id=f"{terminal}:{seq}",
        terminal=terminal,
        seq=seq,
        priority=Priority.ROUTINE,
        record=RECORD,
        received_at=now,
        expires_at=now + 3600,
        receipt=True,
    )


async def run_enqueue(redis: Redis, keys: Keys, batches: list[list[Accepted]]) -> None:
    """Enqueue every batch through the queue, one call each."""
    queue = Queue(redis=redis, keys=keys, consumer="bench")
    await queue.setup()
    for batch in batches:
        await queue.enqueue(batch)


async def run_xadd(redis: Redis, keys: Keys, batches: list[list[Accepted]]) -> None:
    """The baseline: one pipeline of plain XADDs (same fields, no dedup) per batch."""
    stream = keys.stream(Priority.ROUTINE)
    for batch in batches:
        pipe = redis.pipeline(transaction=False)
        for a in batch:
            fields: dict[Any, Any] = {"id": a.message_id, "t": a.terminal, "s": a.seq, "r": b"1"}
            pipe.xadd(stream, {**fields, "rx": repr(a.received_at), "x": repr(a.expires_at), "m": a.record})
        await pipe.execute()


async def timed(redis: Redis, run: Timed, batches: list[list[Accepted]], *, prepare: Timed | None = None) -> float:
    """Messages per second of ``run`` over ``batches`` under a fresh prefix (``prepare`` is not timed)."""
    keys = Keys(prefix=f"bench{uuid4().hex[:8]}")
    try:
        if prepare:
            await prepare(redis, keys, batches)
        started = time.perf_counter()
        await run(redis, keys, batches)
        return sum(map(len, batches)) / (time.perf_counter() - started)
    finally:
        await drop(redis, keys)


async def run_take_ack(redis: Redis, keys: Keys, batches: list[list[Accepted]]) -> None:
    """Take and ack everything queued, ``len(batches[0])`` entries per take."""
    queue = Queue(redis=redis, keys=keys, consumer="bench")
    count = len(batches[0])
    while entries := await queue.take(count=count):
        await queue.ack(entries)


async def drop(redis: Redis, keys: Keys) -> None:
    """Delete every key under the prefix of ``keys``."""
    found = [key async for key in redis.scan_iter(match=keys.pattern, count=1000)]
    for start in range(0, len(found), 500):
        await redis.delete(*found[start : start + 500])


async def throughput(redis: Redis, runs: int, total: int) -> None:
    """Print the enqueue vs XADD table and the take+ack table."""
    print(f"{'batch':>6} {'enqueue msg/s':>14} {'XADD msg/s':>11} {'ratio':>6} {'take+ack msg/s':>15}")
    for size in SIZES:
        batches = messages(total if size > 1 else total // 5, size)
        enq, xadd, take = [], [], []
        for _ in range(runs):
            enq.append(await timed(redis, run_enqueue, batches))
            xadd.append(await timed(redis, run_xadd, batches))
            take.append(await timed(redis, run_take_ack, batches, prepare=run_enqueue))
        e, x, t = (statistics.median(v) for v in (enq, xadd, take))
        print(f"{size:>6} {e:>14,.0f} {x:>11,.0f} {e / x:>6.2f} {t:>15,.0f}", flush=True)


async def memory(redis: Redis, n: int) -> None:
    """Print MEMORY USAGE of one terminal's uplink and ground replay windows after ``n`` messages."""
    keys = Keys(prefix=f"bench{uuid4().hex[:8]}")
    try:
        queue = Queue(redis=redis, keys=keys, consumer="bench")
        outbox = Outbox(redis=redis, keys=keys, consumer="bench")
        await queue.setup()
        await outbox.setup()
        for start in range(0, n, 500):
            batch = [accepted("T", seq) for seq in range(start, min(n, start + 500))]
            await queue.enqueue(batch)
            await outbox.deliver([_delivery(a) for a in batch])
        for name, key in (("uplink", keys.seen("T")), ("ground", keys.ground_seen("T"))):
            used = await redis.memory_usage(key, samples=0)
            print(f"{name} replay window of one terminal after {n:,} messages: MEMORY USAGE = {used:,} bytes")
    finally:
        await drop(redis, keys)


def _delivery(a: Accepted) -> Delivery:
    return Delivery(
        message_id=a.message_id,
        terminal=a.terminal,
        seq=a.seq,
        priority=a.priority,
        payload=b"{}",
        receipt=a.receipt,
        link="geo",
        delivered_at=a.received_at,
    )


async def main(args: argparse.Namespace) -> None:
    """Run the selected measurements and print them."""
    redis = Redis.from_url(REDIS_URL)
    try:
        info = await redis.info("server")
        print(f"redis-py {redis_py.__version__}, redis-server {info['redis_version']}, python {sys.version.split()[0]}")
        if args.memory:
            await memory(redis, 10_000)
        if args.throughput:
            await throughput(redis, args.runs, args.messages)
    finally:
        await redis.aclose()


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: which measurements, how many runs and messages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is printed")
    parser.add_argument("--messages", type=int, default=50_000, help="messages per run (a fifth at batch 1)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory figure")
    parser.add_argument("--no-throughput", dest="throughput", action="store_false", help="skip the rate tables")
    return parser.parse_args(argv)


if __name__ == "__main__":
    runner: Callable[..., object] = asyncio.run
    with contextlib.suppress(ImportError):
        from uvloop import run as runner
    runner(main(parse(sys.argv[1:])))
