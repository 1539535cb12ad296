"""CAP in: an authority's alert goes down to the terminals inside its areas.

:meth:`AlertIntake.accept` parses the XML safely (``protocols.cap``: no DTDs, no entities),
checks what the schema does not, and only then sends anything: one downlink message per
terminal whose last known position lies inside any area (polygon or circle), in the urgency
class for Immediate + Extreme alerts and the safety class otherwise, shortened to the downlink's
room. An Update also reaches the terminals its references reached; a Cancel reaches only those.
A private alert also goes to the registered terminals named in its addresses. Accepting the same
(sender, identifier) again sends nothing and answers what the first acceptance did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gateway.counters import Counters
from gateway.queue.inbound_alerts import InboundAlerts, InboundRecord
from gateway.queue.presence import Fix
from protocols import cap
from protocols.envelope import Kind, Priority

__all__ = ["AlertIntake", "Broadcaster", "Intake", "Positions"]

_KEEP_S = 7 * 86_400.0
"""How long a record outlives its alert's latest expiry (or its acceptance, without one)."""
_PREFIXES = {cap.MsgType.UPDATE: "Update: ", cap.MsgType.CANCEL: "Cancelled: "}
_MARGIN = 1.01  # the geo index rounds positions to about a metre; never miss a terminal on the rim


class Broadcaster(Protocol):
    """Where alerts go down (``gateway.downlink.Downlink``)."""

    async def send_many(
        self, *, terminals: Sequence[str], body: str, priority: Priority, kind: Kind = Kind.TEXT
    ) -> dict[str, str]:
        """Queue one message per terminal atomically; return terminal → message id (unusable ones left out)."""
        ...


class Positions(Protocol):
    """Where terminals were last seen (``gateway.queue.presence.PresenceStore``)."""

    async def near(self, *, lat: float, lon: float, radius_m: float) -> dict[str, Fix]:
        """Terminals whose last fix may lie within ``radius_m`` of (lat, lon): a superset."""
        ...


@dataclass(frozen=True, slots=True)
class Intake:
    """What accepting one alert did."""

    sender: str
    identifier: str
    msg_type: str
    priority: Priority
    messages: dict[str, str]
    """Terminal → id of the downlink message it was sent."""
    duplicate: bool = False


class AlertIntake:
    """Turns authorities' CAP alerts into downlink messages.

    Args:
        records: the accepted alerts, for duplicates and references.
        positions: the terminals' last known positions.
        downlink: where messages to terminals are queued.
        max_text_bytes: the most UTF-8 bytes of text one downlink message carries.
        counters: this process's counters.
        clock: wall-clock time (Unix seconds), for expiry checks.
    """

    def __init__(
        self,
        *,
        records: InboundAlerts,
        positions: Positions,
        downlink: Broadcaster,
        max_text_bytes: int,
        counters: Counters,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        if max_text_bytes < 16:
            raise ValueError(f"max_text_bytes must be at least 16, got {max_text_bytes}")
        self._records, self._positions, self._downlink = records, positions, downlink
        self._max_bytes, self._counters, self._clock = max_text_bytes, counters, clock
        self._log = logger or logging.getLogger("satgw.alerts.in")

    async def accept(self, data: bytes) -> Intake:
        """Check ``data`` and send it down; raise ``CapError`` (nothing sent) if it is refused."""
        try:
            alert = cap.parse_alert(data)
            cap.check_alert(alert, now=datetime.fromtimestamp(self._clock(), UTC))
        except cap.CapError as exc:
            self._counters.add(f"alerts.in.refused.{exc.reason.value}")
            self._log.warning("CAP alert refused (%s): %s", exc.reason.value, exc.detail)
            raise
        earlier = await self._records.get(alert.sender, alert.identifier)
        if earlier is not None:
            self._counters.add("alerts.in.duplicates")
            return Intake(alert.sender, alert.identifier, earlier.msg_type, _priority(alert), earlier.messages, True)
        return await self._send(alert)

    async def _send(self, alert: cap.Alert) -> Intake:
        priority, text = _priority(alert), _text(alert, self._max_bytes)
        recipients = sorted(await self._recipients(alert))
        # One atomic enqueue for every terminal: a failure sends to none, so the authority's retry is clean.
        messages = await self._downlink.send_many(terminals=recipients, body=text, priority=priority)
        now = self._clock()
        record = InboundRecord(alert.sender, alert.identifier, alert.msg_type.value, now, messages)
        await self._records.save(record, keep_s=_keep_s(alert, now))
        self._counters.add("alerts.in.accepted")
        self._counters.add("alerts.in.sent", len(messages))
        self._log.info(
            "CAP %s %s from %s: %d terminals", alert.msg_type.value, alert.identifier, alert.sender, len(messages)
        )
        return Intake(alert.sender, alert.identifier, alert.msg_type.value, priority, messages)

    async def _recipients(self, alert: cap.Alert) -> set[str]:
        referenced = await self._referenced(alert.references)
        if alert.msg_type is cap.MsgType.CANCEL:
            return referenced
        inside = await self._inside(area for info in alert.infos for area in info.areas)
        named = set(alert.addresses) if alert.scope is cap.Scope.PRIVATE else set()
        return referenced | inside | named

    async def _referenced(self, references: Iterable[cap.Reference]) -> set[str]:
        found: set[str] = set()
        for ref in references:
            record = await self._records.get(ref.sender, ref.identifier)
            if record is not None:
                found.update(record.messages)
        return found

    async def _inside(self, areas: Iterable[cap.Area]) -> set[str]:
        found: set[str] = set()
        for area in areas:
            bounds = area.bounding_circle()
            if bounds is None:  # geocodes only: we hold no geocode map
                continue
            lat, lon, radius_km = bounds
            near = await self._positions.near(lat=lat, lon=lon, radius_m=radius_km * 1000 * _MARGIN + 1)
            found.update(t for t, fix in near.items() if area.contains(fix.lat, fix.lon))
        return found


def _priority(alert: cap.Alert) -> Priority:
    extreme = any(i.urgency is cap.Urgency.IMMEDIATE and i.severity is cap.Severity.EXTREME for i in alert.infos)
    return Priority.URGENCY if extreme else Priority.SAFETY


def _text(alert: cap.Alert, max_bytes: int) -> str:
    # A terminal shows text only: it must tell a cancel or an update from a new alert.
    prefix = _PREFIXES.get(alert.msg_type, "")
    return prefix + cap.downlink_text(alert, max_bytes - len(prefix.encode()))


def _keep_s(alert: cap.Alert, now: float) -> float:
    expiries = [i.expires.timestamp() for i in alert.infos if i.expires is not None]
    return max([now, *expiries]) - now + _KEEP_S
