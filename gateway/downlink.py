"""The downlink: operator, API or alerts → downlink queue → satellite link → ground → ``{prefix}/down/{terminal}``.

It is the uplink's path run the other way, with the same parts over a second key namespace
(:attr:`gateway.names.Keys.downlink`, ``{prefix}:down:…``): :meth:`Downlink.send` numbers the
message (a per-terminal counter, :class:`~gateway.queue.downseq.SeqCounter`), builds the
:class:`~protocols.envelope.Message` addressed to the terminal and queues its link record in the
downlink class streams (dedup + XADD, one round trip), returning once it is durable. In the relay
role, :class:`DownlinkRelays` runs per configured link a :class:`~gateway.relay.Relay` over those
streams (strict priority: a distress acknowledgement overtakes queued routine traffic) and a second
link of the same profile (the forward channel, with its own capacity and intervals), whose far end
is a :class:`~gateway.ground.Ground` in downlink mode: reassembly, dedup and exactly-once (QoS 2)
publishing under its own client id ``satgw-{node}-down``.

What a terminal receives on ``{prefix}/down/{terminal}`` (QoS 2, so once) is one JSON object
(:func:`gateway.ground.downlink_json`)::

    {"down": "message", "id": "T1:7", "terminal": "T1", "seq": 7, "priority": "distress",
     "kind": "text", "body": "SOS received, rescue under way", "position": null, "ttl": null,
     "queued_at": 1718000000.12, "at": 1718000000.31, "link": "geo-1"}

``"down": "message"`` tells it from a receipt on the same topic (receipts carry ``"receipt"``).
``seq`` counts the gateway's messages to that terminal (1, 2, …; a gap is possible, a repeat is
not); ``id`` is ``"{terminal}:{seq}"``; ``priority`` is the class label; ``position`` is
``{"lat", "lon"}`` or null; ``ttl`` the seconds a non-distress message may wait before it is
dropped, or null; ``queued_at`` when the gateway took it in, ``at`` when it came off the link
(Unix seconds); ``link`` the link that carried it. The terminal gets no receipts for these.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis

from gateway import logs
from gateway.ceilings import Ceilings
from gateway.config import GatewayConfig, Settings
from gateway.counters import Counters
from gateway.exceptions import GatewayError, MessageRejected
from gateway.ground import Ground
from gateway.ingest import message_id
from gateway.links.base import Clock
from gateway.links.factory import LinkConfig, build_link
from gateway.links.rdss_serial import RdssSerialProfile
from gateway.mqtt import ExactlyOncePublisher
from gateway.names import Keys, Topics
from gateway.queue import Accepted, EnqueueOutcome, Outbox, Queue
from gateway.queue.downseq import SeqCounter
from gateway.queue.fragments import FragmentStore
from gateway.queue.release import ReleaseLog
from gateway.receipts import Receipt
from gateway.relay import Backlog, Relay, reclaim_forever
from gateway.terminals import Registry, TerminalRecord
from protocols.envelope import Kind, Message, Position, Priority, validate_terminal_id
from protocols.errors import DecodeError, Reason
from protocols.record import Record, encode_record

__all__ = ["COUNTER_PREFIX", "Downlink", "DownlinkRelays"]

COUNTER_PREFIX = "down."
"""Every downlink counter is named like its uplink twin under this prefix (``down.sent.distress``)."""

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Starts a named background task the gateway watches and cancels at shutdown."""


class _Scoped(Counters):
    """Counts into another :class:`Counters` under a prefix, so downlink traffic never adds to the uplink's counts."""

    def __init__(self, inner: Counters, prefix: str) -> None:
        super().__init__()
        self._inner, self._prefix = inner, prefix

    def add(self, name: str, n: int = 1) -> None:
        self._inner.add(self._prefix + name, n)

    def get(self, name: str) -> int:
        return self._inner.get(self._prefix + name)

    def snapshot(self) -> dict[str, int]:
        return {
            k.removeprefix(self._prefix): v for k, v in self._inner.snapshot().items() if k.startswith(self._prefix)
        }


class _NoReceipts:
    """The downlink's relays and ground tell the terminal nothing but the message itself."""

    def send(self, receipt: Receipt) -> None:
        return None


class Downlink:
    """Queues messages for terminals; any gateway role may send (the relay role carries them).

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The gateway's keys; the downlink uses their :attr:`~gateway.names.Keys.downlink` namespace.
        registry: The terminal registry: only a registered, unrevoked terminal is sent to.
        consumer: This process's consumer name in the downlink queues' group.
        counters: This process's counters (the downlink counts under ``down.``).
        max_deliveries: How many times an entry may be taken before reclaim dead-letters it.
        clock: Wall-clock time source (Unix seconds).
    """

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        registry: Registry,
        consumer: str,
        counters: Counters,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self.keys = keys.downlink
        self.queue = Queue(redis=redis, keys=self.keys, consumer=consumer, max_deliveries=max_deliveries)
        """The downlink class queues."""
        self.counters: Counters = _Scoped(counters, COUNTER_PREFIX)
        """The counters of the downlink path (names under ``down.`` in the process counters)."""
        self._seqs = SeqCounter(redis=redis, keys=self.keys)
        self._registry = registry
        self._clock = clock
        self._log = logger or logging.getLogger("satgw.downlink")

    async def setup(self) -> None:
        """Create the downlink class streams and their group (idempotent)."""
        await self.queue.setup()

    async def send(
        self,
        *,
        terminal: str,
        body: str,
        priority: Priority,
        kind: Kind = Kind.TEXT,
        ttl: int | None = None,
        position: Position | None = None,
    ) -> str:
        """Queue a message for ``terminal`` and return its id ``"{terminal}:{seq}"`` once it is durable.

        Raises:
            MessageRejected: refused for good, with its reason: ``unknown_terminal``, ``revoked_terminal``,
                ``oversized`` (body over the envelope's limit) or ``invalid_field`` (bad terminal id, kind
                ``sos`` below distress, a ttl on distress or out of range, a lone surrogate in the body).
            QueueUnavailable: Redis failed; nothing was queued (a seq may have been used up).
        """
        try:
            draft = Message(
                terminal=validate_terminal_id(terminal),
                seq=1,  # checked with a placeholder, so a refused message uses up no seq
                priority=priority,
                kind=kind,
                body=body,
                position=position,
                ttl=ttl,
                ts=self._clock(),
            )
        except DecodeError as exc:
            raise self._refused(exc.reason, exc.detail, terminal) from None
        refused = self._refusal(terminal, await self._registry.get(terminal))
        if refused is not None:
            raise refused
        message = dataclasses.replace(draft, seq=await self._seqs.next(terminal))
        await self._enqueue([message])
        return message_id(terminal, message.seq)

    async def send_many(
        self, *, terminals: Sequence[str], body: str, priority: Priority, kind: Kind = Kind.TEXT
    ) -> dict[str, str]:
        """Queue one message for each of ``terminals`` in a single atomic enqueue; return terminal → message id.

        Three round trips whatever the count (registry, seqs, enqueue), and the enqueue is all or nothing.
        Unknown, revoked or malformed terminal ids are left out, each refusal counted and logged.

        Raises:
            MessageRejected: the message itself is refused (``oversized``, ``invalid_field``); nothing is queued.
            QueueUnavailable: Redis failed; nothing was queued (seqs may have been used up).
        """
        wanted = [t for t in dict.fromkeys(terminals) if self._valid_id(t)]
        if not wanted:
            return {}
        try:
            draft = Message(terminal=wanted[0], seq=1, priority=priority, kind=kind, body=body, ts=self._clock())
        except DecodeError as exc:
            raise self._refused(exc.reason, exc.detail, wanted[0]) from None
        records = await self._registry.get_many(wanted)
        usable = [t for t in wanted if self._refusal(t, records[t]) is None]
        seqs = await self._seqs.next_many(usable)
        messages = [dataclasses.replace(draft, terminal=t, seq=n) for t, n in zip(usable, seqs, strict=True)]
        await self._enqueue(messages)
        return {m.terminal: message_id(m.terminal, m.seq) for m in messages}

    def _valid_id(self, terminal: str) -> bool:
        try:
            validate_terminal_id(terminal)
        except DecodeError as exc:
            self._refused(exc.reason, exc.detail, terminal)
            return False
        return True

    def _refusal(self, terminal: str, record: TerminalRecord | None) -> MessageRejected | None:
        """Why nothing may go to ``terminal`` (counted and logged), or None if it may."""
        if record is None:
            return self._refused(Reason.UNKNOWN_TERMINAL, f"terminal {terminal} is not registered", terminal)
        if record.revoked:
            return self._refused(Reason.REVOKED_TERMINAL, f"terminal {terminal} was revoked", terminal)
        return None

    async def _enqueue(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        now = self._clock()
        items = [_accepted(m, now) for m in messages]
        outcomes = await self.queue.enqueue(items)
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome is not EnqueueOutcome.QUEUED:
                # Only if the seq counter was reset behind the replay window: nothing sane to do but say so.
                raise GatewayError(
                    f"downlink seq {item.message_id} was already used ({outcome.value}); its counter was reset"
                )
            self.counters.add(f"accepted.{item.priority.label}")
            level = logging.INFO if item.priority is Priority.DISTRESS else logging.DEBUG
            self._log.log(level, "downlink %s queued", item.message_id, extra=logs.fields_of(item))

    def _refused(self, reason: Reason, detail: str, terminal: str) -> MessageRejected:
        self.counters.add(f"rejected.{reason.value}")
        self._log.info(
            "downlink to %s refused: %s", terminal[:40], detail, extra=logs.fields(reason=reason.value, detail=detail)
        )
        return MessageRejected(reason, detail, terminal=terminal)


def _accepted(message: Message, now: float) -> Accepted:
    """A downlink message as the queue takes it (received now, no receipts)."""
    return Accepted(
        message_id=message_id(message.terminal, message.seq),
        terminal=message.terminal,
        seq=message.seq,
        priority=message.priority,
        record=encode_record(Record(message=message, received_at=now)),
        received_at=now,
        expires_at=now + message.ttl if message.ttl is not None else None,
        receipt=False,
    )


class DownlinkRelays:
    """The relay side of the downlink: per link a relay, a forward-channel link and the downlink ground.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        downlink: the downlink whose queues these relays drain.
        settings: the environment (node name, broker).
        config: links and relay tuning; links named in ``downlink_off`` and real terminals on a serial
            port (one port cannot be opened twice) carry no downlink.
        topics: the topic layout.
        clock: the links' clock.
        ceilings: builds the capacity ceilings of a link (a fresh account per call; None for none).
    """

    def __init__(
        self,
        *,
        redis: Redis,
        downlink: Downlink,
        settings: Settings,
        config: GatewayConfig,
        topics: Topics,
        clock: Clock,
        ceilings: Callable[[LinkConfig], Ceilings | None] = lambda _: None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._redis, self._downlink, self._settings, self._config = redis, downlink, settings, config
        self._topics, self._clock, self._ceilings = topics, clock, ceilings
        self._log = logger or logging.getLogger("satgw.downlink")
        self.backlog = Backlog()
        """Downlink entries this process holds for retry (never mixed with the uplink's: stream ids collide)."""
        self.relays: list[Relay] = []
        """One relay per link that carries the downlink."""

    def carries(self, profile: LinkConfig) -> bool:
        """True if the link ``profile`` describes carries the downlink too."""
        return profile.name not in self._config.downlink_off and not isinstance(profile, RdssSerialProfile)

    async def start(self, spawn: Spawn) -> None:
        """Set up the downlink ground, take back this node's unacked entries, and start every task with ``spawn``."""
        keys, node = self._downlink.keys, self._settings.node
        outbox = Outbox(redis=self._redis, keys=keys, consumer=node)
        await outbox.setup()
        for entry in await self._downlink.queue.recover_own():
            self.backlog.push(entry)
        fragments = FragmentStore(redis=self._redis, keys=keys)
        ground = Ground(
            outbox=outbox,
            releases=ReleaseLog(redis=self._redis, keys=keys, node=node),
            topics=self._topics,
            receipts=None,
            counters=self._downlink.counters,
            fragments=fragments,
            downlink=True,
            logger=logging.getLogger("satgw.downlink.ground"),
        )
        for profile in self._config.links:
            if self.carries(profile):
                spawn(self._relay(profile, ground, fragments).run(), f"downlink.relay[{profile.name}]")
        spawn(ground.publish_forever(self._publisher), "downlink.ground.publisher")
        spawn(
            reclaim_forever(self._downlink.queue, self.backlog, idle_s=self._config.reclaim_idle_s), "downlink.reclaim"
        )

    def _relay(self, profile: LinkConfig, ground: Ground, fragments: FragmentStore) -> Relay:
        relay = Relay(
            link=build_link(profile, sink=ground, clock=self._clock),
            queue=self._downlink.queue,
            backlog=self.backlog,
            receipts=_NoReceipts(),
            counters=self._downlink.counters,
            clock=self._clock,
            pack_max=self._config.pack_max,
            max_in_flight=self._config.max_in_flight,
            max_attempts=self._config.max_attempts,
            ceilings=self._ceilings(profile),
            fragments=fragments,
            logger=logging.getLogger(f"satgw.downlink.relay.{profile.name}"),
        )
        self.relays.append(relay)
        return relay

    def _publisher(self, clean_start: bool) -> ExactlyOncePublisher:
        client_id = f"satgw-{self._settings.node}-down"
        return ExactlyOncePublisher(url=self._settings.mqtt_url, client_id=client_id, clean_start=clean_start)
