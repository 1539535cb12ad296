"""Terminal presence through a running gateway (real Redis and Mosquitto): last seen, position, counts, online.

What may be attributed to a terminal: accepted messages move its last seen and position; refusals of its
sealed messages count by reason; a forged message (bad seal) counts only as ``rejected_unauthenticated``
under the id it claims and never makes that terminal look alive; an unknown id is not counted at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.mqtt import MqttClient
from gateway.queue.presence import Sighting
from gateway.quotas import Quota
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal
from protocols.envelope import Kind, Message, Position, Priority
from protocols.seal import new_key, seal
from tests.harness import config_with, eventually, provision, running_gateway
from tests.harness import until as polled

pytestmark = pytest.mark.integration

OSLO = Position(59.9139, 10.7522)
TROMSO = Position(69.6492, 18.9553)
SVALBARD = Position(78.2232, 15.6267)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A gateway flushing presence every 50 ms, with a routine quota of a burst of 5 per terminal."""
    config = config_with(presence_flush_s=0.05, quotas={Priority.ROUTINE: Quota(count=1, period_s=3600, burst=5)})
    async with running_gateway(settings, config) as gw:
        yield gw


@pytest.fixture
async def api(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway's API."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http.port}", timeout=10) as client:
        yield client


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[MqttClient]:
    """An MQTT connection that publishes as any terminal (the test broker has no ACL)."""
    async with MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-pub") as client:
        yield client


async def until(api: httpx.AsyncClient, path: str, check: Callable[[Any], bool], what: str) -> Any:
    """GET ``path`` until ``check`` holds for its JSON (presence is flushed every 50 ms); return that JSON."""

    async def answer() -> Any:
        body = (await api.get(path)).json()
        return body if check(body) else None

    return await polled(answer, timeout=10, what=what)


async def send(client: MqttClient, sim: SimTerminal, **options: Any) -> bytes:
    """Publish one sealed message of ``sim`` and wait for the broker's PUBACK; return the payload."""
    topic, payload = sim.wire(sim.message(**options))
    await client.publish(topic, payload, qos=1)
    return payload


async def test_api_shows_last_seen_position_counts_and_online(
    settings: Settings, gateway: Gateway, api: httpx.AsyncClient, publisher: MqttClient
) -> None:
    """Two terminals talk, one stays silent, one was last heard 1000 s ago: the API tells each story and the totals."""
    t1, t2, t3, _old = [await provision(settings, name) for name in ("T1", "T2", "T3", "OLD")]
    started = time.time()
    # Another gateway process heard OLD 1000 s ago, beyond the default 900 s window.
    await gateway.presence_store.merge([Sighting("OLD", started - 1000, counts={"accepted.routine": 1})])

    first = await send(publisher, t1, kind=Kind.POSITION, position=OSLO)
    await publisher.publish(t1.topics.up("T1"), first, qos=1)  # the same sealed message again: a replay
    # Two batches open concurrently, so quota tokens are not taken in strict arrival order: let the replay's
    # refund happen before the rest, and exactly one of the next five is over the burst of 5.
    await eventually(lambda: gateway.counters.get("rejected.replay") == 1, what="the replay refused")
    for _ in range(3):
        await send(publisher, t1, kind=Kind.POSITION, position=TROMSO)
    await send(publisher, t1, kind=Kind.TEXT, text="fifth, no position")
    await send(publisher, t1, kind=Kind.TEXT, text="sixth: one of these five is over the burst")
    await send(publisher, t2, kind=Kind.TELEMETRY, text="t2")
    forged = t2.message(kind=Kind.POSITION, position=SVALBARD)
    await publisher.publish(t2.topics.up("T2"), seal(forged, new_key()), qos=1)
    silent_forged = t3.message(kind=Kind.POSITION, position=SVALBARD)
    await publisher.publish(t3.topics.up("T3"), seal(silent_forged, new_key()), qos=1)
    ghost = Message(terminal="GHOST", seq=1, priority=Priority.ROUTINE, kind=Kind.TEXT)
    await publisher.publish(t3.topics.up("GHOST"), seal(ghost, new_key()), qos=1)  # unknown: counted nowhere
    await eventually(lambda: gateway.counters.get("accepted.routine") == 6, what="six routine messages accepted")
    await send(publisher, t1, priority=Priority.DISTRESS, kind=Kind.SOS, position=SVALBARD)

    one = await until(
        api, "/api/v1/terminals/T1", lambda b: b["counters"]["accepted"] == 6, "T1's six accepted messages"
    )
    assert one["online"] is True
    assert started <= one["last_seen"] <= time.time()
    assert (one["last_position"]["lat"], one["last_position"]["lon"]) == (SVALBARD.lat, SVALBARD.lon)
    assert one["last_position"]["at"] == one["last_seen"]  # the SOS came last and carried the position
    one = await until(
        api, "/api/v1/terminals/T1", lambda b: b["counters"]["delivered"] == 6, "T1's six messages delivered"
    )
    assert one["counters"] == {
        "delivered": 6,
        "accepted": 6,
        "accepted_by_class": {"distress": 1, "urgency": 0, "safety": 0, "routine": 5},
        "duplicates": 1,
        "rejected": {"quota_exceeded": 1},
        "rejected_unauthenticated": 0,
    }
    two = await until(
        api, "/api/v1/terminals/T2", lambda b: b["counters"]["rejected_unauthenticated"] == 1, "T2's forged message"
    )
    assert (two["online"], two["last_position"], two["counters"]["accepted"], two["counters"]["rejected"]) == (
        True,
        None,
        1,
        {},
    )
    three = (await api.get("/api/v1/terminals/T3")).json()
    assert (three["online"], three["last_seen"], three["last_position"]) == (False, None, None)
    assert three["counters"]["rejected_unauthenticated"] == 1  # claimed, not proven: T3 still never seen
    aged = (await api.get("/api/v1/terminals/OLD")).json()
    assert aged["online"] is False
    assert aged["last_seen_age_s"] >= 1000

    assert (await api.get("/api/v1/terminals/GHOST")).status_code == 404
    assert (await api.get("/api/v1/terminals/bad!id")).status_code == 422
    online = (await api.get("/api/v1/terminals", params={"online": "true"})).json()
    assert [t["terminal"] for t in online] == ["T1", "T2"]
    offline = (await api.get("/api/v1/terminals", params={"online": "false"})).json()
    assert [t["terminal"] for t in offline] == ["OLD", "T3"]
    recent = (await api.get("/api/v1/terminals", params={"order": "last_seen", "limit": 3})).json()
    assert [t["terminal"] for t in recent] == ["T1", "T2", "OLD"]  # T1's SOS came last; T3 was never seen

    status = (await api.get("/api/v1/status")).json()
    assert status["terminals"] == {"registered": 4, "online": 2, "seen": 3, "online_window_s": 900.0}
    metrics = {
        s.name: s.value
        for family in text_string_to_metric_families((await api.get("/metrics")).text)
        for s in family.samples
    }
    assert (metrics["satgw_terminals_online"], metrics["satgw_terminals_registered"]) == (2.0, 4.0)


async def test_a_forged_flood_logs_a_few_lines_and_a_summary_with_exact_counts(
    settings: Settings,
    gateway: Gateway,
    api: httpx.AsyncClient,
    publisher: MqttClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """200 forged messages log at most 10 rejection lines and a summary of the rest; counters and receipts count all."""
    caplog.set_level(logging.INFO, logger="satgw.ingest")
    victim = await provision(settings, "VICTIM")
    for _ in range(200):
        forged = victim.message(receipt=True)
        await publisher.publish(victim.topics.up("VICTIM"), seal(forged, new_key()), qos=1)
    await eventually(lambda: gateway.counters.get("rejected.bad_seal") == 200, what="200 bad seals counted")
    assert gateway.counters.get("receipts.rejected") == 200

    def summarised() -> int:
        return sum(int(getattr(r, "count", 0)) for r in caplog.records if r.getMessage().startswith("suppressed"))

    await eventually(lambda: summarised() + _rejection_lines(caplog) == 200, what="the summary of held-back lines")
    assert 1 <= _rejection_lines(caplog) <= 10 * 2  # 10 a second; the flood may straddle a second boundary
    (summary, *_) = [r for r in caplog.records if r.getMessage().startswith("suppressed")]
    assert "rejections (reason=bad_seal)" in summary.getMessage()
    victim_out = await until(
        api,
        "/api/v1/terminals/VICTIM",
        lambda b: b["counters"]["rejected_unauthenticated"] == 200,
        "200 unauthenticated under VICTIM",
    )
    assert (victim_out["online"], victim_out["last_seen"]) == (False, None)


def _rejection_lines(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.getMessage().startswith("rejected bad_seal"))
