"""Link frames: the compact binary form of what crosses a satellite link in one transmission.

A frame carries *records* (:mod:`protocols.record`) and, from v2 on, *fragments* of
records too large for one transmission (:mod:`protocols.fragments`). Every form is
canonical: each byte string that decodes re-encodes to itself. The first byte names
the form: high nibble 0xB marks a satgw frame, low nibble the format.

v1 (``0xB1``, read and written for compatibility)::

    0  1  0xB1
    1  4  frame_seq, unsigned, big-endian
    5  1  record count (0..255)
    6  2  CRC-16/CCITT-FALSE of bytes 0..5 followed by bytes 8..end
    8  .  per record: uvarint length, then the record

v2 (``0xB2``: records and fragments, with a CRC)::

    0  1  0xB2
    1  .  per item: uvarint head = length x 2 + kind (0 record, 1 fragment), then the item;
          every record comes before every fragment
    -2 2  CRC-16/CCITT-FALSE of every byte before it

v2 compact (one item, no CRC: for tiny MTUs, over links whose own layer checks integrity)::

    0  1  0xB3 then one record to the end, or 0xB4 then one fragment to the end

packed (``0xBA``: up to 255 records re-encoded relative to each other, with a CRC; see
:mod:`protocols.packed`). :class:`FramePacker` and :func:`encode_best` pick the shortest
of the compact, v2 and packed forms for a list of records.

A fragmented message carries its own CRC, checked when the ground joins it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.errors import DecodeError, Reason
from protocols.fragments import Fragment, decode_fragment
from protocols.packed import PACKED_FORM, PackedBuilder, decode_packed, encode_packed
from protocols.record import MAX_RECORD_BYTES, Record, decode_record, encode_record
from protocols.wire import Reader, crc16, uvarint, uvarint_size

__all__ = [
    "FRAME_HEADER_BYTES",
    "FRAME_VERSION",
    "MAX_FRAME_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_RECORDS",
    "FramePacker",
    "LinkFrame",
    "Record",
    "best_size",
    "crc16",
    "decode_frame",
    "decode_record",
    "encode_best",
    "encode_frame",
    "encode_frame_packed",
    "encode_frame_v2",
    "encode_record",
    "frame_overhead",
    "frame_packed_size",
    "frame_v2_size",
    "read_frame",
]

FRAME_VERSION = 1
"""The version :func:`encode_frame` writes; :func:`encode_frame_v2` writes version 2."""
_MAGIC = 0xB0
_V1, _V2, _COMPACT_RECORD, _COMPACT_FRAGMENT = 0xB1, 0xB2, 0xB3, 0xB4
FRAME_HEADER_BYTES = 8
MAX_RECORDS = 255
MAX_FRAME_BYTES = 65536
"""Largest frame either side accepts; far above any link MTU, it bounds what a decoder will look at."""
_PREFIX_BYTES = 2  # uvarint length of the largest record: MAX_RECORD_BYTES < 2**14
_HEADER = struct.Struct(">BIBH")
_RECORD, _FRAGMENT = 0, 1
_V2_OVERHEAD = 3  # the form byte and the CRC


@dataclass(frozen=True, slots=True)
class LinkFrame:
    """What one frame carried, whatever its version."""

    version: int
    records: tuple[Record, ...]
    fragments: tuple[Fragment, ...] = ()
    frame_seq: int | None = None
    """The link's frame counter (v1 only)."""
    compact: bool = False
    """True for the v2 one-item form without a CRC."""
    packed: bool = False
    """True for the packed form (0xBA), which carries records only."""


def frame_overhead(record_count: int) -> int:
    """Return the most bytes a v1 frame adds around ``record_count`` encoded records.

    Exact when every record is 128 bytes or longer; each shorter record needs one byte less.

    Args:
        record_count: how many records the frame will carry (0..255).
    """
    if not 0 <= record_count <= MAX_RECORDS:
        raise ValueError(f"record_count must be 0..{MAX_RECORDS}, got {record_count}")
    return FRAME_HEADER_BYTES + _PREFIX_BYTES * record_count


def encode_frame(records: Sequence[bytes], *, frame_seq: int) -> bytes:
    """Pack already-encoded records into one v1 frame.

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
    body = b"".join(uvarint(len(record)) + record for record in records)
    if FRAME_HEADER_BYTES + len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {FRAME_HEADER_BYTES + len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    start = bytes((_V1,)) + frame_seq.to_bytes(4, "big") + bytes((len(records),))
    return start + crc16(start + body).to_bytes(2, "big") + body


def decode_frame(frame: bytes) -> tuple[int, list[Record]]:
    """Decode a v1 frame into ``(frame_seq, records)``, raising only :class:`DecodeError`.

    Corruption anywhere (caught by the CRC), truncation, trailing bytes and any record
    that :func:`decode_record` refuses all reject the whole frame. :func:`read_frame` reads every version.
    """
    frame_seq, count = _check_header(frame)
    reader = Reader(frame, FRAME_HEADER_BYTES)
    records = [decode_record(reader.take(reader.uvarint())) for _ in range(count)]
    if reader.remaining:
        raise DecodeError(Reason.MALFORMED, f"{reader.remaining} bytes of trailing garbage after {count} records")
    return frame_seq, records


def encode_frame_v2(*, records: Sequence[bytes] = (), fragments: Sequence[bytes] = (), compact: bool = False) -> bytes:
    """Pack already-encoded records and fragments into one v2 frame, records first.

    Args:
        records: the output of :func:`encode_record`.
        fragments: the output of :func:`protocols.fragments.fragment`.
        compact: write the one-item form without a CRC (1 byte of overhead instead of 3 plus a length).

    Raises:
        ValueError: an empty item, ``compact`` with other than one item, or a frame over MAX_FRAME_BYTES.
    """
    if not (all(records) and all(fragments)):
        raise ValueError("a record or fragment cannot be empty")
    if compact:
        if len(records) + len(fragments) != 1:
            raise ValueError(f"a compact frame carries exactly one item, got {len(records) + len(fragments)}")
        frame = bytes((_COMPACT_RECORD,)) + records[0] if records else bytes((_COMPACT_FRAGMENT,)) + fragments[0]
    else:
        items = [uvarint(len(r) * 2 + _RECORD) + r for r in records]
        items += [uvarint(len(f) * 2 + _FRAGMENT) + f for f in fragments]
        body = bytes((_V2,)) + b"".join(items)
        frame = body + crc16(body).to_bytes(2, "big")
    if len(frame) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    return frame


def frame_v2_size(
    *, record_sizes: Sequence[int] = (), fragment_sizes: Sequence[int] = (), compact: bool = False
) -> int:
    """Return the exact length of the v2 frame :func:`encode_frame_v2` makes of items of these sizes."""
    if compact:
        return 1 + sum(record_sizes) + sum(fragment_sizes)
    heads = sum(uvarint_size(n * 2 + _RECORD) for n in record_sizes)
    heads += sum(uvarint_size(n * 2 + _FRAGMENT) for n in fragment_sizes)
    return _V2_OVERHEAD + heads + sum(record_sizes) + sum(fragment_sizes)


def encode_frame_packed(records: Sequence[Record | bytes]) -> bytes:
    """Return the packed frame (0xBA) of up to 255 records, given as :class:`Record` or as their bytes.

    Raises:
        ValueError: more than 255 records, or record bytes that do not parse.
    """
    return encode_packed(records)


def frame_packed_size(records: Sequence[Record | bytes]) -> int:
    """Return the exact length of the frame :func:`encode_frame_packed` makes of ``records``."""
    return len(encode_packed(records))


class FramePacker:
    """One transmission's frame grown a record at a time, always in its shortest form.

    One record goes in a compact frame, several in v2, unless the packed form is shorter
    (a tie keeps the older form). Each :meth:`size_with` and :meth:`add` costs one record's
    encoding, so a sender can pack greedily: add while ``size_with(next) <= mtu``. Bytes that
    do not parse as a record, or a 256th record, rule the packed form out: such a frame is
    v2, as before, and the ground judges its records.
    """

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._v2 = _V2_OVERHEAD
        self._packed: PackedBuilder | None = PackedBuilder()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size(self) -> int:
        """The length of the frame :meth:`encode` returns now."""
        return _least(self._older(), self._packed_size())

    def size_with(self, record: bytes) -> int:
        """Return the length of the shortest frame if ``record`` were added."""
        if not self._records:
            older = frame_v2_size(record_sizes=[len(record)], compact=True)
        else:
            older = self._v2 + uvarint_size(len(record) * 2 + _RECORD) + len(record)
        return _least(older, self._packed_size(record))

    def add(self, record: bytes) -> None:
        """Add one encoded record (ValueError if it is empty)."""
        if not record:
            raise ValueError("a record cannot be empty")
        if self._packed is not None:
            try:
                self._packed.add(record)
            except ValueError:  # no record, or a 256th: only v2 carries these
                self._packed = None
        self._records.append(record)
        self._v2 += uvarint_size(len(record) * 2 + _RECORD) + len(record)

    def encode(self) -> bytes:
        """Return the shortest frame that carries every record added so far."""
        if self._packed is not None and self._packed.size < self._older():
            return self._packed.encode()
        return encode_frame_v2(records=self._records, compact=len(self._records) == 1)

    def _older(self) -> int:
        """The length of the compact (one record) or v2 frame of the records so far."""
        return 1 + len(self._records[0]) if len(self._records) == 1 else self._v2

    def _packed_size(self, record: bytes | None = None) -> int | None:
        """The packed frame's length, with ``record`` added if given; None if the records cannot be packed."""
        if self._packed is None or (record is not None and len(self._packed) >= MAX_RECORDS):
            return None
        if record is None:
            return self._packed.size
        try:
            return self._packed.size_with(record)
        except ValueError:
            return None


def _least(older: int, packed: int | None) -> int:
    return older if packed is None else min(older, packed)


def encode_best(records: Sequence[bytes]) -> bytes:
    """Return the shortest frame (compact, v2 or packed) that carries ``records`` whole, in order."""
    packer = FramePacker()
    for record in records:
        packer.add(record)
    return packer.encode()


def best_size(records: Sequence[bytes]) -> int:
    """Return ``len(encode_best(records))`` without building the frame."""
    packer = FramePacker()
    for record in records:
        packer.add(record)
    return packer.size


def read_frame(frame: bytes) -> LinkFrame:
    """Decode a frame of any form (v1, v2, v2 compact, packed), raising only :class:`DecodeError`.

    A frame is refused whole: a bad CRC, truncation, trailing bytes, items out of order,
    or any record or fragment that does not decode.
    """
    if len(frame) > MAX_FRAME_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    form = frame[0] if frame else None
    if form == _V2:
        return _read_v2(frame)
    if form == _COMPACT_RECORD:
        return LinkFrame(version=2, records=(_one_record(frame[1:]),), compact=True)
    if form == _COMPACT_FRAGMENT:
        return LinkFrame(version=2, records=(), fragments=(decode_fragment(frame[1:]),), compact=True)
    if form == PACKED_FORM:
        return LinkFrame(version=2, records=decode_packed(frame), packed=True)
    if form is not None and form & 0xF0 == _MAGIC and form != _V1:
        raise DecodeError(Reason.UNSUPPORTED_VERSION, f"frame format {form & 0x0F} (this gateway reads 1 to 4 and 10)")
    frame_seq, records = decode_frame(frame)
    return LinkFrame(version=1, records=tuple(records), frame_seq=frame_seq)


def _one_record(raw: bytes) -> Record:
    if not raw:
        raise DecodeError(Reason.MALFORMED, "compact frame carries nothing")
    return decode_record(raw)


def _read_v2(frame: bytes) -> LinkFrame:
    if len(frame) < _V2_OVERHEAD:
        raise DecodeError(Reason.MALFORMED, f"v2 frame of {len(frame)} bytes is shorter than its header and CRC")
    if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "big"):
        raise DecodeError(Reason.MALFORMED, "v2 frame fails its CRC")
    reader = Reader(frame[:-2], 1)
    records: list[Record] = []
    fragments: list[Fragment] = []
    while reader.remaining:
        head = reader.uvarint()
        if head < 2:
            raise DecodeError(Reason.MALFORMED, "an empty item")
        raw = reader.take(head >> 1)
        if head & 1 == _FRAGMENT:
            fragments.append(decode_fragment(raw))
        elif fragments:
            raise DecodeError(Reason.MALFORMED, "a record after a fragment")
        else:
            records.append(decode_record(raw))
    return LinkFrame(version=2, records=tuple(records), fragments=tuple(fragments))


def _check_header(frame: bytes) -> tuple[int, int]:
    if len(frame) > MAX_FRAME_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    if len(frame) < FRAME_HEADER_BYTES:
        raise DecodeError(Reason.MALFORMED, f"frame of {len(frame)} bytes is shorter than its header")
    magic, frame_seq, count, crc = _HEADER.unpack_from(frame)
    if magic & 0xF0 != _MAGIC:
        raise DecodeError(Reason.MALFORMED, f"first byte {magic:#04x} is not a satgw frame")
    if magic != _V1:
        raise DecodeError(Reason.UNSUPPORTED_VERSION, f"frame format {magic & 0x0F} (decode_frame reads v1 only)")
    if crc16(frame[:6] + frame[FRAME_HEADER_BYTES:]) != crc:
        raise DecodeError(Reason.MALFORMED, f"frame {frame_seq} fails its CRC")
    return frame_seq, count
