"""``satgw run`` over a real-terminal link: the gateway drives an emulated BeiDou terminal on a pty."""

from __future__ import annotations

import uuid

import pytest

from gateway.config import Settings
from gateway.links.rdss_serial import RdssSerialProfile
from gateway.mqtt import MqttClient
from gateway.sim.rdss_terminal import EmulatedCard, RdssTerminalEmulator
from protocols.envelope import Kind, Priority
from protocols.frame import read_frame
from protocols.rdss import Txa
from tests.harness import (
    config_with,
    eventually,
    observing,
    provision,
    running_gateway,
)

pytestmark = pytest.mark.integration


async def test_messages_go_out_through_the_terminal_and_report_sent(settings: Settings) -> None:
    """Uplink messages leave as $CCTXA sentences carrying link frames; the terminal's FKI makes them sent."""
    terminal = await provision(settings, "T000777")
    card = EmulatedCard(level=3, interval_s=1)
    async with RdssTerminalEmulator(card=card) as emulator:
        link = RdssSerialProfile(name="bd1", port=emulator.port, recipient="0242407", fki_timeout_s=2.0)
        async with running_gateway(settings, config_with(link)), observing(settings) as seen:
            pub = MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-p{uuid.uuid4().hex[:4]}")
            async with pub:
                sent = [terminal.message(kind=Kind.TELEMETRY, text=f"b=3.{i}", receipt=True) for i in range(2)]
                sos = terminal.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="help", receipt=True)
                for message in [*sent, sos]:
                    await terminal.publish(pub, message)
                await eventually(
                    lambda: all("sent" in seen.receipts_of("T000777", m.seq) for m in [*sent, sos]),
                    timeout=15,
                    what="sent receipts for all three",
                )
        requests = [s for s in emulator.log.host if isinstance(s, Txa)]
        frames = list(emulator.log.transmitted)
    carried = [r.message for frame in frames for r in read_frame(frame).records]
    assert {(m.terminal, m.seq) for m in carried} >= {(m.terminal, m.seq) for m in [*sent, sos]}
    assert requests
    assert all(t.recipient == "0242407" for t in requests)
