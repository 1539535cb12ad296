"""The CAP alerts an SOS lifecycle produces (gateway/alerts/sos.py incident_alert) against the OASIS CAP 1.2 XSD."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.alerts.sos import incident_alert
from gateway.incidents import (
    AlertRef,
    Incident,
    Notice,
    OperatorAction,
    OperatorEvent,
    TerminalEvent,
    apply_operator,
    apply_terminal,
)
from protocols import cap
from protocols.envelope import Kind, Position
from tests.unit.test_cap import assert_schema_valid

SENDER = "satgw.test"


def sent_alert(before: Incident | None, notice: Notice, at: float) -> tuple[bytes, Incident]:
    """Build the alert, check it against the XSD, and record it on the incident like the worker does."""
    same = before is not None and before.id == notice.incident.id
    base = before if same and before is not None else dataclasses.replace(notice.incident, alerts=())
    alert = incident_alert(base, notice, sender=SENDER, at=at)
    xml = cap.build_alert(alert)
    assert_schema_valid(xml)
    ref = AlertRef(alert.identifier, float(int(at)), notice.msg_type)
    return xml, dataclasses.replace(notice.incident, alerts=(*base.alerts, ref))


def test_whole_lifecycle_gives_schema_valid_alerts_with_references() -> None:
    """Declare, new position, ack and cancel each give a valid CAP alert; later ones reference all earlier ones."""
    ev = TerminalEvent("T1:1", "T1", 1, Kind.SOS, "broken leg", Position(45.5, 7.25), 1_764_800_000.4)
    declared = apply_terminal(None, ev)
    assert declared is not None
    xml1, inc = sent_alert(None, declared, ev.at)
    assert b"<msgType>Alert</msgType>" in xml1
    assert b"<category>Rescue</category>" in xml1
    assert b"<circle>45.5,7.25 " in xml1
    assert b"<sent>2025-12-03T22:13:20-00:00</sent>" in xml1  # CAP writes UTC as -00:00, never Z
    moved = apply_terminal(inc, TerminalEvent("T1:2", "T1", 2, Kind.POSITION, "", Position(45.6, 7.3), ev.at + 60))
    assert moved is not None
    xml2, inc = sent_alert(inc, moved, ev.at + 60)
    assert b"<msgType>Update</msgType>" in xml2
    assert b"satgw.test,satgw.test.T1-1.1," in xml2
    acked = apply_operator(inc, OperatorEvent(inc.id, OperatorAction.ACK, "team on the way", "MRCC", ev.at + 90))
    xml3, inc = sent_alert(inc, acked, ev.at + 90)
    assert b"acknowledged by MRCC" in xml3
    cancelled = apply_terminal(inc, TerminalEvent("T1:3", "T1", 3, Kind.SOS, "cancel: found shelter", None, ev.at + 99))
    assert cancelled is not None
    xml4, inc = sent_alert(inc, cancelled, ev.at + 99)
    assert b"<msgType>Cancel</msgType>" in xml4
    assert b"<responseType>AllClear</responseType>" in xml4
    assert xml4.count(b"satgw.test.T1-1.") == 4  # its own identifier and the three it references
    assert [a.msg_type for a in inc.alerts] == ["Alert", "Update", "Update", "Cancel"]


def test_incident_without_position_has_no_area_and_stays_valid() -> None:
    """An SOS without a fix still gives a valid alert, with no area."""
    notice = apply_terminal(None, TerminalEvent("T2:5", "T2", 5, Kind.SOS, "", None, 1_764_800_000.0))
    assert notice is not None
    xml, _ = sent_alert(None, notice, 1_764_800_000.0)
    assert b"<area>" not in xml


@pytest.mark.parametrize("sender", ["", "has space", "a,b", "x<y"])
def test_worker_refuses_a_sender_cap_forbids(sender: str) -> None:
    """A CAP sender with a space, comma or markup character is refused when the worker is built."""
    from gateway.alerts.sos import IncidentWorker
    from gateway.counters import Counters

    with pytest.raises(ValueError, match="sender"):
        IncidentWorker(store=None, sinks=(), downlink=None, sender=sender, counters=Counters())  # type: ignore[arg-type]
