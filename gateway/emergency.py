"""The emergency side of one gateway, assembled: SOS incidents, CAP out, CAP in.

:class:`Emergency` is an async context manager: entering it creates the incident event group,
starts the webhook deliveries (one named task per endpoint) and, with ``listen_in``, subscribes
to ``{prefix}/alerts/in`` on a persistent connection of its own (a shared subscription, so each
alert is handled by one gateway). :meth:`run_incidents` is the incident worker, for the relay role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from redis.asyncio import Redis

from gateway.alerts.endpoints import WebhookEndpoint
from gateway.alerts.inbound import AlertIntake, Positions
from gateway.alerts.sos import IncidentWorker
from gateway.alerts.topics import MqttAlertListener, MqttAlertSink
from gateway.alerts.webhooks import WebhookDispatcher
from gateway.api_alerts import EmergencyRoutes
from gateway.counters import Counters
from gateway.downlink import Downlink
from gateway.exceptions import TransientError, stop_if_cancelling
from gateway.mqtt import MqttClient
from gateway.names import Keys, Topics
from gateway.packing import frame_size
from gateway.queue.inbound_alerts import InboundAlerts
from gateway.queue.incidents import IncidentStore
from protocols.envelope import MAX_BODY_BYTES, Kind, Message, Priority
from protocols.record import Record, encode_record

__all__ = ["Emergency", "text_room"]

_WATCH_S = 1.0
"""How often ingest's view of the terminals in distress is refreshed."""
_MIN_TEXT = 32
"""Below this a downlink text says nothing useful; such a link carries alerts as fragments."""


def text_room(mtu: int | None) -> int:
    """The UTF-8 bytes of text one downlink message can carry in a single frame of ``mtu`` bytes (None: any)."""
    if mtu is None:
        return MAX_BODY_BYTES
    longest = Message(terminal="T" * 32, seq=2**40, priority=Priority.SAFETY, kind=Kind.TEXT, ts=time.time())
    overhead = frame_size([encode_record(Record(message=longest, received_at=time.time()))])
    return max(_MIN_TEXT, min(MAX_BODY_BYTES, mtu - overhead))


class Emergency:
    """Incidents, CAP alerts out (webhooks and MQTT) and in (HTTP and MQTT) of one gateway.

    Args:
        redis: the gateway's Redis client.
        keys, topics: the gateway's names.
        node: this process's node name (consumer names, client ids, default CAP sender).
        mqtt_url: the broker, for the alerts-in connection.
        publisher: the gateway's outbound MQTT connection (alerts out).
        downlink: where acknowledgements and alerts go down to terminals.
        positions: the terminals' last known positions.
        webhooks: the configured webhook endpoints.
        sender: the CAP ``sender`` of SOS alerts; default ``satgw.<node>``.
        position_every_s: how often a terminal in distress's positions make a CAP Update at most.
        text_bytes: the room for text in one downlink message (see :func:`text_room`).
        counters: this process's counters.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        topics: Topics,
        node: str,
        mqtt_url: str,
        publisher: MqttClient,
        downlink: Downlink,
        positions: Positions,
        webhooks: Sequence[WebhookEndpoint],
        sender: str | None,
        text_bytes: int,
        position_every_s: float,
        counters: Counters,
        logger: logging.Logger | None = None,
    ) -> None:
        self._topics, self._node, self._mqtt_url = topics, node, mqtt_url
        self._stack = contextlib.AsyncExitStack()
        self.incidents = IncidentStore(redis=redis, keys=keys, consumer=node)
        self.webhooks = WebhookDispatcher(redis=redis, keys=keys, endpoints=webhooks, consumer=node, counters=counters)
        # Webhooks first: their copy is durable and idempotent, so a retry after a crash between sinks is safe.
        sinks = (self.webhooks, MqttAlertSink(client=publisher, topics=topics, counters=counters))
        self.worker = IncidentWorker(
            store=self.incidents,
            sinks=sinks,
            downlink=downlink,
            sender=sender or f"satgw.{node}",
            counters=counters,
            position_every_s=position_every_s,
        )
        self.intake = AlertIntake(
            records=InboundAlerts(redis=redis, keys=keys),
            positions=positions,
            downlink=downlink,
            max_text_bytes=text_bytes,
            counters=counters,
        )
        self._in_distress: set[str] = set()
        self._log = logger or logging.getLogger("satgw.emergency")

    @property
    def routes(self) -> EmergencyRoutes:
        """What the HTTP routes need."""
        return EmergencyRoutes(incidents=self.incidents, intake=self.intake, webhooks=self.webhooks)

    async def __aenter__(self) -> Self:
        try:
            await self.incidents.setup()
            await self._stack.enter_async_context(self.webhooks)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def listen_in(self) -> None:
        """Take authorities' alerts from ``{prefix}/alerts/in`` until this object exits."""
        client = MqttClient(url=self._mqtt_url, client_id=f"satgw-{self._node}-alerts", persistent=True)
        listener = MqttAlertListener(intake=self.intake, client=client, topics=self._topics)
        shared = f"$share/{self._topics.share_group}/{self._topics.alerts_in}"
        client.route(shared, listener.handle)
        await self._stack.enter_async_context(client)
        self._stack.push_async_callback(listener.aclose)
        await client.subscribe(shared, qos=1)

    async def run_incidents(self) -> None:
        """Apply incident events until cancelled (the relay role's task)."""
        await self.worker.run()

    def in_distress(self, terminal: str) -> bool:
        """Whether ``terminal`` had an active incident at the last refresh (ingest asks per message)."""
        return terminal in self._in_distress

    async def watch_distress(self, *, every_s: float = _WATCH_S) -> None:
        """Refresh :meth:`in_distress` from Redis every ``every_s`` until cancelled (the ingest role's task)."""
        while True:
            stop_if_cancelling()
            try:
                self._in_distress = await self.incidents.active_terminals()
            except TransientError as exc:  # keep the last answer: lifting a little late is better than never
                self._log.debug("terminals in distress not refreshed: %s", exc)
            await asyncio.sleep(every_s)
