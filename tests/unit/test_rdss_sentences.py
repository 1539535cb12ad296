"""RDSS sentences: framing errors, damaged checksums, field checks, FKI dispatch, Chinese text and the JSON form."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.errors import DecodeError, Reason
from protocols.rdss import (
    Bds3Encoding,
    Bsi,
    CommType,
    Fki,
    Fki3,
    FkiReason,
    Generic,
    Pwi,
    Tcq,
    TextMode,
    Txa,
    decode_bytes,
    decode_sentence,
    encode_sentence,
    from_dict,
    to_dict,
    to_wire,
)
from protocols.rdss.nmea import MAX_LINE, join


def _reason(line: str) -> Reason:
    with pytest.raises(DecodeError) as info:
        decode_sentence(line)
    return info.value.reason


def test_bad_checksum_still_decodes_the_fields() -> None:
    """A damaged checksum gives the typed sentence with ``checksum_ok`` False (this one is off in the wild)."""
    sentence = decode_sentence("$BDBSI,00,00,1,3,2,4,0,3,1,4,2,1*5E")
    assert sentence == Bsi(response_beam=0, timing_beam=0, powers=(1, 3, 2, 4, 0, 3, 1, 4, 2, 1), checksum_ok=False)
    assert encode_sentence(sentence).endswith("*5F")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "$",
        "$CCTXA,0166166,1,1,31",
        "$CCTXA,1*G1",
        "$cctxa,1*00",
        "$CC,1*00",
        "$CCTX$A,1*00",
        "CCICA,0,00*7B",
    ],
)
def test_non_sentences_are_malformed(line: str) -> None:
    """A line without ``$``, a valid address or ``*hh`` at its end is no sentence at all."""
    assert _reason(line) is Reason.MALFORMED


def test_oversized_line() -> None:
    """A line longer than any message a terminal can carry is refused as oversized."""
    assert _reason(join("BDTXR", ["1", "1", "1", "", "0" * MAX_LINE])) is Reason.OVERSIZED


def test_line_ends_and_lower_case_checksum() -> None:
    """CRLF and surrounding spaces are ignored, and a lower-case checksum is as good as an upper-case one."""
    assert decode_sentence(" $CCICA,0,00*7b\r\n").checksum_ok


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("$CCTXA,0166166,1,7,31", Reason.INVALID_FIELD),  # mode 7 does not exist
        ("$CCTXA,0166166,1,2,B1B1", Reason.INVALID_FIELD),  # mixed content without A4
        ("$CCTXA,01661x6,1,1,31", Reason.INVALID_FIELD),
        ("$CCTXA,0166166,1,1", Reason.MALFORMED),
        ("$BDFKI,TXA,Y,Y,0,0060", Reason.INVALID_FIELD),  # 60 in the seconds of mmss
        ("$BDFKI,TXA,Y,Y,0,40", Reason.INVALID_FIELD),
        ("$BDICI,0166166,02097151,0000011,6,40,3,X,000", Reason.INVALID_FIELD),
        ("$BDFKI,082920,TCQ,Y,9,0", Reason.INVALID_FIELD),  # no reason 9
        ("$BDPWI,000000.00,00,02,51,40,33,0", Reason.MALFORMED),  # two entries announced, one given
        ("$BDPWI,250000.00,00,00", Reason.INVALID_FIELD),
        ("$CCTCQ,4207733,6,1,2,48,0", Reason.INVALID_FIELD),  # frequency point 1-5
        ("$BDTXR,1,0166166,1,2460,31", Reason.INVALID_FIELD),
    ],
)
def test_bad_fields_of_known_types(line: str, reason: Reason) -> None:
    """A known sentence type with a wrong field count or an impossible value is refused with the reason."""
    assert _reason(join(line[1:6], line[7:].split(","))) is reason


def test_fki_of_either_generation() -> None:
    """FKI starting with hhmmss is the BDS-3 one with a reason; otherwise the 2.1 one with mmss wait."""
    bds3 = decode_sentence(join("BDFKI", ["083015", "TCQ", "N", "1", "45"]))
    assert bds3 == Fki3(time="083015", command="TCQ", ok=False, reason=FkiReason.FREQUENCY_NOT_REACHED, remaining_s=45)
    v21 = decode_sentence(join("BDFKI", ["TXA", "N", "N", "2", "0130"]))
    assert isinstance(v21, Fki)
    assert (v21.executed, v21.suppression.name, v21.wait_s) == (False, "LOW_POWER", 90)


def test_chinese_mode_characters_stand_in_the_sentence() -> None:
    """2.1 Chinese mode writes the characters themselves; the checksum covers their GB2312 bytes."""
    sentence = Txa.from_text(recipient="0242407", text="北斗", mode=TextMode.CHINESE)
    wire = to_wire(sentence)
    assert wire.startswith(b"$CCTXA,0242407,1,0,\xb1\xb1\xb6\xb7*")
    assert wire.endswith(b"\r\n")
    body = wire[1 : wire.index(b"*")]
    xor = 0
    for byte in body:
        xor ^= byte
    assert wire[-4:-2] == f"{xor:02X}".encode()
    assert decode_bytes(wire) == sentence
    assert sentence.text == "北斗"


def test_bds3_send_writes_chinese_as_hex() -> None:
    """A BDS-3 send writes Chinese as hex of the 16-bit GB2312 codes, and reads back the text."""
    sentence = Tcq.from_text(target="4207733", text="测试", encoding=Bds3Encoding.CHINESE)
    assert sentence.content == "B2E2CAD4"
    assert decode_sentence(encode_sentence(sentence)) == sentence
    assert sentence.text == "测试"


def test_unknown_types_are_generic() -> None:
    """A well-formed sentence of an untyped kind keeps talker, type and raw fields and encodes back."""
    line = join("BDDWR", ["1", "0166166", "083015.00", "3954.2540", "N", "11624.4420", "E", "50", "M"])
    sentence = decode_sentence(line)
    assert sentence == Generic(talker="BD", kind="DWR", fields=tuple(line[7:-3].split(",")))
    assert encode_sentence(sentence) == line


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Txa(recipient="12a", comm_type=CommType.NORMAL, mode=TextMode.CODE, content=""), "recipient"),
        (lambda: Txa(recipient="1", comm_type=1, mode=TextMode.CODE, content=""), "comm_type"),  # type: ignore[arg-type]
        (lambda: Txa(recipient="1", comm_type=CommType.NORMAL, mode=TextMode.CODE, content="1,2"), "content"),
        (lambda: Txa(recipient="1", comm_type=CommType.NORMAL, mode=TextMode.CODE, content="", talker="c"), "talker"),
        (lambda: Bsi(response_beam=1, timing_beam=100, powers=()), "timing_beam"),
        (lambda: Pwi(time="000000.00", bds2=((1, 2),), bds3=()), "bds2"),
        (lambda: Generic(talker="BD", kind="XY", fields=()), "kind"),
        (lambda: Generic(talker="BD", kind="XYZ", fields=("a*b",)), "field 1"),
    ],
)
def test_constructors_refuse_bad_values(build: Any, message: str) -> None:
    """Constructors check every field at once and name the one they refuse."""
    with pytest.raises(ValueError, match=message):
        build()


def test_json_form_of_a_message() -> None:
    """The JSON form names enums, gives flags as booleans and adds the decoded text."""
    sentence = decode_sentence("$CCTXA,0242407,1,2,A4B9E3D6DDBAA3C1C4BFC6BCBCD3D0CFDEB9ABCBBE*0F")
    form = to_dict(sentence)
    assert form["fields"]["mode"] == "mixed"
    assert form["fields"]["comm_type"] == "normal"
    assert form["text"] == "广州海聊科技有限公司"
    assert form["checksum_ok"] is True


def test_json_text_stands_in_for_content() -> None:
    """Encoding from JSON may give text instead of content; enums may be names or numbers."""
    data = {"type": "TXA", "fields": {"recipient": "0179773", "comm_type": 1, "mode": "mixed"}, "text": "hello"}
    assert encode_sentence(from_dict(data)) == "$CCTXA,0179773,1,2,A468656C6C6F*7A"


def test_json_raw_fields_are_typed_when_known() -> None:
    """A list of raw fields goes through the typed decoder when the type is known, else stays generic."""
    typed = from_dict({"type": "ICA", "talker": "CC", "fields": ["0", "00"]})
    assert encode_sentence(typed) == "$CCICA,0,00*7B"
    generic = from_dict({"type": "CXA", "talker": "CC", "fields": ["1", "3", "0242407"]})
    assert isinstance(generic, Generic)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"fields": {}}, "type"),
        ({"type": "XYZ", "fields": {}}, "unknown sentence type"),
        ({"type": "ICA", "fields": {"query_type": 0}}, "missing fields"),
        ({"type": "ICA", "fields": {"query_type": 0, "frame": "0", "x": 1}}, "unknown fields"),
        ({"type": "RMO", "fields": {"sentence": "BSI", "mode": "sideways", "frequency_s": 1}}, "mode must be one of"),
        ({"type": "ICA", "fields": ["0", "00"]}, "talker"),
        ({"type": "ICA", "fields": "0,00"}, "fields"),
    ],
)
def test_json_errors_name_the_problem(data: object, message: str) -> None:
    """JSON that describes no sentence raises ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        from_dict(data)
