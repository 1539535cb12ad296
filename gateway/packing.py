"""How many queued records one frame can carry: the packing rule shared by the relay and ``satgw bench packing``.

A frame takes the shortest form that carries its records (compact for one, v2, or packed,
where records are coded relative to each other: see protocols/SPEC.md), and records go in
queue order until the next one would not fit.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocols.frame import FramePacker, best_size, encode_best

__all__ = ["encode", "frame_size", "packable"]


def encode(records: Sequence[bytes]) -> bytes:
    """The frame :func:`frame_size` measures: the shortest of compact (one record), v2 and packed."""
    return encode_best(records)


def frame_size(records: Sequence[bytes]) -> int:
    """The bytes of the smallest frame that carries ``records`` whole."""
    return best_size(records)


def packable(records: Sequence[bytes], *, mtu: int, limit: int) -> int:
    """How many of ``records``, taken in order, fit one frame of ``mtu`` bytes (at most ``limit``; 0 if none)."""
    packer = FramePacker()
    for count, record in enumerate(records[:limit]):
        if packer.size_with(record) > mtu:
            return count
        packer.add(record)
    return min(limit, len(records))
