"""The packed link frame (0xBA) and the shortest-form choice: round trips, sizes, refusals, canonical form, vector."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.envelope import MAX_SEQ, Kind, Message, Position, Priority
from protocols.errors import DecodeError, Reason
from protocols.frame import (
    FramePacker,
    LinkFrame,
    Record,
    best_size,
    crc16,
    decode_record,
    encode_best,
    encode_frame_packed,
    encode_frame_v2,
    encode_record,
    frame_packed_size,
    frame_v2_size,
    read_frame,
)
from protocols.wire import uvarint
from tests.unit.strategies import messages, times
from tests.unit.test_frame import spec_vectors

BASE = 1754300000.0
SLOW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

small_bodies = st.text(max_size=12)


@st.composite
def fleet_records(draw: st.DrawFn) -> Record:
    """A record from a numbered fleet: ids like T000123, times close together, small bodies, any flags."""
    width = draw(st.sampled_from([1, 3, 6, 7, 18, 19]))
    terminal = draw(st.sampled_from(["T", "bd-", "", "x.9_"])) + str(draw(st.integers(0, 10**width - 1))).zfill(width)
    seq = draw(st.integers(0, 50) | st.integers(0, MAX_SEQ))
    ts = draw(st.floats(BASE, BASE + 3600))
    message = replace(draw(messages()), terminal=terminal, seq=seq, ts=ts, body=draw(small_bodies))
    return Record(message=message, received_at=max(0.0, ts + draw(st.floats(-2, 5))))


any_records = st.builds(Record, message=messages(), received_at=times)
mixed = st.lists(fleet_records() | any_records, min_size=1, max_size=255)
fleets = st.lists(fleet_records(), min_size=1, max_size=255)


def _telemetry(number: int, *, seq: int, at: float, body: str, **extra: Any) -> bytes:
    """The bytes of a routine telemetry record from terminal T{number:06d}, received 1.2 s after ``at``."""
    message = Message(
        terminal=f"T{number:06d}", seq=seq, priority=Priority.ROUTINE, kind=Kind.TELEMETRY, body=body, ts=at, **extra
    )
    return encode_record(Record(message=message, received_at=at + 1.2))


COMPACT_FORMS = {0xB3: 2, 0xB4: 3}
"""The forms without a CRC, and how many bit errors turn the packed form byte into each."""
PLACED = b"\x03\x01t\x00\x4f\x00\x00" + bytes(8) + b"\x00"
"""A first record from "t" at (0, 0): routine text with a position, seq, times and body all zero."""


def _reason(frame: bytes) -> Reason:
    with pytest.raises(DecodeError) as info:
        read_frame(frame)
    return info.value.reason


def _sealed(body: bytes) -> bytes:
    """A packed frame of ``body`` (the bytes after the form byte) under a good CRC."""
    start = b"\xba" + body
    return start + crc16(start).to_bytes(2, "big")


class TestRoundTrip:
    @SLOW
    @given(mixed)
    def test_best_frame_gives_back_what_the_record_bytes_give(self, batch: list[Record]) -> None:
        """Any 1..255 records through encode_best read back equal to decoding each record's own bytes, in order."""
        raws = [encode_record(record) for record in batch]
        assert read_frame(encode_best(raws)).records == tuple(map(decode_record, raws))

    @SLOW
    @given(fleets)
    def test_packed_round_trip_and_canonical(self, batch: list[Record]) -> None:
        """A packed frame of fleet records reads back to them, and re-encoding what it read gives the same bytes."""
        raws = [encode_record(record) for record in batch]
        frame = encode_frame_packed(batch)
        carried = read_frame(frame)
        assert carried == LinkFrame(version=2, records=tuple(map(decode_record, raws)), packed=True)
        assert encode_frame_packed(carried.records) == frame == encode_frame_packed(raws)

    def test_255_records_from_many_and_few_terminals(self) -> None:
        """A full frame of 255 records, terminals repeating and new, reads back exactly."""
        raws = [_telemetry(n * 37 % 300, seq=1000 + n, at=BASE + n * 0.7, body=f"b={n % 40 / 10}") for n in range(255)]
        frame = encode_frame_packed(raws)
        assert read_frame(frame).records == tuple(map(decode_record, raws))
        with pytest.raises(ValueError, match="at most 255"):
            encode_frame_packed([*raws, raws[0]])

    def test_old_utf8_chinese_record_reads_as_its_bytes_do(self) -> None:
        """A record with Chinese in UTF-8 (written before GB2312 bodies) reads back as decode_record reads it."""
        body = "北斗短报文".encode()
        raw = b"\x01t\x01\x0f\x00\x00" + bytes([len(body)]) + body
        frame = encode_frame_packed([raw, raw])
        assert read_frame(frame).records == (decode_record(raw),) * 2

    def test_records_and_their_bytes_pack_alike(self) -> None:
        """encode_frame_packed takes Record objects or their bytes and writes the same frame."""
        records = [decode_record(_telemetry(n, seq=n, at=BASE + n, body="v=1")) for n in range(5)]
        assert encode_frame_packed(records) == encode_frame_packed(list(map(encode_record, records)))
        assert frame_packed_size(records) == len(encode_frame_packed(records))


class TestBestForm:
    @SLOW
    @given(mixed)
    def test_sizes_are_exact_and_the_shortest(self, batch: list[Record]) -> None:
        """best_size and FramePacker predict the frame's length, which is the least of compact, v2 and packed."""
        raws = [encode_record(record) for record in batch]
        packer = FramePacker()
        for raw in raws:
            predicted = packer.size_with(raw)
            packer.add(raw)
            assert packer.size == predicted
        frame = encode_best(raws)
        assert len(frame) == best_size(raws) == packer.size
        assert packer.encode() == frame
        older = frame_v2_size(record_sizes=list(map(len, raws)), compact=len(raws) == 1)
        packed = len(encode_frame_packed(raws))
        assert len(frame) == min(older, packed)
        assert (frame[0] == 0xBA) == (packed < older)  # a tie keeps the form old readers know

    def test_no_saving_keeps_the_older_form(self) -> None:
        """When packing saves nothing the frame stays compact (one record) or v2, which old readers know."""
        message = Message(terminal="a", seq=0, priority=Priority.ROUTINE, kind=Kind.TEXT)
        raw = encode_record(Record(message=message, received_at=BASE))
        assert len(encode_frame_packed([raw])) >= len(raw) + 1
        assert encode_best([raw]) == encode_frame_v2(records=[raw], compact=True)
        assert encode_best([]) == encode_frame_v2()

    def test_small_telemetry_fits_twice_as_many_in_a_bds2_level3_frame(self) -> None:
        """Four small telemetry records fit a 78-byte BDS-2 level-3 transmission packed; v2 holds only two."""
        numbers = (123, 877, 45, 512)
        raws = [_telemetry(n, seq=4000 + n, at=BASE + 1.9 * i, body="b=3.9") for i, n in enumerate(numbers)]
        assert frame_v2_size(record_sizes=[len(r) for r in raws[:2]]) <= 78
        assert frame_v2_size(record_sizes=[len(r) for r in raws[:3]]) > 78
        frame = encode_best(raws)
        assert frame[0] == 0xBA
        assert len(frame) <= 78
        assert read_frame(frame).records == tuple(map(decode_record, raws))

    def test_packer_refuses_only_an_empty_record(self) -> None:
        """An empty record is ValueError; a record that does not parse is carried in v2, untouched."""
        packer = FramePacker()
        with pytest.raises(ValueError, match="empty"):
            packer.add(b"")
        good, bad = _telemetry(1, seq=1, at=BASE, body="b=3.9"), b"\x05ab"
        packer.add(good)
        assert packer.size_with(bad) == frame_v2_size(record_sizes=[len(good), len(bad)])
        packer.add(bad)
        packer.add(good)
        frame = packer.encode()
        assert frame == encode_frame_v2(records=[good, bad, good]) == encode_best([good, bad, good])
        assert len(frame) == packer.size

    def test_more_than_255_records_go_in_v2(self) -> None:
        """Past 255 records the packed form cannot carry them: the frame is v2, at the size predicted."""
        raws = [_telemetry(n % 7, seq=n, at=BASE + n, body="") for n in range(256)]
        packer = FramePacker()
        for raw in raws[:255]:
            packer.add(raw)
        assert packer.encode()[0] == 0xBA
        assert packer.size_with(raws[255]) == frame_v2_size(record_sizes=list(map(len, raws)))
        assert encode_best(raws) == encode_frame_v2(records=raws)
        assert best_size(raws) == len(encode_best(raws))


class TestRefusals:
    @settings(max_examples=300)
    @given(st.binary(max_size=120))
    def test_garbage_raises_only_decode_error(self, rest: bytes) -> None:
        """Arbitrary bytes after 0xBA, with or without a good CRC, read as records or raise DecodeError."""
        for frame in (b"\xba" + rest, _sealed(rest)):
            with contextlib.suppress(DecodeError):
                read_frame(frame)

    def test_every_single_byte_corruption_is_detected(self) -> None:
        """Changing any byte of a packed frame is refused, but for a form byte 2-3 bit errors from a compact form."""
        raws = [_telemetry(n, seq=n, at=BASE + n, body="b=3.9", position=Position(20 + n / 9, 113)) for n in range(3)]
        frame = encode_frame_packed([*raws, raws[0]])
        for index in range(len(frame)):
            for delta in range(1, 256):
                corrupt = bytearray(frame)
                corrupt[index] ^= delta
                if index == 0 and corrupt[0] in COMPACT_FORMS:
                    assert delta.bit_count() >= COMPACT_FORMS[corrupt[0]]  # no CRC there: far in bit errors
                    continue
                with pytest.raises(DecodeError):
                    read_frame(bytes(corrupt))

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"\x02\x01t\x00", Reason.MALFORMED),  # the first record without flags
            (b"\x01\x00", Reason.MALFORMED),  # terminal #0 before any terminal
            (b"\x07\x00", Reason.MALFORMED),  # code 3 with no terminals so far
            (b"\x03\x01t\x00\x0f\x00\x00\x00" + b"\x02\x02", Reason.MALFORMED),  # a numbered terminal after "t"
            (b"\x03\x02t9\x00\x0f\x00\x00\x00" + b"\x02\x02", Reason.MALFORMED),  # t9 then t11: two digits, not one
            (b"\x03\x01t\x00\x0f\x01\x00\x00", Reason.MALFORMED),  # ts of -1 ms
            (b"\x03\x01t\x00\x0f\x00\x01\x00", Reason.MALFORMED),  # received_at of -1 ms
            (b"\x03\x01t\x00\x0f\x00\x00\x00" + b"\x00\x01\x00\x00\x00", Reason.MALFORMED),  # seq 0 then -1
            (b"\x03\x01t\x00\x0f\x00\x00\x00" + b"\x01\x00\x0f\x00\x00\x00", Reason.MALFORMED),  # flags repeated
            (b"\x03\x01t\x00\x0f\x00\x00\x00" + b"\x04\x01t\x00\x00\x00\x00", Reason.MALFORMED),  # "t" spelled again
            (b"\x03\x02t1\x00\x0f\x00\x00\x00" + b"\x04\x02t2\x00\x00\x00\x00", Reason.MALFORMED),  # t2 not numbered
            (PLACED + b"\x00\x00\x00\x00" + uvarint(2**33) + b"\x00\x00", Reason.MALFORMED),  # lat past int32
            (b"\x03\x01t\x00\x03\x00\x00\x00", Reason.INVALID_FIELD),  # sos flags on a routine record
            (b"\x03\x00\x00\x0f\x00\x00\x00", Reason.INVALID_FIELD),  # an empty terminal id
            (b"\x03\x01t\x00\x0f\x00\x00\x05ab", Reason.MALFORMED),  # a body running past the CRC
            (b"\x03\x01t\x00\x0f\x00\x00\x00" * 2, Reason.MALFORMED),  # two first records
        ],
    )
    def test_refusals_under_a_good_crc(self, body: bytes, reason: Reason) -> None:
        """Bytes that break the layout or its canonical form, or records that do not decode, refuse the frame."""
        assert _reason(_sealed(body)) is reason

    def test_more_than_255_records(self) -> None:
        """A packed frame of 256 records is malformed, even though each would read."""
        one = b"\x03\x01t\x00\x0f\x00\x00\x00"
        assert _reason(_sealed(one + b"\x00\x02\x00\x00\x00" * 255)) is Reason.MALFORMED
        assert len(read_frame(_sealed(one + b"\x00\x02\x00\x00\x00" * 254)).records) == 255

    @pytest.mark.parametrize("frame", [b"\xba", b"\xba\x00", _sealed(b"")[:-1] + bytes([_sealed(b"")[-1] ^ 1])])
    def test_short_or_bad_crc(self, frame: bytes) -> None:
        """A packed frame shorter than its form byte and CRC, or with a wrong CRC, is malformed."""
        assert _reason(frame) is Reason.MALFORMED

    def test_empty_packed_frame(self) -> None:
        """A packed frame may carry nothing: the form byte and the CRC."""
        assert read_frame(encode_frame_packed([])) == LinkFrame(version=2, records=(), packed=True)

    def test_hand_built_frame(self) -> None:
        """The layout is as documented: a numbered terminal is a zigzag delta of the previous new terminal's number."""
        first = b"\x03\x02a7" + uvarint(5) + b"\x0b" + uvarint(4000) + uvarint(300) + b"\x01x"
        second = b"\x02\x03" + uvarint(9) + b"\x03\x01" + b"\x00"  # a5 (7 - 2), seq 9, ts -2 ms, received -1 ms
        records = read_frame(_sealed(first + second)).records
        assert [(r.message.terminal, r.message.seq, r.message.ts, r.received_at) for r in records] == [
            ("a7", 5, 2.0, 2.15),
            ("a5", 9, 1.998, 1.997),
        ]


class TestSpecVector:
    def test_packed(self) -> None:
        """SPEC.md's packed frame is its five records packed, and reads back to them."""
        vectors = spec_vectors()
        records = [_record(fields) for fields in json.loads(vectors["frame.packed.records"])]
        frame = bytes.fromhex(vectors["frame.packed"])
        assert encode_frame_packed(records).hex() == frame.hex()
        assert read_frame(frame).records == tuple(records)
        assert encode_best(list(map(encode_record, records))) == frame


def _record(fields: dict[str, Any]) -> Record:
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
