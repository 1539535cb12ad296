"""RDSS 2.1 sentences (BDS-2 terminals): send, receive, feedback, card info, output control, beams.

Field layouts follow the vendor SDKs cited in ``protocols/RDSS.md`` ([XYXL], [BD21J],
[BDSDK], [TRACE]); the official interface document is not public. Identifiers keep
their zero padding as digit strings, because terminals differ in how they pad.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
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
    parse_optional_uint,
    parse_uint,
)
from protocols.rdss.text import TextMode, check_content, content_from_text, text_from_content

__all__ = ["Bsi", "CommType", "Fki", "Ica", "Ici", "RmoMode", "Rmo", "Suppression", "Txa", "Txr"]

ID_DIGITS = 11
"""Longest user address or card number: BDS-3 numbers have up to 11 digits, 2.1 addresses 7."""
_COMMAND = re.compile(r"[A-Z0-9]{3,4}")
_SENTENCE = re.compile(r"(?:[A-Z0-9]{3})?")
MAX_WAIT_S = 99 * 60 + 59


class CommType(enum.IntEnum):
    """``$CCTXA`` communication type: express messages are limited to 188 bits [CAPTBL]."""

    EXPRESS = 0
    NORMAL = 1


class Suppression(enum.IntEnum):
    """``$BDFKI`` transmit-suppression indication [XYXL]."""

    LIFTED = 0
    SYSTEM = 1
    LOW_POWER = 2
    RADIO_SILENCE = 3


class RmoMode(enum.IntEnum):
    """``$CCRMO`` mode: switch one output sentence off or on, or all of them."""

    OFF = 1
    ON = 2
    ALL_OFF = 3
    ALL_ON = 4


def _check_message(mode: TextMode, content: str) -> None:
    check_choice(mode, "mode", TextMode)
    check_text(content, "content")
    check_content(mode.form, content)


@dataclass(frozen=True, slots=True, kw_only=True)
class Txa(Typed):
    """``$CCTXA`` send request: recipient address, communication type, transfer mode, content."""

    KIND: ClassVar[str] = "TXA"
    recipient: str
    comm_type: CommType
    mode: TextMode
    content: str
    talker: str = "CC"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_digits(self.recipient, "recipient", max_len=ID_DIGITS)
        check_choice(self.comm_type, "comm_type", CommType)
        _check_message(self.mode, self.content)

    @classmethod
    def from_text(
        cls, *, recipient: str, text: str, mode: TextMode = TextMode.MIXED, comm_type: CommType = CommType.NORMAL
    ) -> Self:
        """Return the request that sends ``text`` to ``recipient`` (Chinese mode writes the characters)."""
        content = content_from_text(mode.form, text, hex_chinese=False)
        return cls(recipient=recipient, comm_type=comm_type, mode=mode, content=content)

    @property
    def text(self) -> str | None:
        """The message text, or None when the content does not decode."""
        return text_from_content(self.mode.form, self.content)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``TXA`` sentence."""
        need(fields, 4, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            recipient=fields[0],
            comm_type=parse_enum(CommType, fields[1], "comm type"),
            mode=parse_enum(TextMode, fields[2], "mode"),
            content=fields[3],
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (self.recipient, str(int(self.comm_type)), str(int(self.mode)), self.content)


@dataclass(frozen=True, slots=True, kw_only=True)
class Txr(Typed):
    """``$BDTXR`` received message: info type, sender, transfer mode, send time (hhmm or empty), content."""

    KIND: ClassVar[str] = "TXR"
    info_type: int
    sender: str
    mode: TextMode
    send_time: str
    content: str
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_range(self.info_type, "info_type", 0, 9)
        check_digits(self.sender, "sender", max_len=ID_DIGITS)
        check_time(self.send_time, "send_time", "hhmm", empty=True)
        _check_message(self.mode, self.content)

    @property
    def text(self) -> str | None:
        """The message text, or None when the content does not decode."""
        return text_from_content(self.mode.form, self.content)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``TXR`` sentence."""
        need(fields, 5, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            info_type=parse_uint(fields[0], "info type"),
            sender=fields[1],
            mode=parse_enum(TextMode, fields[2], "mode"),
            send_time=fields[3],
            content=fields[4],
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (str(self.info_type), self.sender, str(int(self.mode)), self.send_time, self.content)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fki(Typed):
    """``$BDFKI`` (2.1) transmit feedback: command, executed, frequency indication, suppression, wait.

    Local feedback only: it says whether the terminal transmitted, not that anyone received.
    The wait is written ``mmss`` on the wire and held here in seconds.
    """

    KIND: ClassVar[str] = "FKI"
    command: str
    executed: bool
    frequency_ok: bool
    suppression: Suppression
    wait_s: int
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_text(self.command, "command", pattern=_COMMAND)
        if not isinstance(self.executed, bool) or not isinstance(self.frequency_ok, bool):
            raise ValueError("executed and frequency_ok must be bools")
        check_choice(self.suppression, "suppression", Suppression)
        check_range(self.wait_s, "wait_s", 0, MAX_WAIT_S)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a 2.1 ``FKI`` sentence."""
        need(fields, 5, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            command=fields[0],
            executed=parse_flag(fields[1], "executed"),
            frequency_ok=parse_flag(fields[2], "frequency indication"),
            suppression=parse_enum(Suppression, fields[3], "suppression"),
            wait_s=_parse_mmss(fields[4]),
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        minutes, seconds = divmod(self.wait_s, 60)
        return (
            self.command,
            flag(self.executed),
            flag(self.frequency_ok),
            str(int(self.suppression)),
            f"{minutes:02d}{seconds:02d}",
        )


def _parse_mmss(text: str) -> int:
    if len(text) != 4:
        raise DecodeError(Reason.INVALID_FIELD, f"wait time must be mmss, got {text[:16]!r}")
    minutes, seconds = parse_uint(text[:2], "wait minutes"), parse_uint(text[2:], "wait seconds")
    if seconds > 59:
        raise DecodeError(Reason.INVALID_FIELD, f"wait time {text!r} has more than 59 seconds")
    return 60 * minutes + seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class Ica(Typed):
    """``$CCICA`` card query: query type (0 own card, 1 subordinates) and frame number."""

    KIND: ClassVar[str] = "ICA"
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
        """Type the fields of an ``ICA`` sentence."""
        need(fields, 2, cls.KIND)
        query_type = parse_uint(fields[0], "query type")
        return build(cls, cls.KIND, talker=talker, checksum_ok=checksum_ok, query_type=query_type, frame=fields[1])

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (str(self.query_type), self.frame)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ici(Typed):
    """``$BDICI`` card info: address, serial, broadcast ID, user feature, frequency, level, E/N, subordinates."""

    KIND: ClassVar[str] = "ICI"
    address: str
    serial: str
    broadcast_id: str
    user_feature: int
    frequency_s: int
    level: int
    encrypted: bool
    subordinates: str
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        for name in ("address", "serial", "broadcast_id"):
            check_digits(getattr(self, name), name, max_len=ID_DIGITS)
        check_range(self.user_feature, "user_feature", 0, 99)
        check_range(self.frequency_s, "frequency_s", 0, 99_999)
        check_range(self.level, "level", 0, 9)
        if not isinstance(self.encrypted, bool):
            raise ValueError("encrypted must be a bool")
        check_digits(self.subordinates, "subordinates", max_len=4)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of an ``ICI`` sentence."""
        need(fields, 8, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            address=fields[0],
            serial=fields[1],
            broadcast_id=fields[2],
            user_feature=parse_uint(fields[3], "user feature"),
            frequency_s=parse_uint(fields[4], "service frequency"),
            level=parse_uint(fields[5], "comm level"),
            encrypted=parse_flag(fields[6], "encryption", yes="E"),
            subordinates=fields[7],
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        return (
            self.address,
            self.serial,
            self.broadcast_id,
            str(self.user_feature),
            str(self.frequency_s),
            str(self.level),
            flag(self.encrypted, yes="E"),
            self.subordinates,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rmo(Typed):
    """``$CCRMO`` output control: sentence (empty for all), mode, output interval in seconds (may be empty)."""

    KIND: ClassVar[str] = "RMO"
    sentence: str
    mode: RmoMode
    frequency_s: int | None
    talker: str = "CC"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_text(self.sentence, "sentence", pattern=_SENTENCE)
        check_choice(self.mode, "mode", RmoMode)
        if self.frequency_s is not None:
            check_range(self.frequency_s, "frequency_s", 0, 99_999)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of an ``RMO`` sentence."""
        need(fields, 3, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            sentence=fields[0],
            mode=parse_enum(RmoMode, fields[1], "mode"),
            frequency_s=parse_optional_uint(fields[2], "frequency"),
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields."""
        frequency = "" if self.frequency_s is None else str(self.frequency_s)
        return (self.sentence, str(int(self.mode)), frequency)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bsi(Typed):
    """``$BDBSI`` beam status: response beam, timing beam, then the power of each beam (10 on BDS-2)."""

    KIND: ClassVar[str] = "BSI"
    response_beam: int
    timing_beam: int
    powers: tuple[int, ...]
    talker: str = "BD"
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        check_range(self.response_beam, "response_beam", 0, 99)
        check_range(self.timing_beam, "timing_beam", 0, 99)
        if not isinstance(self.powers, tuple) or len(self.powers) > 21:
            raise ValueError("powers must be a tuple of at most 21 values")
        for index, power in enumerate(self.powers):
            check_range(power, f"power of beam {index + 1}", 0, 99)

    @classmethod
    def from_fields(cls, talker: str, fields: tuple[str, ...], checksum_ok: bool) -> Self:
        """Type the fields of a ``BSI`` sentence."""
        if len(fields) < 2:
            need(fields, 12, cls.KIND)
        return build(
            cls,
            cls.KIND,
            talker=talker,
            checksum_ok=checksum_ok,
            response_beam=parse_uint(fields[0], "response beam"),
            timing_beam=parse_uint(fields[1], "timing beam"),
            powers=tuple(parse_uint(power, "beam power") for power in fields[2:]),
        )

    def to_fields(self) -> tuple[str, ...]:
        """Return the wire fields; beam numbers are two digits as terminals write them."""
        beams = (f"{self.response_beam:02d}", f"{self.timing_beam:02d}")
        return beams + tuple(str(power) for power in self.powers)
