"""Alert delivery to webhooks with the real Redis and a real HTTP receiver: retries, refusals, isolation, restarts."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.alerts import Backoff, OutgoingAlert, WebhookDispatcher, WebhookEndpoint
from gateway.counters import Counters
from gateway.names import Keys
from tests.harness import REDIS_URL, eventually
from tests.integration.conftest import Counted
from tests.integration.webhook_receiver import HANG, Answer, Receiver, Request

pytestmark = pytest.mark.integration

SECRET = "test-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
FAST = Backoff(base_s=0.01, cap_s=0.05)


def endpoint(name: str, url: str, **overrides: Any) -> WebhookEndpoint:
    """A webhook with test-sized timeouts and backoff."""
    values: dict[str, Any] = {"timeout_s": 1.0, "max_attempts": 5, "backoff": FAST, **overrides}
    return WebhookEndpoint(name=name, url=url, secret=SECRET, **values)


def alert(i: int) -> OutgoingAlert:
    """A small CAP-shaped document with a unique identifier."""
    return OutgoingAlert(
        key=f"urn:satgw:test:{i}", kind="Alert", body=f"<alert><identifier>{i}</identifier></alert>".encode()
    )


def dispatcher(
    redis: Redis, keys: Keys, *endpoints: WebhookEndpoint, counters: Counters | None = None, **kw: Any
) -> WebhookDispatcher:
    """A dispatcher for ``endpoints`` as node ``node-a`` unless told otherwise."""
    kw.setdefault("consumer", "node-a")
    return WebhookDispatcher(redis=redis, keys=keys, endpoints=endpoints, counters=counters or Counters(), **kw)


@asynccontextmanager
async def receiving(script: Any = None) -> AsyncIterator[Receiver]:
    """A running receiver (answering 200 unless ``script`` says otherwise)."""
    async with Receiver(script) if script else Receiver() as receiver:
        yield receiver


def crash(name: str) -> None:
    """Cancel an endpoint's worker task mid-request, as a kill -9 would stop it: nothing settled."""
    [task] = [t for t in asyncio.all_tasks() if t.get_name() == f"satgw.alerts.webhook[{name}]"]
    task.cancel()


async def test_a_receiver_that_fails_then_recovers_gets_every_alert_in_order(
    redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Timeouts, 500s: retried until the receiver recovers; every alert arrives, signed; repeats keep their key."""
    caplog.set_level(logging.DEBUG, logger="satgw.alerts")

    def script(request: Request, index: int) -> Answer | None:
        return HANG if index == 0 else Answer(500) if index < 3 else Answer(204)

    counters = Counters()
    async with receiving(script) as receiver:
        hook = endpoint("rcc", receiver.url, timeout_s=0.3)
        async with dispatcher(redis, keys, hook, counters=counters) as sink:
            for i in range(5):
                await sink.publish(alert(i))
            await receiver.wait_for(lambda: len(receiver.keys()) == 5, timeout=10, what="all five alerts")
            await eventually(lambda: counters.get("alerts.webhook.delivered") == 5, what="five settled")
            assert await sink.pending() == {"rcc": 0}
    assert receiver.keys() == [alert(i).key for i in range(5)]
    first = receiver.requests[:4]
    assert {r.key for r in first} == {alert(0).key}, "a repeat carries the same Idempotency-Key"
    assert [r.headers["x-satgw-attempt"] for r in first] == ["1", "2", "3", "4"]
    assert all(r.signed_by(SECRET) for r in receiver.requests)
    assert not any(r.signed_by("another-secret-0123456789") for r in receiver.requests)
    assert all(r.headers["content-type"] == "application/cap+xml" for r in receiver.requests)
    assert all(r.headers["user-agent"].startswith("satgw/") for r in receiver.requests)
    assert [r.body for r in receiver.accepted] == [alert(i).body for i in range(5)]
    assert counters.get("alerts.webhook.retried") == 3
    assert await redis.hlen(sink_tries(keys, "rcc")) == 0, "settled deliveries leave no attempt notes"
    assert SECRET not in caplog.text
    assert "/hooks/cap" not in caplog.text, "logs name the endpoint, never its URL"
    assert "webhook rcc: alert urn:satgw:test:0 attempt 1" in caplog.text


def sink_tries(keys: Keys, endpoint: str) -> str:
    """The attempts hash of an endpoint."""
    return "{" + keys.prefix + "}:alerts:tries:" + endpoint


async def test_a_refusal_goes_to_the_dead_list_at_once_and_can_be_requeued(redis: Redis, keys: Keys) -> None:
    """A 400 is dead-lettered after one attempt with its status; requeueing it delivers it with the same key."""

    def script(request: Request, index: int) -> Answer:
        return Answer(400, body=b"unknown\r\n  sender") if index == 0 else Answer(200)

    counters = Counters()
    async with (
        receiving(script) as receiver,
        dispatcher(redis, keys, endpoint("rcc", receiver.url), counters=counters) as sink,
    ):
        await sink.publish(alert(1))
        await eventually(lambda: counters.get("alerts.webhook.dead") == 1, what="the refusal dead-lettered")
        [dead] = await sink.dead()
        assert (dead.endpoint, dead.reason, dead.status, dead.attempts) == ("rcc", "refused", 400, 1)
        assert dead.error == "HTTP 400: unknown sender"
        assert (dead.key, dead.kind, dead.body, dead.content_type) == (
            alert(1).key,
            "Alert",
            alert(1).body,
            "application/cap+xml",
        )
        assert len(receiver.requests) == 1
        assert counters.get("alerts.webhook.retried") == 0
        assert await sink.find_dead(dead.dead_id) == dead
        assert await sink.pending() == {"rcc": 0}

        assert await sink.requeue_dead(dead.dead_id)
        await receiver.wait_for(lambda: receiver.keys() == [alert(1).key], timeout=5, what="the requeued alert")
        assert receiver.requests[1].headers["x-satgw-attempt"] == "1", "a requeued delivery starts its count again"
        assert await sink.dead() == []
        assert not await sink.requeue_dead(dead.dead_id)
        assert not await sink.requeue_dead("not-an-id")


async def test_a_hanging_endpoint_does_not_slow_a_healthy_one(redis: Redis, keys: Keys) -> None:
    """While one receiver never answers, another gets 20 alerts before the first request to the hung one times out."""
    counters = Counters()
    async with receiving(lambda request, index: HANG) as hung, receiving() as healthy:
        slow = endpoint("slow", hung.url, timeout_s=2.0, backoff=Backoff(base_s=30, cap_s=30))
        async with dispatcher(redis, keys, slow, endpoint("fast", healthy.url), counters=counters) as sink:
            started = time.monotonic()
            for i in range(20):
                await sink.publish(alert(i))
            await healthy.wait_for(lambda: len(healthy.keys()) == 20, timeout=1.8, what="20 alerts at the healthy one")
            took = time.monotonic() - started
            assert counters.get("alerts.webhook.retried") == 0, "the hung endpoint has not even timed out yet"
            assert len(hung.requests) == 1
            await eventually(
                lambda: counters.get("alerts.webhook.retried") == 1, timeout=5, what="the hung one's timeout"
            )
            await eventually(lambda: counters.get("alerts.webhook.delivered") == 20, what="fast settled")
            assert await sink.pending() == {"slow": 20, "fast": 0}
    assert took < 1.8, took
    assert [r.key for r in healthy.requests] == [alert(i).key for i in range(20)]


async def test_retry_after_is_honoured(redis: Redis, keys: Keys) -> None:
    """A 429 with Retry-After: 1 holds the next attempt back a second, though the backoff alone would be 10-50 ms."""

    def script(request: Request, index: int) -> Answer:
        return Answer(429, headers={"Retry-After": "1"}) if index == 0 else Answer(200)

    async with receiving(script) as receiver, dispatcher(redis, keys, endpoint("rcc", receiver.url)) as sink:
        await sink.publish(alert(1))
        await receiver.wait_for(lambda: len(receiver.accepted) == 1, timeout=5, what="the retry")
    gap = receiver.requests[1].at - receiver.requests[0].at
    assert 0.95 <= gap < 2.5


async def test_attempts_survive_a_restart_and_run_out_into_the_dead_list(redis: Redis, keys: Keys) -> None:
    """A dispatcher stopped between attempts is resumed by a new one, which counts on from Redis to max_attempts."""
    async with receiving(lambda request, index: Answer(503)) as receiver:
        first = Counters()
        patient = endpoint("rcc", receiver.url, max_attempts=3, backoff=Backoff(base_s=0.4, cap_s=0.4))
        async with dispatcher(redis, keys, patient, counters=first) as sink:
            await sink.publish(alert(7))
            await eventually(lambda: first.get("alerts.webhook.retried") == 1, what="the first failure noted")
        assert len(receiver.requests) == 1

        second = Counters()
        async with dispatcher(redis, keys, endpoint("rcc", receiver.url, max_attempts=3), counters=second) as sink:
            await eventually(lambda: second.get("alerts.webhook.dead") == 1, what="the delivery dead-lettered")
            [dead] = await sink.dead(endpoint="rcc")
            assert (dead.reason, dead.status, dead.attempts, dead.error) == ("max_attempts", 503, 3, "HTTP 503")
            assert [r.headers["x-satgw-attempt"] for r in receiver.requests] == ["1", "2", "3"]
            assert second.get("alerts.webhook.retried") == 1
            assert await sink.dead(endpoint="other") == []


_DISPATCH_UNTIL_KILLED = """
import asyncio, sys
from redis.asyncio import Redis
from gateway.alerts import OutgoingAlert, WebhookDispatcher, WebhookEndpoint
from gateway.counters import Counters
from gateway.names import Keys

async def main() -> None:
    url, prefix, redis_url, secret = sys.argv[1:5]
    hook = WebhookEndpoint(name="rcc", url=url, secret=secret, timeout_s=60)
    redis = Redis.from_url(redis_url)
    async with WebhookDispatcher(
        redis=redis, keys=Keys(prefix), endpoints=[hook], consumer="node-a", counters=Counters()
    ) as sink:
        await sink.publish(OutgoingAlert(key="urn:satgw:test:9", kind="Alert", body=b"<alert/>"))
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_dispatcher_killed_mid_request_is_resumed_by_its_restart(redis: Redis, keys: Keys) -> None:
    """kill -9 of a process whose request is in flight: the restarted node sends the alert again as attempt 2."""
    async with receiving(lambda request, index: HANG if index == 0 else Answer(200)) as receiver:
        argv = ["-c", _DISPATCH_UNTIL_KILLED, receiver.url, keys.prefix, REDIS_URL, SECRET]
        process = await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=ROOT)
        try:
            await receiver.wait_for(lambda: len(receiver.requests) == 1, timeout=20, what="the first request")
        finally:
            process.kill()
            await process.wait()
        counters = Counters()
        async with dispatcher(redis, keys, endpoint("rcc", receiver.url), counters=counters) as sink:
            await receiver.wait_for(lambda: len(receiver.accepted) == 1, timeout=5, what="the resent alert")
            await eventually(lambda: counters.get("alerts.webhook.delivered") == 1, what="settled")
            assert await sink.pending() == {"rcc": 0}
    assert [r.key for r in receiver.requests] == ["urn:satgw:test:9"] * 2
    assert receiver.requests[1].headers["x-satgw-attempt"] == "2", "the attempt cut off by the kill was counted"


async def test_another_node_takes_over_a_delivery_left_idle(redis: Redis, keys: Keys) -> None:
    """A node that died mid-request leaves its delivery pending; another node takes it once idle and sends it again."""
    async with receiving(lambda request, index: HANG if index == 0 else Answer(200)) as receiver:
        hook = endpoint("rcc", receiver.url, timeout_s=5.0)
        async with dispatcher(redis, keys, hook) as sink:
            await sink.publish(alert(3))
            await receiver.wait_for(lambda: len(receiver.requests) == 1, timeout=5, what="the first request")
            crash("rcc")
        counters = Counters()
        async with dispatcher(redis, keys, hook, consumer="node-b", counters=counters, reclaim_idle_s=0.3) as sink:
            await receiver.wait_for(lambda: len(receiver.accepted) == 1, timeout=5, what="the resent alert")
            await eventually(lambda: counters.get("alerts.webhook.delivered") == 1, what="settled")
            assert await sink.pending() == {"rcc": 0}
    assert [r.key for r in receiver.requests] == [alert(3).key] * 2
    assert receiver.requests[1].at - receiver.requests[0].at >= 0.3, "taken only once idle"
    assert receiver.requests[1].headers["x-satgw-attempt"] == "2"


async def test_publish_is_one_round_trip_durable_before_delivery_and_idempotent(
    counted: Counted, redis: Redis, keys: Keys
) -> None:
    """Publish writes every endpoint's copy in one round trip, needs no worker running; a repeat queues nothing."""
    async with receiving() as one, receiving() as two:
        hooks = (endpoint("one", one.url), endpoint("two", two.url))
        counters = Counters()
        sink = dispatcher(counted.client, keys, *hooks, counters=counters)
        before = counted.writes
        await sink.publish(alert(5))
        assert counted.writes - before == 1
        await sink.publish(alert(5))
        assert await sink.pending() == {"one": 1, "two": 1}
        assert (counters.get("alerts.webhook.published"), counters.get("alerts.webhook.duplicate")) == (1, 1)
        delivered = Counters()
        async with dispatcher(redis, keys, *hooks, counters=delivered) as running:
            await eventually(lambda: delivered.get("alerts.webhook.delivered") == 2, what="both endpoints settled")
            assert await running.pending() == {"one": 0, "two": 0}
    assert [r.key for r in one.requests + two.requests] == [alert(5).key] * 2


async def test_requeue_all_sends_every_dead_delivery_again(redis: Redis, keys: Keys) -> None:
    """Once a refusing receiver is fixed, requeue_all_dead delivers its alerts in order; a removed endpoint's stay."""
    fixed = False

    def script(request: Request, index: int) -> Answer:
        return Answer(200) if fixed else Answer(401)

    async with receiving(script) as receiver:
        refused = Counters()
        hooks = (endpoint("rcc", receiver.url), endpoint("gone", receiver.url))
        async with dispatcher(redis, keys, *hooks, counters=refused) as sink:
            for i in range(3):
                await sink.publish(alert(i))
            await eventually(lambda: refused.get("alerts.webhook.dead") == 6, what="six refusals")
        fixed = True
        counters = Counters()
        async with dispatcher(redis, keys, endpoint("rcc", receiver.url), counters=counters) as sink:
            assert await sink.requeue_all_dead() == 3
            await receiver.wait_for(lambda: len(receiver.keys()) == 3, timeout=5, what="three redeliveries")
            assert receiver.keys() == [alert(i).key for i in range(3)]
            assert [d.endpoint for d in await sink.dead()] == ["gone"] * 3
            assert await sink.requeue_all_dead(endpoint="gone") == 0
            assert counters.get("alerts.webhook.requeued") == 3
            first, *_ = await sink.dead()
            assert [d.key for d in await sink.dead(after=first.dead_id)] == [alert(1).key, alert(2).key]
