"""The whole path over the real broker and Redis: terminal → MQTT → ingest → queue → link → ground."""

from __future__ import annotations

import uuid

import pytest

from gateway.config import Settings
from gateway.links.geo import GeoProfile
from gateway.mqtt import MqttClient
from protocols.envelope import Kind, Position, Priority
from tests.harness import (
    config_with,
    eventually,
    observing,
    provision,
    running_gateway,
)

pytestmark = pytest.mark.integration


async def _publisher(settings: Settings) -> MqttClient:
    return MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}")


class TestFullPath:
    async def test_message_is_delivered_with_every_field(self, settings: Settings) -> None:
        """A sealed position report reaches the delivered topic with its fields, class and timestamps."""
        terminal = await provision(settings, "T000001")
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            async with await _publisher(settings) as pub:
                message = terminal.message(
                    kind=Kind.POSITION, text="all well", position=Position(39.9042, 116.4074), ttl=600
                )
                await terminal.publish(pub, message)
                await eventually(lambda: len(seen.delivered) == 1, what="delivery")
        got = seen.delivered[0]
        assert got["id"] == f"T000001:{message.seq}"
        assert (got["terminal"], got["seq"], got["priority"], got["kind"]) == (
            "T000001",
            message.seq,
            "routine",
            "position",
        )
        assert got["body"] == "all well"
        assert got["position"] == {"lat": 39.9042, "lon": 116.4074}
        assert got["ttl"] == 600
        assert got["ts"] <= got["received_at"] <= got["delivered_at"]
        assert got["link"] == "fast"

    async def test_receipts_follow_the_hops_in_order(self, settings: Settings) -> None:
        """A terminal that asks for receipts gets accepted, sent and delivered, in that order."""
        terminal = await provision(settings, "T000002")
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            async with await _publisher(settings) as pub:
                message = terminal.message(priority=Priority.URGENCY, text="medical", receipt=True)
                await terminal.publish(pub, message)
                await eventually(lambda: len(seen.receipts_of("T000002", message.seq)) == 3, what="three receipts")
        assert seen.receipts_of("T000002", message.seq) == ["accepted", "sent", "delivered"]

    async def test_no_receipts_unless_asked(self, settings: Settings) -> None:
        """A message without the receipt flag is delivered and produces no receipt."""
        terminal = await provision(settings, "T000003")
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            async with await _publisher(settings) as pub:
                await terminal.publish(pub, terminal.message(text="quiet"))
                await eventually(lambda: len(seen.delivered) == 1, what="delivery")
        assert seen.receipts["T000003"] == []

    async def test_many_messages_all_arrive_once(self, settings: Settings) -> None:
        """Five hundred messages from ten terminals are each delivered exactly once."""
        terminals = [await provision(settings, f"T1{i:05d}") for i in range(10)]
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            async with await _publisher(settings) as pub:
                sent = []
                for i in range(500):
                    t = terminals[i % 10]
                    m = t.message(priority=Priority(i % 4), kind=Kind.SOS if i % 4 == 0 else Kind.TEXT, text=f"n{i}")
                    sent.append(t.publish(pub, m))
                for future in sent:
                    await future
                await eventually(lambda: len(seen.delivered) >= 500, timeout=20, what="500 deliveries")
        ids = seen.delivered_ids()
        assert len(ids) == len(set(ids)) == 500


class TestDistressFirst:
    async def test_sos_overtakes_a_routine_backlog(self, settings: Settings) -> None:
        """With a slow one-card link and 40 routine messages queued, an SOS goes in the next slot or the one after."""
        slow = GeoProfile(name="slow", max_frame_bytes=1750, interval_s=0.1, cards=1, loss_rate=0.0)
        terminal = await provision(settings, "T000004")
        async with running_gateway(settings, config_with(slow, pack_max=1)), observing(settings) as seen:
            async with await _publisher(settings) as pub:
                for i in range(40):
                    await terminal.publish(pub, terminal.message(text=f"routine {i}"))
                await eventually(lambda: len(seen.delivered) >= 2, what="the backlog to start draining")
                sos = terminal.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="MAYDAY")
                await terminal.publish(pub, sos)
                await eventually(lambda: any(d["priority"] == "distress" for d in seen.delivered), what="the SOS")
                position = next(i for i, d in enumerate(seen.delivered) if d["priority"] == "distress")
        # Frames already in flight when the SOS arrived may land first; nothing queued after it may.
        assert position <= 4, f"SOS delivered {position}th; routine messages overtook it"
