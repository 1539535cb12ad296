"""Message traces: every hop one message went through, with its time, in one Redis string per message.

The trace of message ``"{terminal}:{seq}"`` is the string ``Keys.trace(message_id)``, one line per hop::

    <event> <unix time> key=value key=value\\n

Values escape ``%``, space and control characters as ``%XX``. The queue scripts append hops in the
same call as the step they record (enqueue, take, ack, bury, reclaim, requeue, purge, deliver), so
no hop costs a round trip of its own on the hot path; what happens outside Redis (a failed attempt,
a fragment sent, a rejection after the seal opened) is written by :class:`Trace` in one script call
per batch, best effort. APPEND keeps a key's TTL and a key an append creates gets one, so every
trace expires ``ttl_s`` after its first hop; ``ttl_s = 0`` writes nothing at all.

Times are the gateway's wall clock (Unix seconds). ``sent`` is stamped with the moment the frame
went to the link (a link hands the frame to the ground before it reports ``sent``), and readers
sort hops by time, so a trace reads received, queued, taken, sent, delivered, published.
docs/internals.md lists the events and their keys.
"""

from __future__ import annotations

import enum
import logging
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from gateway.exceptions import GatewayError, map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_int, check_keys
from gateway.queue.entries import MAX_SEQ
from gateway.queue.scripts import LuaScript
from protocols.envelope import TERMINAL_ID_PATTERN, Priority

__all__ = [
    "DEFAULT_TTL_S",
    "MAX_TTL_S",
    "Hop",
    "HopEvent",
    "MessageTrace",
    "Rejection",
    "Sent",
    "Stage",
    "State",
    "Trace",
    "TraceReader",
    "hop_line",
    "parse_hop",
    "parse_hops",
    "parse_message_id",
    "receipts_of",
    "state_of",
]

DEFAULT_TTL_S = 86_400
"""How long a trace is kept after its first hop, by default (a day)."""
MAX_TTL_S = 366 * 86_400

NOTE = LuaScript(name="note.lua")

_KEY = re.compile(r"[a-z_]{1,32}")
_TIME = re.compile(r"[0-9][0-9.eE+-]{0,31}")
_ESCAPED = re.compile(r"[%\x00-\x20\x7f]")
_SEQ = re.compile(r"[0-9]{1,19}")


class HopEvent(enum.StrEnum):
    """What happened to a message at one hop (docs/internals.md lists each event's keys)."""

    RECEIVED = "received"
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    TAKEN = "taken"
    RECLAIMED = "reclaimed"
    FAILED = "failed"
    FRAGMENT = "fragment"
    SENT = "sent"
    DELIVERED = "delivered"
    GROUND_DUPLICATE = "ground_duplicate"
    PUBLISHED = "published"
    EXPIRED = "expired"
    DEAD = "dead"
    REQUEUED = "requeued"
    PURGED = "purged"


@dataclass(frozen=True, slots=True)
class Hop:
    """One hop of a message: what happened, when (Unix seconds), and its details (``link``, ``class``, ...)."""

    event: HopEvent
    at: float
    details: Mapping[str, str]

    def __post_init__(self) -> None:
        if "class" in self.details and self.details["class"] not in ("0", "1", "2", "3"):
            raise ValueError(f"hop class must be 0..3, got {self.details['class'][:20]!r}")

    @property
    def link(self) -> str | None:
        """The link the hop happened on, if it names one."""
        return self.details.get("link")

    @property
    def priority(self) -> Priority | None:
        """The message's class, on the hops that name it (received, requeued)."""
        value = self.details.get("class")
        return None if value is None else Priority(int(value))


@dataclass(frozen=True, slots=True)
class Sent:
    """How a frame carrying taken entries went: the ``sent`` hop that :meth:`Queue.ack` writes."""

    link: str
    at: float
    """When the frame went to the link (Unix seconds)."""
    fragments: int = 0
    """How many fragments the message went as (the last one now sent); 0 for whole records."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message refused after its seal opened, so its (terminal, seq) is authentic."""

    terminal: str
    seq: int
    reason: str
    receipt: bool = False
    """Whether the terminal asked for receipts (it then got a ``rejected`` one)."""
    at: float | None = None
    """When it was received; None for now."""


class Stage(enum.StrEnum):
    """Where a message is, as its trace tells."""

    REJECTED = "rejected"
    RECEIVED = "received"
    QUEUED = "queued"
    TAKEN = "taken"
    RETRYING = "retrying"
    SENDING = "sending"
    SENT = "sent"
    AT_GROUND = "at_ground"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DEAD = "dead"
    PURGED = "purged"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class State:
    """The current stage of a message and a sentence saying it."""

    stage: Stage
    detail: str


@dataclass(frozen=True, slots=True)
class MessageTrace:
    """Everything the trace of one message says."""

    message_id: str
    terminal: str
    seq: int
    hops: tuple[Hop, ...]
    """In time order (ties keep the order they were written in)."""
    state: State
    priority: Priority | None
    receipts: tuple[tuple[str, float], ...]
    """(kind, time) of each receipt the gateway sent for these hops; empty unless the terminal asked."""
    unreadable: int
    """Lines of the stored trace that are not hops (skipped)."""


class TraceReader(Protocol):
    """What the HTTP API and the CLI need of traces."""

    async def get(self, message_id: str) -> MessageTrace | None:
        """The trace of ``message_id``, or None if none is kept."""
        ...


def parse_message_id(text: str) -> tuple[str, int]:
    """``"{terminal}:{seq}"`` as (terminal, seq).

    Raises:
        ValueError: ``text`` is not a terminal id (1-32 of ``A-Za-z0-9_.-``), a colon and a seq in 0..2^63-1.
    """
    terminal, sep, seq = text.rpartition(":")
    if not sep or not TERMINAL_ID_PATTERN.fullmatch(terminal) or not _SEQ.fullmatch(seq) or int(seq) > MAX_SEQ:
        raise ValueError(
            f"message id must be terminal:seq (terminal 1-32 of A-Za-z0-9_.-, seq 0..2^63-1), got {text[:80]!r}"
        )
    return terminal, int(seq)


def escape(value: str) -> str:
    """``value`` as a hop line carries it: ``%``, space and control characters as ``%XX`` (as common.lua's esc)."""
    return _ESCAPED.sub(lambda m: f"%{ord(m[0]):02X}", value)


def hop_line(event: HopEvent, at: float, /, **details: str | int | None) -> str:
    """One hop line, without its newline; details that are None are left out."""
    text = f"{event.value} {at:.6f}"
    for key, value in details.items():
        if value is not None:
            text += f" {key}={escape(str(value))}"
    return text


def parse_hop(line: bytes) -> Hop:
    """Parse one hop line (without its newline).

    Raises:
        ValueError: the line is not a hop (and only ValueError, whatever the bytes).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("hop line is not UTF-8") from None
    event, _, rest = text.partition(" ")
    when, _, tail = rest.partition(" ")
    try:
        kind = HopEvent(event)
    except ValueError:
        raise ValueError(f"unknown hop event {event[:40]!r}") from None
    details: dict[str, str] = {}
    for part in tail.split(" ") if tail else ():
        key, sep, value = part.partition("=")
        if not sep or not _KEY.fullmatch(key) or key in details:
            raise ValueError(f"hop detail {part[:40]!r} is not a new key=value")
        details[key] = _unescape(value)
    return Hop(kind, _time(when), details)


def _time(text: str) -> float:
    at = float(text) if _TIME.fullmatch(text) else math.nan
    if not math.isfinite(at):
        raise ValueError(f"hop time {text[:40]!r} is not a number of seconds")
    return at


def _unescape(value: str) -> str:
    try:
        return urllib.parse.unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"hop value {value[:40]!r} escapes bytes that are not UTF-8") from None


def parse_hops(raw: bytes) -> tuple[list[Hop], int]:
    """Every hop of a stored trace in time order, and how many lines were not hops; never raises."""
    hops: list[Hop] = []
    bad = 0
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            hops.append(parse_hop(line))
        except ValueError:
            bad += 1
    hops.sort(key=lambda h: h.at)  # stable: ties keep the order they were written in
    return hops, bad


# The stage each event says a message reached; a later hop of a lower rank does not undo a higher one
# (a link that reports lost after the ground got the frame, then a retry, leaves the message delivered).
_RANK = {
    HopEvent.REJECTED: 0,
    HopEvent.RECEIVED: 1,
    HopEvent.QUEUED: 2,
    HopEvent.REQUEUED: 2,
    HopEvent.TAKEN: 3,
    HopEvent.RECLAIMED: 3,
    HopEvent.FAILED: 3,
    HopEvent.FRAGMENT: 3,
    HopEvent.SENT: 4,
    HopEvent.DELIVERED: 5,
    HopEvent.PUBLISHED: 6,
    HopEvent.EXPIRED: 7,
    HopEvent.DEAD: 7,
    HopEvent.PURGED: 8,
}


def state_of(hops: Sequence[Hop]) -> State:
    """Where the message is, from its hops in time order: the furthest stage since its last requeue."""
    since = max((i for i, h in enumerate(hops) if h.event is HopEvent.REQUEUED), default=0)
    best: Hop | None = None
    for hop in hops[since:]:
        rank = _RANK.get(hop.event)
        if rank is not None and (best is None or rank >= _RANK[best.event]):
            best = hop
    if best is None:
        return State(Stage.UNKNOWN, "only replays of it were seen (its own trace may have expired)")
    return _describe(best, hops)


def _describe(hop: Hop, hops: Sequence[Hop]) -> State:
    d, link = hop.details, hop.link or "?"
    match hop.event:
        case HopEvent.REJECTED:
            return State(Stage.REJECTED, f"rejected: {d.get('reason', '?')}")
        case HopEvent.RECEIVED:
            return State(Stage.RECEIVED, "received, not queued")
        case HopEvent.QUEUED | HopEvent.REQUEUED:
            return State(Stage.QUEUED, f"queued in class {_class_label(hops)}, waiting for a link")
        case HopEvent.TAKEN:
            return State(Stage.TAKEN, f"taken by the relay of link {link} (consumer {d.get('by', '?')}), not yet sent")
        case HopEvent.RECLAIMED:
            return State(Stage.TAKEN, f"reclaimed by consumer {d.get('by', '?')}, waiting for a link")
        case HopEvent.FAILED:
            what = f"attempt {d.get('attempt', '?')} on link {link} failed ({d.get('code', '?')})"
            return State(Stage.RETRYING, f"{what}; held for a retry")
        case HopEvent.FRAGMENT:
            return State(Stage.SENDING, f"fragment {d.get('frag', '?')} sent on link {link}; the rest wait their turn")
        case HopEvent.SENT:
            return State(Stage.SENT, f"sent on link {link}, not yet at the ground")
        case HopEvent.DELIVERED:
            return State(Stage.AT_GROUND, f"at the ground (link {link}), waiting to be published")
        case HopEvent.PUBLISHED:
            return State(Stage.DELIVERED, "delivered: published to applications")
        case HopEvent.EXPIRED:
            return State(Stage.EXPIRED, "expired before it was sent")
        case HopEvent.DEAD:
            return State(Stage.DEAD, f"in the dead letters ({d.get('reason', '?')})")
        case _:
            return State(Stage.PURGED, "dropped with the dead letters (purged)")


def _class_label(hops: Sequence[Hop]) -> str:
    priority = _priority(hops)
    return "?" if priority is None else priority.label


def _priority(hops: Sequence[Hop]) -> Priority | None:
    classes = [h.priority for h in hops if h.priority is not None]
    return classes[-1] if classes else None


# Receipts the gateway sends at these hops when the terminal asked (ingest, relay and ground code paths);
# a relay's dead letter (link failed, too large) gets ``rejected``, one buried by reclaim or as malformed none.
_RECEIPTS = {
    HopEvent.QUEUED: "accepted",
    HopEvent.SENT: "sent",
    HopEvent.PUBLISHED: "delivered",
    HopEvent.EXPIRED: "expired",
}
_REJECTING_DEAD = ("link_failed", "too_large")


def receipts_of(hops: Sequence[Hop]) -> list[tuple[str, float]]:
    """(kind, time) of each receipt the gateway sent for ``hops``, if the terminal asked for receipts."""
    asked = any(h.event in (HopEvent.RECEIVED, HopEvent.REJECTED) and h.details.get("receipt") == "1" for h in hops)
    if not asked:
        return []
    out: list[tuple[str, float]] = []
    for hop in hops:
        kind = _RECEIPTS.get(hop.event)
        if hop.event is HopEvent.REJECTED or (
            hop.event is HopEvent.DEAD and hop.details.get("reason") in _REJECTING_DEAD
        ):
            kind = "rejected"
        if kind is not None:
            out.append((kind, hop.at))
    return out


class Trace:
    """Reads message traces and writes the hops that happen outside the queue scripts.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
        ttl_s: How long a trace is kept after its first hop; 0 writes no trace at all.
        clock: Wall-clock time (Unix seconds) the hops are stamped with.
        logger: Where a failed write is reported (writes are best effort: a message never waits for its trace).
    """

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        ttl_s: int = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        check_client(redis)
        check_keys(keys)
        check_int("ttl_s", ttl_s, 0, MAX_TTL_S)
        self._redis = redis
        self._keys = keys
        self._prefix = keys.trace("")
        self.ttl_s = ttl_s
        self.now = clock
        self._log = logger or logging.getLogger("satgw.trace")

    @property
    def enabled(self) -> bool:
        """True unless ``ttl_s`` is 0."""
        return self.ttl_s > 0

    def script_args(self, now: float | None = None) -> list[str | int]:
        """What ``trace_init`` (common.lua) takes: trace key prefix, TTL (0 when disabled) and the time."""
        if not self.enabled:
            return ["", 0, ""]
        return [self._prefix, self.ttl_s, f"{self.now() if now is None else now:.6f}"]

    async def get(self, message_id: str) -> MessageTrace | None:
        """The trace of ``message_id``, or None if none is kept.

        Raises:
            ValueError: ``message_id`` is not ``terminal:seq``.
            QueueUnavailable: Redis failed.
        """
        terminal, seq = parse_message_id(message_id)
        canonical = f"{terminal}:{seq}"
        with map_redis_errors(f"read the trace of {canonical}"):
            raw = await self._redis.get(self._keys.trace(canonical))
        if raw is None:
            return None
        hops, bad = parse_hops(raw if isinstance(raw, bytes) else raw.encode())
        return MessageTrace(
            message_id=canonical,
            terminal=terminal,
            seq=seq,
            hops=tuple(hops),
            state=state_of(hops),
            priority=_priority(hops),
            receipts=tuple(receipts_of(hops)),
            unreadable=bad,
        )

    async def rejected_many(self, rejections: Sequence[Rejection]) -> None:
        """Note messages refused after their seal opened (one script call; best effort, never raises)."""
        now = self.now()
        await self._note(
            [
                (
                    f"{r.terminal}:{r.seq}",
                    hop_line(HopEvent.REJECTED, now if r.at is None else r.at, reason=r.reason, receipt=int(r.receipt)),
                )
                for r in rejections
            ]
        )

    async def failed(self, attempts: Sequence[tuple[str, int]], *, link: str, code: str, at: float) -> None:
        """Note a transmission that failed: (message id, attempts so far) per message it carried; best effort."""
        await self._note([(mid, hop_line(HopEvent.FAILED, at, link=link, code=code, attempt=n)) for mid, n in attempts])

    async def fragment_sent(self, message_id: str, *, link: str, index: int, total: int, at: float) -> None:
        """Note that fragment ``index`` (from 1) of ``total`` went on ``link``; best effort."""
        await self._note([(message_id, hop_line(HopEvent.FRAGMENT, at, link=link, frag=f"{index}/{total}"))])

    async def _note(self, lines: Sequence[tuple[str, str]]) -> None:
        if not self.enabled or not lines:
            return
        args: list[str | int] = [self._prefix, self.ttl_s]
        for message_id, line in lines:
            args += [message_id, line + "\n"]
        try:
            with map_redis_errors(f"trace {len(lines)} hop(s) of {lines[0][0]}"):
                # one declared key routes the call to the slot every trace key shares
                await NOTE.run(self._redis, [self._keys.trace(lines[0][0])], args)
        except GatewayError as exc:  # a trace is for operators: the message must not wait for it
            self._log.warning("trace not written: %s", exc)
