"""An MQTT 5 publisher whose QoS 2 release step the caller makes durable: exactly-once delivery across kill -9.

QoS 2 splits a publish in two: PUBLISH (the broker stores the message and answers
PUBREC) and PUBREL (the broker releases it to subscribers and answers PUBCOMP).
Mosquitto releases incoming QoS 2 messages to subscribers on PUBREL, and a
persistent session keeps unreleased ones across a disconnect. So the ground
segment does: PUBLISH → PUBREC → *commit* (XACK the outbox entry and note the
packet id, atomically) → PUBREL → PUBCOMP → forget the note. After a crash:

* committed, PUBREL maybe not seen: the caller resumes the session
  (``clean_start=False``) and sends PUBREL again for the noted packet ids. Delivered once.
* not committed: the outbox entry is still pending and is published again. The
  broker may hold an unreleased copy, which also fills its receive-maximum quota;
  so once the noted ids are released, the caller reconnects with ``clean_start=True``,
  and the broker discards that copy unreleased. Delivered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Self

from gateway.exceptions import BrokerUnavailable
from gateway.mqtt import packets
from gateway.mqtt.client import BrokerAddress

__all__ = ["Commit", "ExactlyOncePublisher"]

Commit = Callable[[list[int]], Awaitable[None]]
"""Make the release of these packet ids durable before PUBREL goes out."""

_SESSION_KEEP_S = 7 * 24 * 3600
_ACK_TIMEOUT_S = 10.0


class ExactlyOncePublisher:
    """One MQTT 5 connection that publishes at QoS 2 with a durable release step.

    Args:
        url: ``mqtt://[user:pass@]host[:port]``.
        client_id: the session's client id; must stay the same across restarts.
        clean_start: discard what the broker holds for this client id (unreleased messages included).
        keepalive: seconds between pings when idle.
    """

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        clean_start: bool,
        keepalive: int = 30,
        logger: logging.Logger | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id must not be empty")
        self._address = BrokerAddress.from_url(url)
        self._client_id = client_id
        self._clean_start = clean_start
        self._keepalive = keepalive
        self._log = logger or logging.getLogger("satgw.mqtt.exactly_once")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: dict[tuple[int, int], asyncio.Future[int]] = {}
        self._next_mid = 1
        self.session_present = False
        self.receive_maximum = 65535

    async def __aenter__(self) -> Self:
        if self._writer is not None:
            raise RuntimeError(f"publisher {self._client_id} is already connected; it is not re-entrant")
        try:
            await self._connect()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
            await self._close()
            raise BrokerUnavailable(f"{self._client_id} cannot connect: {exc}") from exc
        name = f"satgw.mqtt[{self._client_id}]"
        self._tasks = [
            asyncio.create_task(self._read_forever(), name=f"{name}.read"),
            asyncio.create_task(self._ping_forever(), name=f"{name}.ping"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write(packets.disconnect())
                await self._writer.drain()
        await self._close()

    async def _connect(self) -> None:
        a = self._address
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(a.host, a.port, ssl=a.tls or None)
        self._reader, self._writer = reader, writer
        writer.write(
            packets.connect(
                client_id=self._client_id,
                keepalive=self._keepalive,
                session_expiry=_SESSION_KEEP_S,
                clean_start=self._clean_start,
                username=a.username,
                password=a.password,
            )
        )
        async with asyncio.timeout(5):
            kind, body = await self._read_packet()
        connack = packets.parse_connack(body)
        if kind != packets.CONNACK or connack.reason >= 0x80:
            raise ValueError(f"broker refused the connection (packet {kind}, reason {connack.reason:#x})")
        self.session_present = connack.session_present
        self.receive_maximum = connack.receive_maximum

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._fail_waiters(BrokerUnavailable(f"{self._client_id}: connection closed"))
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def publish_batch(self, items: Sequence[tuple[str, bytes]], *, commit: Commit) -> list[int]:
        """Publish ``items`` (topic, payload) exactly once; ``commit`` runs between PUBREC and PUBREL.

        Returns the packet ids used. Raises :class:`BrokerUnavailable` if the connection
        fails; what was not committed must then be published again.
        """
        if len(items) > self.receive_maximum:
            raise ValueError(f"at most {self.receive_maximum} messages per batch (the broker's receive maximum)")
        mids = [self._allocate() for _ in items]
        received = [self._expect(packets.PUBREC, mid) for mid in mids]
        self._send(b"".join(packets.publish_qos2(t, p, mid) for (t, p), mid in zip(items, mids, strict=True)))
        reasons = await self._wait(received)
        refused = [(mid, reason) for mid, reason in zip(mids, reasons, strict=True) if reason >= 0x80]
        if refused:
            mid, reason = refused[0]
            raise BrokerUnavailable(
                f"{self._client_id}: broker refused {len(refused)} publishes, e.g. {mid}: {reason:#x}"
            )
        await commit(mids)
        await self.release(mids)
        return mids

    async def release(self, mids: Iterable[int]) -> None:
        """Send PUBREL for ``mids`` and wait for every PUBCOMP (unknown ids are fine: already released)."""
        mids = list(mids)
        if not mids:
            return
        completed = [self._expect(packets.PUBCOMP, mid) for mid in mids]
        self._send(b"".join(packets.pubrel(mid) for mid in mids))
        await self._wait(completed)

    def _allocate(self) -> int:
        mid = self._next_mid
        self._next_mid = mid % 65535 + 1
        return mid

    def _expect(self, kind: int, mid: int) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters[(kind, mid)] = future
        return future

    async def _wait(self, futures: list[asyncio.Future[int]]) -> list[int]:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can turn a cancellation into the inner
            # future's error when both happen at once, and the caller then never stops.
            async with asyncio.timeout(_ACK_TIMEOUT_S):
                return list(await asyncio.gather(*futures))
        except TimeoutError as exc:
            raise BrokerUnavailable(f"{self._client_id}: no acknowledgement within {_ACK_TIMEOUT_S}s") from exc

    def _send(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise BrokerUnavailable(f"{self._client_id}: not connected")
        self._writer.write(data)

    async def _read_packet(self) -> tuple[int, bytes]:
        assert self._reader is not None
        first = (await self._reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await self._reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first >> 4, await self._reader.readexactly(length)

    async def _read_forever(self) -> None:
        quickack = self._quickack()
        try:
            while True:
                kind, body = await self._read_packet()
                quickack()
                if kind in (packets.PUBREC, packets.PUBCOMP):
                    mid, reason = packets.parse_ack(body)
                    waiter = self._waiters.pop((kind, mid), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(reason)
                elif kind == packets.DISCONNECT:
                    raise ConnectionError(f"broker disconnected {self._client_id}")
        except (OSError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self._log.warning("%s lost its connection: %s", self._client_id, exc)
            self._fail_waiters(BrokerUnavailable(f"{self._client_id}: connection lost ({exc})"))
            if self._writer is not None:
                self._writer.close()

    def _quickack(self) -> Callable[[], None]:
        """Acknowledge TCP segments at once (Linux): the broker sends PUBRECs one by one with Nagle on,
        and our delayed ACK would hold each batch back ~40 ms (measured: 224 msg/s without, 9,400 with)."""
        sock = self._writer.get_extra_info("socket") if self._writer is not None else None
        option = getattr(socket, "TCP_QUICKACK", None)
        if sock is None or option is None:
            return lambda: None

        def set_quickack() -> None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, 1)

        return set_quickack

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive / 2)
            with contextlib.suppress(BrokerUnavailable):
                self._send(packets.pingreq())

    def _fail_waiters(self, exc: BrokerUnavailable) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(exc)
        self._waiters.clear()

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._writer is not None and not self._writer.is_closing()
