"""Sentence ↔ text: one entry point for every RDSS sentence, typed where known, generic otherwise."""

from __future__ import annotations

import re
from collections.abc import Callable

from protocols.errors import DecodeError, Reason
from protocols.rdss.base import Generic, Sentence
from protocols.rdss.bds3 import Fki3, Icp, Icr, Pwi, Tci, Tcq
from protocols.rdss.fields import build
from protocols.rdss.nmea import WIRE_ENCODING, join, split
from protocols.rdss.v21 import Bsi, Fki, Ica, Ici, Rmo, Txa, Txr

__all__ = ["decode_bytes", "decode_sentence", "encode_sentence", "to_wire"]

Parser = Callable[[str, tuple[str, ...], bool], Sentence]
_HHMMSS = re.compile(r"[0-9]{6}")


def _parse_fki(talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Sentence:
    """The BDS-3 FKI starts with its time, the 2.1 one with the command name."""
    if fields and _HHMMSS.fullmatch(fields[0]):
        return Fki3.from_fields(talker, fields, checksum_ok)
    return Fki.from_fields(talker, fields, checksum_ok)


PARSERS: dict[str, Parser] = {
    "TXA": Txa.from_fields,
    "TXR": Txr.from_fields,
    "FKI": _parse_fki,
    "ICA": Ica.from_fields,
    "ICI": Ici.from_fields,
    "RMO": Rmo.from_fields,
    "BSI": Bsi.from_fields,
    "TCQ": Tcq.from_fields,
    "TCI": Tci.from_fields,
    "ICR": Icr.from_fields,
    "ICP": Icp.from_fields,
    "PWI": Pwi.from_fields,
}


def decode_sentence(line: str) -> Sentence:
    """Return the sentence in ``line``; a bad checksum gives ``checksum_ok=False``, a non-sentence DecodeError."""
    raw = split(line)
    parser = PARSERS.get(raw.kind)
    if parser is None:
        values = {"talker": raw.talker, "kind": raw.kind, "fields": raw.fields, "checksum_ok": raw.checksum_ok}
        return build(Generic, raw.kind, **values)
    return parser(raw.talker, raw.fields, raw.checksum_ok)


def decode_bytes(data: bytes) -> Sentence:
    """Return the sentence in one line read from a terminal's serial port (GB2312-compatible bytes)."""
    try:
        line = data.decode(WIRE_ENCODING)
    except UnicodeDecodeError:
        raise DecodeError(Reason.MALFORMED, "bytes that are not GB18030/GB2312 text") from None
    return decode_sentence(line)


def encode_sentence(sentence: Sentence) -> str:
    """Return ``$address,fields*hh`` with a correct checksum, without a line terminator."""
    return join(sentence.talker + sentence.kind, sentence.to_fields())


def to_wire(sentence: Sentence) -> bytes:
    """Return the bytes to write to a terminal: the sentence in GB2312-compatible bytes, then CRLF."""
    return encode_sentence(sentence).encode(WIRE_ENCODING) + b"\r\n"
