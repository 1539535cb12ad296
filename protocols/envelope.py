"""The terminal message: its fields, priority classes, kinds and limits.

A :class:`Message` is what a terminal says. Its sealed wire form lives in
:mod:`protocols.seal`; this module only knows the plain fields and the compact
JSON body that the seal encrypts.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from protocols.errors import DecodeError, Reason

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SEQ",
    "MAX_TS",
    "TERMINAL_ID_PATTERN",
    "Kind",
    "Message",
    "Position",
    "Priority",
    "decode_inner",
    "encode_inner",
    "validate_terminal_id",
]

MAX_BODY_BYTES = 1024
"""Largest body, in UTF-8 bytes; a BDS-3 RSMC message carries 1750 bytes, so this fits every profile's reassembly."""

MAX_SEQ = 2**63 - 1
MAX_TTL_S = 7 * 24 * 3600
MAX_TS = 253402300799.0
"""Latest ``ts``: the last second of year 9999, since later times have no ``datetime`` (CAP, logs).

A whole number of milliseconds, so rounding a valid time to the millisecond (the link frame does) keeps it valid.
"""
TERMINAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class Priority(enum.IntEnum):
    """Priority classes in ITU/IMO order: the lower the value, the sooner it goes."""

    DISTRESS = 0
    URGENCY = 1
    SAFETY = 2
    ROUTINE = 3

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Return the class named by ``text`` (a name such as ``distress`` or a value ``0``-``3``)."""
        if text.isdigit():
            return cls(int(text))
        return cls[text.upper()]

    @property
    def label(self) -> str:
        """Lower-case name, as used in topics, metrics and JSON."""
        return self.name.lower()


class Kind(enum.StrEnum):
    """What a message is about."""

    SOS = "sos"
    POSITION = "position"
    TELEMETRY = "telemetry"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Position:
    """A WGS-84 position in decimal degrees."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise DecodeError(Reason.INVALID_FIELD, f"latitude {self.lat!r} is outside -90..90")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise DecodeError(Reason.INVALID_FIELD, f"longitude {self.lon!r} is outside -180..180")


@dataclass(frozen=True, slots=True)
class Message:
    """One terminal message, as the terminal meant it.

    ``ts`` is the terminal's clock at creation (Unix seconds). ``ttl`` (seconds)
    lets routine traffic expire; distress never expires, so it may carry none.
    ``receipt`` asks the gateway for receipts, like the BeiDou answer flag.
    """

    terminal: str
    seq: int
    priority: Priority
    kind: Kind
    body: str = ""
    position: Position | None = None
    ttl: int | None = None
    ts: float = 0.0
    receipt: bool = False

    def __post_init__(self) -> None:
        validate_terminal_id(self.terminal)
        if not 0 <= self.seq <= MAX_SEQ:
            raise DecodeError(Reason.INVALID_FIELD, f"seq {self.seq} is outside 0..2^63-1")
        if _utf8_size(self.body) > MAX_BODY_BYTES:
            raise DecodeError(Reason.OVERSIZED, f"body exceeds {MAX_BODY_BYTES} bytes")
        if self.kind is Kind.SOS and self.priority is not Priority.DISTRESS:
            raise DecodeError(Reason.INVALID_FIELD, "an sos message must have priority distress")
        if self.ttl is not None and not 0 < self.ttl <= MAX_TTL_S:
            raise DecodeError(Reason.INVALID_FIELD, f"ttl {self.ttl} is outside 1..{MAX_TTL_S} s")
        if self.ttl is not None and self.priority is Priority.DISTRESS:
            raise DecodeError(Reason.INVALID_FIELD, "distress never expires; it takes no ttl")
        if not (math.isfinite(self.ts) and 0 <= self.ts <= MAX_TS):
            raise DecodeError(Reason.INVALID_FIELD, f"ts {self.ts!r} is not a valid time")


def _utf8_size(body: str) -> int:
    # A lone surrogate (JSON can carry one as "\ud800") has no UTF-8 form, so no codec could send it on.
    try:
        return len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise DecodeError(Reason.INVALID_FIELD, "body is not valid Unicode (it holds a lone surrogate)") from None


def validate_terminal_id(terminal: str) -> str:
    """Return ``terminal`` if it is a valid id (1-32 of ``A-Za-z0-9_.-``), else raise."""
    if not TERMINAL_ID_PATTERN.fullmatch(terminal):
        raise DecodeError(Reason.INVALID_FIELD, f"terminal id {terminal[:40]!r} is not 1-32 of A-Za-z0-9_.-")
    return terminal


def encode_inner(message: Message) -> bytes:
    """Encode the fields that travel inside the seal as compact UTF-8 JSON."""
    inner: dict[str, Any] = {"k": message.kind.value, "b": message.body, "ts": message.ts}
    if message.position is not None:
        inner["lat"] = message.position.lat
        inner["lon"] = message.position.lon
    if message.ttl is not None:
        inner["ttl"] = message.ttl
    return json.dumps(inner, ensure_ascii=False, separators=(",", ":")).encode()


_KIND_OF = {kind.value: kind for kind in Kind}


def decode_inner(raw: bytes, *, terminal: str, seq: int, priority: Priority, receipt: bool) -> Message:
    """Build a :class:`Message` from the sealed JSON and the authenticated header fields."""
    try:
        inner = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # Strict RFC 8259: bad UTF-8 or lone surrogates, NaN/Infinity, integers beyond 64 bits, deep nesting.
        raise DecodeError(Reason.MALFORMED, f"inner JSON does not parse: {exc}") from None
    if not isinstance(inner, dict) or not set(inner) <= {"k", "b", "ts", "lat", "lon", "ttl"}:
        raise DecodeError(Reason.INVALID_FIELD, "inner JSON must be an object of k, b, ts, lat, lon, ttl")
    return Message(
        terminal=terminal,
        seq=seq,
        priority=priority,
        kind=_kind(inner.get("k")),
        body=_typed(inner.get("b", ""), str, "b"),
        position=_position(inner),
        ttl=_optional_int(inner.get("ttl"), "ttl"),
        ts=_number(inner.get("ts", 0.0), "ts"),
        receipt=receipt,
    )


def _kind(value: object) -> Kind:
    kind = _KIND_OF.get(_typed(value, str, "k"))  # a dict lookup: Kind(value) costs a microsecond per message
    if kind is None:
        raise DecodeError(Reason.INVALID_FIELD, f"kind {value!r} is not one of sos, position, telemetry, text")
    return kind


def _position(inner: dict[str, Any]) -> Position | None:
    if "lat" not in inner and "lon" not in inner:
        return None
    if "lat" not in inner or "lon" not in inner:
        raise DecodeError(Reason.INVALID_FIELD, "a position needs both lat and lon")
    return Position(_number(inner["lat"], "lat"), _number(inner["lon"], "lon"))


def _number(value: object, name: str) -> float:
    try:
        return float(_typed(value, (int, float), name))
    except OverflowError:
        raise DecodeError(Reason.INVALID_FIELD, f"field {name!r} is out of range") from None


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    return int(_typed(value, int, name))


def _typed(value: object, kinds: type | tuple[type, ...], name: str) -> Any:
    # bool is an int in Python, but never a valid number or string here.
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise DecodeError(Reason.INVALID_FIELD, f"field {name!r} has the wrong type")
    return value
