"""Link frame v1: records and frames round-trip, stay small, refuse every bad input, and match SPEC.md."""

from __future__ import annotations

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
from protocols.frame import (
    FRAME_HEADER_BYTES,
    MAX_FRAME_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS,
    Record,
    crc16,
    decode_frame,
    decode_record,
    encode_frame,
    encode_record,
    frame_overhead,
)
from tests.unit.strategies import messages, times

SPEC = Path(__file__).resolve().parents[2] / "protocols" / "SPEC.md"
RX = 1754300003.5
OFF_GLOBE = (2**31 - 1).to_bytes(4, "big") + bytes(4)


records = st.builds(Record, message=messages(), received_at=times)


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
            (_raw_record(bits=0x13), Reason.INVALID_FIELD),  # kind code 4
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
            ([_raw_record(bits=0x13)], Reason.INVALID_FIELD),  # a record with kind code 4
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


class TestSpecVectors:
    @pytest.mark.parametrize("name", ["frame.record1", "frame.record2"])
    def test_records(self, name: str) -> None:
        """Each SPEC.md record encodes to the SPEC.md hex, and the hex decodes to it."""
        vectors = spec_vectors()
        record = _spec_record(vectors[name])
        assert encode_record(record).hex() == bytes.fromhex(vectors[f"{name}.hex"]).hex()
        assert decode_record(bytes.fromhex(vectors[f"{name}.hex"])) == record

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
