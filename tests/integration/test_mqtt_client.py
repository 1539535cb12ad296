"""The MQTT client against the real broker: explicit acks decide what the broker re-sends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.mqtt import Inbound, MqttClient
from tests.harness import MQTT_URL, eventually

pytestmark = pytest.mark.integration


_END = b"end"


async def _receive(client_id: str, topic: str, *, ack: bool, subscribe: bool, expect: int = 50) -> list[Inbound]:
    got: list[Inbound] = []
    end = asyncio.Event()

    def on_message(message: Inbound) -> None:
        if message.payload == _END:
            message.ack()
            end.set()
            return
        got.append(message)
        if ack:
            message.ack()

    client = MqttClient(url=MQTT_URL, client_id=client_id, persistent=True)
    client.route(topic, on_message)
    async with client, MqttClient(url=MQTT_URL, client_id=f"{client_id}-pub") as pub:
        if subscribe:
            await client.subscribe(topic, qos=1)
            await asyncio.gather(*(pub.publish(topic, b"%d" % i) for i in range(50)))
        await eventually(lambda: len(got) >= expect, timeout=5, what=f"{expect} messages")
        # The broker keeps order on a subscription: once this marker arrives, anything it was going
        # to send (re-sent messages included) has arrived, and our earlier PUBACKs precede DISCONNECT.
        await pub.publish(topic, _END)
        await asyncio.wait_for(end.wait(), timeout=5)
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

    seen_by_watcher: list[bytes] = []

    def watch(message: Inbound) -> None:
        seen_by_watcher.append(message.payload)
        message.ack()

    client = MqttClient(url=MQTT_URL, client_id=client_id)
    client.route(topic, on_message)
    watcher = MqttClient(url=MQTT_URL, client_id=f"{client_id}-watch")
    watcher.route(topic, watch)
    async with client, watcher:
        await client.subscribe(topic, qos=1)
        await watcher.subscribe(topic, qos=1)
        client.pause_reading()
        async with MqttClient(url=MQTT_URL, client_id=f"{client_id}-pub") as pub:
            await asyncio.gather(*(pub.publish(topic, b"%d" % i) for i in range(20)))
        # A second subscriber has had all of them delivered: the paused one read none.
        await eventually(lambda: len(seen_by_watcher) == 20, timeout=5, what="the watcher's 20 messages")
        assert got == []
        client.resume_reading()
        await eventually(lambda: len(got) == 20, timeout=5, what="20 messages after resume")
