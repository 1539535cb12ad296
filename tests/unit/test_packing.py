"""The packing rule: how many queued records one frame carries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.packing import encode, frame_size, packable
from protocols.frame import read_frame
from protocols.record import Record, decode_record, encode_record
from tests.unit.strategies import messages, times

record_bytes = st.builds(Record, message=messages(), received_at=times).map(encode_record)


def test_records_fill_the_frame_in_order_and_stop_at_the_first_that_does_not_fit() -> None:
    """Packing takes records in queue order and never lets a later, smaller one jump a larger one."""
    raw = [b"a" * 30, b"b" * 30, b"c" * 30, b"d" * 5]
    assert packable(raw, mtu=78, limit=255) == 2
    assert packable(raw, mtu=30, limit=255) == 0
    assert packable(raw, mtu=31, limit=255) == 1
    assert packable(raw, mtu=1000, limit=3) == 3


@given(st.lists(record_bytes, min_size=1, max_size=12), st.integers(min_value=20, max_value=600))
def test_what_is_packed_fits_and_reads_back(raw: list[bytes], mtu: int) -> None:
    """Whatever packable admits encodes to a frame within the MTU that reads back as the same records."""
    count = packable(raw, mtu=mtu, limit=255)
    if count:
        frame = encode(raw[:count])
        assert len(frame) == frame_size(raw[:count]) <= mtu
        assert list(read_frame(frame).records) == [decode_record(r) for r in raw[:count]]
