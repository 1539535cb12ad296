"""The SOS lifecycle: what each distress event does to a terminal's incident (pure; no I/O).

An incident opens when a terminal's SOS (or any distress message) reaches the ground, is
acknowledged by a rescue centre, and ends closed by an operator or cancelled by the terminal::

    (none) ──sos──▶ open ──ack──▶ acknowledged ──close──▶ closed
                     │  ▲            │
                     │  └─ confirm, position, more sos: updates (state kept)
                     └──────────────┴──cancel (terminal)──▶ cancelled

A terminal says what its SOS message means in the body, like the Declare/Confirm/Cancel events
of Garmin's inReach: ``cancel`` (or ``cancel: <why>``) cancels, ``confirm`` confirms, any other
text declares (or, while open, updates) and says what the emergency is. Every transition yields
one :class:`Notice`: the CAP message type to emit, a note for the rescue centre and, for
acknowledgements, the text the terminal gets back over the downlink.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

from protocols.envelope import Kind, Position

__all__ = [
    "AlertRef",
    "Incident",
    "IncidentState",
    "LifecycleError",
    "Notice",
    "OperatorAction",
    "OperatorEvent",
    "TerminalEvent",
    "apply_operator",
    "apply_terminal",
    "incident_id",
]


class IncidentState(enum.StrEnum):
    """Where an incident is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """True while rescue is under way (the terminal's traffic rides in the distress class)."""
        return self in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


class OperatorAction(enum.StrEnum):
    """What a rescue centre or operator does to an incident."""

    ACK = "ack"
    CLOSE = "close"


class LifecycleError(ValueError):
    """An action that the incident's state does not allow (acknowledging a closed incident, say)."""


@dataclass(frozen=True, slots=True)
class AlertRef:
    """A CAP alert already sent for an incident: what later alerts reference."""

    identifier: str
    sent: float
    msg_type: str


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    """A distress-class message from a terminal, as the ground delivered it."""

    message_id: str
    terminal: str
    seq: int
    kind: Kind
    body: str
    position: Position | None
    at: float
    """When the gateway received it (Unix seconds): the CAP ``sent`` time of what it causes."""


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    """An acknowledgement or closing by a rescue centre or operator."""

    incident: str
    action: OperatorAction
    text: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class Incident:
    """One SOS, from its declaration to its end."""

    id: str
    terminal: str
    state: IncidentState
    opened_at: float
    updated_at: float
    nature: str = ""
    position: Position | None = None
    position_at: float | None = None
    alerts: tuple[AlertRef, ...] = ()
    log: tuple[dict[str, Any], ...] = field(default=())
    """Every event applied, oldest first: ``{"at", "event", "by"?, "text"?, "seq"?}``."""

    def to_json(self) -> str:
        """The stored form."""
        data = {
            "id": self.id,
            "terminal": self.terminal,
            "state": self.state.value,
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "nature": self.nature,
            "position": None if self.position is None else [self.position.lat, self.position.lon],
            "position_at": self.position_at,
            "alerts": [[a.identifier, a.sent, a.msg_type] for a in self.alerts],
            "log": list(self.log),
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Incident:
        """Parse the stored form, or raise ``ValueError``."""
        try:
            d = json.loads(raw)
            pos = d["position"]
            return cls(
                id=d["id"],
                terminal=d["terminal"],
                state=IncidentState(d["state"]),
                opened_at=float(d["opened_at"]),
                updated_at=float(d["updated_at"]),
                nature=d["nature"],
                position=None if pos is None else Position(float(pos[0]), float(pos[1])),
                position_at=d["position_at"],
                alerts=tuple(AlertRef(a[0], float(a[1]), a[2]) for a in d["alerts"]),
                log=tuple(d["log"]),
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"stored incident is corrupt: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Notice:
    """What one transition asks the gateway to tell the world."""

    incident: Incident
    """The incident after the transition."""
    msg_type: str
    """CAP msgType of the alert to emit: ``Alert``, ``Update`` or ``Cancel``."""
    note: str
    all_clear: bool = False
    """True when rescue is over (CAP responseType ``AllClear``)."""
    downlink: str | None = None
    """Text for the terminal, sent down in the distress class; None for nothing."""


def incident_id(terminal: str, seq: int) -> str:
    """An incident is named after the message that opened it."""
    return f"{terminal}-{seq}"


def _intent(event: TerminalEvent) -> str:
    if event.kind is not Kind.SOS:
        return "update"
    word = event.body.strip().lower()
    if word == "cancel" or word.startswith("cancel:"):
        return "cancel"
    return "confirm" if word == "confirm" else "declare"


def apply_terminal(current: Incident | None, event: TerminalEvent) -> Notice | None:
    """What ``event`` does to the terminal's active incident ``current`` (None: it has none).

    Returns None when the event changes nothing (a cancel with nothing open).
    """
    intent = _intent(event)
    if current is None or not current.state.active:
        if intent == "cancel":
            return None
        return _open(event)
    entry = {"at": event.at, "event": intent, "seq": event.seq}
    moved = _moved(current, event, entry)
    if intent == "cancel":
        done = replace(moved, state=IncidentState.CANCELLED)
        return Notice(done, "Cancel", f"SOS cancelled by the terminal{_why(event.body)}", all_clear=True)
    if intent == "declare" and event.body.strip():
        moved = replace(moved, nature=event.body.strip())
    where = "" if event.position is None else f" at {event.position.lat:.5f},{event.position.lon:.5f}"
    return Notice(moved, "Update", f"SOS {intent}{where}")


def _open(event: TerminalEvent) -> Notice:
    nature = event.body.strip() if event.kind is not Kind.SOS or _intent(event) == "declare" else ""
    incident = Incident(
        id=incident_id(event.terminal, event.seq),
        terminal=event.terminal,
        state=IncidentState.OPEN,
        opened_at=event.at,
        updated_at=event.at,
        nature=nature,
        position=event.position,
        position_at=event.at if event.position is not None else None,
        log=({"at": event.at, "event": "declare", "seq": event.seq},),
    )
    return Notice(incident, "Alert", f"SOS declared by terminal {event.terminal}")


def _moved(current: Incident, event: TerminalEvent, entry: dict[str, Any]) -> Incident:
    updated = replace(current, updated_at=max(current.updated_at, event.at), log=(*current.log, entry))
    newer = current.position_at is None or event.at >= current.position_at
    if event.position is not None and newer:
        updated = replace(updated, position=event.position, position_at=event.at)
    return updated


def _why(body: str) -> str:
    _, sep, why = body.partition(":")
    return f": {why.strip()}" if sep and why.strip() else ""


def apply_operator(current: Incident, event: OperatorEvent) -> Notice:
    """What an acknowledgement or closing does; raises :class:`LifecycleError` if the state forbids it."""
    if not current.state.active:
        raise LifecycleError(f"incident {current.id} is {current.state.value}; it cannot be {event.action.value}ed")
    entry = {"at": event.at, "event": event.action.value, "by": event.by, "text": event.text}
    logged = replace(current, updated_at=max(current.updated_at, event.at), log=(*current.log, entry))
    said = f": {event.text}" if event.text else ""
    if event.action is OperatorAction.CLOSE:
        done = replace(logged, state=IncidentState.CLOSED)
        return Notice(done, "Update", f"incident closed by {event.by}{said}", all_clear=True)
    acked = replace(logged, state=IncidentState.ACKNOWLEDGED)
    reply = f"SOS received by {event.by}{said}"
    return Notice(acked, "Update", f"SOS acknowledged by {event.by}{said}", downlink=reply)
