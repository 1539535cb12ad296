"""Every example sentence in the domain research (shared/research/domain.md §1.3, §2.2, §2.3) as a test vector.

Each vector decodes to the documented fields with a valid checksum, and encoding the
decoded sentence gives back the exact line. Sources are cited per vector as in domain.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from protocols.rdss import (
    Bds3Encoding,
    CommType,
    Fki,
    Fki3,
    FkiReason,
    Ica,
    Ici,
    Icp,
    Icr,
    Pwi,
    Rmo,
    RmoMode,
    Sentence,
    Suppression,
    Tcq,
    TextMode,
    Txa,
    Txr,
    decode_sentence,
    encode_sentence,
)
from protocols.rdss.codec import PARSERS
from protocols.rdss.text import Form, message_bits, unpack_mixed

ICP_FIELDS: dict[str, Any] = {
    "card_id": "15240507",
    "broadcast_id": "2032472",
    "authorization_type": 1,
    "user_identity": 3,
    "service_identity": 0,
    "secrecy": False,
    "device_type": 1,
    "rescue": True,
    "military": 1,
    "civil_military": 0,
    "allies": 0,
    "priority": 3,
    "service_capability": 1,
    "frequency_s": 1,
    "length_level": 5,
    "global_identity": 1,
    "global_permission": 1,
    "global_frequency_s": 2,
    "global_level": 2,
    "subordinates": 500,
    "group_permission": 100,
    "self_built_groups": 10,
    "joinable_groups": 10,
}

VECTORS: list[tuple[str, Sentence]] = [
    # §2.2 real trace [TRACE]
    ("$CCICA,0,00*7B", Ica(query_type=0, frame="00")),
    (
        "$BDICI,0166166,02097151,0000011,6,40,3,N,000*33",
        Ici(
            address="0166166",
            serial="02097151",
            broadcast_id="0000011",
            user_feature=6,
            frequency_s=40,
            level=3,
            encrypted=False,
            subordinates="000",
        ),
    ),
    (
        "$CCTXA,0166166,1,1,3132333433333335*7F",
        Txa(recipient="0166166", comm_type=CommType.NORMAL, mode=TextMode.CODE, content="3132333433333335"),
    ),
    (
        "$BDFKI,TXA,Y,Y,0,0040*17",
        Fki(command="TXA", executed=True, frequency_ok=True, suppression=Suppression.LIFTED, wait_s=40),
    ),
    (
        "$BDFKI,TXA,N,Y,0,0000*04",
        Fki(command="TXA", executed=False, frequency_ok=True, suppression=Suppression.LIFTED, wait_s=0),
    ),
    (
        "$BDTXR,1,0166166,1,,3132333433333335*46",
        Txr(info_type=1, sender="0166166", mode=TextMode.CODE, send_time="", content="3132333433333335"),
    ),
    ("$CCRMO,BSI,2,10*17", Rmo(sentence="BSI", mode=RmoMode.ON, frequency_s=10)),
    (
        "$CCTXA,0242407,1,2,A4B9E3D6DDBAA3C1C4BFC6BCBCD3D0CFDEB9ABCBBE*0F",
        Txa(
            recipient="0242407",
            comm_type=CommType.NORMAL,
            mode=TextMode.MIXED,
            content="A4B9E3D6DDBAA3C1C4BFC6BCBCD3D0CFDEB9ABCBBE",
        ),
    ),
    # §1.3 card with a 60 s service interval [BDSDK] (checksum computed; the SDK's comment says *3A too)
    (
        "$BDICI,4207733,0,0,3,60,2,N,22*3A",
        Ici(
            address="4207733",
            serial="0",
            broadcast_id="0",
            user_feature=3,
            frequency_s=60,
            level=2,
            encrypted=False,
            subordinates="22",
        ),
    ),
    # §2.3 BDS-3 [WOKWI][BDSDK]
    ("$CCICR,0,00*68", Icr(query_type=0, frame="00")),
    ("$BDICP,15240507,2032472,1,3,0,N,1,Y,1,0,0,3,1,1,5,1,1,2,2,500,100,10,10*65", Icp(**ICP_FIELDS)),
    ("$BDPWI,000000.00,00,01,51,40,33,0*7B", Pwi(time="000000.00", bds2=(), bds3=((51, 40, 33, 0),))),
    (
        "$CCTCQ,4207733,2,1,2,48656C6C6F,0*0E",
        Tcq(
            target="4207733",
            frequency_point=2,
            confirm=False,
            encoding=Bds3Encoding.CODE,
            content="48656C6C6F",
            send_frequency_s=0,
        ),
    ),
    ("$BDFKI,082920,TCQ,Y,0,0*70", Fki3(time="082920", command="TCQ", ok=True, reason=FkiReason.NONE, remaining_s=0)),
    (
        "$BDTXR,1,4207733,1,2337,90000000000065C1FAF4B2E2CAD4*3F",
        Txr(
            info_type=1, sender="4207733", mode=TextMode.CODE, send_time="2337", content="90000000000065C1FAF4B2E2CAD4"
        ),
    ),
]


@pytest.mark.parametrize(("line", "expected"), VECTORS, ids=[line[:12] for line, _ in VECTORS])
def test_vector_decodes_to_the_documented_fields(line: str, expected: Sentence) -> None:
    """Each documented sentence decodes to exactly the documented fields, with a valid checksum."""
    decoded = decode_sentence(line)
    assert decoded == expected
    assert decoded.checksum_ok


@pytest.mark.parametrize(("line", "expected"), VECTORS, ids=[line[:12] for line, _ in VECTORS])
def test_vector_encodes_to_the_exact_sentence(line: str, expected: Sentence) -> None:
    """Encoding the documented fields gives back the documented line, byte for byte."""
    assert encode_sentence(expected) == line


def test_mixed_trace_carries_the_company_name() -> None:
    """The mixed-mode trace line carries 广州海聊科技有限公司 in GB2312 after the A4 marker (§2.2)."""
    sentence = decode_sentence("$CCTXA,0242407,1,2,A4B9E3D6DDBAA3C1C4BFC6BCBCD3D0CFDEB9ABCBBE*0F")
    assert isinstance(sentence, Txa)
    assert sentence.text == "广州海聊科技有限公司"


def test_bds3_receipt_payload_ends_in_ceshi() -> None:
    """The BDS-3 TXR example's code payload ends in the GB2312 bytes of 测试 (§2.3)."""
    sentence = decode_sentence("$BDTXR,1,4207733,1,2337,90000000000065C1FAF4B2E2CAD4*3F")
    assert isinstance(sentence, Txr)
    assert bytes.fromhex(sentence.content)[-4:].decode("gb2312") == "测试"


def test_constructed_hello_is_code_mode_hex() -> None:
    """The constructed TCQ example sends the bytes of "Hello" in code mode (§2.3)."""
    sentence = decode_sentence("$CCTCQ,4207733,2,1,2,48656C6C6F,0*0E")
    assert isinstance(sentence, Tcq)
    assert bytes.fromhex(sentence.content) == b"Hello"
    assert sentence.text == "48656C6C6F"


def test_fki_wait_is_the_card_interval() -> None:
    """The accepted send in the trace reports a 40 s wait, the 40 s card's interval (§1.3, §2.2)."""
    card = decode_sentence("$BDICI,0166166,02097151,0000011,6,40,3,N,000*33")
    feedback = decode_sentence("$BDFKI,TXA,Y,Y,0,0040*17")
    assert isinstance(card, Ici)
    assert isinstance(feedback, Fki)
    assert feedback.wait_s == card.frequency_s == 40


def test_binary_txsq_example_mixed_content_and_length() -> None:
    """The §2.1 TXSQ example's content A4 B1B1 B6B7 is mixed "北斗" and its 40-bit length matches."""
    frame = bytes.fromhex("24 54 58 53 51 00 17 02 89 16 46 03 B2 E7 00 28 00 A4 B1 B1 B6 B7 3D")
    length_bits = int.from_bytes(frame[14:16], "big")
    content = frame[17:-1]
    assert unpack_mixed(content) == "北斗"
    assert message_bits(Form.MIXED, "北斗") == length_bits == 40


def test_receipt_query_decodes_as_generic() -> None:
    """``$CCCXA,1,3,<addr>`` (receipt query, §1.7) is not typed here, so it decodes to its raw fields."""
    sentence = decode_sentence(encode_sentence(decode_sentence("$CCCXA,1,3,0242407*00")))
    assert (sentence.talker, sentence.kind, sentence.to_fields(), sentence.checksum_ok) == (
        "CC",
        "CXA",
        ("1", "3", "0242407"),
        True,
    )


RDSS_MD = Path(__file__).resolve().parents[2] / "protocols" / "RDSS.md"


def test_rdss_md_lists_exactly_these_vectors() -> None:
    """Every example sentence in protocols/RDSS.md is a vector here and vice versa, so the page cannot drift."""
    documented = set(re.findall(r"\$[A-Z]{5},[^\s`]*\*[0-9A-F]{2}", RDSS_MD.read_text(encoding="utf-8")))
    assert documented == {line for line, _ in VECTORS}


def test_rdss_md_documents_every_typed_sentence() -> None:
    """protocols/RDSS.md has a heading for every sentence type the codec types."""
    text = RDSS_MD.read_text(encoding="utf-8")
    for kind in PARSERS:
        assert re.search(rf"^### .*`\$(CC|BD){kind}`", text, re.MULTILINE), kind
