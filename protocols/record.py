"""The link record: one queued message plus the gateway's receive time, in its compact binary form.

A record is what a queue stream entry holds (field ``m``) and what a link frame
carries, whole or in fragments. It is canonical but for one compatibility case:
every byte string that decodes re-encodes to itself, except a UTF-8 body that GB2312
would shorten (as link frame v1 writers stored Chinese text), which is accepted and
re-encodes, shorter, in GB2312. Layout (integers big-endian, ``uvarint`` as in :mod:`protocols.wire`)::

    1  terminal id length L (1..32), then L ASCII bytes
    .  uvarint seq
    1  bits 0-1 priority, bits 2-3 kind (0 sos, 1 position, 2 telemetry, 3 text),
       bit 4 body in GB2312, bit 5 receipt requested, bit 6 has position, bit 7 has ttl
    .  uvarint ts in milliseconds, then uvarint received_at in milliseconds
    8  if has position: lat, lon as signed int32 of degrees x 1e7
    .  if has ttl: uvarint ttl in seconds
    .  uvarint body length, then the body in UTF-8, or in GB2312 when bit 4 is set

The body is written in GB2312 exactly when that is strictly shorter than UTF-8 (two
bytes instead of three for each Chinese character) and exact; link frame v1 readers
knew bit 4 as the high bit of a 3-bit kind and refused it, so every record they
accepted is read here unchanged. Times are rounded to the nearest millisecond and positions to the
nearest 1e-7 degree (about 1 cm); everything else round-trips exactly.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from protocols.envelope import MAX_BODY_BYTES, MAX_TS, Kind, Message, Position, Priority
from protocols.errors import DecodeError, Reason
from protocols.wire import Reader, uvarint

__all__ = ["MAX_RECORD_BYTES", "Record", "decode_record", "encode_body", "encode_record", "read_record"]

MAX_RECORD_BYTES = 1 + 32 + 10 + 1 + 10 + 10 + 8 + 10 + 2 + MAX_BODY_BYTES
"""Largest record the encoder can produce (every field at its widest)."""
_LATLON = struct.Struct(">ii")
_KINDS = (Kind.SOS, Kind.POSITION, Kind.TELEMETRY, Kind.TEXT)
_KIND_CODES = {kind: code for code, kind in enumerate(_KINDS)}
_GB2312, _RECEIPT, _HAS_POSITION, _HAS_TTL = 0x10, 0x20, 0x40, 0x80


@dataclass(frozen=True, slots=True)
class Record:
    """One queued message as it crosses the link."""

    message: Message
    received_at: float
    """Gateway receive time, Unix seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.received_at) and 0 <= self.received_at <= MAX_TS):
            raise DecodeError(Reason.INVALID_FIELD, f"received_at {self.received_at!r} is not a valid time")


def encode_body(body: str) -> tuple[bytes, bool]:
    """Return ``(bytes, is_gb2312)``: the body in GB2312 if that is strictly shorter and exact, else in UTF-8."""
    utf8 = body.encode("utf-8")
    if body.isascii():  # the common case: GB2312 cannot be shorter
        return utf8, False
    try:
        gb = body.encode("gb2312")
    except UnicodeEncodeError:  # a character outside GB2312 (emoji, rare hanzi)
        return utf8, False
    # The round trip guards against a codec mapping two characters to one code.
    if len(gb) < len(utf8) and gb.decode("gb2312") == body:
        return gb, True
    return utf8, False


def encode_record(record: Record) -> bytes:
    """Return the link form of ``record`` (see the module docstring for the layout)."""
    message = record.message
    body, gb2312 = encode_body(message.body)
    out = bytearray((len(message.terminal),))
    out += message.terminal.encode("ascii")
    out += uvarint(message.seq)
    out.append(_packed_bits(message) | (_GB2312 if gb2312 else 0))
    out += uvarint(_millis(message.ts)) + uvarint(_millis(record.received_at))
    if message.position is not None:
        out += _LATLON.pack(_fixed7(message.position.lat), _fixed7(message.position.lon))
    if message.ttl is not None:
        out += uvarint(message.ttl)
    out += uvarint(len(body)) + body
    return bytes(out)


def decode_record(raw: bytes) -> Record:
    """Decode one record, raising :class:`DecodeError` (and nothing else) for any input it refuses."""
    if len(raw) > MAX_RECORD_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES}")
    reader = Reader(raw)
    record = read_record(reader)
    if reader.remaining:
        raise DecodeError(Reason.MALFORMED, f"{reader.remaining} bytes of trailing garbage after the record")
    return record


def read_record(reader: Reader) -> Record:
    """Read one record from ``reader``, leaving it after the body."""
    terminal = reader.text(reader.byte(), "ascii", "terminal id")
    seq = reader.uvarint()
    bits = reader.byte()
    ts, received_at = reader.uvarint() / 1000, reader.uvarint() / 1000
    position = Position(*(n / 1e7 for n in _LATLON.unpack(reader.take(8)))) if bits & _HAS_POSITION else None
    ttl = reader.uvarint() if bits & _HAS_TTL else None
    body = _read_body(reader, gb2312=bool(bits & _GB2312))
    message = Message(
        terminal=terminal,
        seq=seq,
        priority=Priority(bits & 0x03),
        kind=_KINDS[bits >> 2 & 0x03],
        body=body,
        position=position,
        ttl=ttl,
        ts=ts,
        receipt=bool(bits & _RECEIPT),
    )
    return Record(message=message, received_at=received_at)


def _read_body(reader: Reader, *, gb2312: bool) -> str:
    raw = reader.take(reader.uvarint())
    body = Reader(raw).text(len(raw), "gb2312" if gb2312 else "utf-8", "body")
    if gb2312 and encode_body(body) != (raw, True):
        # Canonical form: GB2312 only when strictly shorter than UTF-8, and only bytes it re-encodes to.
        raise DecodeError(Reason.MALFORMED, "body in GB2312 where UTF-8 is as short, or not in canonical GB2312")
    return body


def _packed_bits(message: Message) -> int:
    bits = int(message.priority) | _KIND_CODES[message.kind] << 2
    bits |= _RECEIPT if message.receipt else 0
    bits |= _HAS_POSITION if message.position is not None else 0
    return bits | (_HAS_TTL if message.ttl is not None else 0)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _fixed7(degrees: float) -> int:
    return round(degrees * 1e7)
