"""One scheduler per link: strict priority, packing, fragments, retries, XACK only after the link says ``sent``.

Before every transmission the relay asks the queue again for the highest class
waiting, so an SOS that arrives while a routine backlog drains goes out in the
next slot. While the link's interval keeps ordinary traffic waiting, the relay
blocks on the distress stream alone: distress may use the emergency exemption.

An operator may pause a relay: it then takes nothing new, distress included (other links
still carry it; pausing every link stops all traffic). Transmissions under way finish, and
entries taken while the pause began go back to the shared backlog for the other links.

A message too large for one frame goes as fragments, one per transmission; between
two of its fragments the message waits in the backlog like any other, so distress
still overtakes it. It is acked only once the ground holds every fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway import logs, packing
from gateway.ceilings import Ceilings
from gateway.counters import Counters
from gateway.exceptions import TransientError, stop_if_cancelling
from gateway.links.base import Clock, Feedback, FeedbackCode, Link
from gateway.metrics import Metrics
from gateway.queue import Entry, Queue
from gateway.queue.fragments import FragmentStore
from gateway.queue.trace import Sent, Trace
from gateway.receipts import Receipt, ReceiptKind, ReceiptSink
from protocols.envelope import Priority
from protocols.fragments import Outgoing
from protocols.frame import MAX_RECORDS, encode_frame_v2

__all__ = ["Backlog", "Relay"]

_IDLE_BLOCK_S = 1.0
_ACK_RETRY_S = 0.2
_RETRY_POLL_S = 0.05


@dataclass(order=True, slots=True)
class _Held:
    priority: int
    order: int
    entry: Entry = field(compare=False)
    attempts: int = field(compare=False, default=0)
    not_before: float = field(compare=False, default=0.0)
    outgoing: Outgoing | None = field(compare=False, default=None)
    """The fragments of an oversized message, once its first one went."""


async def reclaim_forever(queue: Queue, backlog: Backlog, *, idle_s: float) -> None:
    """Every ``idle_s / 2`` (at most 30 s), move entries that a consumer left idle for ``idle_s`` into ``backlog``.

    How a crashed process's taken-but-unsent entries get sent by another; runs until cancelled.
    """
    while True:
        stop_if_cancelling()
        await asyncio.sleep(min(idle_s / 2, 30.0))
        with contextlib.suppress(TransientError):
            for entry in await queue.reclaim(min_idle_s=idle_s):
                backlog.push(entry)


class Backlog:
    """Entries this process holds outside the stream: retries, leftovers of packing, reclaimed ones.

    Shared by the relays of one process; ordered by class, then by arrival.
    """

    def __init__(self) -> None:
        self._heap: list[_Held] = []
        # Stream ids are unique per stream only: two classes may hold the same id.
        self._ids: set[tuple[int, str]] = set()
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(
        self, entry: Entry, *, attempts: int = 0, not_before: float = 0.0, outgoing: Outgoing | None = None
    ) -> None:
        """Hold ``entry`` for a later transmission (ignored if already held)."""
        if (entry.priority, entry.stream_id) in self._ids:
            return
        self._ids.add((entry.priority, entry.stream_id))
        heapq.heappush(self._heap, _Held(entry.priority, next(self._order), entry, attempts, not_before, outgoing))

    def head_priority(self, now: float) -> int | None:
        """The class of the most urgent entry that may go at ``now``, if any."""
        ready = [h.priority for h in self._heap if h.not_before <= now]
        return min(ready) if ready else None

    def next_ready_at(self, *, max_priority: int = Priority.ROUTINE) -> float | None:
        """The earliest time a held entry within ``max_priority`` may go."""
        return min((h.not_before for h in self._heap if h.priority <= max_priority), default=None)

    def pop(self, now: float, *, max_priority: int) -> _Held | None:
        """Remove and return the most urgent entry that may go at ``now`` within ``max_priority``."""
        ready = [h for h in self._heap if h.not_before <= now and h.priority <= max_priority]
        if not ready:
            return None
        held = min(ready)
        self._heap.remove(held)
        heapq.heapify(self._heap)
        self._ids.discard((held.entry.priority, held.entry.stream_id))
        return held


class Relay:
    """Carries queued messages over one link.

    Args:
        link: the satellite link this relay feeds.
        queue: the class streams.
        backlog: entries held by this process (shared between its relays).
        receipts: where ``sent`` and ``expired`` receipts go.
        counters: this process's counters.
        clock: the link's clock (simulated in tests).
        pack_max: at most this many messages in one frame.
        max_in_flight: transmissions under way at once on this link.
        max_attempts: lost transmissions before a non-distress message is dead-lettered.
        ceilings: the share of the link each class may use (distress has no ceiling); None for none.
        fragments: refs for fragmented messages (shared with the ground); without it a message
            larger than the link's frame is dead-lettered as ``too_large``.
        metrics: where the ingest→sent latency of acked entries is observed; None for none.
        trace: where failed attempts and fragments sent are noted in each message's trace (the queue
            notes the rest); None for none.
    """

    def __init__(
        self,
        *,
        link: Link,
        queue: Queue,
        backlog: Backlog,
        receipts: ReceiptSink,
        counters: Counters,
        clock: Clock,
        pack_max: int = 32,
        max_in_flight: int = 64,
        max_attempts: int = 8,
        ceilings: Ceilings | None = None,
        fragments: FragmentStore | None = None,
        logger: logging.Logger | None = None,
        metrics: Metrics | None = None,
        trace: Trace | None = None,
    ) -> None:
        if not 1 <= pack_max <= MAX_RECORDS:
            raise ValueError(f"pack_max must be in 1..{MAX_RECORDS} (records per frame)")
        if max_in_flight < 1 or max_attempts < 1:
            raise ValueError("max_in_flight and max_attempts must be at least 1")
        self._link = link
        self._queue = queue
        self._backlog = backlog
        self._receipts = receipts
        self._counters = counters
        self._clock = clock
        self._pack_max = pack_max
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_attempts = max_attempts
        self._ceilings = ceilings
        self._fragments = fragments
        self._log = logger or logging.getLogger(f"satgw.relay.{link.name}")
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._metrics = metrics
        self._trace = trace
        # Traces are stamped with wall-clock time; the link clock may be simulated.
        self._wall = trace.now if trace is not None else time.time
        self._unpaused = asyncio.Event()
        self._unpaused.set()

    @property
    def name(self) -> str:
        """The link's name."""
        return self._link.name

    @property
    def in_flight(self) -> int:
        """Transmissions under way."""
        return len(self._tasks)

    @property
    def paused(self) -> bool:
        """True while an operator holds this relay (see :meth:`pause`)."""
        return not self._unpaused.is_set()

    def pause(self) -> None:
        """Take nothing new, distress included, until :meth:`resume`; transmissions under way finish."""
        self._unpaused.clear()

    def resume(self) -> None:
        """Take entries again after :meth:`pause`."""
        self._unpaused.set()

    async def run(self) -> None:
        """Schedule transmissions until :meth:`stop` is called, then wait for those under way."""
        while not self._stopping:
            stop_if_cancelling()
            try:
                await self.step()
            except TransientError as exc:
                self._log.warning(
                    "relay %s waits for Redis: %s", self._link.name, exc, extra=logs.fields(link=self._link.name)
                )
                await asyncio.sleep(_ACK_RETRY_S)
        await self.drain()

    def stop(self) -> None:
        """Take no new entries; :meth:`run` returns once transmissions under way end."""
        self._stopping = True

    async def drain(self) -> None:
        """Wait for every transmission under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def step(self) -> None:
        """Pick the most urgent frame the link may carry now and start its transmission."""
        if self.paused:
            with contextlib.suppress(TimeoutError):  # wake now and then, so stop() is seen
                await asyncio.wait_for(self._unpaused.wait(), _IDLE_BLOCK_S)
            return
        await self._slots.acquire()
        try:
            batch = await self._next_batch()
        except BaseException:
            self._slots.release()
            raise
        if not self._unpaused.is_set():  # paused while we waited for the queue: let the other links have what we took
            for held in batch:
                self._hold(held)
            batch = []
        if not batch:
            self._slots.release()
            return
        if self._ceilings is not None:  # a lost frame used the link's capacity too
            self._ceilings.record(self._clock.now(), [Priority(h.priority) for h in batch])
        task = asyncio.create_task(self._transmit(batch), name=f"satgw.relay[{self._link.name}].tx")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Entries of a failed transmission stay pending in Redis; reclaim brings them back.
            self._log.error(
                "transmission on %s failed",
                self._link.name,
                exc_info=task.exception(),
                extra=logs.fields(link=self._link.name),
            )

    async def _next_batch(self) -> list[_Held]:
        routine_wait = self._link.ready_in(Priority.ROUTINE)
        shares = self._ceilings.ceiling(self._clock.now()) if self._ceilings else Priority.ROUTINE
        # While ordinary traffic must wait out the interval, only distress (exempt) may go.
        ceiling = Priority.DISTRESS if routine_wait > 0 else shares
        block_s = min(routine_wait, _IDLE_BLOCK_S) if routine_wait > 0 else _IDLE_BLOCK_S
        first = await self._first(ceiling, block_s)
        if first is None:
            return []
        if self._link.ready_in(Priority(first.priority)) > 0:
            self._hold(first)  # e.g. distress on a link without the exemption: wait for the slot
            await self._clock.sleep(min(self._link.ready_in(Priority(first.priority)), _IDLE_BLOCK_S))
            return []
        return await self._pack(first, ceiling)

    async def _first(self, ceiling: int, block_s: float) -> _Held | None:
        now = self._clock.now()
        held_priority = self._backlog.head_priority(now)
        if held_priority is not None and held_priority <= ceiling:
            # Something is held: only a strictly more urgent fresh entry may overtake it.
            fresh = await self._take(max_priority=held_priority - 1, count=1, block_s=0.0)
            return fresh[0] if fresh else self._backlog.pop(now, max_priority=ceiling)
        ready_at = self._backlog.next_ready_at(max_priority=ceiling)
        if ready_at is not None:
            block_s = max(0.0, min(block_s, ready_at - now))
        if self._tasks:
            # A transmission under way may fail and put its entries back: look again soon.
            block_s = min(block_s, _RETRY_POLL_S)
        fresh = await self._take(max_priority=ceiling, count=1, block_s=block_s)
        return fresh[0] if fresh else None

    async def _take(self, *, max_priority: int, count: int, block_s: float) -> list[_Held]:
        if max_priority < Priority.DISTRESS:
            return []
        entries = await self._queue.take(
            count=count, block_s=block_s, max_priority=Priority(max_priority), link=self._link.name
        )
        return [_Held(e.priority, 0, e) for e in await self._drop_expired(entries)]

    async def _drop_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        now = self._clock.now()
        # Distress never expires, whatever its entry says.
        expired = [e for e in entries if e.priority > 0 and e.expires_at is not None and e.expires_at <= now]
        if expired:
            await self._queue.expire(expired, link=self._link.name)
            for entry in expired:
                self._counters.add(f"expired.{entry.priority.label}")
                self._log.info(
                    "expired %s before it was sent", entry.message_id, extra=logs.fields_of(entry, link=self._link.name)
                )
                if entry.receipt:
                    self._receipts.send(_receipt(ReceiptKind.EXPIRED, entry, link=None))
        return [e for e in entries if e not in expired]

    async def _pack(self, first: _Held, ceiling: int) -> list[_Held]:
        """Fill the frame with the most urgent entries that fit, never above ``ceiling``."""
        if self._pack_max == 1 or self._oversized(first):
            return [first]  # an oversized message goes alone, as one fragment per transmission
        more = await self._take(max_priority=ceiling, count=self._pack_max - 1, block_s=0.0)
        whole = [first, *(h for h in more if not self._oversized(h))]
        count = max(1, packing.packable([h.entry.record for h in whole], mtu=self._link.mtu, limit=self._pack_max))
        for rest in [*whole[count:], *(h for h in more if self._oversized(h))]:
            self._hold(rest)
        return whole[:count]

    def _oversized(self, held: _Held) -> bool:
        """True if the message needs fragments (and the relay can send them)."""
        too_big = packing.frame_size([held.entry.record]) > self._link.mtu
        return too_big and self._fragments is not None

    def _hold(self, held: _Held, *, attempts: int | None = None, not_before: float = 0.0) -> None:
        attempts = held.attempts if attempts is None else attempts
        self._backlog.push(held.entry, attempts=attempts, not_before=not_before, outgoing=held.outgoing)

    async def _transmit(self, batch: list[_Held]) -> None:
        try:
            if len(batch) == 1 and self._oversized(batch[0]):
                await self._transmit_fragment(batch[0])
                return
            started = self._wall()
            feedback = await self._send(packing.encode([h.entry.record for h in batch]), batch)
            await self._settle(batch, feedback, Sent(link=self._link.name, at=started))
        finally:
            self._slots.release()

    async def _transmit_fragment(self, held: _Held) -> None:
        """Send the next pending fragment of ``held``; ack it once the ground has every fragment."""
        assert self._fragments is not None
        now = self._clock.now()
        if held.outgoing is None or held.outgoing.stale(now=now, ttl_s=self._fragments.ttl_s):
            ref = await self._fragments.new_ref(self._link.name)
            held.outgoing = Outgoing(held.entry.record, mtu=self._link.mtu, message_ref=ref)
        outgoing = held.outgoing
        index, total = outgoing.pending()[0], len(outgoing.parts)
        started = self._wall()
        feedback = await self._send(encode_frame_v2(fragments=[outgoing.parts[index]], compact=True), [held])
        if feedback.sent:
            outgoing.mark_sent(index, now=self._clock.now())
            self._counters.add(f"link.{self._link.name}.fragments")
            if self._trace is not None:
                await self._trace.fragment_sent(
                    held.entry.message_id, link=self._link.name, index=index + 1, total=total, at=started
                )
            if not outgoing.done:
                self._hold(held)  # the rest waits its turn in the backlog, behind anything more urgent
                return
        await self._settle([held], feedback, Sent(link=self._link.name, at=started, fragments=total))

    async def _send(self, frame: bytes, batch: list[_Held]) -> Feedback:
        try:
            feedback = await self._link.transmit(frame, priority=Priority(min(h.priority for h in batch)))
        except Exception as exc:  # the far side failed to persist: the frame did not go
            self._log.warning(
                "link %s transmit failed: %s",
                self._link.name,
                exc,
                extra=logs.fields(
                    link=self._link.name, count=len(batch), priority=Priority(min(h.priority for h in batch))
                ),
            )
            feedback = Feedback(FeedbackCode.LOST)
        self._counters.add(f"link.{self._link.name}.{feedback.code.value}")
        return feedback

    async def _settle(self, batch: list[_Held], feedback: Feedback, sent: Sent) -> None:
        if feedback.sent:
            await self._ack(batch, sent)
            return
        now = self._clock.now()
        counts = feedback.code not in (FeedbackCode.INTERVAL,)
        if self._trace is not None:
            tries = [(h.entry.message_id, h.attempts + (1 if counts else 0)) for h in batch]
            await self._trace.failed(tries, link=self._link.name, code=feedback.code.value, at=self._wall())
        for held in batch:
            attempts = held.attempts + (1 if counts else 0)
            if feedback.code is FeedbackCode.TOO_LARGE or (attempts >= self._max_attempts and held.priority > 0):
                await self._dead_letter(held, feedback)
            else:
                self._hold(held, attempts=attempts, not_before=now if held.priority == 0 else now + feedback.wait_s)

    async def _ack(self, batch: list[_Held], sent: Sent) -> None:
        entries = [h.entry for h in batch]
        # Receipts first: the ground's "delivered" goes out on the same connection after a PUBACK,
        # so publishing "sent" before the XACK round trip keeps the terminal's receipts in order.
        debug = self._log.isEnabledFor(logging.DEBUG)  # once per frame: the per-message line must cost nothing
        for entry in entries:
            self._counters.add(f"sent.{entry.priority.label}")
            if entry.priority is Priority.DISTRESS or debug:
                self._log.log(
                    logging.INFO if entry.priority is Priority.DISTRESS else logging.DEBUG,
                    "sent %s on %s",
                    entry.message_id,
                    self._link.name,
                    extra=logs.fields_of(entry, link=self._link.name),
                )
            if entry.receipt:
                self._receipts.send(_receipt(ReceiptKind.SENT, entry, link=self._link.name))
        if self._metrics is not None:
            self._metrics.sent(entries)
        while True:
            try:
                await self._queue.ack(entries, sent=sent)
                break
            except TransientError as exc:  # it went; the ack must follow, or a redelivery (deduped) will
                self._log.warning(
                    "relay %s: ack waits for Redis: %s",
                    self._link.name,
                    exc,
                    extra=logs.fields(link=self._link.name, count=len(entries)),
                )
                await asyncio.sleep(_ACK_RETRY_S)

    async def _dead_letter(self, held: _Held, feedback: Feedback) -> None:
        reason = "too_large" if feedback.code is FeedbackCode.TOO_LARGE else "link_failed"
        await self._queue.dead_letter([held.entry], reason=reason)
        self._counters.add(f"dead.{held.entry.priority.label}")
        self._log.warning(
            "dead-lettered %s after %d attempts: %s",
            held.entry.message_id,
            held.attempts,
            reason,
            extra=logs.fields_of(held.entry, link=self._link.name, reason=reason, attempts=held.attempts),
        )
        if held.entry.receipt:
            self._receipts.send(_receipt(ReceiptKind.REJECTED, held.entry, link=self._link.name, reason=reason))


def _receipt(kind: ReceiptKind, entry: Entry, *, link: str | None, reason: str | None = None) -> Receipt:
    return Receipt(kind, entry.terminal, entry.seq, message_id=entry.message_id, link=link, reason=reason)
