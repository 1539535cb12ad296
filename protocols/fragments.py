"""Fragments: a record too large for one transmission, split for the link and joined again on the ground.

A *message* is a record followed by the CRC-16 of that record (2 bytes, big-endian);
it is cut into ``total`` consecutive chunks, and each chunk travels as one fragment::

    uvarint  message_ref, chosen by the sender, unique per link while a partial message may live
    uvarint  place = total x (total - 1) / 2 + index   (index 0..total-1, total 1..MAX_FRAGMENTS)
    ...      the chunk (at least one byte): the rest of the fragment

``place`` numbers every (index, total) pair in one integer, so a message of up to 15
fragments spends one byte on both. The ground joins the chunks in index order and
checks the CRC: fragments of two messages mixed under one ref never become a record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocols.errors import DecodeError, Reason
from protocols.record import MAX_RECORD_BYTES
from protocols.wire import Reader, crc16, uvarint, uvarint_size

__all__ = [
    "COMPACT_FRAME_OVERHEAD",
    "MAX_FRAGMENTS",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_REF",
    "Fragment",
    "Outgoing",
    "Reassembly",
    "decode_fragment",
    "encode_fragment",
    "fragment",
    "fragment_for_mtu",
    "fragment_header_size",
    "fragment_payload_for_mtu",
    "join_fragments",
]

MAX_MESSAGE_BYTES = MAX_RECORD_BYTES + 2
MAX_FRAGMENTS = MAX_MESSAGE_BYTES
"""Most fragments of one message: every chunk holds at least one byte."""
MAX_MESSAGE_REF = 2**32 - 1
COMPACT_FRAME_OVERHEAD = 1
"""What a compact frame (``protocols.frame``) adds around the one fragment it carries."""


@dataclass(frozen=True, slots=True)
class Fragment:
    """One chunk of a fragmented message, as it crosses the link."""

    message_ref: int
    index: int
    total: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.message_ref <= MAX_MESSAGE_REF:
            raise DecodeError(Reason.INVALID_FIELD, f"message_ref {self.message_ref} is not 0..{MAX_MESSAGE_REF}")
        if not (1 <= self.total <= MAX_FRAGMENTS and 0 <= self.index < self.total):
            raise DecodeError(Reason.INVALID_FIELD, f"fragment {self.index} of {self.total} is out of range")
        if not 1 <= len(self.data) <= MAX_MESSAGE_BYTES:
            raise DecodeError(Reason.INVALID_FIELD, f"fragment of {len(self.data)} bytes is empty or too long")


def encode_fragment(part: Fragment) -> bytes:
    """Return the link form of one fragment."""
    return uvarint(part.message_ref) + uvarint(_place(part.index, part.total)) + part.data


def decode_fragment(raw: bytes) -> Fragment:
    """Decode one fragment (the whole of ``raw``), raising only :class:`DecodeError`."""
    if len(raw) > MAX_MESSAGE_BYTES + 20:
        raise DecodeError(Reason.OVERSIZED, f"fragment of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES + 20}")
    reader = Reader(raw)
    ref, place = reader.uvarint(), reader.uvarint()
    if place >= _place(0, MAX_FRAGMENTS + 1):
        raise DecodeError(Reason.INVALID_FIELD, f"fragment place {place} is beyond {MAX_FRAGMENTS} fragments")
    total = (1 + math.isqrt(1 + 8 * place)) // 2
    return Fragment(message_ref=ref, index=place - _place(0, total), total=total, data=reader.rest())


def fragment(record: bytes, *, max_fragment_payload: int, message_ref: int) -> list[bytes]:
    """Split ``record`` into encoded fragments whose chunks hold at most ``max_fragment_payload`` bytes each.

    Every chunk but the last is full. The encoded fragment adds ``fragment_header_size`` bytes to its chunk.

    Raises:
        ValueError: an empty or oversized record, a payload below 1, a ref out of range, or too many fragments.
    """
    if not 1 <= len(record) <= MAX_RECORD_BYTES:
        raise ValueError(f"a record has 1..{MAX_RECORD_BYTES} bytes, got {len(record)}")
    if max_fragment_payload < 1:
        raise ValueError(f"max_fragment_payload must be at least 1, got {max_fragment_payload}")
    if not 0 <= message_ref <= MAX_MESSAGE_REF:
        raise ValueError(f"message_ref must be 0..{MAX_MESSAGE_REF}, got {message_ref}")
    message = record + crc16(record).to_bytes(2, "big")
    chunks = [message[i : i + max_fragment_payload] for i in range(0, len(message), max_fragment_payload)]
    return [encode_fragment(Fragment(message_ref, i, len(chunks), c)) for i, c in enumerate(chunks)]


def fragment_header_size(*, message_ref: int, total: int) -> int:
    """Return the most bytes a fragment of a ``total``-fragment message under ``message_ref`` adds to its chunk."""
    return uvarint_size(message_ref) + uvarint_size(_place(total - 1, total))


def fragment_payload_for_mtu(mtu: int, *, record_size: int, message_ref: int) -> int:
    """Return the largest chunk for which every fragment of a ``record_size``-byte record fits a compact frame.

    Args:
        mtu: the link's largest frame, bytes.
        record_size: the length of the encoded record.
        message_ref: the ref its fragments will carry (a larger ref takes more bytes).

    Raises:
        ValueError: the MTU cannot hold a fragment header and one byte, or the record size is out of range.
    """
    if not 1 <= record_size <= MAX_RECORD_BYTES:
        raise ValueError(f"record_size must be 1..{MAX_RECORD_BYTES}, got {record_size}")
    room = mtu - COMPACT_FRAME_OVERHEAD - uvarint_size(message_ref)
    # A smaller chunk means more fragments and maybe a wider place: step down until the header fits.
    for payload in range(min(room - 1, record_size + 2), 0, -1):
        total = -(-(record_size + 2) // payload)
        header = COMPACT_FRAME_OVERHEAD + fragment_header_size(message_ref=message_ref, total=total)
        if total <= MAX_FRAGMENTS and header + payload <= mtu:
            return payload
    raise ValueError(f"an MTU of {mtu} bytes cannot carry a fragment of message_ref {message_ref}")


def fragment_for_mtu(record: bytes, *, mtu: int, message_ref: int) -> list[bytes]:
    """Split ``record`` into fragments each of which fits, alone, a compact frame of ``mtu`` bytes."""
    payload = fragment_payload_for_mtu(mtu, record_size=len(record), message_ref=message_ref)
    return fragment(record, max_fragment_payload=payload, message_ref=message_ref)


def join_fragments(parts: Sequence[Fragment]) -> bytes:
    """Return the record carried by every fragment of one message, checking its CRC.

    Raises:
        DecodeError: the parts are not exactly indices 0..total-1 of one message (``invalid_field``),
            or the joined bytes fail their CRC (``malformed``).
    """
    ordered = sorted(parts, key=lambda part: part.index)
    if not ordered or [(p.message_ref, p.index, p.total) for p in ordered] != [
        (ordered[0].message_ref, i, ordered[0].total) for i in range(ordered[0].total)
    ]:
        raise DecodeError(Reason.INVALID_FIELD, "fragments are not every index of one message")
    message = b"".join(part.data for part in ordered)
    record, check = message[:-2], message[-2:]
    if not 1 <= len(record) <= MAX_RECORD_BYTES or crc16(record).to_bytes(2, "big") != check:
        raise DecodeError(Reason.MALFORMED, f"message {ordered[0].message_ref} fails its CRC once joined")
    return record


@dataclass(slots=True)
class _Partial:
    total: int
    last_at: float
    parts: dict[int, Fragment] = field(default_factory=dict)


class Reassembly:
    """The fragments of one link's unfinished messages; the reference model of the ground's Redis store.

    A partial message lives ``max_age_s`` after its latest fragment. A fragment whose total differs from
    its partial's replaces that partial (a stale message under a reused ref). Time is always passed in.

    Args:
        max_age_s: how long a partial message outlives its latest fragment.
    """

    def __init__(self, *, max_age_s: float) -> None:
        if not (math.isfinite(max_age_s) and max_age_s > 0):
            raise ValueError(f"max_age_s must be a positive number of seconds, got {max_age_s!r}")
        self._max_age_s = max_age_s
        self._partials: dict[int, _Partial] = {}

    def __len__(self) -> int:
        return len(self._partials)

    def add(self, part: Fragment, *, now: float) -> bytes | None:
        """Take one fragment; return the record if it completes its message, else None.

        A duplicate fragment is harmless. A completed message is forgotten, whether or not it passes its CRC.

        Raises:
            DecodeError: the completed message fails its CRC (``malformed``); nothing is delivered.
        """
        partial = self._partials.get(part.message_ref)
        if partial is None or partial.total != part.total or self._dead(partial, now):
            partial = self._partials[part.message_ref] = _Partial(total=part.total, last_at=now)
        partial.parts[part.index] = part
        partial.last_at = max(partial.last_at, now)
        if len(partial.parts) < partial.total:
            return None
        del self._partials[part.message_ref]
        return join_fragments(list(partial.parts.values()))

    def missing(self, message_ref: int, *, now: float) -> list[int] | None:
        """Return the indices still missing from a live partial message, or None if there is none."""
        partial = self._partials.get(message_ref)
        if partial is None or self._dead(partial, now):
            return None
        return [i for i in range(partial.total) if i not in partial.parts]

    def expire(self, *, now: float) -> list[int]:
        """Forget the partial messages whose latest fragment is ``max_age_s`` old or older; return their refs."""
        dead = [ref for ref, partial in self._partials.items() if self._dead(partial, now)]
        for ref in dead:
            del self._partials[ref]
        return dead

    def _dead(self, partial: _Partial, now: float) -> bool:
        return now - partial.last_at >= self._max_age_s


class Outgoing:
    """One record's fragments on their way over one link: the sender's mirror of :class:`Reassembly`.

    Each fragment travels alone in a compact frame of at most ``mtu`` bytes. The sender marks a
    fragment sent when the link reports its frame ``sent`` (the ground then holds it durably), sends
    the pending ones again after a loss, and acknowledges the record only when :attr:`done`. If the
    ground may have dropped the partial (:meth:`stale`), the sender starts again under a new ref.

    Args:
        record: the encoded record.
        mtu: the link's largest frame, bytes.
        message_ref: a ref fresh on this link (``FragmentStore.new_ref``).
    """

    def __init__(self, record: bytes, *, mtu: int, message_ref: int) -> None:
        self.message_ref = message_ref
        self.parts = tuple(fragment_for_mtu(record, mtu=mtu, message_ref=message_ref))
        """Each index's fragment, to send alone in ``encode_frame_v2(fragments=[part], compact=True)``."""
        self._sent: set[int] = set()
        self._last_sent_at: float | None = None

    @property
    def done(self) -> bool:
        """True once every fragment was reported sent."""
        return len(self._sent) == len(self.parts)

    def pending(self) -> list[int]:
        """The indices not reported sent yet, in order."""
        return [i for i in range(len(self.parts)) if i not in self._sent]

    def mark_sent(self, index: int, *, now: float) -> None:
        """Note that the frame carrying fragment ``index`` was reported sent at ``now``."""
        if not 0 <= index < len(self.parts):
            raise ValueError(f"index must be 0..{len(self.parts) - 1}, got {index}")
        self._sent.add(index)
        self._last_sent_at = now if self._last_sent_at is None else max(self._last_sent_at, now)

    def stale(self, *, now: float, ttl_s: float) -> bool:
        """True if the ground may have expired what was sent: nothing sent for ``ttl_s`` (less a margin)."""
        return self._last_sent_at is not None and not self.done and now - self._last_sent_at >= ttl_s * 0.9


def _place(index: int, total: int) -> int:
    return total * (total - 1) // 2 + index
