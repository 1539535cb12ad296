"""RDSS text encodings: 14-bit Chinese, BCD/hex code and A4 mixed, on the air and in sentence fields."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import DecodeError, Reason
from protocols.rdss.text import (
    Bds3Encoding,
    Form,
    TextMode,
    check_content,
    content_from_text,
    message_bits,
    pack_bcd,
    pack_chinese14,
    pack_mixed,
    text_from_content,
    unpack_bcd,
    unpack_chinese14,
    unpack_mixed,
)
from tests.unit.rdss_strategies import chinese_texts, code_texts, gb_texts


def test_chinese14_packs_area_and_position_codes() -> None:
    """北 (B1B1: area 17, position 17) and 斗 (B6B7: area 22, position 23) pack as 7+7 bits each."""
    expected = (17 << 21 | 17 << 14 | 22 << 7 | 23) << 4  # 28 bits, padded to 32
    assert pack_chinese14("北斗") == expected.to_bytes(4, "big")


def test_official_lengths_are_14_bits_per_character() -> None:
    """1680 bits hold 120 characters, 14 000 hold 1 000 and 560 hold 40 (domain §1.1)."""
    for bits, chars in ((1680, 120), (14_000, 1000), (560, 40)):
        assert message_bits(Form.CHINESE, "中" * chars) == bits


def test_code_and_mixed_lengths() -> None:
    """Code takes 4 bits a digit; mixed takes the A4 byte plus 8 bits a byte (2 per Chinese character)."""
    assert message_bits(Form.CODE, "0123456789") == 40
    assert message_bits(Form.MIXED, "SOS北斗") == 8 * (1 + 3 + 4)


def test_chinese14_refuses_ascii_and_non_gb2312() -> None:
    """Chinese mode carries double-byte GB2312 characters only; ASCII and emoji need another mode."""
    for text in ("A", "北斗1", "🛰"):
        with pytest.raises(ValueError, match="GB2312"):
            pack_chinese14(text)


def test_chinese14_refuses_codes_outside_the_table() -> None:
    """An area code of 0 or above 94 is not GB2312; an unassigned pair is refused too."""
    with pytest.raises(DecodeError) as info:
        unpack_chinese14(bytes(2), 1)
    assert info.value.reason is Reason.INVALID_FIELD
    unassigned = ((10 << 7 | 1) << 2).to_bytes(2, "big")  # area 10 is empty in GB2312
    with pytest.raises(DecodeError):
        unpack_chinese14(unassigned, 1)


def test_bcd_packs_two_digits_a_byte() -> None:
    """Code digits pack 4 bits each, an odd count padded with a zero nibble."""
    assert pack_bcd("12345") == bytes.fromhex("123450")
    assert unpack_bcd(bytes.fromhex("123450"), 5) == "12345"
    with pytest.raises(ValueError, match="hex digits"):
        pack_bcd("12G")


def test_mixed_needs_the_a4_marker() -> None:
    """A mixed message without its A4 marker is refused rather than guessed."""
    assert pack_mixed("hi") == b"\xa4hi"
    with pytest.raises(DecodeError):
        unpack_mixed(b"hi")


def test_modes_name_their_forms() -> None:
    """Both protocols' mode numbers map to the same forms; BDS-3 compressed modes are opaque."""
    assert [mode.form for mode in TextMode] == [Form.CHINESE, Form.CODE, Form.MIXED]
    assert Bds3Encoding.COMPRESSED_CODE.form is Form.OPAQUE
    assert Bds3Encoding.MIXED.form is Form.MIXED


def test_chinese_content_is_literal_in_2_1_and_hex_in_bds3() -> None:
    """2.1 writes Chinese characters as themselves, BDS-3 as the hex of their 16-bit codes; both read back."""
    assert content_from_text(Form.CHINESE, "测试", hex_chinese=False) == "测试"
    assert content_from_text(Form.CHINESE, "测试", hex_chinese=True) == "B2E2CAD4"
    assert text_from_content(Form.CHINESE, "B2E2CAD4") == text_from_content(Form.CHINESE, "测试") == "测试"


def test_content_checks() -> None:
    """Content that its form cannot hold is refused with the reason."""
    for form, content in ((Form.MIXED, "B1B1"), (Form.MIXED, "A4B"), (Form.CODE, "12,3"), (Form.CHINESE, "B2E")):
        with pytest.raises(ValueError, match=r"hex|A4"):
            check_content(form, content)
    with pytest.raises(ValueError, match="GB2312"):
        check_content(Form.CHINESE, "测a")


def test_undecodable_content_has_no_text() -> None:
    """Mixed bytes that are not GBK, and compressed content, give no text instead of an error."""
    assert text_from_content(Form.MIXED, "A4FF") is None
    assert text_from_content(Form.OPAQUE, "ABCD") is None
    with pytest.raises(ValueError, match="compressed"):
        content_from_text(Form.OPAQUE, "x", hex_chinese=True)


@given(chinese_texts)
def test_chinese14_round_trip(text: str) -> None:
    """Any GB2312 double-byte text survives 14-bit packing and takes exactly 14 bits a character."""
    packed = pack_chinese14(text)
    assert unpack_chinese14(packed, len(text)) == text
    assert len(packed) == (14 * len(text) + 7) // 8


@given(code_texts)
def test_bcd_round_trip(digits: str) -> None:
    """Any hex/BCD digit string survives packing."""
    assert unpack_bcd(pack_bcd(digits), len(digits)) == digits


@given(gb_texts)
def test_mixed_round_trip(text: str) -> None:
    """Any GB2312-encodable text survives the mixed encoding, on the air and in a content field."""
    assert unpack_mixed(pack_mixed(text)) == text
    content = content_from_text(Form.MIXED, text, hex_chinese=False)
    check_content(Form.MIXED, content)
    assert text_from_content(Form.MIXED, content) == text


@given(chinese_texts, st.booleans())
def test_chinese_content_round_trip(text: str, hex_chinese: bool) -> None:
    """Chinese text survives the content field in both the literal and the hex form."""
    content = content_from_text(Form.CHINESE, text, hex_chinese=hex_chinese)
    check_content(Form.CHINESE, content)
    assert text_from_content(Form.CHINESE, content) == text


@given(st.binary(max_size=64), st.integers(-2, 40))
def test_unpacking_garbage_raises_only_decode_error(data: bytes, count: int) -> None:
    """Arbitrary bytes and counts never make the unpackers raise anything but DecodeError."""
    with contextlib.suppress(DecodeError):
        unpack_chinese14(data, count)
    with contextlib.suppress(DecodeError):
        unpack_bcd(data, count)
    with contextlib.suppress(DecodeError):
        unpack_mixed(data)


def test_mixed_refuses_a_character_gbk_has_no_code_for() -> None:
    """U+30FB is GB2312 A1A4 to Python but not in GBK (which maps A1A4 to U+00B7): a clear ValueError, not bad bytes."""
    with pytest.raises(ValueError, match="no GB2312/GBK code"):
        pack_mixed("\u30fb")
