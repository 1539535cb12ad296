"""The far end of the links: decode frames, dedup, deliver over MQTT, send ``delivered`` receipts.

:meth:`Ground.receive` is the links' :class:`~gateway.links.base.FrameSink`: it
returns only once what the frame carried is durable: whole records in the outbox
(deduplicated on (terminal, seq), atomically), fragments in the
:class:`~gateway.queue.fragments.FragmentStore`, so the relay may XACK a message once
every fragment of it went. The fragment that completes a message brings the whole
record into the outbox before :meth:`receive` returns; only then is the partial message
deleted, so a crash in between repeats the completion (deduplicated), never loses it.
A partial record is never delivered. A publisher task then drains the outbox to
``{prefix}/delivered/{terminal}`` at QoS 2 with a durable release step
(:mod:`gateway.mqtt.exactly_once`), so a crash at any moment neither loses nor repeats
a delivery. Receipts stay QoS 1: one may repeat after a crash.

The downlink has a ground of its own (``downlink=True``), over the downlink keys: the same
reassembly, dedup and exactly-once publishing, but to ``{prefix}/down/{terminal}`` with the
document of :func:`downlink_json`, and no receipts (the terminal is the recipient).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from gateway import logs
from gateway.counters import Counters
from gateway.exceptions import LinkError, TransientError, stop_if_cancelling
from gateway.ingest import message_id
from gateway.metrics import Metrics
from gateway.mqtt.exactly_once import ExactlyOncePublisher
from gateway.names import Topics
from gateway.presence import Presence
from gateway.queue import Delivery, Outbox, OutboxEntry
from gateway.queue.fragments import FragmentStore
from gateway.queue.release import ReleaseLog
from gateway.receipts import Receipt, ReceiptKind, ReceiptSink
from protocols.envelope import Priority
from protocols.errors import DecodeError
from protocols.fragments import Fragment, join_fragments
from protocols.frame import Record, decode_record, read_frame

__all__ = ["Ground", "delivery_json", "downlink_json"]

_RETRY_S = 0.2


def _message_fields(record: Record) -> dict[str, object]:
    """What both directions' documents say of the message itself."""
    m = record.message
    return {
        "id": message_id(m.terminal, m.seq),
        "terminal": m.terminal,
        "seq": m.seq,
        "priority": m.priority.label,
        "kind": m.kind.value,
        "body": m.body,
        "position": None if m.position is None else {"lat": m.position.lat, "lon": m.position.lon},
        "ttl": m.ttl,
    }


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def delivery_json(record: Record, *, link: str, delivered_at: float) -> bytes:
    """The JSON an application receives on ``{prefix}/delivered/{terminal}``."""
    times = {"ts": record.message.ts, "received_at": record.received_at, "delivered_at": delivered_at}
    return _encode({**_message_fields(record), **times, "link": link})


def downlink_json(record: Record, *, link: str, delivered_at: float) -> bytes:
    """The JSON a terminal receives on ``{prefix}/down/{terminal}`` for a downlink message.

    ``"down": "message"`` tells it from a receipt (which carries ``"receipt"``); ``seq`` counts the
    gateway's messages to this terminal, ``queued_at`` is when the gateway took the message in,
    ``at`` when it came off the link.
    """
    times = {"queued_at": record.received_at, "at": delivered_at}
    return _encode({"down": "message", **_message_fields(record), **times, "link": link})


class Ground:
    """The ground segment.

    Args:
        outbox: durable, deduplicated deliveries waiting to be published.
        releases: the durable notes of QoS 2 releases under way.
        topics: the topic layout.
        receipts: where ``delivered`` receipts go; None sends none.
        counters: this process's counters.
        clock: wall-clock time source.
        fragments: where partial messages wait for their other fragments; without it a frame
            that carries fragments is refused (so it is retried, never lost).
        metrics: where the ingest→delivered latency of published entries is observed; None for none.
        downlink: publish to the terminals' down topics (:func:`downlink_json`) instead of the delivered
            topics (:func:`delivery_json`).
        presence: where each terminal's delivered count goes; None for nowhere.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        releases: ReleaseLog,
        topics: Topics,
        receipts: ReceiptSink | None,
        counters: Counters,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        fragments: FragmentStore | None = None,
        metrics: Metrics | None = None,
        downlink: bool = False,
        presence: Presence | None = None,
    ) -> None:
        self._outbox = outbox
        self._fragments = fragments
        self._releases = releases
        self._topic = topics.down if downlink else topics.delivered
        self._document = downlink_json if downlink else delivery_json
        self._done = "sent down" if downlink else "delivered"
        self._receipts = receipts
        self._counters = counters
        self._clock = clock
        self._log = logger or logging.getLogger("satgw.ground")
        self._metrics = metrics
        self._presence = presence

    async def receive(self, frame: bytes, *, link: str) -> None:
        """Take a frame off ``link`` and make what it carries durable (deduplicated) before returning.

        Raises:
            LinkError: the frame does not decode, or completes a message that fails its CRC or does not
                decode; nothing of that message is delivered.
        """
        try:
            carried = read_frame(frame)
        except DecodeError as exc:
            self._counters.add("ground.bad_frames")
            raise LinkError(link, f"frame does not decode: {exc}") from exc
        records = list(carried.records)
        completed = await self._reassemble(carried.fragments, link=link)
        records += completed.values()
        now = self._clock()
        fresh = await self._outbox.deliver([self._delivery(r, link=link, at=now) for r in records])
        self._counters.add("ground.duplicates", fresh.count(False))
        if completed and self._fragments is not None:
            await self._fragments.forget(link, list(completed))

    async def _reassemble(self, fragments: tuple[Fragment, ...], *, link: str) -> dict[int, Record]:
        """Store ``fragments`` durably; return the records they complete, by message ref."""
        if not fragments:
            return {}
        if self._fragments is None:
            raise LinkError(link, "frame carries fragments but this ground keeps no fragment store")
        self._counters.add("ground.fragments", len(fragments))
        records: dict[int, Record] = {}
        for parts in await self._fragments.add(link, fragments):
            ref = parts[0].message_ref
            try:
                records[ref] = decode_record(join_fragments(parts))
            except DecodeError as exc:
                # Parts of two messages under one ref, or a sender's bug: drop them all, deliver nothing.
                await self._fragments.forget(link, [ref])
                self._counters.add("ground.bad_messages")
                raise LinkError(link, f"message {ref} from its fragments does not decode: {exc}") from exc
        self._counters.add("ground.reassembled", len(records))
        return records

    async def publish_forever(self, connect: Callable[[bool], ExactlyOncePublisher]) -> None:
        """Publish outbox entries until cancelled, recovering after every failure.

        ``connect(clean_start)`` makes a publisher under this ground's fixed client id.
        """
        delay = _RETRY_S
        while True:
            stop_if_cancelling()
            try:
                await self._release_committed(connect)
                async with connect(True) as publisher:  # drops unreleased, uncommitted copies: see exactly_once
                    delay = _RETRY_S
                    await self._drain(publisher)
            except TransientError as exc:
                stop_if_cancelling(exc)
                self._log.warning("ground publisher waits %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _release_committed(self, connect: Callable[[bool], ExactlyOncePublisher]) -> None:
        """Finish the releases a crash interrupted, in the session that holds them."""
        pending = await self._releases.pending()
        if not pending:
            return
        async with connect(False) as publisher:
            if publisher.session_present:
                await publisher.release(pending)
            else:  # the broker lost our session, and with it what we had not released: publish again
                self._log.error(
                    "broker session lost; republishing %d deliveries (may repeat)",
                    len(pending),
                    extra=logs.fields(count=len(pending)),
                )
                await publisher.publish_batch(list(pending.values()), commit=_nothing)
        await self._releases.forget(list(pending))
        self._counters.add("ground.recovered_releases", len(pending))

    async def _drain(self, publisher: ExactlyOncePublisher) -> None:
        while True:
            stop_if_cancelling()
            entries = await self._outbox.take(count=min(200, publisher.receive_maximum), block_s=1.0)
            if entries:
                await self._publish(publisher, entries)

    async def _publish(self, publisher: ExactlyOncePublisher, entries: list[OutboxEntry]) -> None:
        topics = [self._topic(e.terminal) for e in entries]

        async def commit(mids: list[int]) -> None:
            await self._releases.commit(entries, mids, topics)

        mids = await publisher.publish_batch(
            [(t, e.payload) for t, e in zip(topics, entries, strict=True)], commit=commit
        )
        await self._releases.forget(mids)
        if self._metrics is not None:
            self._metrics.delivered(entries)
        debug = self._log.isEnabledFor(logging.DEBUG)  # once per batch: the per-message line must cost nothing
        for entry in entries:
            self._counters.add(f"delivered.{entry.priority.label}")
            if self._presence is not None:
                self._presence.delivered(entry.terminal, entry.priority)
            if entry.priority is Priority.DISTRESS or debug:
                self._log.log(
                    logging.INFO if entry.priority is Priority.DISTRESS else logging.DEBUG,
                    "%s %s (via %s)",
                    self._done,
                    entry.message_id,
                    entry.link,
                    extra=logs.fields_of(entry, link=entry.link),
                )
            if entry.receipt and self._receipts is not None:
                receipt = Receipt(ReceiptKind.DELIVERED, entry.terminal, entry.seq, message_id=entry.message_id)
                self._receipts.send(receipt)

    def _delivery(self, record: Record, *, link: str, at: float) -> Delivery:
        m = record.message
        return Delivery(
            message_id=message_id(m.terminal, m.seq),
            terminal=m.terminal,
            seq=m.seq,
            priority=m.priority,
            payload=self._document(record, link=link, delivered_at=at),
            receipt=m.receipt,
            link=link,
            delivered_at=at,
        )


async def _nothing(mids: list[int]) -> None:
    return None
