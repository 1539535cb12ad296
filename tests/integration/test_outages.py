"""Nothing is lost when Redis goes away while messages arrive."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.mqtt import MqttClient
from protocols.envelope import Kind, Priority
from tests.harness import config_with, eventually, observing, provision, running_gateway, settings_for, unique_prefix

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, with AOF, that the test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@pytest.fixture(name="private_redis")
def _private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_redis_down_during_ingest_loses_nothing(private_redis: PrivateRedis) -> None:
    """Messages published while Redis is down are held by the broker (no PUBACK) and all delivered once it is back."""
    settings = settings_for(unique_prefix(), redis_url=private_redis.url)
    terminal = await provision(settings, "T000100")
    async with running_gateway(settings, config_with()) as gateway, observing(settings) as seen:
        pub = MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}")
        async with pub:
            await terminal.publish(pub, terminal.message(text="before"))
            await eventually(lambda: len(seen.delivered) == 1, what="the first delivery")
            private_redis.stop()
            during = [terminal.message(text=f"during {i}") for i in range(60)]
            during.append(terminal.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="sos during outage"))
            for message in during:
                await terminal.publish(pub, message)
            # Ingest has them and keeps retrying Redis: none can have gone further.
            await eventually(lambda: gateway.counters.get("ingest.redis_retries") >= 3, what="ingest retrying Redis")
            assert len(seen.delivered) == 1, "nothing can be delivered while Redis is down"
            private_redis.start()
            await eventually(lambda: len(seen.delivered) >= 62, timeout=30, what="every message after the outage")
    ids = seen.delivered_ids()
    assert len(ids) == len(set(ids)) == 62
