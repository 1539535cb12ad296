"""Uplink messages → queue: open the seal, validate, dedup, classify, XADD, then PUBACK and receipt.

Each MQTT message waits in the lane's buffer until the batch holding it is in
Redis; only then is it acknowledged (PUBACK). A flusher task takes
whatever has gathered — up to ``max_batch`` — and persists it in one round trip,
so batches grow with load and a lone message is never held back.

Distress has a lane of its own (own connection, own buffer, own flusher), so an
SOS never waits behind a routine batch.

Each outcome also goes to :class:`~gateway.presence.Presence` (in memory; see there what is
attributed to a terminal), and rejection log lines are throttled per reason
(:class:`~gateway.logs.LogThrottle`), so a flood of forged messages cannot flood the log;
counters and receipts stay exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway import logs
from gateway.counters import Counters
from gateway.exceptions import MessageRejected, TransientError, stop_if_cancelling
from gateway.mqtt import Inbound
from gateway.names import Topics
from gateway.presence import Presence
from gateway.queue import Accepted, EnqueueOutcome, Queue
from gateway.queue.trace import Rejection, Trace
from gateway.quotas import Quotas
from gateway.receipts import Receipt, ReceiptKind, ReceiptSink
from gateway.terminals import KeyCache, TerminalRecord
from protocols.envelope import Kind, Message, Priority
from protocols.errors import DecodeError, Reason
from protocols.frame import Record, encode_record
from protocols.seal import Header, open_sealed, peek_header

__all__ = ["Intake", "Lane", "message_id"]

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0


def message_id(terminal: str, seq: int) -> str:
    """Return the id every hop uses for a message (unique: (terminal, seq) is queued once)."""
    return f"{terminal}:{seq}"


class Intake(Protocol):
    """Where a lane's messages come from, able to stop reading while the lane catches up."""

    def pause_reading(self) -> None:
        """Stop taking messages in (the broker keeps them)."""

    def resume_reading(self) -> None:
        """Take messages in again."""


class _Trust(enum.Enum):
    """How far a message was authenticated: what it may say about the terminal it names."""

    NONE = 0
    """Not read up to a registered terminal: nothing to attribute."""
    CLAIMED = 1
    """Names a registered terminal, but its seal did not verify (or the terminal is revoked)."""
    SEALED = 2
    """Its seal verified: the terminal's key made it."""


@dataclass(slots=True)
class _Inbound:
    mqtt: Inbound
    """Its ``dup`` flag means the broker re-delivers it: a duplicate is then our own unacked message, not a replay."""
    received_at: float
    header: Header | None = None
    message: Message | None = None
    sender: str | None = None
    """The terminal named by the topic: the broker's ACL vouches for it, so receipts go there."""
    trust: _Trust = _Trust.NONE


def _traceable(batch: _Batch) -> list[Rejection]:
    """Refusals whose seal verified, so (terminal, seq) is authentic; replays are traced by the enqueue script."""
    return [
        Rejection(i.header.terminal, i.header.seq, exc.reason.value, receipt=i.header.receipt, at=i.received_at)
        for i, exc in batch.rejected
        if i.trust is _Trust.SEALED and i.header is not None
    ]


@dataclass(slots=True)
class _Batch:
    items: list[_Inbound]
    rejected: list[tuple[_Inbound, MessageRejected]] = field(default_factory=list)


class Lane:
    """One ingest lane (ordinary or distress): buffer, validate and persist uplink messages.

    Args:
        name: ``up`` or ``sos``; appears in logs and the flusher task's name.
        distress: whether this lane takes the distress topic (and only distress).
        queue: where accepted messages go.
        keys: terminal keys, cached.
        topics: the topic layout.
        receipts: where receipts go.
        counters: this process's counters.
        max_batch: the largest batch persisted in one round trip.
        quotas: per-terminal quotas, checked once a message is authenticated; None for none.
        max_buffered: messages held before the lane stops reading its connection (Mosquitto 2.0
            ignores the receive maximum, so without this a large broker backlog lands in memory).
        clock: wall-clock time source (Unix seconds).
        presence: where per-terminal activity goes (last seen, position, counts); None for nowhere.
        rejection_lines_per_s: rejection log lines per reason and second; the rest are summarised.
        in_distress: whether a terminal has an active SOS incident: its position reports then ride
            in the distress class (and never expire).
        trace: where refusals of authenticated messages are traced; None for nowhere.
    """

    def __init__(
        self,
        *,
        name: str,
        distress: bool,
        queue: Queue,
        keys: KeyCache,
        topics: Topics,
        receipts: ReceiptSink,
        counters: Counters,
        max_batch: int = 1000,
        quotas: Quotas | None = None,
        max_buffered: int = 20_000,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        presence: Presence | None = None,
        rejection_lines_per_s: int = 10,
        in_distress: Callable[[str], bool] = lambda terminal: False,
        trace: Trace | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_buffered < 2 * max_batch:
            raise ValueError("max_buffered must be at least twice max_batch")
        self.name = name
        self._distress = distress
        self._queue = queue
        self._keys = keys
        self._topics = topics
        self._receipts = receipts
        self._counters = counters
        self._max_batch = max_batch
        self._quotas = quotas
        self._max_buffered = max_buffered
        self._intake: Intake | None = None
        self._paused = False
        self._clock = clock
        self._log = logger or logging.getLogger(f"satgw.ingest.{name}")
        self._presence = presence
        self._in_distress = in_distress
        self._trace = trace
        self._rejection_log = logs.LogThrottle(logger=self._log, what="rejections", per_period=rejection_lines_per_s)
        self._buffer: list[_Inbound] = []
        self._in_flight = 0
        self._wakeup = asyncio.Event()

    def attach(self, intake: Intake) -> None:
        """Pause and resume ``intake`` to keep at most about ``max_buffered`` messages in memory."""
        self._intake = intake

    def handle(self, message: Inbound) -> None:
        """Take one MQTT message; it is acknowledged once durable in Redis or rejected for good."""
        self._buffer.append(_Inbound(message, self._clock()))
        self._wakeup.set()
        if self._intake is not None and len(self._buffer) >= self._max_buffered:
            self._pause()

    def _pause(self) -> None:
        # Said again every max_batch messages while over the limit (it is idempotent): a reconnect
        # brings a fresh connection that reads until told otherwise.
        if not self._paused:
            self._paused = True
            self._counters.add("ingest.paused")
        elif len(self._buffer) % self._max_batch:
            return
        assert self._intake is not None
        self._intake.pause_reading()

    def _maybe_resume(self) -> None:
        if self._paused and self._intake is not None and len(self._buffer) < self._max_buffered // 2:
            self._paused = False
            self._intake.resume_reading()

    @property
    def backlog(self) -> int:
        """Messages received but not yet persisted or rejected."""
        return len(self._buffer) + self._in_flight

    async def run(self) -> None:
        """Persist batches until cancelled; a batch that meets a Redis outage is retried, never dropped.

        Two batches overlap: while one waits for Redis, the next is opened and validated. Each
        batch acknowledges only after the one before it, so PUBACKs keep the arrival order.
        """
        previous: asyncio.Task[None] | None = None
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                stop_if_cancelling()
                if not self._buffer:
                    await self._idle()
                    continue
                batch, self._buffer = self._buffer[: self._max_batch], self._buffer[self._max_batch :]
                self._maybe_resume()
                current = asyncio.create_task(self._persist_with_retry(batch, previous), name=f"ingest[{self.name}]")
                tasks.add(current)
                current.add_done_callback(tasks.discard)
                if previous is not None:
                    await previous
                previous = current
        finally:
            for task in tasks:
                task.cancel()  # unacknowledged messages: the broker sends them again
            self._rejection_log.flush(everything=True)

    async def _idle(self) -> None:
        """Wait for messages; meanwhile summarise held-back rejection lines when their second is over."""
        due = self._rejection_log.next_flush_in()
        try:
            async with asyncio.timeout(due):
                await self._wakeup.wait()
        except TimeoutError:
            self._rejection_log.flush()
        self._wakeup.clear()

    async def _persist_with_retry(self, items: list[_Inbound], previous: asyncio.Task[None] | None) -> None:
        self._in_flight += len(items)
        try:
            batch, outcomes = await self._persist_retrying(items)
            if previous is not None:
                await asyncio.shield(previous)  # its PUBACKs go first; a cancel here must not cancel it
            self._counters.add(f"ingest.batch.{_size_bucket(len(items))}")
            for item in items:
                item.mqtt.ack()  # PUBACK: everything in this batch is now durable or refused
            self._report(batch, outcomes)
            if self._trace is not None and (refused := _traceable(batch)):
                await self._trace.rejected_many(refused)  # best effort: logs, never raises
        finally:
            self._in_flight -= len(items)

    async def _persist_retrying(self, items: list[_Inbound]) -> tuple[_Batch, list[EnqueueOutcome]]:
        delay = _RETRY_FIRST_S
        while True:
            try:
                return await self._persist(items)
            except TransientError as exc:
                self._counters.add("ingest.redis_retries")
                self._log.warning(
                    "ingest %s: %d messages wait for Redis: %s",
                    self.name,
                    len(items),
                    exc,
                    extra=logs.fields(count=len(items)),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    async def _persist(self, items: list[_Inbound]) -> tuple[_Batch, list[EnqueueOutcome]]:
        batch = _Batch(items=[])
        for item in items:
            self._screen(item, batch)
        await self._open(batch)
        outcomes = await self._queue.enqueue([self._accepted(i) for i in batch.items]) if batch.items else []
        return batch, outcomes

    def _screen(self, item: _Inbound, batch: _Batch) -> None:
        """Checks that need no key: topic, header, class-versus-topic."""
        try:
            item.header = self._check_header(item)
            batch.items.append(item)
        except DecodeError as exc:
            batch.rejected.append((item, MessageRejected(exc.reason, exc.detail)))
        except MessageRejected as exc:
            batch.rejected.append((item, exc))
        except Exception as exc:  # a decoder bug must cost one message, never the lane
            self._log.exception(
                "ingest %s: unexpected error screening %s",
                self.name,
                item.mqtt.topic,
                extra=logs.fields(terminal=item.sender, topic=item.mqtt.topic),
            )
            batch.rejected.append((item, MessageRejected(Reason.MALFORMED, f"unreadable ({type(exc).__name__})")))

    def _check_header(self, item: _Inbound) -> Header:
        parsed = self._topics.parse_up(item.mqtt.topic)
        if parsed is None:
            raise MessageRejected(Reason.TOPIC_MISMATCH, f"{item.mqtt.topic!r} is not an uplink topic")
        terminal, on_sos_topic = parsed
        item.sender = terminal
        header = peek_header(item.mqtt.payload)
        if header.terminal != terminal:
            raise _rejected(header, Reason.TOPIC_MISMATCH, f"sealed for {header.terminal}, published on {terminal}")
        if on_sos_topic != (header.priority is Priority.DISTRESS) or on_sos_topic != self._distress:
            raise _rejected(header, Reason.TOPIC_MISMATCH, f"class {header.priority.label} on topic {item.mqtt.topic}")
        return header

    async def _open(self, batch: _Batch) -> None:
        records = await self._records({i.header.terminal for i in batch.items if i.header})
        kept: list[_Inbound] = []
        for item in batch.items:
            try:
                item.message = self._open_one(item, records)
                kept.append(item)
            except MessageRejected as exc:
                batch.rejected.append((item, exc))
        batch.items = kept

    async def _records(self, terminals: set[str]) -> dict[str, TerminalRecord | None]:
        found: dict[str, TerminalRecord | None] = {}
        missing = []
        for terminal in terminals:
            cached = self._keys.get_cached(terminal)
            if isinstance(cached, TerminalRecord) or cached is None:
                found[terminal] = cached
            else:
                missing.append(terminal)
        if missing:
            found.update(await self._keys.fetch(missing))
        return found

    def _open_one(self, item: _Inbound, records: dict[str, TerminalRecord | None]) -> Message:
        assert item.header is not None
        header = item.header
        record = records.get(header.terminal)
        if record is None:
            raise _rejected(header, Reason.UNKNOWN_TERMINAL, f"terminal {header.terminal} is not provisioned")
        item.trust = _Trust.CLAIMED
        if record.revoked_at is not None:
            raise _rejected(header, Reason.REVOKED_TERMINAL, f"terminal {header.terminal} was revoked")
        try:
            message = open_sealed(item.mqtt.payload, record.key, header)
        except DecodeError as exc:
            if exc.reason is not Reason.BAD_SEAL:  # only the tag check comes before decryption succeeds
                item.trust = _Trust.SEALED
            raise _rejected(header, exc.reason, exc.detail) from None
        item.trust = _Trust.SEALED
        over = self._quotas.take(message.terminal, message.priority) if self._quotas and not item.mqtt.dup else None
        if over is not None:
            raise _rejected(header, Reason.QUOTA_EXCEEDED, f"{message.terminal} is over its {over}")
        return self._lifted(message)

    def _lifted(self, message: Message) -> Message:
        """A position report of a terminal in distress, moved into the distress class."""
        if message.kind is not Kind.POSITION or message.priority is Priority.DISTRESS:
            return message
        if not self._in_distress(message.terminal):
            return message
        self._counters.add("ingest.lifted_to_distress")
        return dataclasses.replace(message, priority=Priority.DISTRESS, ttl=None)

    def _accepted(self, item: _Inbound) -> Accepted:
        message = item.message
        assert message is not None
        return Accepted(
            message_id=message_id(message.terminal, message.seq),
            terminal=message.terminal,
            seq=message.seq,
            priority=message.priority,
            record=encode_record(Record(message=message, received_at=item.received_at)),
            received_at=item.received_at,
            expires_at=item.received_at + message.ttl if message.ttl is not None else None,
            receipt=message.receipt,
        )

    def _report(self, batch: _Batch, outcomes: Sequence[EnqueueOutcome]) -> None:
        for item, outcome in zip(batch.items, outcomes, strict=True):
            if outcome is EnqueueOutcome.QUEUED:
                self._report_accepted(item)
            elif item.mqtt.dup and outcome is EnqueueOutcome.DUPLICATE:
                self._counters.add("ingest.redelivered")  # persisted before a crash or reconnect; PUBACK again
            else:
                if self._quotas is not None and item.message is not None:
                    self._quotas.refund(item.message.terminal, item.message.priority)  # a replay cost the link nothing
                self._report_rejected(item, _rejected(item.header, Reason.REPLAY, f"seq already used ({outcome.name})"))
        for item, exc in batch.rejected:
            self._report_rejected(item, exc)
        self._rejection_log.flush()

    def _report_accepted(self, item: _Inbound) -> None:
        message = item.message
        assert message is not None
        self._counters.add(f"accepted.{message.priority.label}")
        if self._presence is not None:
            self._presence.accepted(message, item.received_at)
        if message.priority is Priority.DISTRESS:  # rare, and the one an operator must see; others would flood
            mid = message_id(message.terminal, message.seq)
            self._log.info(
                "distress %s accepted on %s",
                mid,
                item.mqtt.topic,
                extra=logs.fields(
                    terminal=message.terminal,
                    seq=message.seq,
                    message_id=mid,
                    priority=message.priority,
                    topic=item.mqtt.topic,
                ),
            )
        if message.receipt:
            mid = message_id(message.terminal, message.seq)
            self._receipts.send(Receipt(ReceiptKind.ACCEPTED, message.terminal, message.seq, message_id=mid))

    def _report_rejected(self, item: _Inbound, exc: MessageRejected) -> None:
        self._counters.add(f"rejected.{exc.reason.value}")
        if self._presence is not None and item.header is not None:
            if item.trust is _Trust.SEALED:
                self._presence.refused(item.header.terminal, exc.reason)
            elif item.trust is _Trust.CLAIMED:
                self._presence.unauthenticated(item.header.terminal)
        if self._rejection_log.allow(exc.reason.value):
            self._log_rejected(item, exc)
        # Without a readable header we cannot know whether the terminal wants receipts: tell it anyway.
        if item.sender is not None and (item.header is None or item.header.receipt):
            receipt = Receipt(ReceiptKind.REJECTED, item.sender, exc.seq, reason=exc.reason.value, detail=exc.detail)
            self._receipts.send(receipt)

    def _log_rejected(self, item: _Inbound, exc: MessageRejected) -> None:
        mid = message_id(exc.terminal, exc.seq) if exc.terminal is not None and exc.seq is not None else None
        self._log.info(
            "rejected %s on %s: %s",
            exc.reason.value,
            item.mqtt.topic,
            exc.detail,
            extra=logs.fields(
                terminal=exc.terminal or item.sender,
                seq=exc.seq,
                message_id=mid,
                priority=item.header.priority if item.header is not None else None,
                reason=exc.reason.value,
                detail=exc.detail,
                topic=item.mqtt.topic,
            ),
        )


def _rejected(header: Header | None, reason: Reason, detail: str) -> MessageRejected:
    if header is None:
        return MessageRejected(reason, detail)
    return MessageRejected(reason, detail, terminal=header.terminal, seq=header.seq)


def _size_bucket(n: int) -> str:
    for limit in (1, 10, 100):
        if n <= limit:
            return f"le{limit}"
    return "gt100"
