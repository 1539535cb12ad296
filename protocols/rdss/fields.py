"""Typing the text fields of a sentence: parsers raise DecodeError, checks raise ValueError.

Parsers turn wire text into values while decoding; checks guard the constructors
of the sentence dataclasses, so a sentence that exists can always be encoded.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any, TypeVar

from protocols.errors import DecodeError, Reason

__all__ = [
    "build",
    "check_choice",
    "check_digits",
    "check_range",
    "check_common",
    "check_text",
    "need",
    "parse_enum",
    "parse_flag",
    "parse_optional_uint",
    "parse_uint",
    "flag",
    "check_time",
]

_DIGITS = re.compile(r"[0-9]+")
_TALKER = re.compile(r"[A-Z][A-Z0-9]")
_TIMES = {
    "hhmm": re.compile(r"(?:[01][0-9]|2[0-3])[0-5][0-9]"),
    "hhmmss": re.compile(r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"),
    "hhmmss.ss": re.compile(r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]\.[0-9]{2}"),
}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f$*,]")
T = TypeVar("T")
E = TypeVar("E", bound=enum.IntEnum)


def need(fields: tuple[str, ...], count: int, kind: str) -> None:
    """Refuse a sentence whose field count is not ``count``."""
    if len(fields) != count:
        raise DecodeError(Reason.MALFORMED, f"{kind}: {count} fields expected, got {len(fields)}")


def parse_uint(text: str, name: str) -> int:
    """Return the unsigned decimal in ``text`` (ASCII digits only, at most nine)."""
    if not _DIGITS.fullmatch(text) or len(text) > 9:
        raise DecodeError(Reason.INVALID_FIELD, f"{name}: not an unsigned number: {text[:16]!r}")
    return int(text)


def parse_optional_uint(text: str, name: str) -> int | None:
    """Return None for an empty field, else the unsigned decimal in it."""
    return None if text == "" else parse_uint(text, name)


def parse_flag(text: str, name: str, yes: str = "Y", no: str = "N") -> bool:
    """Return True for ``yes`` and False for ``no``; anything else is refused."""
    if text not in (yes, no):
        raise DecodeError(Reason.INVALID_FIELD, f"{name}: expected {yes} or {no}, got {text[:16]!r}")
    return text == yes


def flag(value: bool, yes: str = "Y", no: str = "N") -> str:
    """Return the wire letter for a boolean field."""
    return yes if value else no


def parse_enum(enum_type: type[E], text: str, name: str) -> E:
    """Return the member of ``enum_type`` whose value is the number in ``text``."""
    value = parse_uint(text, name)
    try:
        return enum_type(value)
    except ValueError:
        raise DecodeError(Reason.INVALID_FIELD, f"{name}: unknown value {value}") from None


def build(factory: Callable[..., T], label: str, /, **values: Any) -> T:
    """Construct a sentence from decoded values, reporting a refused value as a DecodeError."""
    try:
        return factory(**values)
    except DecodeError:
        raise
    except ValueError as exc:
        raise DecodeError(Reason.INVALID_FIELD, f"{label}: {exc}") from None


def check_digits(value: object, name: str, *, max_len: int) -> None:
    """Require a string of 1..``max_len`` ASCII digits (zero padding is kept as written)."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value) or len(value) > max_len:
        raise ValueError(f"{name} must be 1 to {max_len} digits, got {value!r}")


def check_range(value: object, name: str, low: int, high: int) -> None:
    """Require an int (not a bool) within ``low``..``high``."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


def check_choice(value: object, name: str, choices: type[enum.IntEnum]) -> None:
    """Require a member of ``choices``."""
    if not isinstance(value, choices):
        raise ValueError(f"{name} must be a {choices.__name__}, got {value!r}")


def check_common(talker: object, checksum_ok: object) -> None:
    """Require a two-character talker such as CC or BD and a boolean checksum verdict."""
    if not isinstance(talker, str) or not _TALKER.fullmatch(talker):
        raise ValueError(f"talker must be two characters such as CC or BD, got {talker!r}")
    if not isinstance(checksum_ok, bool):
        raise ValueError(f"checksum_ok must be a bool, got {checksum_ok!r}")


def check_text(value: object, name: str, *, pattern: re.Pattern[str] | None = None) -> None:
    """Require a string that can sit in a field (no separators or control characters), matching ``pattern``."""
    if not isinstance(value, str) or _UNSAFE.search(value):
        raise ValueError(f"{name} must be text without ',', '*', '$' or control characters, got {value!r}")
    try:
        value.encode("gb18030")
    except UnicodeEncodeError:
        raise ValueError(f"{name} holds a character the serial line cannot carry") from None
    if pattern is not None and not pattern.fullmatch(value):
        raise ValueError(f"{name} has an unexpected form: {value!r}")


def check_time(value: object, name: str, form: str, *, empty: bool = False) -> None:
    """Require a time of day written as ``form`` (``hhmm``, ``hhmmss`` or ``hhmmss.ss``), or "" when ``empty``."""
    if empty and value == "":
        return
    if not isinstance(value, str) or not _TIMES[form].fullmatch(value):
        raise ValueError(f"{name} must be a time of day as {form}, got {value!r}")
