"""Issue 5 over the real broker and Redis: the SOS lifecycle out to rescue centres, CAP alerts in to terminals."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.alerts.endpoints import Backoff, WebhookEndpoint
from gateway.config import Settings
from gateway.mqtt import Inbound, MqttClient
from gateway.names import Topics
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal
from protocols import cap
from protocols.envelope import Kind, Position, Priority
from tests.harness import config_with, eventually, listening, provision, running_gateway, until
from tests.integration.webhook_receiver import Answer, Receiver, Request
from tests.unit.test_cap import assert_schema_valid

pytestmark = pytest.mark.integration

SECRET = "rcc-shared-secret"


@asynccontextmanager
async def mqtt_client(settings: Settings, name: str) -> AsyncIterator[MqttClient]:
    """A plain MQTT client of the test broker."""
    async with MqttClient(
        url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-{name}-{uuid.uuid4().hex[:6]}"
    ) as c:
        yield c


@asynccontextmanager
async def collecting(settings: Settings, topic: str) -> AsyncIterator[list[bytes]]:
    """Every payload published on ``topic`` while the block runs."""
    seen: list[bytes] = []

    def keep(inbound: Inbound) -> None:
        seen.append(inbound.payload)
        inbound.ack()

    client = MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-watch-{uuid.uuid4().hex[:6]}")
    client.route(topic, keep)
    async with client:
        await client.subscribe(topic, qos=1)
        yield seen


def http(gw: Gateway) -> httpx.AsyncClient:
    """An HTTP client of the gateway's API (async: the gateway shares the loop)."""
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http.port}", timeout=10)


def msg_types(documents: list[bytes]) -> list[str]:
    """The msgType of each CAP document, after checking each against the OASIS XSD."""
    for doc in documents:
        assert_schema_valid(doc)
    return [cap.parse_alert(doc).msg_type.value for doc in documents]


async def send(settings: Settings, terminal: SimTerminal, **fields: Any) -> None:
    """Publish one message of ``terminal`` and wait for the broker's PUBACK."""
    async with mqtt_client(settings, "pub") as pub:
        await terminal.publish(pub, terminal.message(**fields))


async def incident_of(client: httpx.AsyncClient, terminal: str) -> dict[str, Any] | None:
    """The newest incident of ``terminal`` as the API lists it."""
    listed = (await client.get("/api/v1/incidents")).json()
    return next((i for i in listed if i["terminal"] == terminal), None)


def flaky_twice(request: Request, index: int) -> Answer:
    """A rescue centre's endpoint that fails its first two requests, then recovers."""
    return Answer(status=503) if index < 2 else Answer(status=200)


class TestSosLifecycle:
    async def test_declare_position_ack_cancel_reach_rescue_centre_and_terminal(self, settings: Settings) -> None:
        """Each SOS step is a valid CAP alert on MQTT and at a flaky webhook; the ack comes down to the terminal."""
        terminal = await provision(settings, "SOS001")
        async with Receiver(flaky_twice) as rcc:
            hook = WebhookEndpoint(name="rcc", url=rcc.url, secret=SECRET, backoff=Backoff(base_s=0.05, cap_s=0.2))
            config = config_with(webhooks=(hook,), alert_position_every_s=0.0)  # every position its own Update
            alerts_topic = Topics(settings.topic_prefix).alerts_cap
            async with (
                running_gateway(settings, config) as gw,
                http(gw) as api,
                collecting(settings, alerts_topic) as on_mqtt,
                listening(settings, terminal) as inbox,
            ):
                await send(settings, terminal, priority=Priority.DISTRESS, kind=Kind.SOS, text="fell, leg broken",
                           position=Position(45.83, 6.86))  # fmt: skip
                opened = await until(lambda: incident_of(api, "SOS001"), what="the incident")
                assert opened["state"] == "open"
                assert opened["nature"] == "fell, leg broken"

                # A routine position report while the SOS is open rides in the distress class.
                await eventually(lambda: gw.emergency.in_distress("SOS001"), what="ingest to know of the SOS")
                await send(settings, terminal, kind=Kind.POSITION, position=Position(45.84, 6.87))
                moved = await until(
                    lambda: _when(api, opened["id"], lambda i: (i["position"] or {}).get("lat") == 45.84),
                    what="the new position",
                )
                assert moved["state"] == "open"
                assert gw.counters.get("ingest.lifted_to_distress") == 1

                answer = await api.post(
                    f"/api/v1/incidents/{opened['id']}/ack", json={"text": "team in 40 min", "by": "CROSS"}
                )
                assert answer.status_code == 202
                await eventually(lambda: bool(inbox.messages), what="the acknowledgement down at the terminal")
                ack = inbox.messages[0]
                assert ack["priority"] == "distress"
                assert "CROSS" in ack["body"]
                assert "team in 40 min" in ack["body"]

                await send(settings, terminal, priority=Priority.DISTRESS, kind=Kind.SOS, text="cancel: walked out")
                done = await until(lambda: _when(api, opened["id"], lambda i: i["state"] == "cancelled"), what="cancel")
                assert [a["msg_type"] for a in done["alerts"]] == ["Alert", "Update", "Update", "Cancel"]
                await rcc.wait_for(lambda: len(rcc.keys()) == 4, timeout=15, what="four alerts at the webhook")
                await eventually(lambda: len(on_mqtt) == 4, what="four alerts on MQTT")
        assert msg_types(on_mqtt) == ["Alert", "Update", "Update", "Cancel"]
        assert rcc.keys() == [a["identifier"] for a in done["alerts"]]
        assert all(r.signed_by(SECRET) for r in rcc.requests)
        assert len(rcc.requests) >= 6  # the two failures were retried
        last = cap.parse_alert(on_mqtt[-1])
        assert [r.identifier for r in last.references] == [a["identifier"] for a in done["alerts"][:3]]

    async def test_positions_soon_after_an_alert_update_the_incident_without_an_alert(self, settings: Settings) -> None:
        """Within position_every_s of the last alert a position moves the incident but makes no CAP Update."""
        terminal = await provision(settings, "SOS004")
        async with running_gateway(settings, config_with()) as gw, http(gw) as api:
            await send(settings, terminal, priority=Priority.DISTRESS, kind=Kind.SOS, position=Position(10.0, 20.0))
            opened = await until(lambda: incident_of(api, "SOS004"), what="the incident")
            await eventually(lambda: gw.emergency.in_distress("SOS004"), what="ingest to know of the SOS")
            await send(settings, terminal, kind=Kind.POSITION, position=Position(10.5, 20.0))
            moved = await until(
                lambda: _when(api, opened["id"], lambda i: (i["position"] or {}).get("lat") == 10.5),
                what="the new position",
            )
        assert [a["msg_type"] for a in moved["alerts"]] == ["Alert"]
        assert gw.counters.get("incidents.positions_held") == 1

    async def test_actions_on_unknown_or_finished_incidents_are_refused(self, settings: Settings) -> None:
        """Unknown incident: 404; malformed id or body: 422; an incident already over: 409."""
        terminal = await provision(settings, "SOS002")
        async with running_gateway(settings, config_with()) as gw, http(gw) as api:
            assert (await api.post("/api/v1/incidents/SOS002-99/ack", json={"by": "x"})).status_code == 404
            assert (await api.post("/api/v1/incidents/bad id/ack", json={"by": "x"})).status_code == 422
            await send(settings, terminal, priority=Priority.DISTRESS, kind=Kind.SOS, text="help")
            opened = await until(lambda: incident_of(api, "SOS002"), what="the incident")
            assert (await api.post(f"/api/v1/incidents/{opened['id']}/ack", json={"text": "no by"})).status_code == 422
            closed = await api.post(f"/api/v1/incidents/{opened['id']}/close", json={"by": "CROSS", "text": "safe"})
            assert closed.status_code == 202
            await until(lambda: _when(api, opened["id"], lambda i: i["state"] == "closed"), what="closing")
            again = await api.post(f"/api/v1/incidents/{opened['id']}/ack", json={"by": "CROSS"})
            assert again.status_code == 409
            assert "closed" in again.json()["error"]


class TestDeliveries:
    async def test_refused_delivery_is_listed_dead_and_requeued(self, settings: Settings) -> None:
        """A webhook that refuses (400) leaves the alert dead in the API; requeued, it is delivered."""
        terminal = await provision(settings, "SOS003")
        async with Receiver(lambda request, index: Answer(status=400 if index == 0 else 200)) as rcc:
            hook = WebhookEndpoint(name="rcc", url=rcc.url, secret=SECRET)
            async with running_gateway(settings, config_with(webhooks=(hook,))) as gw, http(gw) as api:
                await send(settings, terminal, priority=Priority.DISTRESS, kind=Kind.SOS, text="help")

                async def dead() -> list[dict[str, Any]]:
                    found: list[dict[str, Any]] = (await api.get("/api/v1/alerts/deliveries")).json()["dead"]
                    return found

                (gone,) = await until(dead, what="a dead delivery")
                assert gone["endpoint"] == "rcc"
                assert gone["status"] == 400
                assert gone["reason"] == "refused"
                assert (await api.post("/api/v1/alerts/deliveries/1-1/requeue")).status_code == 404
                again = await api.post(f"/api/v1/alerts/deliveries/{gone['dead_id']}/requeue")
                assert again.status_code == 200
                await rcc.wait_for(lambda: len(rcc.keys()) == 1, timeout=10, what="the requeued alert")
                assert rcc.keys() == [gone["key"]]
                assert (await api.get("/api/v1/alerts/deliveries")).json() == {"pending": {"rcc": 0}, "dead": []}


async def _when(api: httpx.AsyncClient, incident: str, check: Any) -> dict[str, Any] | None:
    """The incident once ``check`` holds for it, else None."""
    found: dict[str, Any] = (await api.get(f"/api/v1/incidents/{incident}")).json()
    return found if check(found) else None


def area_alert(identifier: str, area: cap.Area, *, msg_type: cap.MsgType = cap.MsgType.ALERT, **extra: Any) -> bytes:
    """A CAP alert from a weather service covering ``area``."""
    now = datetime.now(UTC).replace(microsecond=0)
    info = cap.Info(
        categories=(cap.Category.MET,),
        event="Avalanche warning",
        urgency=cap.Urgency.IMMEDIATE,
        severity=cap.Severity.EXTREME,
        certainty=cap.Certainty.LIKELY,
        headline="Avalanche danger 5 above 2000 m",
        instruction="Stay off slopes steeper than 30 degrees. 不要外出。",
        expires=now + timedelta(hours=6),
        areas=(area,),
    )
    alert = cap.Alert(identifier=identifier, sender="meteo.example", sent=now, status=cap.Status.ACTUAL,
                      msg_type=msg_type, scope=cap.Scope.PUBLIC, infos=(info,))  # fmt: skip
    return cap.build_alert(replace(alert, **extra))


VALLEY = cap.Area(area_desc="valley", polygons=(((45.0, 6.0), (45.0, 7.0), (46.0, 7.0), (46.0, 6.0), (45.0, 6.0)),))


class TestCapIn:
    async def _placed(
        self, settings: Settings, api: httpx.AsyncClient, where: dict[str, Position]
    ) -> list[SimTerminal]:
        terminals = [await provision(settings, name) for name in where]
        for t in terminals:
            await send(settings, t, kind=Kind.POSITION, position=where[t.creds.terminal])

        async def known() -> bool:
            found = [(await api.get(f"/api/v1/terminals/{t.creds.terminal}")).json() for t in terminals]
            return all(f.get("last_position") for f in found)

        await until(known, what="the terminals' positions")
        return terminals

    async def test_polygon_alert_reaches_terminals_inside_and_none_outside(self, settings: Settings) -> None:
        """An alert for a valley goes down to the terminal in it only; its Cancel follows it there."""
        async with running_gateway(settings, config_with()) as gw, http(gw) as api:
            inside, outside = await self._placed(
                settings, api, {"IN001": Position(45.5, 6.5), "OUT001": Position(47.0, 6.5)}
            )
            async with listening(settings, inside) as inbox_in, listening(settings, outside) as inbox_out:
                answer = await api.post("/api/v1/alerts", content=area_alert("av-1", VALLEY))
                assert answer.status_code == 202, answer.text
                assert set(answer.json()["terminals"]) == {"IN001"}
                assert answer.json()["priority"] == "urgency"
                await eventually(lambda: bool(inbox_in.messages), what="the alert at the terminal inside")
                assert inbox_in.messages[0]["body"].startswith("Avalanche danger 5")
                assert inbox_in.messages[0]["priority"] == "urgency"

                # A marker alert for the outside terminal only: if the first had reached it, it would arrive first.
                circle = cap.Area(area_desc="north", circles=(cap.Circle(47.0, 6.5, 5.0),))
                assert (await api.post("/api/v1/alerts", content=area_alert("av-2", circle))).status_code == 202
                await eventually(lambda: bool(inbox_out.messages), what="the marker alert outside")
                assert len(inbox_out.messages) == 1

                ref = cap.Reference("meteo.example", "av-1", datetime.now(UTC).replace(microsecond=0))
                cancel = area_alert("av-3", VALLEY, msg_type=cap.MsgType.CANCEL, references=(ref,))
                cancelled = await api.post("/api/v1/alerts", content=cancel)
                assert set(cancelled.json()["terminals"]) == {"IN001"}
                await eventually(lambda: len(inbox_in.messages) == 2, what="the cancel inside")
                assert inbox_in.messages[1]["body"].startswith("Cancelled: ")
                again = await api.post("/api/v1/alerts", content=area_alert("av-1", VALLEY))
                assert again.status_code == 200
                assert again.json()["duplicate"] is True
            assert len(inbox_out.messages) == 1
            assert len(inbox_in.messages) == 2

    @pytest.mark.parametrize(
        ("name", "status", "reason"),
        [
            ("billion laughs", 400, "xml_forbidden"),
            ("external entity", 400, "xml_forbidden"),
            ("cap 1.1 namespace", 400, "not_cap"),
            ("not xml", 400, "malformed_xml"),
            ("no identifier", 422, "missing_field"),
            ("open polygon", 422, "invalid_area"),
            ("expired", 422, "expired"),
            ("private without addresses", 422, "missing_field"),
        ],
    )
    async def test_bad_alerts_are_refused_and_send_nothing(
        self, settings: Settings, name: str, status: int, reason: str
    ) -> None:
        """Hostile or broken CAP is refused with its reason and reaches no terminal."""
        async with running_gateway(settings, config_with()) as gw, http(gw) as api:
            await self._placed(settings, api, {"IN002": Position(45.5, 6.5)})
            answer = await api.post("/api/v1/alerts", content=BAD[name]())
            assert answer.status_code == status, answer.text
            assert answer.json()["reason"] == reason
            assert not [k for k, v in gw.counters.snapshot().items() if k.startswith("down.accepted") and v]
            assert gw.counters.get("alerts.in.accepted") == 0

    async def test_alert_published_on_mqtt_is_answered_on_results(self, settings: Settings) -> None:
        """An authority publishing on {prefix}/alerts/in gets the outcome on .../results, and the terminal the alert."""
        topics = Topics(settings.topic_prefix)
        async with running_gateway(settings, config_with()) as gw, http(gw) as api:
            (inside,) = await self._placed(settings, api, {"IN003": Position(45.2, 6.2)})
            async with (
                listening(settings, inside) as inbox,
                collecting(settings, topics.alerts_in_results) as results,
                mqtt_client(settings, "authority") as authority,
            ):
                await authority.publish(topics.alerts_in, area_alert("mq-1", VALLEY), qos=1)
                await authority.publish(topics.alerts_in, b"<alert>not cap</alert>", qos=1)
                await eventually(lambda: len(results) == 2, what="two answers")
                await eventually(lambda: bool(inbox.messages), what="the alert at the terminal")
        answers = sorted((json.loads(r) for r in results), key=lambda a: a["accepted"])
        assert answers[0]["accepted"] is False
        assert answers[0]["reason"] == "not_cap"
        assert answers[1]["terminals"].keys() == {"IN003"}


def _valid(**extra: Any) -> bytes:
    return area_alert(f"bad-{uuid.uuid4().hex[:6]}", VALLEY, **extra)


LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&lol3;</alert>"""
ENTITY = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>"""
OPEN_RING = cap.Area(area_desc="open", polygons=(((45.0, 6.0), (45.0, 7.0), (46.0, 7.0), (46.0, 6.0)),))
BAD: dict[str, Any] = {
    "billion laughs": lambda: LAUGHS,
    "external entity": lambda: ENTITY,
    "cap 1.1 namespace": lambda: _valid().replace(b"emergency:cap:1.2", b"emergency:cap:1.1"),
    "not xml": lambda: b"<alert",
    "no identifier": lambda: _valid().replace(b"<identifier>", b"<!--").replace(b"</identifier>", b"-->"),
    "open polygon": lambda: area_alert("bad-open", OPEN_RING),
    "expired": lambda: _expired(),
    "private without addresses": lambda: _valid(scope=cap.Scope.PRIVATE),
}


def _expired() -> bytes:
    doc = cap.parse_alert(_valid())
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    info = replace(doc.infos[0], expires=past)
    return cap.build_alert(replace(doc, sent=past - timedelta(hours=1), infos=(info,)))
