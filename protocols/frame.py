"""Link frame v1: the compact binary form of queued messages on the modelled satellite link.

A *record* is one message plus the gateway's receive time; a *frame* packs
several records for one transmission. Both are canonical: every byte string that
decodes re-encodes to itself. Integers are big-endian; ``uvarint`` is LEB128
(7 bits per byte, low group first, at most 10 bytes, no redundant trailing groups).

Frame::

    0  1  magic/version 0xB1 (high nibble 0xB marks a satgw frame, low nibble the version)
    1  4  frame_seq, unsigned
    5  1  record count (0..255)
    6  2  CRC-16/CCITT-FALSE of bytes 0..5 followed by bytes 8..end
    8  .  per record: uvarint length, then the record

Record::

    1  terminal id length L (1..32), then L ASCII bytes
    .  uvarint seq
    1  bits 0-1 priority, bits 2-4 kind (0 sos, 1 position, 2 telemetry, 3 text),
       bit 5 receipt requested, bit 6 has position, bit 7 has ttl
    .  uvarint ts in milliseconds, then uvarint received_at in milliseconds
    8  if has position: lat, lon as signed int32 of degrees x 1e7
    .  if has ttl: uvarint ttl in seconds
    .  uvarint body length, then the body in UTF-8

Times are rounded to the nearest millisecond (``round(t * 1000) / 1000``) and
positions to the nearest 1e-7 degree (``round(deg * 1e7) / 1e7``, about 1 cm);
everything else round-trips exactly. Fragmentation is not part of this version.
"""

from __future__ import annotations

import binascii
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.envelope import MAX_BODY_BYTES, MAX_TS, Kind, Message, Position, Priority
from protocols.errors import DecodeError, Reason

__all__ = [
    "FRAME_HEADER_BYTES",
    "FRAME_VERSION",
    "MAX_FRAME_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_RECORDS",
    "Record",
    "crc16",
    "decode_frame",
    "decode_record",
    "encode_frame",
    "encode_record",
    "frame_overhead",
]

FRAME_VERSION = 1
_MAGIC = 0xB0
FRAME_HEADER_BYTES = 8
MAX_RECORDS = 255
MAX_FRAME_BYTES = 65536
"""Largest frame either side accepts; far above any link MTU, it bounds what a decoder will look at."""
MAX_RECORD_BYTES = 1 + 32 + 10 + 1 + 10 + 10 + 8 + 10 + 2 + MAX_BODY_BYTES
"""Largest record the encoder can produce (every field at its widest)."""
_PREFIX_BYTES = 2  # uvarint length of the largest record: MAX_RECORD_BYTES < 2**14
_MAX_UVARINT = 2**64 - 1
_HEADER = struct.Struct(">BIBH")
_LATLON = struct.Struct(">ii")
_KINDS = (Kind.SOS, Kind.POSITION, Kind.TELEMETRY, Kind.TEXT)
_KIND_CODES = {kind: code for code, kind in enumerate(_KINDS)}
_RECEIPT, _HAS_POSITION, _HAS_TTL = 0x20, 0x40, 0x80


@dataclass(frozen=True, slots=True)
class Record:
    """One queued message as it crosses the link."""

    message: Message
    received_at: float
    """Gateway receive time, Unix seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.received_at) and 0 <= self.received_at <= MAX_TS):
            raise DecodeError(Reason.INVALID_FIELD, f"received_at {self.received_at!r} is not a valid time")


def frame_overhead(record_count: int) -> int:
    """Return the most bytes a frame adds around ``record_count`` encoded records.

    Exact when every record is 128 bytes or longer; each shorter record needs one byte less.

    Args:
        record_count: how many records the frame will carry (0..255).
    """
    if not 0 <= record_count <= MAX_RECORDS:
        raise ValueError(f"record_count must be 0..{MAX_RECORDS}, got {record_count}")
    return FRAME_HEADER_BYTES + _PREFIX_BYTES * record_count


def crc16(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of ``data``; ``b"123456789"`` gives 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_record(record: Record) -> bytes:
    """Return the link form of ``record`` (see the module docstring for the layout)."""
    message = record.message
    out = bytearray((len(message.terminal),))
    out += message.terminal.encode("ascii")
    out += _uvarint(message.seq)
    out.append(_packed_bits(message))
    out += _uvarint(_millis(message.ts)) + _uvarint(_millis(record.received_at))
    if message.position is not None:
        out += _LATLON.pack(_fixed7(message.position.lat), _fixed7(message.position.lon))
    if message.ttl is not None:
        out += _uvarint(message.ttl)
    body = message.body.encode("utf-8")
    out += _uvarint(len(body)) + body
    return bytes(out)


def decode_record(raw: bytes) -> Record:
    """Decode one record, raising :class:`DecodeError` (and nothing else) for any input it refuses."""
    if len(raw) > MAX_RECORD_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES}")
    reader = _Reader(raw)
    record = _read_record(reader)
    if reader.remaining:
        raise DecodeError(Reason.MALFORMED, f"{reader.remaining} bytes of trailing garbage after the record")
    return record


def encode_frame(records: Sequence[bytes], *, frame_seq: int) -> bytes:
    """Pack already-encoded records into one frame.

    Args:
        records: the output of :func:`encode_record`, at most 255 of them.
        frame_seq: the link's frame counter, 0..2**32-1.

    Raises:
        ValueError: too many records, an empty record, a frame_seq out of range, or a frame over MAX_FRAME_BYTES.
    """
    if not 0 <= frame_seq < 2**32:
        raise ValueError(f"frame_seq must be 0..2**32-1, got {frame_seq}")
    if len(records) > MAX_RECORDS:
        raise ValueError(f"a frame carries at most {MAX_RECORDS} records, got {len(records)}")
    if not all(records):
        raise ValueError("a record cannot be empty")
    body = b"".join(_uvarint(len(record)) + record for record in records)
    if FRAME_HEADER_BYTES + len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {FRAME_HEADER_BYTES + len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    start = bytes((_MAGIC | FRAME_VERSION,)) + frame_seq.to_bytes(4, "big") + bytes((len(records),))
    return start + crc16(start + body).to_bytes(2, "big") + body


def decode_frame(frame: bytes) -> tuple[int, list[Record]]:
    """Decode a frame into ``(frame_seq, records)``, raising only :class:`DecodeError`.

    Corruption anywhere (caught by the CRC), truncation, trailing bytes and any record
    that :func:`decode_record` refuses all reject the whole frame.
    """
    frame_seq, count = _check_header(frame)
    reader = _Reader(frame, FRAME_HEADER_BYTES)
    records = [decode_record(reader.take(reader.uvarint())) for _ in range(count)]
    if reader.remaining:
        raise DecodeError(Reason.MALFORMED, f"{reader.remaining} bytes of trailing garbage after {count} records")
    return frame_seq, records


def _check_header(frame: bytes) -> tuple[int, int]:
    if len(frame) > MAX_FRAME_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    if len(frame) < FRAME_HEADER_BYTES:
        raise DecodeError(Reason.MALFORMED, f"frame of {len(frame)} bytes is shorter than its header")
    magic, frame_seq, count, crc = _HEADER.unpack_from(frame)
    if magic & 0xF0 != _MAGIC:
        raise DecodeError(Reason.MALFORMED, f"first byte {magic:#04x} is not a satgw frame")
    if magic & 0x0F != FRAME_VERSION:
        raise DecodeError(Reason.UNSUPPORTED_VERSION, f"frame version {magic & 0x0F} (this gateway reads 1)")
    if crc16(frame[:6] + frame[FRAME_HEADER_BYTES:]) != crc:
        raise DecodeError(Reason.MALFORMED, f"frame {frame_seq} fails its CRC")
    return frame_seq, count


def _read_record(reader: _Reader) -> Record:
    terminal = reader.ascii(reader.byte())
    seq = reader.uvarint()
    bits = reader.byte()
    ts, received_at = reader.uvarint() / 1000, reader.uvarint() / 1000
    position = Position(*(n / 1e7 for n in _LATLON.unpack(reader.take(8)))) if bits & _HAS_POSITION else None
    ttl = reader.uvarint() if bits & _HAS_TTL else None
    body = reader.utf8(reader.uvarint())
    message = Message(
        terminal=terminal,
        seq=seq,
        priority=Priority(bits & 0x03),
        kind=_kind(bits >> 2 & 0x07),
        body=body,
        position=position,
        ttl=ttl,
        ts=ts,
        receipt=bool(bits & _RECEIPT),
    )
    return Record(message=message, received_at=received_at)


def _packed_bits(message: Message) -> int:
    bits = int(message.priority) | _KIND_CODES[message.kind] << 2
    bits |= _RECEIPT if message.receipt else 0
    bits |= _HAS_POSITION if message.position is not None else 0
    return bits | (_HAS_TTL if message.ttl is not None else 0)


def _kind(code: int) -> Kind:
    if code >= len(_KINDS):
        raise DecodeError(Reason.INVALID_FIELD, f"kind code {code} is not 0..{len(_KINDS) - 1}")
    return _KINDS[code]


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def _fixed7(degrees: float) -> int:
    return round(degrees * 1e7)


def _uvarint(value: int) -> bytes:
    if value < 0x80:  # most fields (lengths, flags) fit one byte
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Reader:
    """A cursor over bytes whose every read checks bounds and raises DecodeError."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = data
        self._offset = offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise DecodeError(Reason.MALFORMED, f"truncated: needs {count} bytes, {self.remaining} left")
        self._offset += count
        return self._data[self._offset - count : self._offset]

    def byte(self) -> int:
        return self.take(1)[0]

    def uvarint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if (byte == 0 and shift > 0) or value > _MAX_UVARINT:
                    raise DecodeError(Reason.MALFORMED, "uvarint is not in its shortest form or exceeds 64 bits")
                return value
        raise DecodeError(Reason.MALFORMED, "uvarint runs past 10 bytes")

    def ascii(self, count: int) -> str:
        try:
            return self.take(count).decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError(Reason.MALFORMED, "terminal id is not ASCII") from None

    def utf8(self, count: int) -> str:
        try:
            return self.take(count).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(Reason.MALFORMED, "body is not valid UTF-8") from None
