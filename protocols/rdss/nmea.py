"""NMEA-0183-style framing shared by every RDSS sentence: ``$`` address, fields, ``*hh`` checksum.

The checksum is the XOR of every byte between ``$`` and ``*``. Terminals put GB2312
text straight into some fields (2.1 Chinese mode), so the bytes are those of the
GB18030 encoding, which equals ASCII for ASCII and GB2312/GBK for Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.errors import DecodeError, Reason

__all__ = ["MAX_LINE", "WIRE_ENCODING", "RawSentence", "checksum", "join", "split"]

WIRE_ENCODING = "gb18030"
MAX_LINE = 8192
"""Longest line accepted: a 14 000-bit BDS-3 message is 3500 hex digits, so this leaves room to spare."""
_ADDRESS = re.compile(r"[A-Z][A-Z0-9]{4,9}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f$*]")


@dataclass(frozen=True, slots=True)
class RawSentence:
    """A framed sentence before its fields are typed."""

    talker: str
    kind: str
    fields: tuple[str, ...]
    checksum_ok: bool


def checksum(body: str) -> int:
    """Return the XOR of the wire bytes of ``body`` (the text between ``$`` and ``*``)."""
    value = 0
    for byte in body.encode(WIRE_ENCODING):
        value ^= byte
    return value


def join(address: str, fields: Sequence[str]) -> str:
    """Return ``$address,f1,...*hh`` (no line terminator)."""
    body = ",".join((address, *fields))
    return f"${body}*{checksum(body):02X}"


def split(line: str) -> RawSentence:
    """Split one line into address, fields and checksum validity; raise DecodeError if it is no sentence."""
    line = line.strip(" \r\n")
    if len(line) > MAX_LINE:
        raise DecodeError(Reason.OVERSIZED, f"line of {len(line)} characters, at most {MAX_LINE}")
    if len(line) < 4 or line[0] != "$" or line[-3] != "*" or not _HEX2.fullmatch(line[-2:]):
        raise DecodeError(Reason.MALFORMED, "not a sentence: expected $ADDRESS,...*hh")
    body = line[1:-3]
    if _FORBIDDEN.search(body):
        raise DecodeError(Reason.MALFORMED, "control character, '$' or '*' inside the sentence")
    address, *fields = body.split(",")
    if not _ADDRESS.fullmatch(address):
        raise DecodeError(Reason.MALFORMED, f"bad address {address[:16]!r}: expected talker and type, e.g. BDTXR")
    try:
        ok = checksum(body) == int(line[-2:], 16)
    except UnicodeEncodeError:
        raise DecodeError(Reason.MALFORMED, "text that has no GB18030 encoding") from None
    return RawSentence(talker=address[:2], kind=address[2:], fields=tuple(fields), checksum_ok=ok)
