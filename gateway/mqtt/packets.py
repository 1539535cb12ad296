"""The few MQTT 5 packets the exactly-once publisher needs, encoded and decoded by hand.

Only CONNECT/CONNACK, PUBLISH (QoS 2), PUBREC, PUBREL, PUBCOMP, PINGREQ/PINGRESP
and DISCONNECT; see the MQTT 5.0 specification, chapter 3.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "CONNACK",
    "PINGRESP",
    "PUBCOMP",
    "PUBREC",
    "Connack",
    "connect",
    "disconnect",
    "parse_connack",
    "parse_ack",
    "pingreq",
    "publish_qos2",
    "pubrel",
    "read_varint",
]

CONNACK, PUBREC, PUBCOMP, PINGRESP, DISCONNECT = 2, 5, 7, 13, 14
_PROP_SESSION_EXPIRY = 0x11
_PROP_RECEIVE_MAXIMUM = 0x21


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode a variable byte integer at ``offset``; return (value, next offset)."""
    value, shift = 0, 0
    for i in range(4):
        if offset + i >= len(data):
            raise ValueError("truncated variable byte integer")
        byte = data[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + i + 1
        shift += 7
    raise ValueError("variable byte integer longer than 4 bytes")


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect(
    *,
    client_id: str,
    keepalive: int,
    session_expiry: int,
    clean_start: bool,
    username: str | None,
    password: str | None,
) -> bytes:
    """CONNECT; without clean start the broker resumes the session (and its unreleased QoS 2 messages)."""
    flags = (0x80 if username else 0) | (0x40 if password else 0) | (0x02 if clean_start else 0)
    props = bytes((_PROP_SESSION_EXPIRY,)) + struct.pack(">I", session_expiry)
    header = _utf8("MQTT") + bytes((5, flags)) + struct.pack(">H", keepalive) + _varint(len(props)) + props
    payload = _utf8(client_id)
    if username:
        payload += _utf8(username)
    if password:
        payload += _utf8(password)
    return _packet(0x10, header + payload)


@dataclass(frozen=True, slots=True)
class Connack:
    """What the broker answered to CONNECT."""

    session_present: bool
    reason: int
    receive_maximum: int


def parse_connack(body: bytes) -> Connack:
    """Decode a CONNACK body."""
    if len(body) < 2:
        raise ValueError("CONNACK too short")
    receive_maximum = 65535
    if len(body) > 2:
        length, offset = read_varint(body, 2)
        end = offset + length
        while offset < end:
            prop = body[offset]
            offset += 1
            if prop == _PROP_RECEIVE_MAXIMUM:
                receive_maximum = int(struct.unpack_from(">H", body, offset)[0])
            offset += _property_size(prop, body, offset)
    return Connack(session_present=bool(body[0] & 1), reason=body[1], receive_maximum=receive_maximum)


def _property_size(prop: int, body: bytes, offset: int) -> int:
    if prop in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):  # byte
        return 1
    if prop in (0x13, 0x21, 0x22, 0x23):  # two-byte integer
        return 2
    if prop in (0x02, 0x11, 0x18, 0x27):  # four-byte integer
        return 4
    if prop == 0x0B:  # variable byte integer
        return read_varint(body, offset)[1] - offset
    if prop == 0x26:  # user property: two strings
        first = 2 + int(struct.unpack_from(">H", body, offset)[0])
        return first + 2 + int(struct.unpack_from(">H", body, offset + first)[0])
    return 2 + int(struct.unpack_from(">H", body, offset)[0])  # string or binary data


def publish_qos2(topic: str, payload: bytes, mid: int, *, dup: bool = False) -> bytes:
    """PUBLISH at QoS 2 with packet id ``mid``."""
    first = 0x30 | (0x08 if dup else 0) | (2 << 1)
    return _packet(first, _utf8(topic) + struct.pack(">H", mid) + b"\x00" + payload)


def pubrel(mid: int) -> bytes:
    """PUBREL for ``mid`` (reason success, so no reason byte)."""
    return _packet(0x62, struct.pack(">H", mid))


def parse_ack(body: bytes) -> tuple[int, int]:
    """Decode PUBREC/PUBCOMP: (packet id, reason code)."""
    if len(body) < 2:
        raise ValueError("acknowledgement too short")
    mid = int(struct.unpack_from(">H", body)[0])
    return mid, body[2] if len(body) > 2 else 0


def pingreq() -> bytes:
    """PINGREQ."""
    return b"\xc0\x00"


def disconnect() -> bytes:
    """DISCONNECT, normal; the session stays, as CONNECT asked."""
    return b"\xe0\x00"
