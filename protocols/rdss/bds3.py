"""BDS-3 RDSS sentences (RSMC terminals): send, feedback with reasons, receive, card info, beam power.

Field layouts follow [WOKWI] and [BDSDK] (see ``protocols/RDSS.md``). ``$BDFKI``
shares its type with the 2.1 sentence; the BDS-3 one starts with a time ``hhmmss``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, fields
from typing import ClassVar, Self

from protocols.errors import DecodeError, Reason
from protocols.rdss.base import Typed
from protocols.rdss.fields import (
    build,
    check_choice,
    check_common,
    check_digits,
    check_range,
    check_text,
    check_time,
    flag,
    need,
    parse_enum,
    parse_flag,
    parse_uint,
)
from protocols.rdss.text import Bds3Encoding, check_content, content_from_text, text_from_content
from protocols.rdss.v21 import ID_DIGITS

__all__ = ["Fki3", "FkiReason", "Icp", "Icr", "Pwi", "Tci", "Tcq"]

_COMMAND = re.compile(r"[A-Z0-9]{3,4}")
_RESERVED = re.compile(r"[0-9A-Za-z]*")
MAX_SECONDS = 99_999


class FkiReason(enum.IntEnum):
    """Why a BDS-3 terminal did not transmit (``$BDFKI`` field 4) [WOKWI][BDSDK]."""

    NONE = 0
    FREQUENCY_NOT_REACHED = 1
    TRANSMIT_SUPPRESSED = 2
    RADIO_SILENCE = 3
    POWER_NOT_LOCKED = 4
    NO_IC_MODULE = 5
    INSUFFICIENT_PERMISSION = 6


def _check_message(encoding: Bds3Encoding, content: str) -> None:
    check_choice(encoding, "encoding", Bds3Encoding)
    check_text(content, "content")
    check_content(encoding.form, content)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tcq(Typed):
    """``$CCTCQ`` send request: target, frequency point 1-5, confirmation wanted, encoding, content, repeat."""

    KIND: ClassVar[str] = "TCQ"
    target: str
    frequency_point: int
    confirm: bool
    encoding: Bds3Encoding
    content: str
    send_frequency_s: int
    talker: str = "CC"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_digits(self.target, "target", max_len=ID_DIGITS)
        check_range(self.frequency_point, "frequency_point", 1, 5)
        if not isinstance(self.confirm, bool):
            raise ValueError("confirm must be a bool")
        _check_message(self.encoding, self.content)
        check_range(self.send_frequency_s, "send_frequency_s", 0, MAX_SECONDS)

    @classmethod
    def from_text(
        cls,
        *,
        target: str,
        text: str,
        encoding: Bds3Encoding = Bds3Encoding.MIXED,
        frequency_point: int = 2,
        confirm: bool = False,
    ) -> Self:
        """Return the request that sends ``text`` once (Chinese is written as hex of its GB2312 codes)."""
        content = content_from_text(encoding.form, text, hex_chinese=True)
        return cls(
            target=target,
            frequency_point=frequency_point,
            confirm=confirm,
            encoding=encoding,
            content=content,
            send_frequency_s=0,
        )

    @property
    def text(self) -> str | None:
        """The message text, or None when the content does not decode (always None when compressed)."""
        return text_from_content(self.encoding.form, self.content)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``TCQ`` sentence; confirmation is 1 (no) or 2 (yes) on the wire."""
        need(fields, 6, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            target=fields[0],
            frequency_point=parse_uint(fields[1], "frequency point"),
            confirm=parse_flag(fields[2], "confirmation", yes="2", no="1"),
            encoding=parse_enum(Bds3Encoding, fields[3], "encoding"),
            content=fields[4],
            send_frequency_s=parse_uint(fields[5], "send frequency"),
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (
            self.target,
            str(self.frequency_point),
            flag(self.confirm, yes="2", no="1"),
            str(int(self.encoding)),
            self.content,
            str(self.send_frequency_s),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fki3(Typed):
    """``$BDFKI`` (BDS-3) transmit feedback: time, command, success, reason, seconds until allowed."""

    KIND: ClassVar[str] = "FKI"
    time: str
    command: str
    ok: bool
    reason: FkiReason
    remaining_s: int
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_time(self.time, "time", "hhmmss")
        check_text(self.command, "command", pattern=_COMMAND)
        if not isinstance(self.ok, bool):
            raise ValueError("ok must be a bool")
        check_choice(self.reason, "reason", FkiReason)
        check_range(self.remaining_s, "remaining_s", 0, MAX_SECONDS)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a BDS-3 ``FKI`` sentence."""
        need(fields, 5, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            time=fields[0],
            command=fields[1],
            ok=parse_flag(fields[2], "result"),
            reason=parse_enum(FkiReason, fields[3], "reason"),
            remaining_s=parse_uint(fields[4], "remaining time"),
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (self.time, self.command, flag(self.ok), str(int(self.reason)), str(self.remaining_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class Tci(Typed):
    """``$BDTCI`` received message: sender, recipient, frequency point, time, encoding, reserved, content."""

    KIND: ClassVar[str] = "TCI"
    sender: str
    recipient: str
    frequency_point: int
    time: str
    encoding: Bds3Encoding
    reserved: str
    content: str
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_digits(self.sender, "sender", max_len=ID_DIGITS)
        check_digits(self.recipient, "recipient", max_len=ID_DIGITS)
        check_range(self.frequency_point, "frequency_point", 0, 9)
        check_time(self.time, "time", "hhmmss")
        check_text(self.reserved, "reserved", pattern=_RESERVED)
        _check_message(self.encoding, self.content)

    @property
    def text(self) -> str | None:
        """The message text, or None when the content does not decode (always None when compressed)."""
        return text_from_content(self.encoding.form, self.content)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``TCI`` sentence."""
        need(fields, 7, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            sender=fields[0],
            recipient=fields[1],
            frequency_point=parse_uint(fields[2], "frequency point"),
            time=fields[3],
            encoding=parse_enum(Bds3Encoding, fields[4], "encoding"),
            reserved=fields[5],
            content=fields[6],
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (
            self.sender,
            self.recipient,
            str(self.frequency_point),
            self.time,
            str(int(self.encoding)),
            self.reserved,
            self.content,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Icr(Typed):
    """``$CCICR`` card query: query type (0 card, 1 groups, 2 subordinates, 3 IC mode) and frame number."""

    KIND: ClassVar[str] = "ICR"
    query_type: int
    frame: str
    talker: str = "CC"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_range(self.query_type, "query_type", 0, 9)
        check_digits(self.frame, "frame", max_len=3)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of an ``ICR`` sentence."""
        need(fields, 2, cls.KIND)
        query_type = parse_uint(fields[0], "query type")
        return build(cls, cls.KIND, talker=talker, checksum_ok=checksum_ok, query_type=query_type, frame=fields[1])

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (str(self.query_type), self.frame)


_ICP_FLAGS = frozenset({"secrecy", "rescue"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Icp(Typed):
    """``$BDICP`` card info, 23 fields in wire order [BDSDK]; ``length_level`` 0 means level 5."""

    KIND: ClassVar[str] = "ICP"
    card_id: str
    broadcast_id: str
    authorization_type: int
    user_identity: int
    service_identity: int
    secrecy: bool
    device_type: int
    rescue: bool
    military: int
    civil_military: int
    allies: int
    priority: int
    service_capability: int
    frequency_s: int
    length_level: int
    global_identity: int
    global_permission: int
    global_frequency_s: int
    global_level: int
    subordinates: int
    group_permission: int
    self_built_groups: int
    joinable_groups: int
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_digits(self.card_id, "card_id", max_len=ID_DIGITS)
        check_digits(self.broadcast_id, "broadcast_id", max_len=ID_DIGITS)
        for name in _icp_names()[2:]:
            value = getattr(self, name)
            if name in _ICP_FLAGS:
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be a bool")
            else:
                check_range(value, name, 0, MAX_SECONDS)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of an ``ICP`` sentence."""
        names = _icp_names()
        need(fields, len(names), cls.KIND)
        values: dict[str, object] = {"card_id": fields[0], "broadcast_id": fields[1]}
        for name, text in zip(names[2:], fields[2:], strict=True):
            values[name] = parse_flag(text, name) if name in _ICP_FLAGS else parse_uint(text, name)
        return build(cls, cls.KIND, talker=talker, checksum_ok=checksum_ok, **values)

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return tuple(_icp_text(getattr(self, name)) for name in _icp_names())


def _icp_names() -> tuple[str, ...]:
    return tuple(field.name for field in fields(Icp) if field.name not in ("talker", "checksum_ok"))


def _icp_text(value: object) -> str:
    if isinstance(value, bool):
        return flag(value)
    return str(value)


BDS2_BEAM_VALUES = 3
BDS3_BEAM_VALUES = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Pwi(Typed):
    """``$BDPWI`` beam power, sent every second: time, BDS-2 beam entries, BDS-3 (beam, 3 quality values) entries.

    A time of ``000000.00`` means no time yet; no BDS-3 entries means no signal.
    """

    KIND: ClassVar[str] = "PWI"
    time: str
    bds2: tuple[tuple[int, ...], ...]
    bds3: tuple[tuple[int, ...], ...]
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_time(self.time, "time", "hhmmss.ss")
        _check_entries(self.bds2, "bds2", BDS2_BEAM_VALUES)
        _check_entries(self.bds3, "bds3", BDS3_BEAM_VALUES)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``PWI`` sentence: each block is a count, then that many entries."""
        if not fields:
            need(fields, 3, cls.KIND)
        bds2, rest = _take_entries(fields[1:], BDS2_BEAM_VALUES)
        bds3, rest = _take_entries(rest, BDS3_BEAM_VALUES)
        if rest:
            raise DecodeError(Reason.MALFORMED, f"PWI: {len(rest)} fields after the last beam entry")
        return build(cls, cls.KIND, talker=talker, checksum_ok=checksum_ok, time=fields[0], bds2=bds2, bds3=bds3)

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields; counts and beam numbers are two digits as terminals write them."""
        out = [self.time]
        for entries in (self.bds2, self.bds3):
            out.append(f"{len(entries):02d}")
            for beam, *values in entries:
                out += [f"{beam:02d}", *(str(value) for value in values)]
        return tuple(out)


def _take_entries(fields: tuple[str, ...], width: int) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    if not fields:
        raise DecodeError(Reason.MALFORMED, "PWI: a beam count is missing")
    count = parse_uint(fields[0], "beam count")
    end = 1 + count * width
    if len(fields) < end:
        raise DecodeError(Reason.MALFORMED, f"PWI: {count} beam entries announced, fields run out")
    values = [parse_uint(text, "beam value") for text in fields[1:end]]
    entries = tuple(tuple(values[index : index + width]) for index in range(0, len(values), width))
    return entries, fields[end:]


def _check_entries(entries: object, name: str, width: int) -> None:
    if not isinstance(entries, tuple) or len(entries) > 99:
        raise ValueError(f"{name} must be a tuple of at most 99 entries")
    for entry in entries:
        if not isinstance(entry, tuple) or len(entry) != width:
            raise ValueError(f"each {name} entry must be a tuple of {width} integers")
        for value in entry:
            check_range(value, f"{name} value", 0, 999)
