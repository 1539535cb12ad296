"""The MQTT client against the real broker: explicit acks decide what the broker re-sends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.mqtt import Inbound, MqttClient
from tests.harness import MQTT_URL, eventually

pytestmark = pytest.mark.integration


async def _receive(client_id: str, topic: str, *, ack: bool, subscribe: bool, expect: int = 50) -> list[Inbound]:
    got: list[Inbound] = []

    def on_message(message: Inbound) -> None:
        got.append(message)
        if ack:
            message.ack()

    client = MqttClient(url=MQTT_URL, client_id=client_id, persistent=True)
    client.route(topic, on_message)
    async with client:
        if subscribe:
            await client.subscribe(topic, qos=1)
            async with MqttClient(url=MQTT_URL, client_id=f"{client_id}-pub") as pub:
                await asyncio.gather(*(pub.publish(topic, b"%d" % i) for i in range(50)))
        await eventually(lambda: len(got) >= expect, timeout=5, what=f"{expect} messages")
        # Lets the last acks reach the broker before disconnecting, and anything unexpected arrive.
        await asyncio.sleep(0.3)
    return got


async def _forget_session(client_id: str) -> None:
    async with MqttClient(url=MQTT_URL, client_id=client_id):
        pass  # a clean-session connect discards the persistent session


async def test_unacked_messages_come_back_with_dup_and_acked_ones_do_not() -> None:
    """A message the handler never acks is re-sent on reconnect (DUP set); once acked, nothing comes back."""
    client_id, topic = f"mq-{uuid.uuid4().hex[:8]}", f"mqtest{uuid.uuid4().hex[:8]}/x"
    try:
        first = await _receive(client_id, topic, ack=False, subscribe=True)
        assert sorted(int(m.payload) for m in first) == list(range(50))
        again = await _receive(client_id, topic, ack=True, subscribe=False)
        assert sorted(int(m.payload) for m in again) == list(range(50))
        assert all(m.dup for m in again)
        assert await _receive(client_id, topic, ack=True, subscribe=False, expect=0) == []
    finally:
        await _forget_session(client_id)


async def test_ack_is_idempotent() -> None:
    """Calling ack twice sends one PUBACK; the connection stays healthy and later messages still arrive."""
    client_id, topic = f"mq-{uuid.uuid4().hex[:8]}", f"mqtest{uuid.uuid4().hex[:8]}/y"
    got: list[bytes] = []

    def on_message(message: Inbound) -> None:
        got.append(message.payload)
        message.ack()
        message.ack()

    client = MqttClient(url=MQTT_URL, client_id=client_id)
    client.route(topic, on_message)
    async with client:
        await client.subscribe(topic, qos=1)
        async with MqttClient(url=MQTT_URL, client_id=f"{client_id}-pub") as pub:
            for i in range(3):
                await pub.publish(topic, b"%d" % i)
        await eventually(lambda: len(got) == 3, timeout=5, what="3 messages")
        assert client.connected


async def test_paused_reading_holds_messages_at_the_broker() -> None:
    """While reading is paused nothing arrives; after resume_reading everything does."""
    client_id, topic = f"mq-{uuid.uuid4().hex[:8]}", f"mqtest{uuid.uuid4().hex[:8]}/z"
    got: list[bytes] = []

    def on_message(message: Inbound) -> None:
        got.append(message.payload)
        message.ack()

    client = MqttClient(url=MQTT_URL, client_id=client_id)
    client.route(topic, on_message)
    async with client:
        await client.subscribe(topic, qos=1)
        client.pause_reading()
        async with MqttClient(url=MQTT_URL, client_id=f"{client_id}-pub") as pub:
            await asyncio.gather(*(pub.publish(topic, b"%d" % i) for i in range(20)))
        await asyncio.sleep(0.3)  # the absence of deliveries is what is checked
        assert got == []
        client.resume_reading()
        await eventually(lambda: len(got) == 20, timeout=5, what="20 messages after resume")
