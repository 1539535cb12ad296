"""A simulated terminal: builds, seals and publishes messages as a real one would, and reads what comes down.

On ``{prefix}/down/{terminal}`` a terminal gets JSON objects of two sorts: receipts (``"receipt"``, see
:mod:`gateway.receipts`) and downlink messages (``"down": "message"``, see :mod:`gateway.downlink`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.credentials import Credentials
from gateway.mqtt import Inbound, MqttClient
from gateway.names import Topics
from protocols.envelope import Kind, Message, Position, Priority
from protocols.seal import seal

__all__ = ["SimTerminal", "is_down_message", "time_seq"]

_log = logging.getLogger("satgw.sim.terminal")


def time_seq() -> Iterator[int]:
    """Sequence numbers from the clock in microseconds, so separate runs of one terminal never reuse a seq."""
    start = time.time_ns() // 1000
    return itertools.count(start)


class SimTerminal:
    """Publishes sealed messages as the terminal in ``creds``.

    Args:
        creds: the terminal's identity and key.
        topics: the topic layout (its prefix must match the gateway's).
        seqs: where sequence numbers come from; clock-based by default.
    """

    def __init__(self, *, creds: Credentials, topics: Topics, seqs: Iterator[int] | None = None) -> None:
        self.creds = creds
        self.topics = topics
        self._seqs = seqs or time_seq()

    def message(
        self,
        *,
        priority: Priority = Priority.ROUTINE,
        kind: Kind = Kind.TEXT,
        text: str = "",
        position: Position | None = None,
        ttl: int | None = None,
        receipt: bool = False,
    ) -> Message:
        """Build the next message of this terminal."""
        return Message(
            terminal=self.creds.terminal,
            seq=next(self._seqs),
            priority=priority,
            kind=kind,
            body=text,
            position=position,
            ttl=ttl,
            ts=time.time(),
            receipt=receipt,
        )

    def wire(self, message: Message) -> tuple[str, bytes]:
        """Return (topic, payload) for ``message``: distress goes to the terminal's sos topic."""
        topic = (
            self.topics.up_sos(message.terminal)
            if message.priority is Priority.DISTRESS
            else self.topics.up(message.terminal)
        )
        return topic, seal(message, self.creds.key)

    def publish(self, client: MqttClient, message: Message) -> asyncio.Future[None]:
        """Publish ``message`` at QoS 1; the future resolves on the broker's PUBACK."""
        topic, payload = self.wire(message)
        return client.publish(topic, payload, qos=1)

    @property
    def down_topic(self) -> str:
        """Where the gateway sends this terminal receipts and downlink messages."""
        return self.topics.down(self.creds.terminal)

    def listen(
        self,
        client: MqttClient,
        *,
        on_message: Callable[[dict[str, Any]], None],
        on_receipt: Callable[[dict[str, Any]], None] = lambda _: None,
    ) -> None:
        """Hand what comes down to this terminal to ``on_message`` (downlink messages) or ``on_receipt``.

        Call before connecting ``client``, then subscribe it to :attr:`down_topic` (QoS 2 keeps the
        gateway's exactly-once all the way to the terminal).
        """

        def handle(inbound: Inbound) -> None:
            inbound.ack()
            try:
                document = json.loads(inbound.payload)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                _log.warning("terminal %s: ignored a down payload that is not a JSON object", self.creds.terminal)
                return
            (on_message if is_down_message(document) else on_receipt)(document)

        client.route(self.down_topic, handle)


def is_down_message(document: dict[str, Any]) -> bool:
    """True for a downlink message, False for a receipt (both arrive on a terminal's down topic)."""
    return document.get("down") == "message"
