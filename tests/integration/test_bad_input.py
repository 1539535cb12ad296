"""Bad input gets a specific rejected receipt and a counter, and never stalls ingest."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.credentials import Credentials
from gateway.mqtt import MqttClient
from gateway.names import Keys
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal
from gateway.terminals import Registry
from protocols.envelope import Kind, Priority
from protocols.seal import MAX_WIRE_BYTES, new_key, peek_header, seal
from tests.harness import (
    Observer,
    config_with,
    eventually,
    observing,
    provision,
    running_gateway,
)

pytestmark = pytest.mark.integration


def _client(settings: Settings) -> MqttClient:
    return MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-bad-{uuid.uuid4().hex[:6]}")


def _reasons(seen: Observer, terminal: str) -> list[str]:
    return [r["reason"] for r in seen.receipts[terminal] if r["receipt"] == "rejected"]


def _with_inner(terminal: SimTerminal, inner: bytes) -> bytes:
    """A message genuinely sealed with the terminal's key whose inner JSON is ``inner`` (SPEC.md nonce rule)."""
    valid = seal(terminal.message(text="x", receipt=True), terminal.creds.key)
    header = peek_header(valid)
    nonce = hashlib.sha256(b"satgw-nonce" + header.terminal.encode()).digest()[:4] + header.seq.to_bytes(8, "big")
    head = valid[: header.size]
    return head + ChaCha20Poly1305(terminal.creds.key).encrypt(nonce, inner, head)


async def _rejections(settings: Settings, gateway: Gateway, seen: Observer, terminal: str, n: int) -> list[str]:
    await eventually(lambda: len(_reasons(seen, terminal)) >= n, what=f"{n} rejections")
    return _reasons(seen, terminal)


class TestRejections:
    async def test_each_kind_of_bad_input_gets_its_own_reason(self, settings: Settings) -> None:
        """Garbage, oversized, forged, replayed, invalid and mislabelled messages each get their own reason."""
        t = await provision(settings, "T000010")
        topics = t.topics
        async with running_gateway(settings, config_with()) as gateway, observing(settings) as seen:
            async with _client(settings) as pub:
                await pub.publish(topics.up("T000010"), b"\x01\x07not a sealed message at all")
                await pub.publish(topics.up("T000010"), b"\x01" * (MAX_WIRE_BYTES + 1))
                forged = t.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="forged", receipt=True)
                await pub.publish(topics.up_sos("T000010"), seal(forged, new_key()))
                await pub.publish(topics.up("T000010"), _with_inner(t, b'{"k":"dance","b":"x","ts":1}'))
                routine = t.message(text="wrong topic", receipt=True)
                await pub.publish(topics.up_sos("T000010"), seal(routine, t.creds.key))
                topic, payload = t.wire(t.message(text="once", receipt=True))
                await pub.publish(topic, payload)
                await pub.publish(topic, payload)
                reasons = await _rejections(settings, gateway, seen, "T000010", 6)
        assert sorted(reasons) == sorted(
            ["malformed", "oversized", "bad_seal", "invalid_field", "topic_mismatch", "replay"]
        )
        for reason in reasons:
            assert gateway.counters.get(f"rejected.{reason}") >= 1

    async def test_unknown_and_revoked_terminals_are_refused(self, settings: Settings) -> None:
        """A terminal never provisioned and one whose key was revoked are refused with distinct reasons."""
        revoked = await provision(settings, "T000011")
        async with Redis.from_url(settings.redis_url) as redis:
            await Registry(redis=redis, keys=Keys(settings.topic_prefix)).revoke("T000011")
        creds = Credentials(
            terminal="T000012", key=new_key(), mqtt_url=settings.mqtt_url, topic_prefix=settings.topic_prefix
        )
        stranger = SimTerminal(creds=creds, topics=revoked.topics)
        async with running_gateway(settings, config_with()) as gateway, observing(settings) as seen:
            async with _client(settings) as pub:
                await revoked.publish(pub, revoked.message(text="me again", receipt=True))
                await stranger.publish(pub, stranger.message(text="hello?", receipt=True))
                assert await _rejections(settings, gateway, seen, "T000011", 1) == ["revoked_terminal"]
                assert await _rejections(settings, gateway, seen, "T000012", 1) == ["unknown_terminal"]

    async def test_ingest_keeps_flowing_after_a_flood_of_garbage(self, settings: Settings) -> None:
        """Two hundred garbage payloads do not stop a good message that follows them."""
        t = await provision(settings, "T000013")
        async with running_gateway(settings, config_with()) as gateway, observing(settings) as seen:
            async with _client(settings) as pub:
                for i in range(200):
                    pub.publish(t.topics.up("T000013"), bytes([i % 256]) * (i + 1))
                await t.publish(pub, t.message(text="still here"))
                await eventually(lambda: len(seen.delivered) == 1, what="the good message")
        assert seen.delivered[0]["body"] == "still here"
        assert sum(v for k, v in gateway.counters.snapshot().items() if k.startswith("rejected.")) == 200
