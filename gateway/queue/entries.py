"""The values that go into the class queues and come back out, and their stream-entry fields.

Stream entry fields (docs/internals.md): ``id`` message id, ``t`` terminal, ``s`` seq
(decimal), ``r`` receipt flag ``1``/``0``, ``rx`` receive time, ``x`` expiry time or empty,
``m`` the link record. Dead letters add ``reason``, ``p`` (class value) and ``sid`` (the
entry's id in its class stream).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from protocols.envelope import Priority

__all__ = [
    "MAX_SEQ",
    "Accepted",
    "DeadLetter",
    "Depth",
    "EnqueueOutcome",
    "Entry",
    "as_text",
    "check_seq",
    "decode_entry",
    "enqueue_head",
    "flat_fields",
    "stream_id_time",
]

MAX_SEQ = 2**63 - 1
"""The largest seq a terminal may use (the wire form carries it in 8 bytes, the queue as a signed 64-bit value)."""

Fields = Mapping[bytes, bytes]


class EnqueueOutcome(enum.Enum):
    """What :meth:`Queue.enqueue` did with one message."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    TOO_OLD = "too_old"


def check_seq(seq: int) -> None:
    """Raise ``ValueError`` unless ``seq`` is an int in 0..2^63-1."""
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq must be an integer in 0..2^63-1, got {seq!r}")


@dataclass(frozen=True, slots=True)
class Accepted:
    """One validated uplink message, ready to queue."""

    message_id: str
    terminal: str
    seq: int
    priority: Priority
    record: bytes
    received_at: float
    expires_at: float | None
    receipt: bool

    def __post_init__(self) -> None:
        if not self.terminal:
            raise ValueError("terminal must not be empty")
        check_seq(self.seq)
        if not isinstance(self.priority, Priority):
            raise ValueError(f"priority must be a Priority, got {self.priority!r}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued message, as a relay reads it back."""

    stream_id: str
    priority: Priority
    message_id: str
    terminal: str
    seq: int
    record: bytes
    received_at: float
    expires_at: float | None
    receipt: bool

    def expired(self, now: float) -> bool:
        """Return True if the message carries an expiry time and ``now`` is past it."""
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry in the dead-letter stream."""

    dead_id: str
    reason: str
    dead_at: float
    """When it was dead-lettered (Unix seconds, from the dead-letter id)."""
    priority: Priority
    stream_id: str
    """Its id in the class stream it left."""
    entry: Entry | None
    """The entry as it was queued, or None if its fields were malformed (reason ``malformed``)."""
    fields: Mapping[str, bytes]
    """Every raw field, for inspection."""


@dataclass(frozen=True, slots=True)
class Depth:
    """The state of one class queue."""

    priority: Priority
    depth: int
    """Entries waiting to be taken (so ``depth + pending`` is everything in the queue)."""
    pending: int
    """Entries taken by a relay and not yet acked."""
    oldest_age_s: float | None
    """Seconds since the oldest entry was received, or None when the queue is empty."""


def enqueue_head(item: Accepted) -> str:
    """The short fields of ``item`` as enqueue.lua reads them: seq, class, receipt flag, received at, expires at."""
    expires = "" if item.expires_at is None else repr(item.expires_at)
    return f"{item.seq} {item.priority:d} {'1' if item.receipt else '0'} {item.received_at!r} {expires}"


def flat_fields(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """Turn a ``[field, value, ...]`` reply into a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def decode_entry(priority: int, stream_id: bytes | str, fields: Fields) -> Entry:
    """Build an :class:`Entry` from stream-entry fields; raises KeyError/ValueError if they are malformed."""
    expires = fields[b"x"]
    return Entry(
        stream_id=stream_id if isinstance(stream_id, str) else stream_id.decode(),
        priority=Priority(priority),
        message_id=fields[b"id"].decode(),
        terminal=fields[b"t"].decode(),
        seq=int(fields[b"s"]),
        record=fields[b"m"],
        received_at=float(fields[b"rx"]),
        expires_at=float(expires) if expires else None,
        receipt=fields[b"r"] == b"1",
    )


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (the clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def stream_id_time(stream_id: bytes | str) -> float:
    """The Unix time (seconds) encoded in a stream id's millisecond part."""
    text = stream_id if isinstance(stream_id, str) else stream_id.decode()
    return int(text.split("-", 1)[0]) / 1000.0
