"""Primitives shared by the binary formats: LEB128 uvarints, CRC-16 and a bounds-checked reader.

``uvarint`` is unsigned LEB128: 7 bits per byte, low group first, at most 10 bytes,
at most 2**64-1 and in its shortest form (a reader refuses a redundant ``0x00`` group).
"""

from __future__ import annotations

import binascii

from protocols.errors import DecodeError, Reason

__all__ = ["MAX_UVARINT", "Reader", "crc16", "uvarint", "uvarint_size"]

MAX_UVARINT = 2**64 - 1
_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def crc16(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of ``data``; ``b"123456789"`` gives 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def uvarint(value: int) -> bytes:
    """Return the shortest LEB128 form of ``value`` (0..2**64-1)."""
    if value < 0x80:  # most fields (lengths, flags) fit one byte
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def uvarint_size(value: int) -> int:
    """Return how many bytes :func:`uvarint` takes for ``value``."""
    return max(1, -(-value.bit_length() // 7))


class Reader:
    """A cursor over bytes whose every read checks bounds and raises DecodeError."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = data
        self._offset = offset

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._offset

    def take(self, count: int) -> bytes:
        """Return the next ``count`` bytes."""
        if count > self.remaining:
            raise DecodeError(Reason.MALFORMED, f"truncated: needs {count} bytes, {self.remaining} left")
        self._offset += count
        return self._data[self._offset - count : self._offset]

    def rest(self) -> bytes:
        """Return every byte not read yet."""
        return self.take(self.remaining)

    def byte(self) -> int:
        """Return the next byte."""
        return self.take(1)[0]

    def uvarint(self) -> int:
        """Return the next uvarint, refusing one past 10 bytes, past 64 bits or not in its shortest form."""
        value = 0
        for shift in range(0, 70, 7):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if (byte == 0 and shift > 0) or value > MAX_UVARINT:
                    raise DecodeError(Reason.MALFORMED, "uvarint is not in its shortest form or exceeds 64 bits")
                return value
        raise DecodeError(Reason.MALFORMED, "uvarint runs past 10 bytes")

    def text(self, count: int, codec: str, what: str) -> str:
        """Return the next ``count`` bytes decoded with ``codec``; ``what`` names the field in the error."""
        try:
            return self.take(count).decode(codec)
        except UnicodeDecodeError:
            raise DecodeError(Reason.MALFORMED, f"{what} is not valid {codec}") from None
