"""A simulated terminal: builds, seals and publishes messages as a real one would."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

from gateway.credentials import Credentials
from gateway.mqtt import MqttClient
from gateway.names import Topics
from protocols.envelope import Kind, Message, Position, Priority
from protocols.seal import seal

__all__ = ["SimTerminal", "time_seq"]


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
