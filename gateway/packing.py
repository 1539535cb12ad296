"""How many queued records one frame can carry: the packing rule shared by the relay and ``satgw bench packing``."""

from __future__ import annotations

from collections.abc import Sequence

from protocols.frame import encode_frame_v2, frame_v2_size

__all__ = ["encode", "frame_size", "packable"]


def encode(records: Sequence[bytes]) -> bytes:
    """The frame :func:`frame_size` measures."""
    return encode_frame_v2(records=records, compact=len(records) == 1)


def frame_size(records: Sequence[bytes]) -> int:
    """The bytes of the smallest frame that carries ``records`` whole (one record: the compact form)."""
    if len(records) == 1:
        return frame_v2_size(record_sizes=[len(records[0])], compact=True)
    return frame_v2_size(record_sizes=[len(r) for r in records])


def packable(records: Sequence[bytes], *, mtu: int, limit: int) -> int:
    """How many of ``records``, taken in order, fit one frame of ``mtu`` bytes (at most ``limit``; 0 if none)."""
    count = 0
    while count < min(limit, len(records)) and frame_size(records[: count + 1]) <= mtu:
        count += 1
    return count
