"""The bench's load generator: publishes pre-encoded QoS 1 messages as cheaply as a client can.

On a 2-core machine the publisher shares the CPU with the broker, Redis and the system under
test, so its own cost moves every figure (a paho publisher needs ~0.8 of a core at 24 k/s,
see perf.md §3e). This one speaks just enough MQTT 3.1.1 (CONNECT, PUBLISH QoS 1, PUBACK,
DISCONNECT), encodes every packet before the clock starts, and keeps ``window`` messages in
flight, writing as many packets per syscall as PUBACKs have freed. Both variants of the bench
get the same publisher, so its cost is the same for both.

Run as a process (``python -m bench.publisher HOST PORT FILE``) it connects, prints ``ready``,
waits for a line on stdin, publishes the file's messages and prints one JSON line:
``{"count": n, "first_publish": t, "all_acked": t, "cpu_s": s}`` with ``time.monotonic()`` times,
which are comparable across processes on Linux, and the CPU seconds the publishing took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

__all__ = [
    "PublishReport",
    "Publisher",
    "discard_session",
    "encode_connect",
    "encode_publish",
    "main",
    "publish",
    "read_messages",
    "write_messages",
]

_CONNACK, _PUBACK = 0x20, 0x40
_DISCONNECT = b"\xe0\x00"
_PAIR = struct.Struct(">HH")
_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publish run did, with ``time.monotonic()`` times."""

    count: int
    first_publish: float
    all_acked: float

    @property
    def rate(self) -> float:
        """Messages acknowledged by the broker per second."""
        return self.count / max(self.all_acked - self.first_publish, 1e-9)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def encode_connect(client_id: str, *, clean: bool = True, keepalive: int = 0) -> bytes:
    """Return an MQTT 3.1.1 CONNECT packet (anonymous; keepalive 0 means no pings needed)."""
    body = _string("MQTT") + bytes([4, 0x02 if clean else 0]) + keepalive.to_bytes(2, "big") + _string(client_id)
    return bytes([0x10]) + _varint(len(body)) + body


def encode_publish(topic: str, payload: bytes, packet_id: int) -> bytes:
    """Return an MQTT 3.1.1 PUBLISH packet at QoS 1."""
    if not 1 <= packet_id <= 65535:
        raise ValueError(f"packet_id must be in 1..65535, got {packet_id}")
    body = _string(topic) + packet_id.to_bytes(2, "big") + payload
    return bytes([0x32]) + _varint(len(body)) + body


class _Protocol(asyncio.Protocol):
    """Counts CONNACK/PUBACK packets and refills the in-flight window from them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._packets: Sequence[bytes] = ()
        self._window = 1
        self._sent = self._acked = 0
        self._all_acked: asyncio.Future[float] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"broker closed the connection ({exc or 'EOF'})")
        for future in (self.connack, self._all_acked):
            if future is not None and not future.done():
                future.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        acks = 0
        while len(self._buffer) >= 2:
            kind, size = self._buffer[0] & 0xF0, self._buffer[1]
            if size & 0x80:  # a publisher only ever gets CONNACK and PUBACK, both 4 bytes long
                raise ConnectionError(f"unexpected MQTT packet type {kind >> 4} of {size}+ bytes")
            if len(self._buffer) < 2 + size:
                break
            if kind == _CONNACK and not self.connack.done():
                self.connack.set_result(self._buffer[3])
            elif kind == _PUBACK:
                acks += 1
            del self._buffer[: 2 + size]
        if acks:
            self._acked += acks
            self._fill()

    def start(self, packets: Sequence[bytes], window: int) -> asyncio.Future[float]:
        """Send ``packets`` keeping ``window`` in flight; the future gets the monotonic time of the last PUBACK."""
        self._packets, self._window, self._sent, self._acked = packets, window, 0, 0
        self._all_acked = asyncio.get_running_loop().create_future()
        self._fill()
        return self._all_acked

    def _fill(self) -> None:
        assert self.transport is not None
        assert self._all_acked is not None
        limit = min(len(self._packets), self._acked + self._window)
        if self._sent < limit:
            self.transport.write(b"".join(self._packets[self._sent : limit]))
            self._sent = limit
        if self._acked >= len(self._packets) and not self._all_acked.done():
            self._all_acked.set_result(time.monotonic())


class Publisher:
    """One MQTT connection that publishes batches of pre-encoded QoS 1 messages.

    Args:
        host: the broker's address.
        port: the broker's port.
        client_id: the MQTT client id (a clean session).
        window: how many messages may await their PUBACK at once.
    """

    def __init__(self, *, host: str, port: int, client_id: str, window: int = 1000) -> None:
        if not 1 <= window <= 60_000:
            raise ValueError("window must be in 1..60000 (packet ids must stay unique in flight)")
        if not client_id:
            raise ValueError("client_id must not be empty")
        self._host, self._port, self._client_id, self._window = host, port, client_id, window
        self._protocol: _Protocol | None = None
        self._next_id = 0

    async def __aenter__(self) -> Publisher:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self._host, self._port)
        self._protocol = protocol
        assert protocol.transport is not None
        protocol.transport.write(encode_connect(self._client_id))
        code = await asyncio.wait_for(protocol.connack, _CONNECT_TIMEOUT_S)
        if code != 0:
            protocol.transport.close()
            raise ConnectionError(f"broker refused {self._client_id}: CONNACK return code {code}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.write(_DISCONNECT)
            protocol.transport.close()
            await protocol.closed

    def encode(self, messages: Sequence[tuple[str, bytes]]) -> list[bytes]:
        """Encode ``messages`` (topic, payload) as PUBLISH packets with this connection's packet ids."""
        packets = []
        for topic, payload in messages:
            self._next_id = self._next_id % 65535 + 1
            packets.append(encode_publish(topic, payload, self._next_id))
        return packets

    async def send(self, packets: Sequence[bytes]) -> PublishReport:
        """Publish ``packets`` (from :meth:`encode`) and return once the broker acknowledged them all."""
        if self._protocol is None:
            raise RuntimeError("Publisher is not connected; use it inside 'async with'")
        first = time.monotonic()
        last = await self._protocol.start(packets, self._window) if packets else first
        return PublishReport(count=len(packets), first_publish=first, all_acked=last)


async def publish(host: str, port: int, client_id: str, messages: Sequence[tuple[str, bytes]]) -> PublishReport:
    """Connect, publish ``messages`` (topic, payload) at QoS 1, wait for every PUBACK, disconnect."""
    async with Publisher(host=host, port=port, client_id=client_id) as publisher:
        return await publisher.send(publisher.encode(messages))


async def discard_session(host: str, port: int, client_id: str) -> None:
    """Make the broker forget the persistent session of ``client_id`` (connect once with a clean session)."""
    async with Publisher(host=host, port=port, client_id=client_id):
        pass


def write_messages(path: Path, messages: Sequence[tuple[str, bytes]]) -> None:
    """Store (topic, payload) pairs for a publisher process."""
    with path.open("wb") as out:
        for topic, payload in messages:
            raw = topic.encode()
            out.write(_PAIR.pack(len(raw), len(payload)) + raw + payload)


def read_messages(path: Path) -> list[tuple[str, bytes]]:
    """Read what :func:`write_messages` stored."""
    data, offset, messages = path.read_bytes(), 0, []
    while offset < len(data):
        topic_len, payload_len = _PAIR.unpack_from(data, offset)
        offset += _PAIR.size
        topic = data[offset : offset + topic_len].decode()
        offset += topic_len
        messages.append((topic, data[offset : offset + payload_len]))
        offset += payload_len
    return messages


async def _serve(args: argparse.Namespace) -> None:
    messages = read_messages(args.file)
    async with Publisher(host=args.host, port=args.port, client_id=args.client_id, window=args.window) as publisher:
        packets = publisher.encode(messages)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        report = await publisher.send(packets)
        cpu = time.process_time() - cpu
    print(
        json.dumps(
            {"count": report.count, "first_publish": report.first_publish, "all_acked": report.all_acked, "cpu_s": cpu}
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.publisher``."""
    parser = argparse.ArgumentParser(prog="python -m bench.publisher", description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("file", type=Path, help="messages written by write_messages()")
    parser.add_argument("--client-id", default="satgw-bench-pub")
    parser.add_argument("--window", type=int, default=1000, help="messages in flight (default 1000)")
    args = parser.parse_args(argv)
    _install_uvloop()
    asyncio.run(_serve(args))
    return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    sys.exit(main())
