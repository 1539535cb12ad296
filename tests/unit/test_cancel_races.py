"""A cancellation that races a Redis timeout stops the task instead of becoming a retryable error."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.exceptions

from gateway.exceptions import QueueUnavailable, map_redis_errors, stop_if_cancelling


async def test_timeout_while_cancelling_is_a_cancellation() -> None:
    """A redis TimeoutError raised in a task being cancelled comes out as CancelledError, not QueueUnavailable."""
    started = asyncio.Event()

    async def loop_that_retries() -> None:
        while True:
            try:
                with map_redis_errors("read"):
                    started.set()
                    try:
                        await asyncio.sleep(10)
                    except asyncio.CancelledError:
                        raise redis.exceptions.TimeoutError("Timeout reading") from None  # as 3.11's timeout may
            except QueueUnavailable:
                continue

    task = asyncio.create_task(loop_that_retries())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)


async def test_timeout_without_cancellation_stays_retryable() -> None:
    """Outside a cancellation a redis TimeoutError is still QueueUnavailable, naming the context."""
    with pytest.raises(QueueUnavailable, match="read: Redis unreachable"), map_redis_errors("read"):
        raise redis.exceptions.TimeoutError("Timeout reading")


async def test_a_loop_that_lost_its_cancellation_still_stops() -> None:
    """A loop checking stop_if_cancelling each round stops even when a library swallowed the CancelledError."""
    started = asyncio.Event()

    async def loop() -> None:
        while True:
            stop_if_cancelling()
            started.set()
            with contextlib.suppress(asyncio.CancelledError):  # as redis-py's retry of a timeout may
                await asyncio.sleep(10)
            await asyncio.sleep(0)

    task = asyncio.create_task(loop())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
