"""The HTTP API of a running gateway over real Redis and Mosquitto: routes, errors, metrics, dead letters, links."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.ceilings import Shares
from gateway.config import Settings
from gateway.exceptions import QueueUnavailable
from gateway.links.geo import GeoProfile
from gateway.mqtt import MqttClient
from gateway.operations import Operations
from gateway.queue import Queue
from gateway.service import Gateway
from protocols.envelope import Kind, Priority
from tests.harness import accepted_entry as _accepted
from tests.harness import config_with, eventually, observing, provision, running_gateway

pytestmark = pytest.mark.integration


class Http:
    """A plain HTTP client of one gateway (urllib in a thread, so the gateway's loop keeps serving)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def call(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) of one request."""
        return await asyncio.to_thread(self._call, method, path)

    async def json(self, method: str, path: str) -> tuple[int, Any]:
        """(status, parsed JSON body) of one request; fails if the body is not JSON."""
        status, content_type, body = await self.call(method, path)
        assert content_type.startswith("application/json"), (status, content_type, body[:200])
        return status, json.loads(body)

    def _call(self, method: str, path: str) -> tuple[int, str, bytes]:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("content-type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("content-type", ""), exc.read()


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A serving gateway with one fast link named ``fast``."""
    async with running_gateway(settings, config_with()) as gw:
        yield gw


@pytest.fixture
def http(gateway: Gateway) -> Http:
    """An HTTP client of the gateway's API."""
    return Http(gateway.http.port)


async def _dead_letters(gateway: Gateway, count: int) -> list[str]:
    """Dead-letter ``count`` messages of terminal T9 (on a gateway without relays); return their message ids."""
    items = [_accepted("T9", seq) for seq in range(1, count + 1)]
    await gateway.queue.enqueue(items)
    taken = await gateway.queue.take(count=count, block_s=0.0)
    assert len(taken) == count
    await gateway.queue.dead_letter(taken, reason="test_reason")
    return [i.message_id for i in items]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class TestHealthAndStatus:
    async def test_healthz_and_readyz_answer_json(self, http: Http) -> None:
        """/healthz says ok and /readyz reports Redis and the broker reachable, both 200."""
        assert await http.json("GET", "/healthz") == (200, {"status": "ok"})
        assert await http.json("GET", "/readyz") == (200, {"redis": True, "mqtt": True})

    async def test_status_shows_queues_links_and_version(self, gateway: Gateway, http: Http) -> None:
        """/api/v1/status has every class queue (up and down), the link with its state, the node and the version."""
        status, body = await http.json("GET", "/api/v1/status")
        assert status == 200
        assert list(body["queues"]) == ["distress", "urgency", "safety", "routine"]
        assert body["queues"]["routine"] == {"depth": 0, "pending": 0, "oldest_age_s": None}
        assert body["downlink"]["safety"] == {"depth": 0, "pending": 0, "oldest_age_s": None}
        assert body["node"] == gateway.settings.node
        assert body["version"]
        [link] = body["links"]
        assert link["name"] == "fast"
        assert link["state"] in ("ready", "sending")
        assert link["paused"] is False
        assert set(link["next_send_s"]) == {"distress", "urgency", "safety", "routine"}

    async def test_readyz_is_503_when_a_connection_is_down(
        self, gateway: Gateway, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """/readyz answers 503 with the failing check when the broker connection is down."""
        monkeypatch.setattr(MqttClient, "connected", property(lambda self: False))
        assert await http.json("GET", "/readyz") == (503, {"redis": True, "mqtt": False})


class TestErrors:
    async def test_unknown_route_is_404_json(self, http: Http) -> None:
        """A path no route serves gives 404 with a JSON error naming it."""
        assert await http.json("GET", "/api/v1/nope") == (404, {"error": "no route /api/v1/nope"})

    async def test_wrong_method_is_405_json(self, http: Http) -> None:
        """A known path with a method it does not serve gives 405 with a JSON error."""
        status, body = await http.json("DELETE", "/api/v1/status")
        assert status == 405
        assert set(body) == {"error"}

    @pytest.mark.parametrize("query", ["limit=0", "limit=10001", "limit=ten"])
    async def test_bad_limit_is_422_json(self, http: Http, query: str) -> None:
        """A dead-letter limit out of 1..10000 or not a number gives 422 naming the parameter."""
        status, body = await http.json("GET", f"/api/v1/dead?{query}")
        assert status == 422
        assert body["error"] == "invalid request"
        assert [d["loc"] for d in body["detail"]] == ["query.limit"]

    async def test_malformed_dead_id_is_422_and_unknown_is_404(self, http: Http) -> None:
        """A dead-letter id that is no stream id gives 422; a well-formed unknown one 404, also on requeue."""
        assert (await http.json("GET", "/api/v1/dead/abc"))[0] == 422
        assert await http.json("GET", "/api/v1/dead/1-1") == (404, {"error": "no dead letter 1-1"})
        assert await http.json("POST", "/api/v1/dead/1-1/requeue") == (404, {"error": "no dead letter 1-1"})

    async def test_unknown_link_is_404(self, http: Http) -> None:
        """Pausing or resuming a link that does not exist gives 404 naming it."""
        assert await http.json("POST", "/api/v1/links/nope/pause") == (404, {"error": "no link nope"})
        assert await http.json("POST", "/api/v1/links/nope/resume") == (404, {"error": "no link nope"})

    async def test_a_failure_is_500_json_without_traceback(
        self, http: Http, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception inside a route gives 500 with a bare JSON error; the traceback goes to the log only."""

        async def boom(self: Operations, **_: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(Operations, "terminals", boom)
        status, content_type, body = await http.call("GET", "/api/v1/terminals")
        assert (status, json.loads(body)) == (500, {"error": "internal error"})
        assert content_type.startswith("application/json")
        assert b"secret" not in body
        assert b"Traceback" not in body
        assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)

    async def test_redis_failing_is_503_json_and_metrics_still_answer(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While Redis fails, status answers 503 JSON and /metrics still answers, with satgw_redis_up 0."""

        async def down(self: Queue) -> None:
            raise QueueUnavailable("queue depths: connection refused")

        monkeypatch.setattr(Queue, "depths", down)
        assert await http.json("GET", "/api/v1/status") == (503, {"error": "storage unavailable, try again"})
        status, _content_type, body = await http.call("GET", "/metrics")
        assert status == 200
        samples = _samples(body.decode())
        assert samples[("satgw_redis_up", ())] == 0
        assert ("satgw_queue_depth", (("class", "routine"),)) not in samples
        assert ("satgw_accepted_total", (("class", "routine"),)) in samples

    async def test_openapi_lists_every_route(self, http: Http) -> None:
        """/openapi.json documents every route with its methods."""
        status, schema = await http.json("GET", "/openapi.json")
        assert status == 200
        routes = {(path, method) for path, ops in schema["paths"].items() for method in ops}
        assert routes == {
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/metrics", "get"),
            ("/api/v1/status", "get"),
            ("/api/v1/distress", "get"),
            ("/api/v1/dead", "get"),
            ("/api/v1/dead", "delete"),
            ("/api/v1/dead/{dead_id}", "get"),
            ("/api/v1/dead/{dead_id}/requeue", "post"),
            ("/api/v1/terminals", "get"),
            ("/api/v1/terminals/{terminal}", "get"),
            ("/api/v1/links", "get"),
            ("/api/v1/links/{name}/pause", "post"),
            ("/api/v1/links/{name}/resume", "post"),
            ("/api/v1/links/{name}/timeline", "get"),
            ("/api/v1/history", "get"),
            ("/api/v1/messages/{message_id}", "get"),
            ("/api/v1/terminals/{terminal}/messages/{seq}", "get"),
            ("/api/v1/terminals/{terminal}/messages", "post"),
            ("/api/v1/incidents", "get"),
            ("/api/v1/incidents/{incident_id}", "get"),
            ("/api/v1/incidents/{incident_id}/ack", "post"),
            ("/api/v1/incidents/{incident_id}/close", "post"),
            ("/api/v1/alerts", "post"),
            ("/api/v1/alerts/deliveries", "get"),
            ("/api/v1/alerts/deliveries/{dead_id}/requeue", "post"),
        }
        assert "StatusOut" in schema["components"]["schemas"]


class TestMetrics:
    async def test_metrics_show_depth_counts_and_latency_after_traffic(
        self, settings: Settings, gateway: Gateway, http: Http
    ) -> None:
        """After messages flow, /metrics parses and shows depths, counts and both latency histograms per class."""
        terminal = await provision(settings, "T000001")
        async with observing(settings) as seen:
            client_id = f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}"
            async with MqttClient(url=settings.mqtt_url, client_id=client_id) as pub:
                for i in range(3):
                    await terminal.publish(pub, terminal.message(text=f"m{i}"))
                await terminal.publish(pub, terminal.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="sos"))
                await eventually(lambda: len(seen.delivered) == 4, what="four deliveries")
        await eventually(lambda: gateway.counters.get("delivered.routine") == 3, what="delivered counted")
        status, content_type, body = await http.call("GET", "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        samples = _samples(body.decode())
        routine, distress = (("class", "routine"),), (("class", "distress"),)
        assert samples[("satgw_queue_depth", routine)] == 0
        assert samples[("satgw_queue_oldest_age_seconds", distress)] == 0
        assert samples[("satgw_accepted_total", routine)] == 3
        assert samples[("satgw_sent_total", distress)] == 1
        assert samples[("satgw_ingest_to_sent_seconds_count", routine)] == 3
        assert samples[("satgw_ingest_to_delivered_seconds_count", routine)] == 3
        assert samples[("satgw_ingest_to_delivered_seconds_count", distress)] == 1
        assert 0 < samples[("satgw_ingest_to_delivered_seconds_sum", distress)] < 30
        assert samples[("satgw_link_transmissions_total", (("code", "sent"), ("link", "fast")))] >= 1
        assert samples[("satgw_link_paused", (("link", "fast"),))] == 0
        assert samples[("satgw_redis_up", ())] == 1
        assert samples[("satgw_mqtt_connected", (("client", "publisher"),))] == 1

    async def test_metrics_show_a_waiting_queue_and_its_age(self, gateway: Gateway, http: Http) -> None:
        """Entries queued while the link is paused show as depth, with the age of the oldest."""
        assert (await http.json("POST", "/api/v1/links/fast/pause"))[0] == 200
        await gateway.queue.enqueue([_accepted("T7", 1, Priority.SAFETY), _accepted("T7", 2, Priority.SAFETY)])
        samples = _samples((await http.call("GET", "/metrics"))[2].decode())
        safety = (("class", "safety"),)
        # The relay may have taken them as the pause began (then it holds them): waiting or pending, never sent.
        assert samples[("satgw_queue_depth", safety)] + samples[("satgw_queue_pending", safety)] == 2
        assert samples[("satgw_sent_total", safety)] == 0
        assert samples[("satgw_queue_oldest_age_seconds", safety)] >= 0
        assert samples[("satgw_link_paused", (("link", "fast"),))] == 1


class TestLinks:
    async def test_pause_stops_a_link_and_resume_restarts_it(self, settings: Settings, gateway: Gateway) -> None:
        """A paused link carries nothing, distress included, and carries what waited once resumed."""
        http = Http(gateway.http.port)
        status, link = await http.json("POST", "/api/v1/links/fast/pause")
        assert status == 200
        assert (link["state"], link["paused"]) == ("paused", True)
        assert (await http.json("GET", "/api/v1/links"))[1][0]["state"] == "paused"
        terminal = await provision(settings, "T000002")
        async with observing(settings) as seen:
            client_id = f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}"
            async with MqttClient(url=settings.mqtt_url, client_id=client_id) as pub:
                await terminal.publish(pub, terminal.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="sos"))
                await eventually(lambda: gateway.counters.get("accepted.distress") == 1, what="sos accepted")
                await asyncio.sleep(0.3)  # a negative check: give a wrongly running relay time to send it
                assert seen.delivered == []
                assert gateway.counters.get("sent.distress") == 0
                status, link = await http.json("POST", "/api/v1/links/fast/resume")
                assert status == 200
                assert link["paused"] is False
                await eventually(lambda: len(seen.delivered) == 1, what="the sos after resume")
        assert seen.delivered[0]["priority"] == "distress"


class TestCapacity:
    async def test_links_and_metrics_show_capacity_used_against_the_ceiling(self, settings: Settings) -> None:
        """With ceilings configured, the link reports its capacity, each class's share and the share used."""
        link = GeoProfile(name="capped", max_frame_bytes=1750, interval_s=0.5, cards=2, loss_rate=0.0)
        config = config_with(link, shares=Shares(shares={Priority.ROUTINE: 0.5}))
        async with running_gateway(settings, config) as gw:
            http = Http(gw.http.port)
            await gw.queue.enqueue([_accepted("T8", 1)])
            await eventually(lambda: gw.counters.get("sent.routine") == 1, what="the message sent")
            status, [body] = await http.json("GET", "/api/v1/links")
            samples = _samples((await http.call("GET", "/metrics"))[2].decode())
        assert status == 200
        capacity = body["capacity"]
        assert capacity["per_hour"] == 2 * 3600 / 0.5
        assert capacity["share"] == {"routine": 0.5}
        assert 0 < capacity["used"]["routine"] < 0.5
        assert body["transmissions"] == {"sent": 1}
        capped = (("link", "capped"),)
        assert samples[("satgw_link_capacity_frames_per_hour", capped)] == 14400
        assert samples[("satgw_link_capacity_share_ratio", (("class", "routine"), *capped))] == 0.5
        assert samples[("satgw_link_capacity_used_ratio", (("class", "routine"), *capped))] > 0


class TestDeadLetters:
    async def test_list_inspect_requeue_and_purge(self, settings: Settings) -> None:
        """Dead letters are listed, inspected with their message, requeued into their queue and purged."""
        async with running_gateway(settings.model_copy(update={"roles": frozenset({"ingest"})}), config_with()) as gw:
            await self._check(gw, Http(gw.http.port))

    async def _check(self, gateway: Gateway, http: Http) -> None:
        ids = await _dead_letters(gateway, 3)
        status, listed = await http.json("GET", "/api/v1/dead?limit=2")
        assert status == 200
        assert [d["message"]["message_id"] for d in listed] == ids[:2]
        assert {d["reason"] for d in listed} == {"test_reason"}
        status, one = await http.json("GET", f"/api/v1/dead/{listed[0]['id']}")
        assert status == 200
        assert (one["body"], one["kind"], one["priority"]) == ("note 1", "text", "routine")
        assert one["fields"]["reason"] == "test_reason"
        status, body = await http.json("POST", f"/api/v1/dead/{listed[0]['id']}/requeue")
        assert (status, body) == (200, {"requeued": listed[0]["id"]})
        routine = (await gateway.queue.depths())[Priority.ROUTINE]
        assert routine.depth == 1
        assert await http.json("GET", f"/api/v1/dead/{listed[0]['id']}") == (
            404,
            {"error": f"no dead letter {listed[0]['id']}"},
        )
        assert await http.json("DELETE", "/api/v1/dead") == (200, {"purged": 2})
        assert await http.json("GET", "/api/v1/dead") == (200, [])

    async def test_downlink_dead_letters_are_theirs_alone(self, settings: Settings) -> None:
        """direction=down lists, requeues and purges the downlink's dead letters, never the uplink's."""
        async with running_gateway(settings.model_copy(update={"roles": frozenset({"ingest"})}), config_with()) as gw:
            http = Http(gw.http.port)
            down = gw.downlink.queue
            await down.enqueue([_accepted("T9", 1), _accepted("T9", 2)])
            await down.dead_letter(await down.take(count=2, block_s=0.0), reason="test_reason")
            assert await http.json("GET", "/api/v1/dead") == (200, [])
            status, listed = await http.json("GET", "/api/v1/dead?direction=down")
            assert (status, [d["message"]["message_id"] for d in listed]) == (200, ["T9:1", "T9:2"])
            status, _ = await http.json("POST", f"/api/v1/dead/{listed[0]['id']}/requeue?direction=down")
            assert status == 200
            assert (await down.depths())[Priority.ROUTINE].depth == 1
            assert await http.json("DELETE", "/api/v1/dead?direction=down") == (200, {"purged": 1})
            assert (await http.json("GET", "/api/v1/dead?direction=sideways"))[0] == 422


class TestTerminals:
    async def test_terminals_are_listed_without_keys(self, settings: Settings, http: Http) -> None:
        """/api/v1/terminals lists every terminal with its times and never any key material."""
        terminals = [await provision(settings, f"T00000{i}") for i in (1, 2)]
        status, _content_type, body = await http.call("GET", "/api/v1/terminals")
        assert status == 200
        listed = json.loads(body)
        assert [t["terminal"] for t in listed] == ["T000001", "T000002"]
        assert all({"terminal", "created_at", "revoked_at", "revoked"} <= set(t) for t in listed)
        assert all(t["last_seen"] is None and not t["online"] for t in listed)  # provisioned, never heard
        for terminal in terminals:
            key = terminal.creds.key
            for encoded in (key.hex(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")):
                assert (encoded.encode() if isinstance(encoded, str) else encoded) not in body
