"""Fragments: split and join in any order with duplicates, size to an MTU, refuse garbage, expire by a given time."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, Reason
from protocols.fragments import (
    COMPACT_FRAME_OVERHEAD,
    MAX_FRAGMENTS,
    MAX_MESSAGE_REF,
    Fragment,
    Outgoing,
    Reassembly,
    decode_fragment,
    encode_fragment,
    fragment,
    fragment_for_mtu,
    fragment_header_size,
    fragment_payload_for_mtu,
    join_fragments,
)
from protocols.frame import encode_frame_v2, read_frame
from protocols.record import MAX_RECORD_BYTES, Record, encode_record
from protocols.wire import crc16
from tests.unit.strategies import messages, times

record_bytes = st.builds(Record, message=messages(), received_at=times).map(encode_record)
refs = st.integers(0, MAX_MESSAGE_REF)
BDS2_LEVEL1_MTU = 13  # 110 bits


def _reason(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


def _arrivals(parts: list[bytes], seed: int) -> list[bytes]:
    """``parts`` shuffled, with some of them repeated at random places."""
    rng = random.Random(seed)
    out = parts + [rng.choice(parts) for _ in range(rng.randint(0, len(parts)))]
    rng.shuffle(out)
    return out


class TestRoundTrip:
    @settings(max_examples=150)
    @given(record_bytes, st.integers(1, 400), refs, st.integers(0, 2**32))
    def test_any_order_with_duplicates(self, record: bytes, payload: int, ref: int, seed: int) -> None:
        """Fragments added in any order, some twice, give the record once, when the last missing index arrives."""
        parts = fragment(record, max_fragment_payload=payload, message_ref=ref)
        reassembly = Reassembly(max_age_s=60)
        seen: set[int] = set()
        results = []
        for raw in _arrivals(parts, seed):
            part = decode_fragment(raw)
            assert encode_fragment(part) == raw
            if part.index in seen and len(seen) < part.total:  # a duplicate before completion changes nothing
                assert reassembly.add(part, now=0.0) is None
                continue
            seen.add(part.index)
            results.append(reassembly.add(part, now=0.0))
            if len(seen) == part.total:
                break
        assert results[-1] == record
        assert results[:-1] == [None] * (len(results) - 1)
        assert len(reassembly) == 0

    @settings(max_examples=100)
    @given(record_bytes, st.integers(1, 400), refs)
    def test_chunks_are_full_but_the_last(self, record: bytes, payload: int, ref: int) -> None:
        """Every chunk holds exactly max_fragment_payload bytes except the last, and the chunks are record + CRC."""
        parts = [decode_fragment(raw) for raw in fragment(record, max_fragment_payload=payload, message_ref=ref)]
        assert all(len(p.data) == payload for p in parts[:-1])
        assert 1 <= len(parts[-1].data) <= payload
        assert b"".join(p.data for p in parts) == record + crc16(record).to_bytes(2, "big")
        assert [(p.message_ref, p.index, p.total) for p in parts] == [(ref, i, len(parts)) for i in range(len(parts))]

    @settings(max_examples=100)
    @given(st.binary(max_size=300))
    def test_garbage_raises_only_decode_error(self, raw: bytes) -> None:
        """Arbitrary bytes decode to a fragment that re-encodes to them, or raise DecodeError; nothing else."""
        try:
            part = decode_fragment(raw)
        except DecodeError:
            return
        assert encode_fragment(part) == raw


class TestLayout:
    def test_place_numbers_every_pair_once(self) -> None:
        """(index, total) pairs take consecutive places from 0, in order of total then index, and decode back."""
        pairs = [(i, t) for t in range(1, 200) for i in range(t)]
        for place, (index, total) in enumerate(pairs):
            part = decode_fragment(bytes([5]) + _uvarint(place) + b"x")
            assert (part.message_ref, part.index, part.total) == (5, index, total)

    def test_small_messages_spend_two_header_bytes(self) -> None:
        """A ref below 128 and up to 15 fragments: one byte for the ref, one for index and total."""
        assert fragment_header_size(message_ref=127, total=15) == 2
        assert fragment_header_size(message_ref=128, total=15) == 3
        assert fragment_header_size(message_ref=0, total=16) == 3
        assert encode_fragment(Fragment(3, 2, 3, b"ab")) == bytes([3, 3 * 2 // 2 + 2]) + b"ab"

    def test_largest_place_is_accepted_and_one_more_refused(self) -> None:
        """A fragment may be one of MAX_FRAGMENTS; a place beyond that is invalid_field."""
        last = MAX_FRAGMENTS * (MAX_FRAGMENTS - 1) // 2 + MAX_FRAGMENTS - 1
        assert decode_fragment(b"\x00" + _uvarint(last) + b"x").total == MAX_FRAGMENTS
        assert _reason(decode_fragment, b"\x00" + _uvarint(last + 1) + b"x") is Reason.INVALID_FIELD

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"", Reason.MALFORMED),
            (b"\x01", Reason.MALFORMED),  # a ref and nothing else
            (b"\x01\x00", Reason.INVALID_FIELD),  # no chunk
            (b"\x80\x00\x00x", Reason.MALFORMED),  # ref not in its shortest form
            (b"\xff\xff\xff\xff\x10\x00x", Reason.INVALID_FIELD),  # ref 2**32
            (bytes(MAX_RECORD_BYTES + 23), Reason.OVERSIZED),
        ],
    )
    def test_refusals(self, raw: bytes, reason: Reason) -> None:
        """Each kind of bad fragment raises DecodeError with its reason."""
        assert _reason(decode_fragment, raw) is reason

    @pytest.mark.parametrize(
        ("record", "payload", "ref", "match"),
        [
            (b"", 4, 0, "record"),
            (bytes(MAX_RECORD_BYTES + 1), 4, 0, "record"),
            (b"abc", 0, 0, "max_fragment_payload"),
            (b"abc", 4, -1, "message_ref"),
            (b"abc", 4, MAX_MESSAGE_REF + 1, "message_ref"),
        ],
    )
    def test_fragment_refuses_bad_arguments(self, record: bytes, payload: int, ref: int, match: str) -> None:
        """fragment raises ValueError naming the bad argument."""
        with pytest.raises(ValueError, match=match):
            fragment(record, max_fragment_payload=payload, message_ref=ref)

    def test_the_largest_record_splits_into_single_bytes(self) -> None:
        """Even one byte per fragment, the largest record stays within MAX_FRAGMENTS and joins again."""
        record = bytes(range(256)) * 4 + bytes(MAX_RECORD_BYTES - 1024)
        parts = [decode_fragment(raw) for raw in fragment(record, max_fragment_payload=1, message_ref=9)]
        assert len(parts) == MAX_FRAGMENTS
        assert join_fragments(parts[::-1]) == record


class TestMtu:
    @settings(max_examples=200)
    @given(st.integers(5, 400), st.integers(1, MAX_RECORD_BYTES), st.integers(0, 70000))
    def test_every_fragment_fits_and_the_chunk_is_largest(self, mtu: int, size: int, ref: int) -> None:
        """Each fragment fits a compact frame of the MTU, and one byte more per chunk would not always fit."""
        try:
            payload = fragment_payload_for_mtu(mtu, record_size=size, message_ref=ref)
        except ValueError:  # refused only when even one byte a fragment does not fit
            assert COMPACT_FRAME_OVERHEAD + fragment_header_size(message_ref=ref, total=size + 2) + 1 > mtu
            return
        parts = fragment(bytes(size), max_fragment_payload=payload, message_ref=ref)
        assert max(len(p) for p in parts) + COMPACT_FRAME_OVERHEAD <= mtu
        if payload < size + 2:  # one more byte a chunk: some fragment (or its header) would not fit
            bigger = fragment(bytes(size), max_fragment_payload=payload + 1, message_ref=ref)
            assert max(len(p) for p in bigger) + COMPACT_FRAME_OVERHEAD > mtu

    def test_bds2_level1_card(self) -> None:
        """On a 13-byte BDS-2 level-1 card a 41-byte telemetry record goes in 5 frames of 1 + 2 + 10 bytes or less."""
        record = bytes(41)
        parts = fragment_for_mtu(record, mtu=BDS2_LEVEL1_MTU, message_ref=7)
        frames = [encode_frame_v2(fragments=[p], compact=True) for p in parts]
        assert [len(f) for f in frames] == [13, 13, 13, 13, 6]
        reassembly = Reassembly(max_age_s=3600)
        results = [reassembly.add(read_frame(f).fragments[0], now=60.0 * n) for n, f in enumerate(frames)]
        assert results == [None] * 4 + [record]

    @pytest.mark.parametrize(("mtu", "ref"), [(3, 0), (4, 128), (2, 0)])
    def test_too_small_an_mtu(self, mtu: int, ref: int) -> None:
        """An MTU that cannot hold the frame byte, the fragment header and one byte of data is a ValueError."""
        with pytest.raises(ValueError, match="cannot carry"):
            fragment_payload_for_mtu(mtu, record_size=10, message_ref=ref)


class TestReassembly:
    def test_missing_reports_the_gaps(self) -> None:
        """missing() lists the indices not yet held, and None once the message completed or for an unknown ref."""
        parts = [decode_fragment(raw) for raw in fragment(bytes(20), max_fragment_payload=5, message_ref=1)]
        reassembly = Reassembly(max_age_s=10)
        assert reassembly.missing(1, now=0) is None
        reassembly.add(parts[3], now=0)
        reassembly.add(parts[1], now=0)
        assert reassembly.missing(1, now=0) == [0, 2, 4]
        for part in (parts[0], parts[2]):
            assert reassembly.add(part, now=1) is None
        assert reassembly.add(parts[4], now=2) == bytes(20)
        assert reassembly.missing(1, now=2) is None

    def test_partials_expire_after_their_latest_fragment(self) -> None:
        """A partial lives max_age_s after its latest fragment; expire() drops it at that time, not before."""
        parts = [decode_fragment(raw) for raw in fragment(bytes(20), max_fragment_payload=5, message_ref=1)]
        reassembly = Reassembly(max_age_s=10)
        reassembly.add(parts[0], now=0)
        reassembly.add(parts[1], now=8)
        assert reassembly.expire(now=17.9) == []
        assert reassembly.missing(1, now=17.9) == [2, 3, 4]
        assert reassembly.expire(now=18) == [1]
        assert len(reassembly) == 0

    def test_an_expired_partial_is_not_completed_by_late_fragments(self) -> None:
        """Fragments arriving after their partial expired start afresh: the message is never completed with holes."""
        parts = [decode_fragment(raw) for raw in fragment(bytes(8), max_fragment_payload=5, message_ref=1)]
        reassembly = Reassembly(max_age_s=10)
        reassembly.add(parts[0], now=0)
        assert reassembly.add(parts[1], now=10) is None
        assert reassembly.missing(1, now=10) == [0]

    def test_a_new_total_replaces_a_stale_partial(self) -> None:
        """A fragment under the same ref with another total drops what the old message left."""
        old = [decode_fragment(raw) for raw in fragment(bytes(30), max_fragment_payload=5, message_ref=4)]
        new = [decode_fragment(raw) for raw in fragment(b"new record", max_fragment_payload=5, message_ref=4)]
        reassembly = Reassembly(max_age_s=10)
        reassembly.add(old[0], now=0)
        reassembly.add(new[1], now=1)
        assert reassembly.missing(4, now=1) == [0, 2]
        assert reassembly.add(new[0], now=1) is None
        assert reassembly.add(new[2], now=1) == b"new record"

    def test_mixed_messages_fail_their_crc_and_deliver_nothing(self) -> None:
        """Two messages of one size under one ref mixed together fail the CRC: DecodeError, and the partial is gone."""
        one = [decode_fragment(raw) for raw in fragment(b"first record", max_fragment_payload=7, message_ref=2)]
        two = [decode_fragment(raw) for raw in fragment(b"other record", max_fragment_payload=7, message_ref=2)]
        reassembly = Reassembly(max_age_s=10)
        reassembly.add(one[0], now=0)
        with pytest.raises(DecodeError) as info:
            reassembly.add(two[1], now=0)
        assert info.value.reason is Reason.MALFORMED
        assert len(reassembly) == 0

    def test_refs_are_apart(self) -> None:
        """Interleaved fragments of two refs complete two records."""
        a = [decode_fragment(raw) for raw in fragment(b"alpha record", max_fragment_payload=4, message_ref=1)]
        b = [decode_fragment(raw) for raw in fragment(b"bravo record", max_fragment_payload=4, message_ref=2)]
        reassembly = Reassembly(max_age_s=10)
        done = [reassembly.add(part, now=0) for pair in zip(a, b, strict=True) for part in pair]
        assert [d for d in done if d is not None] == [b"alpha record", b"bravo record"]

    @pytest.mark.parametrize("age", [0, -1, float("nan"), float("inf")])
    def test_max_age_must_be_positive(self, age: float) -> None:
        """A max_age_s that is not a positive finite number is a ValueError."""
        with pytest.raises(ValueError, match="max_age_s"):
            Reassembly(max_age_s=age)


class TestOutgoing:
    @settings(max_examples=100)
    @given(record_bytes, st.integers(8, 120), st.floats(0, 0.8), st.integers(0, 2**32))
    def test_a_lossy_link_delivers_once_when_done(self, record: bytes, mtu: int, loss: float, seed: int) -> None:
        """Resending pending fragments over a lossy link completes the record at the ground exactly when done."""
        outgoing = Outgoing(record, mtu=mtu, message_ref=3)
        reassembly = Reassembly(max_age_s=3600)
        rng = random.Random(seed)
        got: list[bytes] = []
        for attempt in range(10_000):
            if outgoing.done:
                break
            index = rng.choice(outgoing.pending())
            frame = encode_frame_v2(fragments=[outgoing.parts[index]], compact=True)
            assert len(frame) <= mtu
            if rng.random() < loss:
                continue  # lost: not reported sent, sent again later
            result = reassembly.add(read_frame(frame).fragments[0], now=float(attempt))
            outgoing.mark_sent(index, now=float(attempt))
            got += [] if result is None else [result]
            assert (result is not None) == outgoing.done
        assert got == [record]
        assert outgoing.pending() == []

    def test_stale_when_the_ground_may_have_forgotten(self) -> None:
        """A message half sent and idle for 90 % of the ground's TTL is stale; a finished or unsent one never is."""
        outgoing = Outgoing(bytes(40), mtu=13, message_ref=0)
        assert not outgoing.stale(now=1e9, ttl_s=100)
        outgoing.mark_sent(0, now=10)
        outgoing.mark_sent(1, now=5)
        assert not outgoing.stale(now=99.9, ttl_s=100)
        assert outgoing.stale(now=100, ttl_s=100)
        for index in outgoing.pending():
            outgoing.mark_sent(index, now=11)
        assert outgoing.done
        assert not outgoing.stale(now=1e9, ttl_s=100)

    def test_mark_sent_checks_the_index(self) -> None:
        """Marking an index the message does not have is a ValueError."""
        outgoing = Outgoing(bytes(40), mtu=13, message_ref=0)
        with pytest.raises(ValueError, match="index"):
            outgoing.mark_sent(len(outgoing.parts), now=0)


class TestJoin:
    @pytest.mark.parametrize(
        ("parts", "reason"),
        [
            ([], Reason.INVALID_FIELD),
            ([Fragment(1, 0, 2, b"ab")], Reason.INVALID_FIELD),  # index 1 missing
            ([Fragment(1, 0, 2, b"ab"), Fragment(2, 1, 2, b"cd")], Reason.INVALID_FIELD),  # two refs
            ([Fragment(1, 0, 2, b"ab"), Fragment(1, 1, 2, b"cd")], Reason.MALFORMED),  # CRC fails
            ([Fragment(1, 0, 1, b"ab")], Reason.MALFORMED),  # no room for a record and a CRC
        ],
    )
    def test_refusals(self, parts: list[Fragment], reason: Reason) -> None:
        """join_fragments refuses incomplete sets, mixed refs and a failed CRC."""
        assert _reason(join_fragments, parts) is reason

    @pytest.mark.parametrize(
        ("ref", "index", "total", "data"),
        [(-1, 0, 1, b"x"), (MAX_MESSAGE_REF + 1, 0, 1, b"x"), (0, 1, 1, b"x"), (0, 0, 0, b"x"), (0, 0, 1, b"")],
    )
    def test_fragment_fields_are_checked(self, ref: int, index: int, total: int, data: bytes) -> None:
        """A Fragment with a field out of range is invalid_field."""
        assert _reason(Fragment, ref, index, total, data) is Reason.INVALID_FIELD


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))
