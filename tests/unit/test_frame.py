"""Link frames v1 and v2 and their records: round trips, compact text, size, refusals, and the SPEC.md vectors."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.envelope import MAX_SEQ, MAX_TS, MAX_TTL_S, Kind, Message, Position, Priority
from protocols.errors import DecodeError, Reason
from protocols.fragments import Fragment, Reassembly, decode_fragment, encode_fragment, fragment
from protocols.frame import (
    FRAME_HEADER_BYTES,
    MAX_FRAME_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS,
    LinkFrame,
    Record,
    crc16,
    decode_frame,
    decode_record,
    encode_frame,
    encode_frame_v2,
    encode_record,
    frame_overhead,
    frame_v2_size,
    read_frame,
)
from protocols.wire import Reader
from tests.unit.strategies import messages, terminals, times

SPEC = Path(__file__).resolve().parents[2] / "protocols" / "SPEC.md"
RX = 1754300003.5
OFF_GLOBE = (2**31 - 1).to_bytes(4, "big") + bytes(4)


records = st.builds(Record, message=messages(), received_at=times)
hanzi = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)  # CJK unified ideographs, most in GB2312
chinese = st.text(hanzi | st.sampled_from("\uff0c\u3002 0123456789abc%"), min_size=1, max_size=300)
fragment_items = st.builds(
    Fragment, st.integers(0, 300), st.just(0), st.integers(1, 20), st.binary(min_size=1, max_size=40)
).map(encode_fragment)


def _message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {"terminal": "bd-000042", "seq": 1, "priority": Priority.ROUTINE, "kind": Kind.TEXT}
    return Message(**(fields | overrides))


def _rounded(record: Record) -> Record:
    """Return ``record`` as the link gives it back: times to the millisecond, degrees to 1e-7."""
    message, position = record.message, record.message.position
    if position is not None:
        position = Position(round(position.lat * 1e7) / 1e7, round(position.lon * 1e7) / 1e7)
    message = replace(message, ts=round(message.ts * 1000) / 1000, position=position)
    return Record(message=message, received_at=round(record.received_at * 1000) / 1000)


def _raw_record(*, bits: int = 0x0F, tail: bytes = b"\x00\x00\x00", terminal: bytes = b"\x01t") -> bytes:
    """Build record bytes by hand: id, seq 1, packed bits, then ``tail`` (times, options, body)."""
    return terminal + b"\x01" + bytes([bits]) + tail


def _reason(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


def spec_vectors() -> dict[str, str]:
    """Return the fenced blocks of SPEC.md that follow a ``<!-- vector: name -->`` comment, by name."""
    pattern = re.compile(r"<!-- vector: ([\w.-]+) -->\s*```\w*\n(.*?)\n```", re.DOTALL)
    return dict(pattern.findall(SPEC.read_text(encoding="utf-8")))


class TestRecord:
    @settings(max_examples=200)
    @given(records)
    def test_round_trip(self, record: Record) -> None:
        """A record decodes to itself with times rounded to 1 ms and degrees to 1e-7, and re-encodes unchanged."""
        raw = encode_record(record)
        decoded = decode_record(raw)
        assert decoded == _rounded(record)
        assert encode_record(decoded) == raw

    def test_typical_telemetry_is_small(self) -> None:
        """A routine telemetry record with a 60-byte body and a ttl takes 88 bytes (96 with a position)."""
        message = _message(kind=Kind.TELEMETRY, body="x" * 60, ttl=3600, ts=1754300000.123, seq=1234)
        assert len(encode_record(Record(message=message, received_at=RX))) == 88
        placed = replace(message, position=Position(39.9042, 116.4074))
        assert len(encode_record(Record(message=placed, received_at=RX))) == 96

    def test_rounding_keeps_the_latest_time_valid(self) -> None:
        """A time just under MAX_TS rounds to at most MAX_TS, so it still decodes."""
        record = Record(message=_message(ts=MAX_TS - 1e-4), received_at=MAX_TS)
        assert decode_record(encode_record(record)).message.ts == MAX_TS

    def test_largest_record_fits_its_bound(self) -> None:
        """Every field at its widest still fits MAX_RECORD_BYTES."""
        message = _message(
            terminal="x" * 32, seq=MAX_SEQ, body="🛰" * 256, position=Position(-90, -180), ttl=MAX_TTL_S, ts=MAX_TS
        )
        raw = encode_record(Record(message=message, received_at=MAX_TS))
        assert len(raw) <= MAX_RECORD_BYTES
        assert decode_record(raw).message == message

    @pytest.mark.parametrize("received_at", [-1.0, float("nan"), float("inf"), MAX_TS + 1])
    def test_invalid_received_at(self, received_at: float) -> None:
        """A receive time that is negative, not finite or past MAX_TS is invalid_field."""
        assert _reason(Record, _message(), received_at) is Reason.INVALID_FIELD

    def test_hand_built_minimal_record(self) -> None:
        """The layout is as documented: id, seq, packed bits, ts, received_at, body."""
        raw = b"\x02ab" + b"\x05" + bytes([0x03 | 2 << 2 | 0x20]) + b"\xe8\x07" + b"\xd0\x0f" + b"\x02hi"
        expected = _message(terminal="ab", seq=5, kind=Kind.TELEMETRY, body="hi", ts=1.0, receipt=True)
        assert decode_record(raw) == Record(message=expected, received_at=2.0)

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"", Reason.MALFORMED),
            (_raw_record() + b"\x00", Reason.MALFORMED),  # trailing garbage
            (_raw_record(tail=b"\x00\x00\x05ab"), Reason.MALFORMED),  # body shorter than its length
            (_raw_record(terminal=b"\x05ab"), Reason.MALFORMED),  # id runs past the end
            (_raw_record(terminal=b"\x01\xff"), Reason.MALFORMED),  # id not ASCII
            (_raw_record(tail=b"\x00\x00\x02\xc3\x28"), Reason.MALFORMED),  # body not UTF-8
            (_raw_record(tail=b"\x80\x00\x00\x00"), Reason.MALFORMED),  # uvarint not in shortest form
            (_raw_record(tail=b"\xff" * 10 + b"\x01\x00\x00"), Reason.MALFORMED),  # uvarint past 10 bytes
            (_raw_record(tail=b"\xff" * 9 + b"\x02\x00\x00"), Reason.MALFORMED),  # uvarint past 64 bits
            (_raw_record(bits=0x1F), Reason.MALFORMED),  # GB2312 flag on an empty body
            (_raw_record(bits=0x1F, tail=b"\x00\x00\x02hi"), Reason.MALFORMED),  # GB2312 flag, ASCII body
            (_raw_record(bits=0x1F, tail=b"\x00\x00\x02\xff\xff"), Reason.MALFORMED),  # not GB2312
            (_raw_record(bits=0x1F, tail=b"\x00\x00\x01\xd6"), Reason.MALFORMED),  # half a GB2312 character
            (_raw_record(tail=b"\x00\x00\x02\xd6\xd0"), Reason.MALFORMED),  # GB2312 bytes without the flag
            (_raw_record(bits=0x01), Reason.INVALID_FIELD),  # sos relabelled urgency
            (_raw_record(terminal=b"\x01/"), Reason.INVALID_FIELD),  # invalid id character
            (_raw_record(terminal=b"\x00"), Reason.INVALID_FIELD),  # empty id
            (_raw_record(bits=0x80 | 0x0F, tail=b"\x00\x00\x00\x00"), Reason.INVALID_FIELD),  # ttl 0
            (_raw_record(bits=0x80 | 0x0C, tail=b"\x00\x00\x3c\x00"), Reason.INVALID_FIELD),  # ttl on distress
            (_raw_record(bits=0x4F, tail=b"\x00\x00" + OFF_GLOBE + b"\x00"), Reason.INVALID_FIELD),  # lat 214.7
            (_raw_record(tail=b"\xff" * 7 + b"\x01\x00\x00"), Reason.INVALID_FIELD),  # ts past MAX_TS
            (b"\x01t" + b"\xff" * 9 + b"\x01" + b"\x0f\x00\x00\x00", Reason.INVALID_FIELD),  # seq 2^64-1
            (_raw_record(tail=b"\x00\x00\x82\x08" + b"x" * 1026), Reason.OVERSIZED),  # body of 1026 bytes
            (bytes(MAX_RECORD_BYTES + 1), Reason.OVERSIZED),
        ],
    )
    def test_refusals(self, raw: bytes, reason: Reason) -> None:
        """Each kind of bad record raises DecodeError with the documented reason."""
        assert _reason(decode_record, raw) is reason

    def test_every_truncation_is_refused(self) -> None:
        """Every proper prefix of a full record is malformed."""
        message = _message(body="hé", position=Position(1, 2), ttl=60, ts=1e9, receipt=True)
        raw = encode_record(Record(message=message, received_at=RX))
        assert {_reason(decode_record, raw[:cut]) for cut in range(len(raw))} == {Reason.MALFORMED}


class TestFrame:
    @settings(max_examples=100)
    @given(st.lists(records, max_size=6), st.integers(0, 2**32 - 1))
    def test_round_trip(self, batch: list[Record], frame_seq: int) -> None:
        """A frame gives back its seq and its records in order, and its size is within frame_overhead."""
        encoded = [encode_record(record) for record in batch]
        frame = encode_frame(encoded, frame_seq=frame_seq)
        assert decode_frame(frame) == (frame_seq, [_rounded(record) for record in batch])
        assert len(frame) <= sum(map(len, encoded)) + frame_overhead(len(batch))
        short = sum(len(raw) < 128 for raw in encoded)
        assert len(frame) == sum(map(len, encoded)) + frame_overhead(len(batch)) - short

    def test_header_layout(self) -> None:
        """The header is 0xB1, the 4-byte frame_seq, the count and the CRC of everything else."""
        record = encode_record(Record(message=_message(), received_at=RX))
        frame = encode_frame([record], frame_seq=0x01020304)
        assert frame[:6] == bytes([0xB1, 1, 2, 3, 4, 1])
        assert int.from_bytes(frame[6:8], "big") == crc16(frame[:6] + frame[8:])
        assert frame[FRAME_HEADER_BYTES:] == bytes([len(record)]) + record

    def test_empty_frame(self) -> None:
        """A frame may carry no records; it is exactly the header."""
        frame = encode_frame([], frame_seq=9)
        assert len(frame) == FRAME_HEADER_BYTES == frame_overhead(0)
        assert decode_frame(frame) == (9, [])

    def test_crc_check_value(self) -> None:
        """crc16 is CRC-16/CCITT-FALSE: the standard check string gives 0x29B1."""
        assert crc16(b"123456789") == 0x29B1

    def test_every_single_byte_corruption_is_detected(self) -> None:
        """Changing any one byte of a frame, to any other value, is refused as malformed."""
        records = [encode_record(Record(message=_message(seq=n, body="ab"), received_at=RX)) for n in range(2)]
        frame = encode_frame(records, frame_seq=77)
        for index in range(len(frame)):
            for delta in (0x01, 0x80, 0xFF, 0x5A):
                corrupt = bytearray(frame)
                corrupt[index] ^= delta
                reason = _reason(decode_frame, bytes(corrupt))
                assert reason in {Reason.MALFORMED, Reason.UNSUPPORTED_VERSION}, (index, delta, reason)

    def test_every_truncation_and_extension_is_refused(self) -> None:
        """A frame cut short anywhere, or with a byte appended, is malformed."""
        record = encode_record(Record(message=_message(body="x" * 20), received_at=RX))
        frame = encode_frame([record, record], frame_seq=1)
        assert {_reason(decode_frame, frame[:cut]) for cut in range(len(frame))} == {Reason.MALFORMED}
        assert _reason(decode_frame, frame + b"\x00") is Reason.MALFORMED

    @pytest.mark.parametrize(
        ("records", "reason"),
        [
            ([_raw_record(terminal=b"\x00")], Reason.INVALID_FIELD),  # a record with an empty id
            ([_raw_record(bits=0x03)], Reason.INVALID_FIELD),  # a record of sos relabelled routine
            ([_raw_record() + b"\x00"], Reason.MALFORMED),  # a record with trailing garbage
        ],
    )
    def test_bad_record_rejects_the_frame(self, records: list[bytes], reason: Reason) -> None:
        """A frame whose CRC is right but whose record is bad is refused with the record's reason."""
        assert _reason(decode_frame, encode_frame(records, frame_seq=1)) is reason

    @pytest.mark.parametrize(
        ("body", "count"),
        [
            (b"", 1),  # fewer records than counted
            (b"\x05\x01t", 1),  # length past the end
            (b"\x00", 1),  # an empty record
            (b"\x80\x00", 1),  # a length not in its shortest form
            (bytes([len(_raw_record())]) + _raw_record(), 0),  # more records than counted
        ],
    )
    def test_bad_lengths_and_counts(self, body: bytes, count: int) -> None:
        """Record lengths and counts that disagree with the bytes are malformed, even under a good CRC."""
        start = bytes([0xB1, 0, 0, 0, 1, count])
        frame = start + crc16(start + body).to_bytes(2, "big") + body
        assert _reason(decode_frame, frame) is Reason.MALFORMED

    @pytest.mark.parametrize(
        ("first", "reason"),
        [(0xB2, Reason.UNSUPPORTED_VERSION), (0xB0, Reason.UNSUPPORTED_VERSION), (0x01, Reason.MALFORMED)],
    )
    def test_magic_and_version(self, first: int, reason: Reason) -> None:
        """Another version is unsupported_version; a byte without the 0xB magic is malformed."""
        start = bytes([first, 0, 0, 0, 1, 0])
        assert _reason(decode_frame, start + crc16(start).to_bytes(2, "big")) is reason

    def test_oversized(self) -> None:
        """A frame over MAX_FRAME_BYTES is oversized before anything else is read."""
        assert _reason(decode_frame, b"\xb1" + bytes(MAX_FRAME_BYTES)) is Reason.OVERSIZED

    @pytest.mark.parametrize(
        ("records", "frame_seq", "match"),
        [
            ([], -1, "frame_seq"),
            ([], 2**32, "frame_seq"),
            ([b"x"] * (MAX_RECORDS + 1), 0, "at most 255"),
            ([b"x", b""], 0, "empty"),
            ([b"x" * 40000, b"x" * 40000], 0, "exceeds"),
        ],
    )
    def test_encode_refuses_bad_arguments(self, records: list[bytes], frame_seq: int, match: str) -> None:
        """encode_frame raises ValueError naming the problem."""
        with pytest.raises(ValueError, match=match):
            encode_frame(records, frame_seq=frame_seq)

    def test_overhead_bounds(self) -> None:
        """frame_overhead is the header plus two bytes a record, for 0..255 records only."""
        assert [frame_overhead(n) for n in (0, 1, 255)] == [8, 10, 518]
        with pytest.raises(ValueError, match="record_count"):
            frame_overhead(256)


class TestCompactText:
    def test_chinese_takes_two_bytes_a_character(self) -> None:
        """A Chinese body goes in GB2312 (bit 4 set): 2 bytes a character instead of 3."""
        body = "冰面有裂缝绕行北侧"
        short = encode_record(Record(message=_message(body=body), received_at=RX))
        ascii_only = encode_record(Record(message=_message(body="x" * 18), received_at=RX))
        assert len(short) == len(ascii_only)
        assert short[len(short) - 18 :] == body.encode("gb2312")
        assert _bits(short) & 0x10

    @pytest.mark.parametrize("body", ["hello", "", "北斗 🛰", "é" * 3, "\u00b7"])
    def test_utf8_when_gb2312_is_not_shorter_or_cannot(self, body: str) -> None:
        """ASCII, an emoji, Latin accents and characters outside GB2312 stay UTF-8 (bit 4 clear)."""
        raw = encode_record(Record(message=_message(body=body), received_at=RX))
        assert raw.endswith(body.encode("utf-8"))
        assert not _bits(raw) & 0x10
        assert decode_record(raw).message.body == body

    @settings(max_examples=150)
    @given(chinese, terminals)
    def test_round_trip_and_never_longer_than_utf8(self, body: str, terminal: str) -> None:
        """Chinese text round-trips, and its record is never longer than with a UTF-8 body."""
        record = Record(message=_message(body=body, terminal=terminal), received_at=RX)
        raw = encode_record(record)
        assert decode_record(raw) == record
        assert encode_record(decode_record(raw)) == raw
        size = len(body.encode("utf-8"))
        with contextlib.suppress(UnicodeEncodeError):
            gb = body.encode("gb2312")
            size = min(size, len(gb)) if gb.decode("gb2312") == body else size
        same_size = Record(message=_message(body="x" * size, terminal=terminal), received_at=RX)
        assert len(raw) == len(encode_record(same_size))

    def test_old_utf8_chinese_records_still_decode(self) -> None:
        """A record written before GB2312 (Chinese in UTF-8, bit 4 clear) decodes, and re-encodes shorter."""
        body = "北斗短报文"
        utf8 = body.encode("utf-8")
        old = _raw_record(tail=b"\x00\x00" + bytes([len(utf8)]) + utf8)
        record = decode_record(old)
        assert record.message.body == body
        assert len(encode_record(record)) == len(old) - len(body)


def _bits(raw: bytes) -> int:
    """The packed bits byte of an encoded record: after the terminal id and the seq."""
    reader = Reader(raw, raw[0] + 1)
    reader.uvarint()
    return reader.byte()


class TestFrameV2:
    @settings(max_examples=100)
    @given(st.lists(records, max_size=4), st.lists(fragment_items, max_size=4))
    def test_round_trip_and_exact_size(self, batch: list[Record], parts: list[bytes]) -> None:
        """A v2 frame gives back its records and fragments in order, at the size frame_v2_size predicts."""
        encoded = [encode_record(record) for record in batch]
        frame = encode_frame_v2(records=encoded, fragments=parts)
        expected = LinkFrame(
            version=2, records=tuple(map(_rounded, batch)), fragments=tuple(map(decode_fragment, parts))
        )
        assert read_frame(frame) == expected
        assert len(frame) == frame_v2_size(record_sizes=[len(r) for r in encoded], fragment_sizes=list(map(len, parts)))

    @settings(max_examples=50)
    @given(records, fragment_items)
    def test_compact_forms(self, record: Record, part: bytes) -> None:
        """A compact frame is one byte and one item, record (0xB3) or fragment (0xB4), and reads back as such."""
        raw = encode_record(record)
        one = encode_frame_v2(records=[raw], compact=True)
        assert one == b"\xb3" + raw
        assert read_frame(one) == LinkFrame(version=2, records=(_rounded(record),), compact=True)
        other = encode_frame_v2(fragments=[part], compact=True)
        assert other == b"\xb4" + part
        assert read_frame(other) == LinkFrame(version=2, records=(), fragments=(decode_fragment(part),), compact=True)
        assert len(other) == frame_v2_size(fragment_sizes=[len(part)], compact=True)

    @settings(max_examples=100)
    @given(st.lists(records, max_size=4), st.integers(0, 2**32 - 1))
    def test_v1_frames_still_read(self, batch: list[Record], frame_seq: int) -> None:
        """read_frame reads a v1 frame as version 1 with its frame_seq and records."""
        frame = encode_frame([encode_record(record) for record in batch], frame_seq=frame_seq)
        assert read_frame(frame) == LinkFrame(version=1, records=tuple(map(_rounded, batch)), frame_seq=frame_seq)

    @settings(max_examples=300)
    @given(st.sampled_from([b"", b"\xb1", b"\xb2", b"\xb3", b"\xb4"]), st.binary(max_size=200))
    def test_garbage_raises_only_decode_error(self, first: bytes, rest: bytes) -> None:
        """Arbitrary bytes, after any form byte, read as a frame or raise DecodeError; nothing else escapes."""
        with contextlib.suppress(DecodeError):
            read_frame(first + rest)

    def test_every_single_byte_corruption_is_detected(self) -> None:
        """Changing any one byte of a 0xB2 frame, to any other value, is refused."""
        raw = encode_record(Record(message=_message(body="ab"), received_at=RX))
        frame = encode_frame_v2(records=[raw], fragments=fragment(raw, max_fragment_payload=8, message_ref=3))
        for index in range(len(frame)):
            for delta in (0x01, 0x80, 0xFF, 0x5A):
                corrupt = bytearray(frame)
                corrupt[index] ^= delta
                with pytest.raises(DecodeError):
                    read_frame(bytes(corrupt))

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"\x00", Reason.MALFORMED),  # an empty item
            (b"\x01", Reason.MALFORMED),  # an empty fragment
            (b"\x09\x01", Reason.MALFORMED),  # an item running past the CRC
            (b"\x07\x00\x00x" + bytes([len(_raw_record()) * 2]) + _raw_record(), Reason.MALFORMED),  # record last
            (b"\x80\x00", Reason.MALFORMED),  # a head not in its shortest form
            (bytes([len(_raw_record(bits=0x03)) * 2]) + _raw_record(bits=0x03), Reason.INVALID_FIELD),  # bad record
            (b"\x05\x00\x00", Reason.INVALID_FIELD),  # a fragment without a chunk
        ],
    )
    def test_refusals_under_a_good_crc(self, body: bytes, reason: Reason) -> None:
        """Items that disagree with the bytes or do not decode reject the frame, even under a good CRC."""
        start = b"\xb2" + body
        assert _reason(read_frame, start + crc16(start).to_bytes(2, "big")) is reason

    @pytest.mark.parametrize(
        ("frame", "reason"),
        [
            (b"", Reason.MALFORMED),
            (b"\xb2", Reason.MALFORMED),
            (b"\xb2\x00\x00", Reason.MALFORMED),  # a CRC that does not match
            (b"\xb3", Reason.MALFORMED),
            (b"\xb4", Reason.MALFORMED),
            (b"\xb6" + bytes(10), Reason.UNSUPPORTED_VERSION),
            (b"\xb0", Reason.UNSUPPORTED_VERSION),
            (b"\x01" + bytes(10), Reason.MALFORMED),
            (b"\xb3" + bytes(MAX_FRAME_BYTES), Reason.OVERSIZED),
        ],
    )
    def test_bad_frames(self, frame: bytes, reason: Reason) -> None:
        """Short, unknown, mismatched and oversized frames are refused with the documented reason."""
        assert _reason(read_frame, frame) is reason

    @pytest.mark.parametrize(
        ("records", "fragments", "compact", "match"),
        [
            ([b""], [], False, "empty"),
            ([], [b""], False, "empty"),
            ([], [], True, "exactly one"),
            ([b"x"], [b"y"], True, "exactly one"),
            ([b"x" * 70000], [], False, "exceeds"),
        ],
    )
    def test_encode_refuses_bad_arguments(
        self, records: list[bytes], fragments: list[bytes], compact: bool, match: str
    ) -> None:
        """encode_frame_v2 raises ValueError naming the problem."""
        with pytest.raises(ValueError, match=match):
            encode_frame_v2(records=records, fragments=fragments, compact=compact)

    def test_empty_v2_frame(self) -> None:
        """A v2 frame may carry nothing: the form byte and the CRC."""
        frame = encode_frame_v2()
        assert len(frame) == 3 == frame_v2_size()
        assert read_frame(frame) == LinkFrame(version=2, records=())


class TestSpecVectors:
    @pytest.mark.parametrize("name", ["frame.record1", "frame.record2"])
    def test_records(self, name: str) -> None:
        """Each SPEC.md record encodes to the SPEC.md hex, and the hex decodes to it."""
        vectors = spec_vectors()
        record = _spec_record(vectors[name])
        assert encode_record(record).hex() == bytes.fromhex(vectors[f"{name}.hex"]).hex()
        assert decode_record(bytes.fromhex(vectors[f"{name}.hex"])) == record

    def test_record3_is_compact_text(self) -> None:
        """SPEC.md's Chinese record encodes to its hex with a GB2312 body, and the hex decodes to it."""
        vectors = spec_vectors()
        record = _spec_record(vectors["frame.record3"])
        raw = bytes.fromhex(vectors["frame.record3.hex"])
        assert encode_record(record).hex() == raw.hex()
        assert decode_record(raw) == record
        assert _bits(raw) & 0x10

    def test_fragments13(self) -> None:
        """SPEC.md's record 1 over a 13-byte card is exactly its four compact fragment frames, which join to it."""
        vectors = spec_vectors()
        record = encode_record(_spec_record(vectors["frame.record1"]))
        frames = [bytes.fromhex(line) for line in vectors["frame.fragments13"].split()]
        parts = fragment(record, max_fragment_payload=10, message_ref=5)
        assert [encode_frame_v2(fragments=[p], compact=True) for p in parts] == frames
        assert all(len(frame) <= 13 for frame in frames)
        reassembly = Reassembly(max_age_s=60)
        done = [reassembly.add(read_frame(frame).fragments[0], now=0) for frame in reversed(frames)]
        assert done == [None, None, None, record]

    def test_v2_and_compact(self) -> None:
        """SPEC.md's v2 frame is records 2 and 3 then fragment 0 of record 1; its compact frame is record 3 alone."""
        vectors = spec_vectors()
        r1, r2, r3 = (_spec_record(vectors[f"frame.record{n}"]) for n in (1, 2, 3))
        first = fragment(encode_record(r1), max_fragment_payload=10, message_ref=5)[0]
        frame = encode_frame_v2(records=[encode_record(r2), encode_record(r3)], fragments=[first])
        assert frame.hex() == bytes.fromhex(vectors["frame.v2"]).hex()
        assert read_frame(frame) == LinkFrame(version=2, records=(r2, r3), fragments=(decode_fragment(first),))
        compact = bytes.fromhex(vectors["frame.compact"])
        assert encode_frame_v2(records=[encode_record(r3)], compact=True) == compact
        assert read_frame(compact).records == (r3,)

    def test_frame(self) -> None:
        """The SPEC.md frame is exactly the two SPEC.md records packed with frame_seq 42."""
        vectors = spec_vectors()
        records = [_spec_record(vectors[name]) for name in ("frame.record1", "frame.record2")]
        frame = encode_frame([encode_record(record) for record in records], frame_seq=42)
        assert frame.hex() == bytes.fromhex(vectors["frame.frame"]).hex()
        assert decode_frame(frame) == (42, records)


def _spec_record(text: str) -> Record:
    fields = json.loads(text)
    position = Position(fields["lat"], fields["lon"]) if "lat" in fields else None
    message = Message(
        terminal=fields["terminal"],
        seq=fields["seq"],
        priority=Priority(fields["priority"]),
        kind=Kind(fields["kind"]),
        body=fields["body"],
        position=position,
        ttl=fields.get("ttl"),
        ts=fields["ts"],
        receipt=fields["receipt"],
    )
    return Record(message=message, received_at=fields["received_at"])
