"""The one module that speaks MQTT (gmqtt underneath, so the choice stays reversible).

An :class:`MqttClient` is one broker connection, used as an async context
manager. Inbound QoS 1 messages are acknowledged only when their handler
returns: the handler persists first, so a PUBACK always means "durable".
Outbound publishes return a future that resolves on the broker's PUBACK.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import gmqtt

from gateway.exceptions import BrokerUnavailable, ConfigError

__all__ = ["BrokerAddress", "InboundHandler", "MqttClient"]

InboundHandler = Callable[[str, bytes, bool], Awaitable[None]]
"""Called with (topic, payload, dup) for each inbound message; the PUBACK goes out when it returns.

``dup`` is the MQTT DUP flag: the broker is re-delivering a message it may have sent before."""

_PUBACK_SUCCESS = 0
_SESSION_KEEP_S = 7 * 24 * 3600


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
        self._tracker = _AckTracker(on_free=self._send_waiting)
        # Publishes beyond the broker's receive maximum wait here, in order, for a free packet id.
        self._waiting: collections.deque[tuple[str, bytes, int, bool, asyncio.Future[None]]] = collections.deque()
        self._client: Any = None
        self.reconnects = 0
        self._closing = False
        self._subacks: dict[int, asyncio.Future[None]] = {}

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
        client.on_message = self._on_message
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

    async def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        handler = self._route(topic)
        if handler is not None:
            await handler(topic, payload, bool(properties.get("dup")))
        return _PUBACK_SUCCESS

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
        for topic_filter, handler in self._handlers:
            if _matches(topic_filter, topic):
                return handler
        return None


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
