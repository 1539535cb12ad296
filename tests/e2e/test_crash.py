"""``satgw run`` as a real process: SIGTERM drains, and kill -9 mid-stream loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.mqtt import MqttClient
from gateway.sim.terminal import SimTerminal
from protocols.envelope import Kind, Priority
from tests.harness import delete_prefix, eventually, observing, provision, settings_for, unique_prefix

pytestmark = pytest.mark.e2e

_CONFIG = """
[relay]
pack_max = 8
[[links]]
name = "e2e-geo"
max_frame_bytes = 1750
interval_s = 0.005
cards = 4
loss_rate = 0.05
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """A ``satgw run`` subprocess under a fixed node id, so a restart resumes its MQTT sessions."""

    def __init__(self, settings: Settings, config: Path) -> None:
        self.port = _free_port()
        self.env = os.environ | {
            "SATGW_REDIS_URL": settings.redis_url,
            "SATGW_MQTT_URL": settings.mqtt_url,
            "SATGW_TOPIC_PREFIX": settings.topic_prefix,
            "SATGW_NODE": settings.node,
            "SATGW_HTTP": f"127.0.0.1:{self.port}",
            "SATGW_CONFIG": str(config),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                assert self.proc.poll() is None, "satgw run exited during start-up"
                time.sleep(0.1)
        raise AssertionError("satgw run did not answer /healthz within 20 s")

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture(name="settings")
async def _settings() -> AsyncIterator[Settings]:
    prefix = unique_prefix()
    settings = settings_for(prefix)
    yield settings
    await delete_prefix(settings.redis_url, prefix)


@pytest.fixture(name="gateway_process")
def _gateway_process(settings: Settings, tmp_path: Path) -> Iterator[GatewayProcess]:
    config = tmp_path / "satgw.toml"
    config.write_text(_CONFIG)
    process = GatewayProcess(settings, config)
    yield process
    if process.proc is not None and process.proc.poll() is None:  # a failed test must not leave it running
        process.kill(signal.SIGKILL)


async def _stream(pub: MqttClient, terminals: list[SimTerminal], count: int, rate: float) -> list[str]:
    ids, start = [], time.monotonic()
    for i in range(count):
        terminal = terminals[i % len(terminals)]
        sos = i % 50 == 0
        message = terminal.message(
            priority=Priority.DISTRESS if sos else Priority.ROUTINE,
            kind=Kind.SOS if sos else Kind.TELEMETRY,
            text=f"reading {i}",
        )
        await terminal.publish(pub, message)
        ids.append(f"{message.terminal}:{message.seq}")
        await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    return ids


async def test_sigterm_drains_and_exits_zero(settings: Settings, gateway_process: GatewayProcess) -> None:
    """SIGTERM makes ``satgw run`` finish what it holds and exit 0."""
    terminal = await provision(settings, "T000200")
    gateway_process.start()
    async with observing(settings) as seen:
        async with MqttClient(
            url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-p{uuid.uuid4().hex[:4]}"
        ) as pub:
            ids = await _stream(pub, [terminal], 100, rate=500)
        await eventually(lambda: len(seen.delivered) >= len(ids), timeout=20, what="all deliveries")
        assert gateway_process.kill(signal.SIGTERM) == 0


async def test_kill_9_mid_stream_loses_nothing_and_delivers_nothing_twice(
    settings: Settings, gateway_process: GatewayProcess
) -> None:
    """Killed with SIGKILL twice while 1200 messages stream in, the gateway restarts and delivers each exactly once."""
    terminals = [await provision(settings, f"T3{i:05d}") for i in range(20)]
    gateway_process.start()
    async with observing(settings) as seen:
        async with MqttClient(
            url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-p{uuid.uuid4().hex[:4]}"
        ) as pub:
            stream = asyncio.create_task(_stream(pub, terminals, 1200, rate=300))
            for delivered in (200, 600):  # kill while messages are in every stage of the path
                await eventually(
                    lambda n=delivered: len(seen.delivered) >= n, timeout=30, what=f"{delivered} deliveries"
                )
                gateway_process.kill(signal.SIGKILL)
                await asyncio.to_thread(gateway_process.start)
            ids = await stream
            await eventually(lambda: set(seen.delivered_ids()) >= set(ids), timeout=60, what="every message")
            gateway_process.kill(signal.SIGTERM)  # drained on exit: nothing more will be published
            # The broker keeps one subscriber's order: once this marker is back, any repeat has arrived.
            await pub.publish(f"{settings.topic_prefix}/down/marker", b'{"terminal": "marker"}')
            await eventually(lambda: bool(seen.receipts["marker"]), what="the marker")
    twice = [i for i, n in Counter(seen.delivered_ids()).items() if n > 1]
    assert twice == [], f"delivered twice: {twice[:10]}"
    assert set(seen.delivered_ids()) == set(ids)
