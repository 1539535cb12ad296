"""The one module that speaks MQTT (gmqtt underneath, so the choice stays reversible).

An :class:`MqttClient` is one broker connection, used as an async context
manager. Inbound messages reach their handler as :class:`Inbound` objects and
are acknowledged only when the handler calls :meth:`Inbound.ack`: ingest
persists first, so a PUBACK always means "durable". Outbound publishes return a
future that resolves on the broker's PUBACK.

Hot path: gmqtt would run an asyncio task per inbound message and write each
PUBACK with its own ``transport.write``; together they cost a third of ingest's
CPU. So inbound PUBLISH packets are parsed here (no task, plain callback) and
the PUBACKs a batch releases go out in one write at the end of the loop turn.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import gmqtt

from gateway.exceptions import BrokerUnavailable, ConfigError

__all__ = ["BrokerAddress", "Inbound", "InboundHandler", "MqttClient"]

_SESSION_KEEP_S = 7 * 24 * 3600
_ROUTE_CACHE_SIZE = 100_000
_PUBACK, _PUBREC = 0x40, 0x50
_ACK = struct.Struct("!BBH")  # MQTT 5 ack with reason 0 and no properties: type, length 2, packet id


class Inbound:
    """One inbound message; call :meth:`ack` once it is safe for the broker to forget it."""

    __slots__ = ("_acks", "_packet", "dup", "payload", "topic")

    def __init__(self, topic: str, payload: bytes, dup: bool, packet: bytes | None, acks: _Acks) -> None:
        self.topic = topic
        self.payload = payload
        self.dup = dup
        """The MQTT DUP flag: the broker is re-delivering a message it may have sent before."""
        self._packet = packet
        self._acks = acks

    def ack(self) -> None:
        """Acknowledge (PUBACK for QoS 1, PUBREC for QoS 2; nothing for QoS 0); idempotent."""
        packet, self._packet = self._packet, None
        if packet is not None:
            self._acks.add(packet)


InboundHandler = Callable[[Inbound], None]
"""Called for each inbound message, in arrival order; it must not block and must call ``ack`` in the end."""


class _Acks:
    """Acknowledgements gathered during one loop turn and written to the broker together."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._pending: list[bytes] = []

    def add(self, packet: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(packet)

    def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._write(data)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to log in, parsed from ``mqtt://user:pass@host:port``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse an ``mqtt://`` or ``mqtts://`` URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"MQTT URL {url!r} must look like mqtt://[user:pass@]host[:port]")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


class _AckTracker(gmqtt.storage.PersistentStorage):  # type: ignore[misc]
    """gmqtt's in-flight store, extended to resolve a future per outbound message on PUBACK."""

    def __init__(self, on_free: Callable[[], None]) -> None:
        super().__init__()
        self.last_mid: int | None = None
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self._on_free = on_free

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def pop_last_mid(self) -> int | None:
        """The packet id of the last stored outbound message, forgotten once read."""
        mid, self.last_mid = self.last_mid, None
        return mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        waiter = self.waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._on_free()  # gmqtt freed the packet id just before calling us

    def clear(self) -> None:
        super().clear()
        # The broker forgot these (a new session); the callers must publish again.
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(BrokerUnavailable("session lost before PUBACK"))
        self.waiters.clear()


class MqttClient:
    """One MQTT 5 connection to the broker.

    Args:
        url: ``mqtt://[user:pass@]host[:port]``.
        client_id: the MQTT client id; a persistent session is keyed by it.
        persistent: keep the session (and queued QoS 1 messages) while disconnected.
        receive_maximum: how many unacknowledged QoS 1 messages the broker may send at once;
            with ack-after-persist this bounds a batch.
        logger: where to log; defaults to ``logging.getLogger("satgw.mqtt")``.
    """

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        persistent: bool = False,
        receive_maximum: int = 1000,
        logger: logging.Logger | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id must not be empty")
        if not 1 <= receive_maximum <= 65535:
            raise ValueError("receive_maximum must be in 1..65535")
        self._address = BrokerAddress.from_url(url)
        self._client_id = client_id
        self._persistent = persistent
        self._receive_maximum = receive_maximum
        self._log = logger or logging.getLogger("satgw.mqtt")
        self._handlers: list[tuple[str, InboundHandler]] = []
        self._routes: dict[str, InboundHandler | None] = {}
        self._tracker = _AckTracker(on_free=self._send_waiting)
        # Publishes beyond the broker's receive maximum wait here, in order, for a free packet id.
        self._waiting: collections.deque[tuple[str, bytes, int, bool, asyncio.Future[None]]] = collections.deque()
        self._client: Any = None
        self.reconnects = 0
        self._closing = False
        self._subacks: dict[int, asyncio.Future[None]] = {}
        self._acks = _Acks(self._write_acks)
        self._reading = True

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError(f"MQTT client {self._client_id} is already connected; it is not re-entrant")
        self._closing = False
        self._client = self._new_client()
        try:
            await self._client.connect(self._address.host, self._address.port, ssl=self._address.tls, keepalive=30)
        except (TimeoutError, OSError, gmqtt.mqtt.handler.MQTTConnectError) as exc:
            self._client = None
            raise BrokerUnavailable(
                f"cannot connect {self._client_id} to {self._address.host}:{self._address.port}: {exc}"
            ) from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._closing = True
            await client.disconnect()

    def _new_client(self) -> Any:
        properties: dict[str, Any] = {"receive_maximum": self._receive_maximum}
        if self._persistent:
            properties["session_expiry_interval"] = _SESSION_KEEP_S
        client = gmqtt.Client(
            self._client_id,
            clean_session=not self._persistent,
            optimistic_acknowledgement=False,
            persistent_storage=self._tracker,
            logger=self._log,
            **properties,
        )
        client.reconnect_delay = 1
        _PublishHandler.install(client, self._on_publish)
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        if self._address.username:
            client.set_auth_credentials(self._address.username, self._address.password)
        return client

    def route(self, topic_filter: str, handler: InboundHandler) -> None:
        """Send messages matching ``topic_filter`` to ``handler``.

        Call it before connecting: a persistent session's queued messages arrive
        right after CONNACK, before any subscribe call returns.
        """
        self._handlers.append((_strip_share(topic_filter), handler))
        self._routes.clear()

    def subscribe(self, topic_filter: str, *, qos: int = 1) -> asyncio.Future[None]:
        """Subscribe to ``topic_filter`` (routes must already be in place); the future resolves on SUBACK."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mid = self._connected().subscribe(topic_filter, qos=qos)
        self._subacks[int(mid)] = future
        return future

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> asyncio.Future[None]:
        """Publish; the returned future resolves on PUBACK (at once for QoS 0)."""
        self._connected()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((topic, payload, qos, retain, future))
        if len(self._waiting) == 1:
            self._send_waiting()
        return future

    def pause_reading(self) -> None:
        """Stop reading from the broker's socket (the broker holds what is not read); for back-pressure."""
        self._reading = False
        self._set_reading()

    def resume_reading(self) -> None:
        """Read from the broker again after :meth:`pause_reading`."""
        self._reading = True
        self._set_reading()

    def _set_reading(self) -> None:
        connection = self._client._connection if self._client is not None else None
        transport = None if connection is None else connection._transport
        if transport is None or transport.is_closing() or transport.is_reading() == self._reading:
            return  # a new connection starts reading; the lane pauses it again if still needed
        if self._reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    @property
    def waiting(self) -> int:
        """Publishes held back until the broker acknowledges earlier ones."""
        return len(self._waiting)

    def _send_waiting(self) -> None:
        client = self._client
        while self._waiting and client is not None:
            topic, payload, qos, retain, future = self._waiting[0]
            self._tracker.pop_last_mid()
            try:
                client.publish(topic, payload, qos=qos, retain=retain)
            except OverflowError:  # every packet id is in flight: resume on the next PUBACK
                return
            self._waiting.popleft()
            mid = self._tracker.pop_last_mid()
            if qos == 0 or mid is None:
                future.set_result(None)
            else:
                self._tracker.waiters[mid] = future

    @property
    def connected(self) -> bool:
        """True while the connection is up and acknowledged by the broker."""
        return self._client is not None and bool(self._client.is_connected)

    def _connected(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"MQTT client {self._client_id} is not connected; use it inside 'async with'")
        return self._client

    def _on_publish(self, topic: str, payload: bytes, qos: int, mid: int | None, dup: bool) -> None:
        ack = None if qos == 0 or mid is None else _ACK.pack(_PUBACK if qos == 1 else _PUBREC, 2, mid)
        inbound = Inbound(topic, payload, dup, ack, self._acks)
        handler = self._route(topic)
        if handler is None:
            inbound.ack()  # nobody wants it; holding it back would only make the broker resend it
        else:
            handler(inbound)

    def _write_acks(self, data: bytes) -> None:
        connection = self._client._connection if self._client is not None else None
        if connection is None or connection.is_closing():
            return  # the broker re-sends what was not acknowledged, on the next connection
        connection._protocol.write_data(data)

    def _on_subscribe(self, client: Any, mid: int, qos: Any, properties: Any) -> None:
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        if self._closing:
            return
        self.reconnects += 1
        self._log.warning("mqtt %s disconnected (%s); gmqtt reconnects", self._client_id, exc)

    def _route(self, topic: str) -> InboundHandler | None:
        # Every terminal has its own topic, so the cache saves matching once per message.
        try:
            return self._routes[topic]
        except KeyError:
            pass
        if len(self._routes) >= _ROUTE_CACHE_SIZE:
            self._routes.clear()
        found = next((h for f, h in self._handlers if _matches(f, topic)), None)
        self._routes[topic] = found
        return found


_OnPublish = Callable[[str, bytes, int, "int | None", bool], None]
"""(topic, payload, qos, packet id, dup)"""


class _PublishHandler(gmqtt.mqtt.handler.MqttPackageHandler):  # type: ignore[misc]
    """gmqtt's packet handler with inbound PUBLISH passed to a plain callback instead of a task per message."""

    _satgw_on_publish: _OnPublish

    @classmethod
    def install(cls, client: Any, on_publish: _OnPublish) -> None:
        """Make ``client``'s packet handler (built inside ``gmqtt.Client``) one of these."""
        handler = client._package_handler
        handler.__class__ = cls
        handler._satgw_on_publish = on_publish
        # gmqtt hands QoS 0 with properties to on_message; QoS 1 and 2 come through the methods below.
        client.on_message = lambda _client, topic, payload, _qos, props: on_publish(
            topic, payload, 0, None, bool(props.get("dup"))
        )

    def _handle_publish_packet(self, cmd: int, raw_packet: bytes) -> None:
        qos = (cmd & 0x06) >> 1
        topic_end = 2 + int.from_bytes(raw_packet[:2], "big")
        props_at = topic_end + (2 if qos else 0)
        # The common packet carries a topic name and no properties; anything else (topic alias,
        # user properties) takes gmqtt's full parser, which calls the _handle_qos_* methods below.
        if topic_end == 2 or props_at >= len(raw_packet) or raw_packet[props_at] != 0:
            super()._handle_publish_packet(cmd, raw_packet)
            return
        try:
            topic = raw_packet[2:topic_end].decode()
        except UnicodeDecodeError:
            self._logger.warning("mqtt: dropped a PUBLISH whose topic is not UTF-8")
            return
        mid = int.from_bytes(raw_packet[topic_end:props_at], "big") if qos else None
        self._satgw_on_publish(topic, raw_packet[props_at + 1 :], qos, mid, bool(cmd & 0x08))

    def _handle_qos_1_publish_packet(self, mid: int, packet: bytes, topic: str, properties: Any) -> None:
        self._satgw_on_publish(topic, packet, 1, mid, bool(properties.get("dup")))

    def _handle_qos_2_publish_packet(self, mid: int, packet: bytes, topic: str, properties: Any) -> None:
        self._satgw_on_publish(topic, packet, 2, mid, bool(properties.get("dup")))


def _strip_share(topic_filter: str) -> str:
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def _matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching for ``+`` and ``#`` wildcards."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(want):
        if part == "#":
            return True
        if i >= len(have) or (part != "+" and part != have[i]):
            return False
    return len(want) == len(have)
