"""The SOS lifecycle rules (gateway/incidents.py), without Redis or MQTT."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.incidents import (
    Incident,
    IncidentState,
    LifecycleError,
    OperatorAction,
    OperatorEvent,
    TerminalEvent,
    apply_operator,
    apply_terminal,
)
from protocols.envelope import Kind, Position


def sos(
    seq: int, body: str = "", *, at: float = 100.0, kind: Kind = Kind.SOS, lat: float | None = 30.0
) -> TerminalEvent:
    pos = None if lat is None else Position(lat, 120.0)
    return TerminalEvent(f"T1:{seq}", "T1", seq, kind, body, pos, at)


def opened(body: str = "fell, leg broken") -> Incident:
    notice = apply_terminal(None, sos(1, body))
    assert notice is not None
    return notice.incident


def test_first_sos_opens_an_incident_named_after_it() -> None:
    """An SOS with nothing open opens an incident and asks for a CAP Alert with its position."""
    notice = apply_terminal(None, sos(7, "fell, leg broken"))
    assert notice is not None
    assert notice.msg_type == "Alert"
    assert notice.incident.id == "T1-7"
    assert notice.incident.state is IncidentState.OPEN
    assert notice.incident.nature == "fell, leg broken"
    assert notice.incident.position == Position(30.0, 120.0)


def test_position_while_open_updates_position_and_keeps_state() -> None:
    """A later position report moves the incident and asks for a CAP Update."""
    notice = apply_terminal(opened(), sos(2, kind=Kind.POSITION, lat=31.5, at=160.0))
    assert notice is not None
    assert notice.msg_type == "Update"
    assert notice.incident.position == Position(31.5, 120.0)
    assert notice.incident.state is IncidentState.OPEN
    assert notice.incident.updated_at == 160.0


def test_older_position_does_not_replace_a_newer_one() -> None:
    """A position that arrives late (an earlier fix) leaves the newer position in place."""
    current = apply_terminal(opened(), sos(3, kind=Kind.POSITION, lat=32.0, at=300.0))
    assert current is not None
    late = apply_terminal(current.incident, sos(2, kind=Kind.POSITION, lat=31.0, at=200.0))
    assert late is not None
    assert late.incident.position == Position(32.0, 120.0)


def test_cancel_by_terminal_cancels_with_its_reason() -> None:
    """'cancel: false alarm' ends the incident as cancelled and asks for a CAP Cancel."""
    notice = apply_terminal(opened(), sos(2, "Cancel: false alarm"))
    assert notice is not None
    assert notice.msg_type == "Cancel"
    assert notice.incident.state is IncidentState.CANCELLED
    assert "false alarm" in notice.note


def test_cancel_with_nothing_open_changes_nothing() -> None:
    """A cancel from a terminal without an active incident is ignored."""
    assert apply_terminal(None, sos(1, "cancel")) is None


def test_confirm_keeps_the_nature_of_the_emergency() -> None:
    """'confirm' is an update that does not overwrite what the emergency is."""
    notice = apply_terminal(opened("avalanche"), sos(2, "confirm"))
    assert notice is not None
    assert notice.incident.nature == "avalanche"
    assert notice.msg_type == "Update"


def test_ack_acknowledges_and_answers_the_terminal() -> None:
    """A rescue centre's acknowledgement changes the state and yields a downlink text naming it."""
    notice = apply_operator(opened(), OperatorEvent("T1-1", OperatorAction.ACK, "help in 40 min", "MRCC", 200.0))
    assert notice.incident.state is IncidentState.ACKNOWLEDGED
    assert notice.downlink is not None
    assert "MRCC" in notice.downlink
    assert "40 min" in notice.downlink


def test_closed_incident_refuses_ack_and_a_new_sos_opens_another() -> None:
    """After closing, an ack is refused, and the next SOS opens a new incident."""
    closed = apply_operator(opened(), OperatorEvent("T1-1", OperatorAction.CLOSE, "rescued", "MRCC", 300.0))
    assert closed.all_clear
    assert closed.incident.state is IncidentState.CLOSED
    with pytest.raises(LifecycleError, match="closed"):
        apply_operator(closed.incident, OperatorEvent("T1-1", OperatorAction.ACK, "", "MRCC", 301.0))
    again = apply_terminal(closed.incident, sos(9, "lost again"))
    assert again is not None
    assert again.incident.id == "T1-9"
    assert again.msg_type == "Alert"


@given(
    bodies=st.lists(st.sampled_from(["", "confirm", "cancel", "help", "cancel: x", "CONFIRM"]), max_size=12),
    lats=st.lists(st.floats(-90, 90), min_size=12, max_size=12),
)
def test_stored_form_round_trips_through_any_event_sequence(bodies: list[str], lats: list[float]) -> None:
    """Whatever events apply, the stored JSON reads back to the same incident."""
    current: Incident | None = None
    for seq, (body, lat) in enumerate(zip(bodies, lats, strict=False), start=1):
        notice = apply_terminal(current, sos(seq, body, at=float(seq), lat=lat))
        if notice is not None:
            current = notice.incident
            assert Incident.from_json(current.to_json()) == current


def test_corrupt_stored_form_is_a_value_error() -> None:
    """A damaged stored incident is reported as ValueError naming the problem."""
    with pytest.raises(ValueError, match="corrupt"):
        Incident.from_json(b'{"id": 1}')
