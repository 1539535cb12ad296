"""CAP over MQTT: alerts out on ``{prefix}/alerts/cap``, authorities' alerts in on ``{prefix}/alerts/in``.

Out: :class:`MqttAlertSink` publishes each alert document at QoS 1 and returns on the
broker's PUBACK. In: :class:`MqttAlertListener` hands each published alert to the intake
and answers on ``{prefix}/alerts/in/results`` with what it did (or why it was refused);
the broker's copy is acknowledged only once the alert is handled, and a Redis failure is
retried, so an alert is never dropped unanswered.
"""

from __future__ import annotations

import asyncio
import json
import logging

from gateway.alerts.inbound import AlertIntake
from gateway.alerts.sinks import OutgoingAlert
from gateway.counters import Counters
from gateway.exceptions import BrokerUnavailable, TransientError, stop_if_cancelling
from gateway.mqtt import MqttClient
from gateway.mqtt.client import Inbound
from gateway.names import Topics
from protocols import cap

__all__ = ["MqttAlertListener", "MqttAlertSink"]

_RETRY_S = 1.0


class MqttAlertSink:
    """An alert sink publishing to ``{prefix}/alerts/cap``."""

    def __init__(self, *, client: MqttClient, topics: Topics, counters: Counters) -> None:
        self._client, self._topic, self._counters = client, topics.alerts_cap, counters

    async def publish(self, alert: OutgoingAlert) -> None:
        """Publish ``alert`` at QoS 1; return once the broker has it."""
        try:
            await self._client.publish(self._topic, alert.body, qos=1)
        except (RuntimeError, OSError) as exc:
            raise BrokerUnavailable(f"publish alert {alert.key} to {self._topic}: {exc}") from exc
        self._counters.add("alerts.mqtt.published")


class MqttAlertListener:
    """Feeds alerts published on ``{prefix}/alerts/in`` to the intake, one task per alert."""

    def __init__(
        self, *, intake: AlertIntake, client: MqttClient, topics: Topics, logger: logging.Logger | None = None
    ) -> None:
        self._intake, self._client, self._topics = intake, client, topics
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = logger or logging.getLogger("satgw.alerts.in")

    def handle(self, inbound: Inbound) -> None:
        """Take one inbound alert (called by the MQTT client; must not block)."""
        task = asyncio.create_task(self._handle(inbound), name=f"satgw.alerts.in[{len(self._tasks)}]")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, inbound: Inbound) -> None:
        while True:
            try:
                answer = await self._answer(inbound.payload)
                break
            except TransientError as exc:
                stop_if_cancelling(exc)
                self._log.warning("CAP alert from MQTT not handled yet: %s; retrying", exc)
                await asyncio.sleep(_RETRY_S)
        inbound.ack()
        try:
            self._client.publish(self._topics.alerts_in_results, json.dumps(answer).encode(), qos=1)
        except (RuntimeError, OSError, BrokerUnavailable) as exc:
            self._log.warning("answer to a CAP alert not published: %s", exc)

    async def _answer(self, payload: bytes) -> dict[str, object]:
        try:
            done = await self._intake.accept(payload)
        except cap.CapError as exc:
            return {"accepted": False, "reason": exc.reason.value, "error": str(exc)}
        return {
            "accepted": True,
            "sender": done.sender,
            "identifier": done.identifier,
            "msg_type": done.msg_type,
            "terminals": done.messages,
            "duplicate": done.duplicate,
        }

    async def aclose(self) -> None:
        """Let alerts being handled finish (briefly), then cancel the rest."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
