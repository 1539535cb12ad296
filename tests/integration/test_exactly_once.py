"""The QoS 2 publisher against the real Mosquitto: release is the delivery, and recovery neither loses nor repeats."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.mqtt import ExactlyOncePublisher, Inbound, MqttClient, packets
from tests.harness import MQTT_URL, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(name="topic")
def _topic() -> str:
    return f"t{uuid.uuid4().hex[:10]}/delivered/x"


@pytest.fixture(name="received")
async def _received(topic: str) -> AsyncIterator[list[bytes]]:
    got: list[bytes] = []

    def collect(message: Inbound) -> None:
        got.append(message.payload)
        message.ack()

    client = MqttClient(url=MQTT_URL, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    client.route(topic, collect)
    async with client:
        await client.subscribe(topic, qos=2)
        yield got


async def _nothing(mids: list[int]) -> None:
    return None


def _publisher(client_id: str, *, clean_start: bool) -> ExactlyOncePublisher:
    return ExactlyOncePublisher(url=MQTT_URL, client_id=client_id, clean_start=clean_start)


async def _publish_unreleased(publisher: ExactlyOncePublisher, topic: str, payloads: list[bytes]) -> None:
    """PUBLISH and wait for PUBREC, then stop: what a crash between PUBREC and commit leaves behind."""
    for mid, payload in enumerate(payloads, start=1):
        rec = publisher._expect(packets.PUBREC, mid)
        publisher._send(packets.publish_qos2(topic, payload, mid))
        assert await rec == 0


class TestExactlyOnce:
    async def test_batch_is_delivered_once_after_commit(self, topic: str, received: list[bytes]) -> None:
        """Messages reach subscribers only after the commit step, each once."""
        committed: list[list[int]] = []

        async def commit(mids: list[int]) -> None:
            await asyncio.sleep(0.2)
            assert received == [], "nothing may be delivered before the commit"
            committed.append(mids)

        async with _publisher(f"eo-{uuid.uuid4().hex[:8]}", clean_start=True) as pub:
            await pub.publish_batch([(topic, b"a"), (topic, b"b")], commit=commit)
        await eventually(lambda: len(received) == 2, what="two deliveries")
        assert sorted(received) == [b"a", b"b"]
        assert len(committed) == 1

    async def test_committed_but_unreleased_is_released_by_the_resumed_session(
        self, topic: str, received: list[bytes]
    ) -> None:
        """A crash after commit and before PUBREL: resuming the session and releasing delivers it once."""
        client_id = f"eo-{uuid.uuid4().hex[:8]}"
        async with _publisher(client_id, clean_start=True) as pub:
            await _publish_unreleased(pub, topic, [b"committed"])
            assert pub._writer is not None
            pub._writer.transport.abort()  # kill -9, as the broker sees it
        await asyncio.sleep(0.3)
        assert received == []
        async with _publisher(client_id, clean_start=False) as pub:
            assert pub.session_present
            await pub.release([1])
        await eventually(lambda: received == [b"committed"], what="the released message")

    async def test_clean_start_drops_uncommitted_copies_and_frees_the_quota(
        self, topic: str, received: list[bytes]
    ) -> None:
        """Unreleased copies left by a crash are never delivered, and do not block new publishes."""
        client_id = f"eo-{uuid.uuid4().hex[:8]}"
        async with _publisher(client_id, clean_start=True) as pub:
            quota = pub.receive_maximum
            await _publish_unreleased(pub, topic, [f"stale {i}".encode() for i in range(min(quota, 100))])
            assert pub._writer is not None
            pub._writer.transport.abort()
        await asyncio.sleep(0.3)
        async with _publisher(client_id, clean_start=True) as pub:
            await pub.publish_batch([(topic, b"fresh")] * min(quota, 20), commit=_nothing)
        await eventually(lambda: len(received) == min(quota, 20), what="the fresh messages")
        await asyncio.sleep(0.3)
        assert set(received) == {b"fresh"}
