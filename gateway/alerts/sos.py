"""Distress out: applies SOS events to incidents and tells rescue centres in CAP 1.2.

The ground appends every distress delivery to the incident event stream, the API appends
acknowledgements and closings; :class:`IncidentWorker` applies each event once
(:mod:`gateway.incidents` has the rules), hands the CAP alert it causes to every sink, sends
acknowledgements down to the terminal, saves the incident and only then acks the event. A crash
in between repeats the event: the alert goes out again with the same identifier (the sinks'
idempotency key), so a receiver can drop the repeat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from gateway.alerts.sinks import AlertSink, OutgoingAlert
from gateway.counters import Counters
from gateway.exceptions import GatewayError, TransientError, stop_if_cancelling
from gateway.incidents import (
    AlertRef,
    Incident,
    LifecycleError,
    Notice,
    OperatorAction,
    OperatorEvent,
    TerminalEvent,
    apply_operator,
    apply_terminal,
)
from gateway.queue.incidents import EventEntry, IncidentStore
from protocols import cap
from protocols.envelope import Kind, Position, Priority

__all__ = ["DownlinkSender", "IncidentWorker", "incident_alert"]

_BATCH = 50
_POLL_S = 0.2
"""How long the worker waits when no event is pending (an SOS reaches rescue centres this much later at most)."""
_RETRY_S = 0.5


class DownlinkSender(Protocol):
    """Where acknowledgements go down to the terminal (``gateway.downlink.Downlink``)."""

    async def send(self, *, terminal: str, body: str, priority: Priority, kind: Kind = Kind.TEXT) -> str:
        """Queue ``body`` for ``terminal``; return the message id once durable."""
        ...


def incident_alert(incident: Incident, notice: Notice, *, sender: str, at: float) -> cap.Alert:
    """The CAP 1.2 alert for one transition of ``incident`` (``notice.incident`` is the state after it)."""
    after = notice.incident
    alert = cap.sos_alert(
        identifier=f"{sender}.{after.id}.{len(incident.alerts) + 1}",
        sender=sender,
        terminal=after.terminal,
        sent=datetime.fromtimestamp(int(at), UTC),
        msg_type=cap.MsgType(notice.msg_type),
        references=[cap.Reference(sender, a.identifier, datetime.fromtimestamp(a.sent, UTC)) for a in incident.alerts],
        position=None if after.position is None else (after.position.lat, after.position.lon),
        text=after.nature or None,
        incident=after.id,
    )
    info = alert.infos[0]
    extra = (("incidentState", after.state.value),)
    clear = (cap.ResponseType.ALL_CLEAR,) if notice.all_clear else info.response_types
    info = dataclasses.replace(info, parameters=(*info.parameters, *extra), response_types=clear)
    return dataclasses.replace(alert, note=notice.note, infos=(info,))


class IncidentWorker:
    """Applies incident events one at a time, in stream order.

    Args:
        store: incidents and their event stream.
        sinks: where CAP alerts go (webhooks, the MQTT topic).
        downlink: where acknowledgements go down to terminals; None to send none.
        sender: the CAP ``sender`` of every alert (no spaces, commas or ``<&``).
        counters: this process's counters.
        position_every_s: a position report within this long of the incident's last alert updates the
            incident without an alert of its own (the next alert carries it); 0 announces every one.
    """

    def __init__(
        self,
        *,
        store: IncidentStore,
        sinks: Sequence[AlertSink],
        downlink: DownlinkSender | None,
        sender: str,
        counters: Counters,
        position_every_s: float = 60.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if not position_every_s >= 0:
            raise ValueError(f"position_every_s must be at least 0, got {position_every_s}")
        if not sender or any(c in sender for c in " ,<&"):
            raise ValueError(f"sender must be non-empty without spaces, commas, '<' or '&', got {sender!r}")
        self._store, self._sinks, self._downlink = store, tuple(sinks), downlink
        self._sender, self._counters, self._position_every_s = sender, counters, position_every_s
        self._log = logger or logging.getLogger("satgw.incidents")

    async def run(self) -> None:
        """Apply events until cancelled; Redis or sink failures are retried, never skipped."""
        while True:
            stop_if_cancelling()
            try:
                entries = await self._store.read(count=_BATCH)
                for entry in entries:
                    await self.apply(entry)
                if not entries:
                    await asyncio.sleep(_POLL_S)
            except TransientError as exc:
                stop_if_cancelling(exc)
                self._log.warning("incident events: %s; retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def apply(self, entry: EventEntry) -> None:
        """Apply one event (once, even if it is read again after a crash), then ack it."""
        fields = entry.fields
        try:
            if b"op" in fields:
                await self._apply_operator(entry.stream_id, _operator_event(fields))
            else:
                await self._apply_terminal(entry.stream_id, _terminal_event(fields))
        except (ValueError, KeyError, LifecycleError) as exc:
            self._counters.add("incidents.refused_events")
            self._log.warning("incident event %s refused: %s", entry.stream_id, exc)
        await self._store.ack(entry.stream_id)

    async def _apply_terminal(self, sid: str, event: TerminalEvent) -> None:
        async def apply(current: Incident | None) -> Incident | None:
            if current is not None and _applied(current, sid):
                return None
            notice = apply_terminal(current, event)
            if notice is None:
                return None
            if self._too_soon(current, event):
                self._counters.add("incidents.positions_held")
                return _applied_quietly(notice.incident, sid)
            return await self._announce(current, notice, sid, event.at)

        await self._store.transition(apply, terminal=event.terminal)

    def _too_soon(self, current: Incident | None, event: TerminalEvent) -> bool:
        """A plain position report within ``position_every_s`` of the incident's last alert: kept, not announced."""
        if current is None or not current.alerts or event.kind is not Kind.POSITION:
            return False
        return event.at - current.alerts[-1].sent < self._position_every_s

    async def _apply_operator(self, sid: str, event: OperatorEvent) -> None:
        async def apply(current: Incident | None) -> Incident | None:
            if current is None:
                raise LifecycleError(f"no incident {event.incident}")
            if _applied(current, sid):
                return None
            notice = apply_operator(current, event)
            if notice.downlink is not None and self._downlink is not None:
                await self._send_down(current.terminal, notice.downlink)
            return await self._announce(current, notice, sid, event.at)

        await self._store.transition(apply, incident_id=event.incident)

    async def _announce(self, before: Incident | None, notice: Notice, sid: str, at: float) -> Incident:
        after = notice.incident
        previous = before if before is not None and before.id == after.id else dataclasses.replace(after, alerts=())
        alert = incident_alert(previous, notice, sender=self._sender, at=at)
        outgoing = OutgoingAlert(key=alert.identifier, kind=notice.msg_type, body=cap.build_alert(alert))
        for sink in self._sinks:
            await sink.publish(outgoing)
        self._counters.add(f"incidents.alerts.{notice.msg_type.lower()}")
        self._log.info("incident %s: %s (CAP %s %s)", after.id, notice.note, notice.msg_type, alert.identifier)
        ref = AlertRef(alert.identifier, float(int(at)), notice.msg_type)
        return dataclasses.replace(_applied_quietly(after, sid), alerts=(*previous.alerts, ref))

    async def _send_down(self, terminal: str, text: str) -> None:
        assert self._downlink is not None
        try:
            await self._downlink.send(terminal=terminal, body=text, priority=Priority.DISTRESS)
        except TransientError:
            raise
        except GatewayError as exc:  # a revoked terminal: the rescue centre still hears about the ack
            self._log.warning("acknowledgement not sent down to terminal %s: %s", terminal, exc)


def _applied_quietly(incident: Incident, sid: str) -> Incident:
    """``incident`` with its last log entry naming the event that made it (so a repeat is skipped)."""
    return dataclasses.replace(incident, log=(*incident.log[:-1], {**incident.log[-1], "ev": sid}))


def _applied(incident: Incident, sid: str) -> bool:
    return any(entry.get("ev") == sid for entry in incident.log)


def _terminal_event(fields: dict[bytes, bytes]) -> TerminalEvent:
    doc = json.loads(fields[b"b"])
    pos = doc.get("position")
    return TerminalEvent(
        message_id=str(doc["id"]),
        terminal=str(doc["terminal"]),
        seq=int(doc["seq"]),
        kind=Kind(doc["kind"]),
        body=str(doc.get("body") or ""),
        position=None if pos is None else Position(float(pos["lat"]), float(pos["lon"])),
        at=float(doc["received_at"]),
    )


def _operator_event(fields: dict[bytes, bytes]) -> OperatorEvent:
    return OperatorEvent(
        incident=fields[b"inc"].decode(),
        action=OperatorAction(fields[b"op"].decode()),
        text=fields[b"text"].decode(),
        by=fields[b"by"].decode(),
        at=float(fields[b"at"]),
    )
