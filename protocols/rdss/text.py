"""Message encodings: how text rides in a sentence's content field and on the air.

RDSS carries text in three forms [PTBD1][CAPTBL-code][XYXL]:

* **Chinese**: GB2312 characters. On the air each is 14 bits, its area and position
  codes (1..94) as 7 bits each; in a 2.1 sentence the characters stand as themselves
  (GB2312 bytes on the serial line), in a BDS-3 sentence as the hex of their 16-bit codes.
* **Code**: hex digits, 4 bits each on the air (packed BCD when the digits are 0-9).
* **Mixed**: ``A4`` then 8-bit GB2312/GBK bytes; a sentence carries the hex of all of them.

BDS-3 adds compressed Chinese and compressed code, whose content is opaque hex here.
"""

from __future__ import annotations

import enum
import re

from protocols.errors import DecodeError, Reason

__all__ = [
    "MIXED_MARK",
    "Bds3Encoding",
    "Form",
    "TextMode",
    "check_content",
    "content_from_text",
    "message_bits",
    "pack_bcd",
    "pack_chinese14",
    "pack_mixed",
    "text_from_content",
    "unpack_bcd",
    "unpack_chinese14",
    "unpack_mixed",
]

MIXED_MARK = 0xA4
_GB_OFFSET = 0xA0
_HEX = re.compile(r"[0-9A-Fa-f]*")
_MIXED = re.compile(r"[Aa]4(?:[0-9A-Fa-f]{2})*")


class Form(enum.Enum):
    """How a content field is written, whatever number the protocol gives it."""

    CHINESE = "chinese"
    CODE = "code"
    MIXED = "mixed"
    OPAQUE = "opaque"


class TextMode(enum.IntEnum):
    """RDSS 2.1 transfer mode (``$CCTXA`` field 3, ``$BDTXR`` field 3)."""

    CHINESE = 0
    CODE = 1
    MIXED = 2

    @property
    def form(self) -> Form:
        """The content form this mode uses."""
        return Form[self.name]


class Bds3Encoding(enum.IntEnum):
    """BDS-3 encoding class (``$CCTCQ`` field 4, ``$BDTCI`` field 5)."""

    CHINESE = 1
    CODE = 2
    MIXED = 3
    COMPRESSED_CHINESE = 4
    COMPRESSED_CODE = 5

    @property
    def form(self) -> Form:
        """The content form this encoding uses; the compressed ones are opaque."""
        return Form[self.name] if self.name in Form.__members__ else Form.OPAQUE


def _gb2312_pair(char: str) -> tuple[int, int]:
    """Return the area and position codes (1..94) of one GB2312 double-byte character."""
    try:
        code = char.encode("gb2312")
    except UnicodeEncodeError:
        raise ValueError(f"{char!r} is not a GB2312 character") from None
    if len(code) != 2:
        raise ValueError(f"{char!r} is not a double-byte GB2312 character; use code or mixed mode")
    return code[0] - _GB_OFFSET, code[1] - _GB_OFFSET


def pack_chinese14(text: str) -> bytes:
    """Return the on-air form of Chinese text: 14 bits per character, zero-padded to whole bytes."""
    value = 0
    for char in text:
        area, position = _gb2312_pair(char)
        value = (value << 14) | (area << 7) | position
    bits = 14 * len(text)
    pad = -bits % 8
    return (value << pad).to_bytes((bits + pad) // 8, "big")


def unpack_chinese14(data: bytes, count: int) -> str:
    """Return the ``count`` characters packed in ``data`` by :func:`pack_chinese14`."""
    if count < 0 or len(data) != (14 * count + 7) // 8:
        raise DecodeError(Reason.MALFORMED, f"{len(data)} bytes cannot hold exactly {count} 14-bit characters")
    value = int.from_bytes(data, "big") >> (-14 * count % 8)
    codes = bytearray()
    for index in reversed(range(count)):
        area, position = (value >> (14 * index + 7)) & 0x7F, (value >> (14 * index)) & 0x7F
        if not (1 <= area <= 94 and 1 <= position <= 94):
            raise DecodeError(Reason.INVALID_FIELD, f"area/position {area}/{position} outside GB2312's 1..94")
        codes += bytes((area + _GB_OFFSET, position + _GB_OFFSET))
    try:
        return codes.decode("gb2312")
    except UnicodeDecodeError:
        raise DecodeError(Reason.INVALID_FIELD, "an area/position pair that GB2312 leaves unassigned") from None


def pack_bcd(digits: str) -> bytes:
    """Return hex/BCD digits packed 4 bits each, a trailing zero nibble padding an odd count."""
    if not _HEX.fullmatch(digits):
        raise ValueError(f"code mode carries hex digits only, got {digits!r}")
    return bytes.fromhex(digits + "0" * (len(digits) % 2))


def unpack_bcd(data: bytes, count: int) -> str:
    """Return the first ``count`` digits packed in ``data`` (upper-case hex)."""
    if count < 0 or len(data) != (count + 1) // 2:
        raise DecodeError(Reason.MALFORMED, f"{len(data)} bytes cannot hold exactly {count} 4-bit digits")
    return data.hex().upper()[:count]


def pack_mixed(text: str) -> bytes:
    """Return the on-air mixed form: the ``A4`` marker, then the GBK (GB2312 superset) bytes."""
    try:
        return bytes((MIXED_MARK,)) + text.encode("gbk")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{text[exc.start : exc.end]!r} has no GB2312/GBK code") from None


def unpack_mixed(data: bytes) -> str:
    """Return the text of an on-air mixed message."""
    if not data or data[0] != MIXED_MARK:
        raise DecodeError(Reason.MALFORMED, "a mixed message starts with the A4 marker")
    try:
        return data[1:].decode("gbk")
    except UnicodeDecodeError:
        raise DecodeError(Reason.INVALID_FIELD, "mixed message bytes are not GB2312/GBK text") from None


def message_bits(form: Form, text: str) -> int:
    """Return the bits ``text`` takes on the air in ``form`` (what the card's length limit counts)."""
    if form is Form.CHINESE:
        pack_chinese14(text)
        return 14 * len(text)
    if form is Form.CODE:
        pack_bcd(text)
        return 4 * len(text)
    if form is Form.MIXED:
        return 8 * len(pack_mixed(text))
    raise ValueError("compressed content has no text to measure")


def check_content(form: Form, content: str) -> None:
    """Refuse content that cannot stand in a field of ``form`` (ValueError with the reason)."""
    if form is Form.MIXED:
        if not _MIXED.fullmatch(content):
            raise ValueError("mixed content is A4 followed by hex byte pairs")
    elif form is Form.CHINESE and not content.isascii():
        for char in content:
            _gb2312_pair(char)
    elif not _HEX.fullmatch(content) or (form is Form.CHINESE and len(content) % 4):
        raise ValueError(f"{form.value} content must be hex digits, got {content[:16]!r}")


def content_from_text(form: Form, text: str, *, hex_chinese: bool) -> str:
    """Return the content field for ``text``; Chinese is written as hex when ``hex_chinese``."""
    if form is Form.CHINESE:
        pack_chinese14(text)
        return text.encode("gb2312").hex().upper() if hex_chinese else text
    if form is Form.CODE:
        pack_bcd(text)
        return text
    if form is Form.MIXED:
        return pack_mixed(text).hex().upper()
    raise ValueError("compressed encodings carry no text here; give the content")


def text_from_content(form: Form, content: str) -> str | None:
    """Return the text a valid content field carries, or None when it holds no decodable text."""
    try:
        if form is Form.CHINESE:
            return content if not content.isascii() else bytes.fromhex(content).decode("gb2312")
        if form is Form.CODE:
            return content
        if form is Form.MIXED:
            return unpack_mixed(bytes.fromhex(content))
    except (ValueError, UnicodeDecodeError):
        return None
    return None
