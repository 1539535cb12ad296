"""The packed link frame (``0xBA``): several records re-encoded relative to each other, for tiny MTUs.

A packed frame is a lossless recoding of record bytes (:mod:`protocols.record`): the reader
rebuilds each record's exact bytes and decodes them with :func:`decode_record`, so it gives
the very records their bytes give. Each record is written against what came before it in the
frame: its ts as a delta from the previous record's, its received_at from its own ts, its
terminal as an index into the frame's terminals (or, for a fleet numbered like ``T000123``, as a
delta from the previous new terminal's number), its seq from its terminal's previous seq, its
flags only when they change, its position from the previous position. Layout::

    0  1  0xBA
    1  .  per record (at most 255):
          uvarint head = code x 2 + 1 if a flags byte follows (always for the first record)
          terminal: code < T (terminals so far): terminal #code, nothing follows;
                    code = T: a new terminal spelled like terminal #T-1 but for its number:
                          zigzag delta of the number (the last 1..18 characters, all digits);
                    code = T + 1: a new terminal spelled out: byte L, then L bytes
          seq: zigzag delta from this terminal's previous seq if it is not new, else uvarint
          flags: the record's flags byte, if the head says so; else the previous record's
          zigzag ts delta in ms from the previous record's ts (0 before the first)
          zigzag received_at delta in ms from this record's ts
          if has position: the first position of the frame as the record has it (two int32);
                           each later one as zigzag deltas of lat, lon (1e-7 degree) from the previous
          if has ttl: zigzag delta of the ttl from the previous ttl in the frame (0 before the first)
          uvarint body length, then the body, as in the record
    -2 2  CRC-16/CCITT-FALSE of every byte before it

``zigzag`` maps n >= 0 to 2n and n < 0 to -2n - 1, then writes a uvarint. The form is
canonical: a reader re-encodes what it read and refuses a frame that differs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocols.errors import DecodeError, Reason
from protocols.record import Record, decode_record, encode_record
from protocols.wire import MAX_UVARINT, Reader, crc16, uvarint

__all__ = ["MAX_PACKED_RECORDS", "PACKED_FORM", "PackedBuilder", "decode_packed", "encode_packed", "record_bytes"]

PACKED_FORM = 0xBA
"""Bits away from the compact forms, which have no CRC: three from 0xB4 (a fragment, which any bytes
following make) and two from 0xB3 (a record), so no single-bit error in the form byte skips the CRC."""
MAX_PACKED_RECORDS = 255
_OVERHEAD = 3  # the form byte and the CRC
_LATLON = struct.Struct(">ii")
_HAS_POSITION, _HAS_TTL = 0x40, 0x80
_DIGITS = b"0123456789"
_MAX_WIDTH = 18  # a number of 18 digits keeps its zigzag delta within a uvarint


@dataclass(frozen=True, slots=True)
class _Fields:
    """The fields of one record exactly as its bytes hold them (times in ms, degrees x 1e7)."""

    terminal: bytes
    seq: int
    bits: int
    ts: int
    received_at: int
    position: tuple[int, int] | None
    ttl: int | None
    body: bytes


def record_bytes(record: Record | bytes) -> bytes:
    """Return the encoded record: ``record`` itself if it is bytes."""
    return record if isinstance(record, bytes) else encode_record(record)


def _parse(raw: bytes) -> _Fields:
    """Split record bytes into their fields without judging them (the ground's decode_record does)."""
    reader = Reader(raw)
    terminal = reader.take(reader.byte())
    seq, bits, ts, received_at = reader.uvarint(), reader.byte(), reader.uvarint(), reader.uvarint()
    position = _LATLON.unpack(reader.take(8)) if bits & _HAS_POSITION else None
    ttl = reader.uvarint() if bits & _HAS_TTL else None
    body = reader.take(reader.uvarint())
    if reader.remaining:
        raise DecodeError(Reason.MALFORMED, f"{reader.remaining} bytes of trailing garbage after the record")
    return _Fields(terminal, seq, bits, ts, received_at, position, ttl, body)


def _unparse(fields: _Fields) -> bytes:
    """Return the record bytes that hold ``fields``: the inverse of :func:`_parse`."""
    out = bytearray((len(fields.terminal),)) + fields.terminal
    out += uvarint(fields.seq) + bytes((fields.bits,)) + uvarint(fields.ts) + uvarint(fields.received_at)
    if fields.position is not None:
        out += _LATLON.pack(*fields.position)
    if fields.ttl is not None:
        out += uvarint(fields.ttl)
    return bytes(out + uvarint(len(fields.body)) + fields.body)


def _zigzag(value: int) -> bytes:
    return uvarint(value * 2 if value >= 0 else -value * 2 - 1)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _numbered(terminal: bytes) -> tuple[bytes, int, int] | None:
    """Return ``(stem, width, number)`` for a terminal ending in 1..18 digits, else None."""
    width = len(terminal) - len(terminal.rstrip(_DIGITS))
    if not 1 <= width <= _MAX_WIDTH:
        return None
    return terminal[:-width], width, int(terminal[-width:])


@dataclass(slots=True)
class _State:
    """What a record is written against: everything before it in the frame."""

    terminals: dict[bytes, int] = field(default_factory=dict)
    names: list[bytes] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    last_new: tuple[bytes, int, int] | None = None
    ts: int = 0
    ttl: int = 0
    position: tuple[int, int] | None = None
    bits: int | None = None

    def commit(self, fields: _Fields) -> None:
        """Move past one record."""
        index = self.terminals.setdefault(fields.terminal, len(self.terminals))
        if index == len(self.seqs):
            self.names.append(fields.terminal)
            self.seqs.append(fields.seq)
            self.last_new = _numbered(fields.terminal)
        self.seqs[index] = fields.seq
        self.ts, self.bits = fields.ts, fields.bits
        self.position = fields.position if fields.position is not None else self.position
        self.ttl = fields.ttl if fields.ttl is not None else self.ttl

    def part(self, fields: _Fields) -> bytes:
        """Return the packed form of the next record."""
        code, terminal = self._terminal(fields.terminal)
        known = code < len(self.seqs)
        out = bytearray(uvarint(code * 2 + (fields.bits != self.bits)) + terminal)
        out += _zigzag(fields.seq - self.seqs[code]) if known else uvarint(fields.seq)
        out += b"" if fields.bits == self.bits else bytes((fields.bits,))
        out += _zigzag(fields.ts - self.ts) + _zigzag(fields.received_at - fields.ts)
        if fields.position is not None:
            out += self._position(fields.position)
        out += b"" if fields.ttl is None else _zigzag(fields.ttl - self.ttl)
        return bytes(out + uvarint(len(fields.body)) + fields.body)

    def _terminal(self, terminal: bytes) -> tuple[int, bytes]:
        index = self.terminals.get(terminal)
        if index is not None:
            return index, b""
        numbered, last = _numbered(terminal), self.last_new
        if numbered is not None and last is not None and numbered[:2] == last[:2]:
            return len(self.seqs), _zigzag(numbered[2] - last[2])
        return len(self.seqs) + 1, bytes((len(terminal),)) + terminal

    def _position(self, position: tuple[int, int]) -> bytes:
        if self.position is None:
            return _LATLON.pack(*position)
        return _zigzag(position[0] - self.position[0]) + _zigzag(position[1] - self.position[1])


class PackedBuilder:
    """A packed frame grown one record at a time, its exact size known before each record is added."""

    def __init__(self) -> None:
        self._state = _State()
        self._parts: list[bytes] = []
        self._size = _OVERHEAD
        self._next: tuple[bytes, _Fields, bytes] | None = None

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def size(self) -> int:
        """The length of the frame :meth:`encode` returns now."""
        return self._size

    def size_with(self, record: bytes) -> int:
        """Return the frame's length if ``record`` were added (ValueError if its bytes do not parse)."""
        return self._size + len(self._peek(record)[2])

    def add(self, record: bytes) -> None:
        """Add one encoded record.

        Raises:
            ValueError: record bytes that do not parse, or a frame already holding 255 records.
        """
        if len(self._parts) >= MAX_PACKED_RECORDS:
            raise ValueError(f"a packed frame carries at most {MAX_PACKED_RECORDS} records")
        _, fields, part = self._peek(record)
        self._state.commit(fields)
        self._parts.append(part)
        self._size += len(part)
        self._next = None

    def encode(self) -> bytes:
        """Return the frame of every record added so far."""
        body = bytes((PACKED_FORM,)) + b"".join(self._parts)
        return body + crc16(body).to_bytes(2, "big")

    def _peek(self, record: bytes) -> tuple[bytes, _Fields, bytes]:
        # The relay asks the size of a record, then adds it: parse and encode it once.
        if self._next is None or self._next[0] is not record:
            fields = _parse(record)
            self._next = (record, fields, self._state.part(fields))
        return self._next


def encode_packed(records: Sequence[Record | bytes]) -> bytes:
    """Return the packed frame of ``records`` (at most 255; ValueError for more or for bytes that do not parse)."""
    builder = PackedBuilder()
    for record in records:
        builder.add(record_bytes(record))
    return builder.encode()


def decode_packed(frame: bytes) -> tuple[Record, ...]:
    """Decode a packed frame into its records, raising only :class:`DecodeError`."""
    if len(frame) < _OVERHEAD or frame[0] != PACKED_FORM:
        raise DecodeError(Reason.MALFORMED, f"packed frame of {len(frame)} bytes is shorter than its form and CRC")
    if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "big"):
        raise DecodeError(Reason.MALFORMED, "packed frame fails its CRC")
    reader, state = Reader(frame[:-2], 1), _State()
    raws: list[bytes] = []
    while reader.remaining:
        if len(raws) == MAX_PACKED_RECORDS:
            raise DecodeError(Reason.MALFORMED, f"packed frame carries more than {MAX_PACKED_RECORDS} records")
        fields = _read(reader, state)
        raws.append(_unparse(fields))
        state.commit(fields)
    records = tuple(decode_record(raw) for raw in raws)
    if encode_packed(raws) != frame:
        raise DecodeError(Reason.MALFORMED, "packed frame is not in its canonical form")
    return records


def _read(reader: Reader, state: _State) -> _Fields:
    head = reader.uvarint()
    code, has_bits = head >> 1, head & 1
    terminal = _read_terminal(reader, state, code)
    known = code < len(state.seqs)
    seq = state.seqs[code] + _unzigzag(reader.uvarint()) if known else reader.uvarint()
    bits = reader.byte() if has_bits else state.bits
    if bits is None:
        raise DecodeError(Reason.MALFORMED, "the first record of a packed frame has no flags")
    ts = _natural(state.ts + _unzigzag(reader.uvarint()), "ts")
    received_at = _natural(ts + _unzigzag(reader.uvarint()), "received_at")
    position = _read_position(reader, state) if bits & _HAS_POSITION else None
    ttl = _natural(state.ttl + _unzigzag(reader.uvarint()), "ttl") if bits & _HAS_TTL else None
    body = reader.take(reader.uvarint())
    return _Fields(terminal, _natural(seq, "seq"), bits, ts, received_at, position, ttl, body)


def _read_terminal(reader: Reader, state: _State, code: int) -> bytes:
    known = len(state.names)
    if code < known:
        return state.names[code]
    if code == known + 1:
        return reader.take(reader.byte())
    if code > known or state.last_new is None:
        raise DecodeError(Reason.MALFORMED, f"terminal code {code} with {known} terminals so far")
    stem, width, number = state.last_new
    number += _unzigzag(reader.uvarint())
    if not 0 <= number < 10**width:
        raise DecodeError(Reason.MALFORMED, f"terminal number {number} does not have {width} digits")
    return stem + str(number).zfill(width).encode("ascii")


def _read_position(reader: Reader, state: _State) -> tuple[int, int]:
    if state.position is None:
        lat, lon = _LATLON.unpack(reader.take(8))
        return lat, lon
    lat = state.position[0] + _unzigzag(reader.uvarint())
    lon = state.position[1] + _unzigzag(reader.uvarint())
    if not (-(2**31) <= lat < 2**31 and -(2**31) <= lon < 2**31):
        raise DecodeError(Reason.MALFORMED, "a position delta leaves the int32 range")
    return lat, lon


def _natural(value: int, what: str) -> int:
    if not 0 <= value <= MAX_UVARINT:
        raise DecodeError(Reason.MALFORMED, f"{what} {value} is outside 0..2**64-1")
    return value
