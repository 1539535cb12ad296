"""Message traces over the real Redis and Mosquitto: the hops each step writes, their TTL, HTTP and ``satgw trace``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.links.geo import GeoProfile
from gateway.mqtt import MqttClient
from gateway.names import Keys
from gateway.queue import Delivery, Outbox, OutboxEntry, Queue
from gateway.queue.release import ReleaseLog
from gateway.queue.trace import MessageTrace, Rejection, Sent, Stage, Trace
from protocols.envelope import Priority
from protocols.seal import peek_header
from tests.harness import (
    FAST_LINK,
    MQTT_URL,
    REDIS_URL,
    accepted_entry,
    config_with,
    eventually,
    observing,
    provision,
    running_gateway,
    until,
)

pytestmark = pytest.mark.integration

_TTL_S = 600


@pytest.fixture
def trace(redis: Redis, keys: Keys) -> Trace:
    """A trace keeping hops for ten minutes."""
    return Trace(redis=redis, keys=keys, ttl_s=_TTL_S)


@pytest.fixture
async def queue(redis: Redis, keys: Keys, trace: Trace) -> Queue:
    """A traced queue, set up."""
    q = Queue(redis=redis, keys=keys, consumer="c1", trace=trace, replay_window=8)
    await q.setup()
    return q


def events(found: MessageTrace | None) -> list[str]:
    """The events of a trace, in time order."""
    assert found is not None
    return [h.event.value for h in found.hops]


async def trace_keys(redis: Redis, keys: Keys) -> list[bytes]:
    """Every trace key under the test's prefix."""
    return [k async for k in redis.scan_iter(match=keys.trace("*"), count=1000)]


async def assert_all_expire(redis: Redis, keys: Keys, ttl_s: int) -> int:
    """Fail unless every trace key has a TTL in (0, ttl_s]; return how many there are."""
    found = await trace_keys(redis, keys)
    ttls = [await redis.ttl(k) for k in found]
    assert all(0 < t <= ttl_s for t in ttls), dict(zip(found, ttls, strict=True))
    return len(found)


class TestQueueHops:
    async def test_enqueue_take_ack_write_their_hops(self, queue: Queue, trace: Trace) -> None:
        """Received, queued, taken (link, consumer) and sent (link, records) follow each other in order."""
        item = accepted_entry("T1", 1)
        await queue.enqueue([item])
        [entry] = await queue.take(link="lab link %1")
        started = time.time()
        await queue.ack([entry], sent=Sent(link="lab link %1", at=started))
        found = await trace.get("T1:1")
        assert events(found) == ["received", "queued", "taken", "sent"]
        assert found is not None
        received, queued, taken, sent = found.hops
        assert received.at == pytest.approx(item.received_at)
        assert received.priority is Priority.ROUTINE
        assert queued.details["sid"] == entry.stream_id
        assert (taken.link, taken.details["by"]) == ("lab link %1", "c1")
        assert (sent.link, sent.details["records"], sent.at) == ("lab link %1", "1", pytest.approx(started))
        assert found.state.stage is Stage.SENT

    async def test_replays_get_duplicate_hops(self, queue: Queue, trace: Trace) -> None:
        """A duplicate and a seq too old for the window each add a duplicate hop, the latter saying why."""
        await queue.enqueue([accepted_entry("T1", 1)])
        await queue.enqueue([accepted_entry("T1", 1), accepted_entry("T1", 20)])
        await queue.enqueue([accepted_entry("T1", 1)])
        found = await trace.get("T1:1")
        assert events(found) == ["received", "queued", "duplicate", "duplicate"]
        assert found is not None
        assert [h.details.get("why") for h in found.hops[2:]] == [None, "too_old"]
        assert found.state.stage is Stage.QUEUED

    async def test_expire_dead_requeue_purge(self, queue: Queue, trace: Trace) -> None:
        """Expiry, a dead letter (reason kept), a requeue (class named) and a purge each leave their hop."""
        await queue.enqueue([accepted_entry("T1", 1), accepted_entry("T1", 2, Priority.SAFETY)])
        expiring, dying = sorted(await queue.take(count=2), key=lambda e: e.seq)
        await queue.expire([expiring], link="L")
        await queue.dead_letter([dying], reason="link failed")
        [dead] = await queue.dead_letters()
        assert await queue.requeue_dead(dead.dead_id)
        await queue.dead_letter(await queue.take(), reason="again")
        assert await queue.purge_dead() == 1
        assert events(await trace.get("T1:1"))[-1] == "expired"
        found = await trace.get("T1:2")
        assert events(found) == ["received", "queued", "taken", "dead", "requeued", "taken", "dead", "purged"]
        assert found is not None
        assert found.hops[3].details["reason"] == "link failed"
        assert found.hops[4].priority is Priority.SAFETY
        assert found.state.stage is Stage.PURGED

    async def test_reclaim_notes_the_new_consumer_and_buries_the_over_delivered(
        self, redis: Redis, keys: Keys, queue: Queue, trace: Trace
    ) -> None:
        """A reclaimed entry gets a reclaimed hop naming the consumer; one past max deliveries a dead hop."""
        other = Queue(redis=redis, keys=keys, consumer="c2", trace=trace, max_deliveries=2)
        await queue.enqueue([accepted_entry("T1", 1)])
        await queue.take()
        assert len(await other.reclaim(min_idle_s=0)) == 1
        assert await other.reclaim(min_idle_s=0) == []
        found = await trace.get("T1:1")
        assert events(found) == ["received", "queued", "taken", "reclaimed", "dead"]
        assert found is not None
        assert found.hops[3].details["by"] == "c2"
        assert found.hops[4].details["reason"] == "max_deliveries"

    async def test_ground_hops_escape_the_link_name(self, redis: Redis, keys: Keys, trace: Trace) -> None:
        """Delivered and ground_duplicate hops carry a link name with spaces and % intact; commit adds published."""
        outbox = Outbox(redis=redis, keys=keys, consumer="g", trace=trace)
        await outbox.setup()
        at = time.time()
        delivery = Delivery("T1:1", "T1", 1, Priority.ROUTINE, b"{}", receipt=True, link="a b%20\tc", delivered_at=at)
        assert await outbox.deliver([delivery, delivery]) == [True, False]
        entries: list[OutboxEntry] = await outbox.take()
        await ReleaseLog(redis=redis, keys=keys, node="n", trace=trace).commit(entries, [1], ["x/delivered/T1"])
        found = await trace.get("T1:1")
        assert events(found) == ["delivered", "ground_duplicate", "published"]
        assert found is not None
        assert [h.link for h in found.hops[:2]] == ["a b%20\tc"] * 2
        assert found.hops[0].at == pytest.approx(at)

    async def test_writer_hops_and_a_failing_redis(self, redis: Redis, keys: Keys, trace: Trace) -> None:
        """Failed attempts, fragments and rejections are noted; with Redis unreachable the writer only logs."""
        await trace.rejected_many([Rejection("T1", 7, "quota_exceeded", receipt=True, at=1.0)])
        await trace.failed([("T1:7", 1)], link="L", code="lost", at=2.0)
        await trace.fragment_sent("T1:7", link="L", index=1, total=3, at=3.0)
        found = await trace.get("T1:7")
        assert events(found) == ["rejected", "failed", "fragment"]
        assert found is not None
        assert found.hops[2].details["frag"] == "1/3"
        assert found.receipts == (("rejected", 1.0),)
        unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
        try:
            await Trace(redis=unreachable, keys=keys).failed([("T1:8", 1)], link="L", code="lost", at=2.0)
        finally:
            await unreachable.aclose()

    async def test_every_trace_key_expires_even_when_an_append_recreates_it(
        self, redis: Redis, keys: Keys, queue: Queue, trace: Trace
    ) -> None:
        """Every hop writer leaves each trace key with a TTL, also when the key had expired before its hop."""
        await queue.enqueue([accepted_entry("T1", n) for n in (1, 2, 3)])
        taken = await queue.take(count=3)
        for n in (1, 2, 3):
            await redis.delete(keys.trace(f"T1:{n}"))  # as if the traces expired while the messages waited
        await queue.ack(taken[:1], sent=Sent(link="L", at=time.time()))
        await queue.dead_letter(taken[1:2], reason="x")
        await trace.failed([("T1:3", 1)], link="L", code="lost", at=time.time())
        outbox = Outbox(redis=redis, keys=keys, consumer="g", trace=trace)
        await outbox.setup()
        await outbox.deliver([Delivery("T1:4", "T1", 4, Priority.ROUTINE, b"{}", False, "L", time.time())])
        entries = await outbox.take()
        await redis.delete(keys.trace("T1:4"))
        await ReleaseLog(redis=redis, keys=keys, node="n", trace=trace).commit(entries, [1], ["t"])
        assert await assert_all_expire(redis, keys, _TTL_S) == 4

    async def test_ttl_zero_writes_no_trace_at_all(self, redis: Redis, keys: Keys) -> None:
        """With tracing off, no queue, outbox, release or writer step creates a trace key."""
        off = Trace(redis=redis, keys=keys, ttl_s=0)
        queue = Queue(redis=redis, keys=keys, consumer="c1", trace=off, max_deliveries=1)
        await queue.setup()
        await queue.enqueue([accepted_entry("T1", n) for n in (1, 2, 3, 4)])
        await queue.enqueue([accepted_entry("T1", 1)])
        a, b, c, d = await queue.take(count=4, link="L")
        await queue.ack([a], sent=Sent(link="L", at=time.time()))
        await queue.expire([b])
        await queue.dead_letter([c], reason="x")
        [dead] = await queue.dead_letters()
        await queue.requeue_dead(dead.dead_id)
        await Queue(redis=redis, keys=keys, consumer="c2", trace=off, max_deliveries=1).reclaim(min_idle_s=0)
        await queue.purge_dead()
        await off.failed([("T1:4", 1)], link="L", code="lost", at=1.0)
        await off.fragment_sent("T1:4", link="L", index=1, total=2, at=1.0)
        await off.rejected_many([Rejection("T1", 9, "quota_exceeded")])
        outbox = Outbox(redis=redis, keys=keys, consumer="g", trace=off)
        await outbox.setup()
        await outbox.deliver([Delivery("T1:1", "T1", 1, Priority.ROUTINE, b"{}", False, "L", 1.0)])
        await ReleaseLog(redis=redis, keys=keys, node="n", trace=off).commit(await outbox.take(), [1], ["t"])
        assert d.seq == 4
        assert await trace_keys(redis, keys) == []


class Http:
    """A plain HTTP client of one gateway (urllib in a thread, so the gateway's loop keeps serving)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def json(self, method: str, path: str) -> tuple[int, Any]:
        """(status, parsed JSON body) of one request; fails if the body is not JSON."""
        return await asyncio.to_thread(self._call, method, path)

    def _call(self, method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.headers.get("content-type", "").startswith("application/json")
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, content_type, body = exc.code, exc.headers.get("content-type", ""), exc.read()
        assert content_type.startswith("application/json"), (status, body)
        return status, json.loads(body)


async def trace_until(http: Http, message_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll the trace of ``message_id`` until ``done`` holds for it (10 s at most)."""

    async def trace() -> dict[str, Any] | None:
        status, body = await http.json("GET", f"/api/v1/messages/{message_id}")
        return body if status == 200 and done(body) else None

    return await until(trace, timeout=10, what=f"the trace of {message_id}")


def stage_is(*stages: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate: the trace says the message is at one of ``stages``."""
    return lambda body: body["state"]["stage"] in stages


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[MqttClient]:
    """An MQTT client to publish as terminals."""
    async with MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}") as c:
        yield c


class TestHttp:
    async def test_a_delivered_message_shows_every_hop_in_order(
        self, settings: Settings, publisher: MqttClient
    ) -> None:
        """Received < queued <= taken <= sent <= delivered <= published on the link, with the three receipts."""
        terminal = await provision(settings, "T1")
        async with running_gateway(settings, config_with()) as gateway, observing(settings) as seen:
            message = terminal.message(text="hello", receipt=True)
            await terminal.publish(publisher, message)
            await eventually(lambda: len(seen.delivered) == 1, what="delivery")
            http = Http(gateway.http.port)
            body = await trace_until(http, f"T1:{message.seq}", stage_is("delivered"))
            again = await http.json("GET", f"/api/v1/terminals/T1/messages/{message.seq}")
        hops = body["hops"]
        assert [h["event"] for h in hops] == ["received", "queued", "taken", "sent", "delivered", "published"]
        at = [h["at"] for h in hops]
        assert at[0] < at[1] <= at[2] <= at[3] <= at[4] <= at[5]
        assert [h["link"] for h in hops[2:5]] == ["fast", "fast", "fast"]
        assert hops[0]["elapsed_s"] == 0
        assert hops[5]["elapsed_s"] > 0
        assert (body["id"], body["terminal"], body["seq"], body["priority"]) == (
            f"T1:{message.seq}",
            "T1",
            message.seq,
            "routine",
        )
        assert [r["kind"] for r in body["receipts"]] == ["accepted", "sent", "delivered"]
        assert again == (200, body)

    async def test_a_replay_shows_a_duplicate_hop(self, settings: Settings, publisher: MqttClient) -> None:
        """The same sealed message published twice leaves one queued hop and one duplicate hop."""
        terminal = await provision(settings, "T2")
        async with running_gateway(settings, config_with()) as gateway:
            topic, payload = terminal.wire(terminal.message(text="once"))
            await publisher.publish(topic, payload, qos=1)
            await publisher.publish(topic, payload, qos=1)
            seq = peek_header(payload).seq
            body = await trace_until(Http(gateway.http.port), f"T2:{seq}", lambda b: len(b["hops"]) >= 7)
        assert sorted(h["event"] for h in body["hops"]).count("duplicate") == 1
        assert [h["event"] for h in body["hops"]].count("queued") == 1

    async def test_a_dead_letter_shows_the_failed_attempt_the_dead_hop_and_a_requeue(
        self, settings: Settings, publisher: MqttClient
    ) -> None:
        """A message lost on every attempt shows failed (code lost) then dead (link_failed); a requeue shows after."""
        lossy = GeoProfile(name="lossy", max_frame_bytes=1750, interval_s=0.0, cards=4, loss_rate=0.999, seed=1)
        terminal = await provision(settings, "T3")
        async with running_gateway(settings, config_with(lossy, max_attempts=1)) as gateway:
            message = terminal.message(text="doomed", receipt=True)
            await terminal.publish(publisher, message)
            http = Http(gateway.http.port)
            body = await trace_until(http, f"T3:{message.seq}", stage_is("dead"))
            [dead] = (await http.json("GET", "/api/v1/dead"))[1]
            assert (await http.json("POST", f"/api/v1/dead/{dead['id']}/requeue"))[0] == 200
            after = await trace_until(http, f"T3:{message.seq}", lambda b: len(b["hops"]) >= 9)
        assert [h["event"] for h in body["hops"]] == ["received", "queued", "taken", "failed", "dead"]
        failed, dead_hop = body["hops"][3:]
        assert (failed["link"], failed["details"]) == ("lossy", {"code": "lost", "attempt": "1"})
        assert dead_hop["details"] == {"reason": "link_failed"}
        assert [r["kind"] for r in body["receipts"]] == ["accepted", "rejected"]
        assert body["state"]["detail"] == "in the dead letters (link_failed)"
        assert [h["event"] for h in after["hops"]][5:9] == ["requeued", "taken", "failed", "dead"]

    async def test_fragments_are_traced_one_by_one(self, settings: Settings, publisher: MqttClient) -> None:
        """A message larger than the link's frame shows fragment 1/n .. n/n, then sent with fragments=n."""
        small = GeoProfile(name="small", max_frame_bytes=60, interval_s=0.0, cards=4, loss_rate=0.0)
        terminal = await provision(settings, "T4")
        async with running_gateway(settings, config_with(small)) as gateway:
            message = terminal.message(text="x" * 200)
            await terminal.publish(publisher, message)
            body = await trace_until(Http(gateway.http.port), f"T4:{message.seq}", stage_is("delivered"))
        fragments = [h for h in body["hops"] if h["event"] == "fragment"]
        total = len(fragments)
        assert total >= 3
        assert [f["details"]["frag"] for f in fragments] == [f"{i}/{total}" for i in range(1, total + 1)]
        [sent] = [h for h in body["hops"] if h["event"] == "sent"]
        assert sent["details"] == {"records": "1", "fragments": str(total)}

    async def test_unknown_is_404_and_malformed_is_422(self, settings: Settings) -> None:
        """An id never traced gives 404 JSON naming it; ids that cannot be terminal:seq give 422 JSON."""
        async with running_gateway(settings, config_with()) as gateway:
            http = Http(gateway.http.port)
            assert await http.json("GET", "/api/v1/messages/T9:1") == (404, {"error": "no trace of message T9:1"})
            assert (await http.json("GET", "/api/v1/terminals/T9/messages/1"))[0] == 404
            for bad in ("T9", "T9:x", "T9:-1", "T9:9223372036854775808", "T9:12345678901234567890"):
                status, body = await http.json("GET", f"/api/v1/messages/{bad}")
                assert (status, body["error"]) == (422, "invalid request"), (bad, body)
                assert [d["loc"] for d in body["detail"]] == ["path.message_id"]
            assert (await http.json("GET", "/api/v1/terminals/T9/messages/x"))[0] == 422

    async def test_tracing_off_writes_no_key_on_the_whole_path(self, settings: Settings, publisher: MqttClient) -> None:
        """A gateway with trace_ttl_s = 0 delivers a message without writing any trace key."""
        terminal = await provision(settings, "T5")
        async with running_gateway(settings, config_with(trace_ttl_s=0)), observing(settings) as seen:
            await terminal.publish(publisher, terminal.message(text="quiet", receipt=True))
            await eventually(lambda: len(seen.delivered) == 1, what="delivery")
        async with Redis.from_url(settings.redis_url) as redis:
            assert await trace_keys(redis, Keys(settings.topic_prefix)) == []

    async def test_every_key_of_a_busy_path_expires(self, settings: Settings, publisher: MqttClient) -> None:
        """After a few deliveries every trace key carries a TTL no longer than trace_ttl_s."""
        terminal = await provision(settings, "T6")
        async with running_gateway(settings, config_with(trace_ttl_s=300)), observing(settings) as seen:
            for n in range(5):
                await terminal.publish(publisher, terminal.message(text=f"m{n}"))
            await eventually(lambda: len(seen.delivered) == 5, what="five deliveries")
        async with Redis.from_url(settings.redis_url) as redis:
            assert await assert_all_expire(redis, Keys(settings.topic_prefix), 300) == 5


async def satgw(prefix: str, *args: str) -> tuple[int, str, str]:
    """Run ``satgw ARGS`` against the test services under ``prefix``: (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SATGW_")}
    environ |= {"SATGW_REDIS_URL": REDIS_URL, "SATGW_MQTT_URL": MQTT_URL, "SATGW_TOPIC_PREFIX": prefix}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class TestCli:
    async def test_satgw_trace_prints_the_hops(self, settings: Settings, publisher: MqttClient) -> None:
        """``satgw trace ID`` prints the state and a row per hop; ``T SEQ`` and ``--json`` agree; unknown exits 1."""
        terminal = await provision(settings, "T7")
        prefix = settings.topic_prefix
        async with running_gateway(settings, config_with(FAST_LINK)) as gateway:
            message = terminal.message(text="cli", receipt=True)
            await terminal.publish(publisher, message)
            await trace_until(Http(gateway.http.port), f"T7:{message.seq}", stage_is("delivered"))
        mid = f"T7:{message.seq}"
        code, out, err = await satgw(prefix, "trace", mid)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == f"message {mid} (routine): delivered - delivered: published to applications"
        assert lines[1].startswith("receipts: accepted +")
        rows = lines[lines.index("") + 1 :]
        assert rows[0].split() == ["time", "(UTC)", "elapsed", "event", "details"]
        assert [r.split()[3] for r in rows[1:]] == ["received", "queued", "taken", "sent", "delivered", "published"]
        assert rows[1].split()[2] == "+0.000s"
        assert "class=routine" in rows[1]
        assert "link=fast" in rows[4]
        code, two, _ = await satgw(prefix, "trace", "T7", str(message.seq))
        assert (code, two) == (0, out)
        code, raw, _ = await satgw(prefix, "trace", mid, "--json")
        document = json.loads(raw)
        assert code == 0
        assert document["state"]["stage"] == "delivered"
        assert [h["event"] for h in document["hops"]][-1] == "published"
        code, out, err = await satgw(prefix, "trace", "T7:1")
        assert (code, out) == (1, "")
        assert "no trace of message T7:1" in err
        code, _, err = await satgw(prefix, "trace", "not-an-id")
        assert code == 2
        assert "terminal:seq" in err
