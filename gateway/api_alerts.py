"""HTTP routes of the emergency side: SOS incidents, and CAP alerts in from authorities.

``GET /api/v1/incidents`` and ``/{id}``; ``POST /api/v1/incidents/{id}/ack`` and ``/close``
(202: the action is queued on the incident event stream and applied in order with the
terminal's own events; 409 when the incident is no longer active); ``POST /api/v1/alerts``
(CAP 1.2 XML; 202 with the terminals it was sent to; 400 for XML that is malformed, hostile or
not CAP, 413 when too large, 422 for an alert that breaks a rule).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from gateway.alerts.inbound import AlertIntake
from gateway.alerts.webhooks import WebhookDispatcher
from gateway.incidents import Incident, OperatorAction, OperatorEvent
from gateway.queue.incidents import IncidentStore
from protocols import cap

__all__ = ["EmergencyRoutes", "add_emergency_routes"]

_INCIDENT_ID = r"^[A-Za-z0-9_.-]{1,32}-\d{1,20}$"
_STATUS = {
    cap.CapReason.TOO_LARGE: 413,
    cap.CapReason.MALFORMED_XML: 400,
    cap.CapReason.XML_FORBIDDEN: 400,
    cap.CapReason.NOT_CAP: 400,
}


@dataclass(frozen=True, slots=True)
class EmergencyRoutes:
    """What the emergency routes need."""

    incidents: IncidentStore
    intake: AlertIntake
    webhooks: WebhookDispatcher


class DeadDeliveryOut(BaseModel):
    """A delivery the gateway gave up on."""

    dead_id: str
    endpoint: str
    reason: str = Field(description="refused (a 3xx/4xx retrying cannot fix), max_attempts or malformed")
    status: int | None
    attempts: int
    error: str
    dead_at: float
    key: str = Field(description="the alert's idempotency key (its CAP identifier)")
    kind: str


class DeliveriesOut(BaseModel):
    """Where alert deliveries to webhooks stand."""

    pending: dict[str, int] = Field(description="endpoint → deliveries not settled yet")
    dead: list[DeadDeliveryOut] = Field(description="the oldest dead deliveries (given up on)")


class IncidentPositionOut(BaseModel):
    """An incident's last reported position, and when it was received."""

    lat: float
    lon: float
    at: float | None = None


class IncidentOut(BaseModel):
    """One SOS incident and what happened to it."""

    id: str
    terminal: str
    state: str = Field(description="open, acknowledged, closed or cancelled")
    opened_at: float
    updated_at: float
    age_s: float
    nature: str
    position: IncidentPositionOut | None
    alerts: list[dict[str, Any]] = Field(description="CAP alerts sent: identifier, sent, msg_type")
    log: list[dict[str, Any]] = Field(description="every event applied, oldest first")


class ActionIn(BaseModel):
    """An acknowledgement or closing by a rescue centre."""

    text: str = Field("", max_length=400, description="sent down to the terminal with an acknowledgement")
    by: str = Field(min_length=1, max_length=80, description="who acts, e.g. the rescue centre's name")


class ActionOut(BaseModel):
    """A queued action."""

    incident: str
    action: str
    event: str = Field(description="the id of the event on the incident stream")


class AlertInOut(BaseModel):
    """What accepting a CAP alert did."""

    sender: str
    identifier: str
    msg_type: str
    priority: str
    terminals: dict[str, str] = Field(description="terminal → id of the downlink message it was sent")
    duplicate: bool


def _out(incident: Incident) -> IncidentOut:
    pos = incident.position
    return IncidentOut(
        id=incident.id,
        terminal=incident.terminal,
        state=incident.state.value,
        opened_at=incident.opened_at,
        updated_at=incident.updated_at,
        age_s=round(max(0.0, time.time() - incident.opened_at), 3),
        nature=incident.nature,
        position=None if pos is None else IncidentPositionOut(lat=pos.lat, lon=pos.lon, at=incident.position_at),
        alerts=[{"identifier": a.identifier, "sent": a.sent, "msg_type": a.msg_type} for a in incident.alerts],
        log=list(incident.log),
    )


def add_emergency_routes(app: FastAPI, routes: EmergencyRoutes) -> None:
    """Register the incident and CAP-in routes on ``app``."""
    _add_incidents(app, routes.incidents)
    _add_alerts_in(app, routes.intake)
    _add_deliveries(app, routes.webhooks)


def _add_incidents(app: FastAPI, store: IncidentStore) -> None:
    incident_id = Path(pattern=_INCIDENT_ID, description="the incident id, '{terminal}-{seq}' of its first SOS")
    not_found: dict[int | str, dict[str, Any]] = {404: {"description": "no such incident"}}

    @app.get("/api/v1/incidents", response_model=list[IncidentOut], tags=["incidents"])
    async def incidents(limit: int = Query(100, ge=1, le=1000)) -> list[IncidentOut]:
        """The most recently opened incidents, newest first."""
        return [_out(i) for i in await store.list(limit=limit)]

    @app.get("/api/v1/incidents/{incident_id}", response_model=IncidentOut, tags=["incidents"], responses=not_found)
    async def incident(incident_id: str = incident_id) -> IncidentOut:
        """One incident with its CAP alerts and log."""
        return _out(await _found(store, incident_id))

    async def act(incident_id: str, action: OperatorAction, body: ActionIn) -> JSONResponse:
        current = await _found(store, incident_id)
        if not current.state.active:
            raise HTTPException(409, f"incident {incident_id} is {current.state.value}")
        event = OperatorEvent(incident_id, action, body.text.strip(), body.by.strip(), time.time())
        sid = await store.add_operator_event(event)
        out = ActionOut(incident=incident_id, action=action.value, event=sid)
        return JSONResponse(out.model_dump(), status_code=202)

    responses: dict[int | str, dict[str, Any]] = {**not_found, 409: {"description": "the incident is over"}}

    @app.post(
        "/api/v1/incidents/{incident_id}/ack",
        response_model=ActionOut,
        status_code=202,
        tags=["incidents"],
        responses=responses,
    )
    async def ack(body: ActionIn, incident_id: str = incident_id) -> JSONResponse:
        """Acknowledge an SOS: the terminal gets the text as a distress-class downlink message."""
        return await act(incident_id, OperatorAction.ACK, body)

    @app.post(
        "/api/v1/incidents/{incident_id}/close",
        response_model=ActionOut,
        status_code=202,
        tags=["incidents"],
        responses=responses,
    )
    async def close(body: ActionIn, incident_id: str = incident_id) -> JSONResponse:
        """Close an incident once rescue is over (CAP Update with responseType AllClear)."""
        return await act(incident_id, OperatorAction.CLOSE, body)


async def _found(store: IncidentStore, incident_id: str) -> Incident:
    found = await store.get(incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return found


def _add_alerts_in(app: FastAPI, intake: AlertIntake) -> None:
    xml_body: dict[str, Any] = {
        "requestBody": {"content": {"application/cap+xml": {}, "application/xml": {}}, "required": True}
    }
    errors: dict[int | str, dict[str, Any]] = {
        400: {"description": "malformed or hostile XML, or not CAP 1.2"},
        413: {"description": "larger than 256 KiB"},
    }

    @app.post(
        "/api/v1/alerts",
        response_model=AlertInOut,
        status_code=202,
        tags=["alerts"],
        openapi_extra=xml_body,
        responses=errors,
    )
    async def alerts_in(request: Request) -> JSONResponse:
        """Accept a CAP 1.2 alert and send it down to the terminals inside its areas."""
        data = await _read_capped(request)
        try:
            done = await intake.accept(data)
        except cap.CapError as exc:
            status = _STATUS.get(exc.reason, 422)
            return JSONResponse({"error": str(exc), "reason": exc.reason.value}, status_code=status)
        out = AlertInOut(
            sender=done.sender,
            identifier=done.identifier,
            msg_type=done.msg_type,
            priority=done.priority.label,
            terminals=done.messages,
            duplicate=done.duplicate,
        )
        return JSONResponse(out.model_dump(), status_code=200 if done.duplicate else 202)


async def _read_capped(request: Request) -> bytes:
    """The body, read no further than one byte past the codec's limit (which then refuses it as too_large)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > cap.MAX_ALERT_BYTES:
            break
    return bytes(data)


def _add_deliveries(app: FastAPI, webhooks: WebhookDispatcher) -> None:
    dead_id = Path(pattern=r"^\d{1,20}-\d{1,20}$", description="the dead delivery's id, as listed")

    @app.get("/api/v1/alerts/deliveries", response_model=DeliveriesOut, tags=["alerts"])
    async def deliveries(limit: int = Query(100, ge=1, le=1000)) -> DeliveriesOut:
        """Pending alert deliveries per webhook endpoint, and the oldest dead ones."""
        dead = [
            DeadDeliveryOut(
                dead_id=d.dead_id,
                endpoint=d.endpoint,
                reason=d.reason,
                status=d.status,
                attempts=d.attempts,
                error=d.error,
                dead_at=d.dead_at,
                key=d.key,
                kind=d.kind,
            )
            for d in await webhooks.dead(count=limit)
        ]
        return DeliveriesOut(pending=await webhooks.pending(), dead=dead)

    @app.post(
        "/api/v1/alerts/deliveries/{dead_id}/requeue",
        tags=["alerts"],
        responses={404: {"description": "no such dead delivery"}},
    )
    async def requeue(dead_id: str = dead_id) -> dict[str, str]:
        """Try a dead delivery again, from a fresh attempt count."""
        if not await webhooks.requeue_dead(dead_id):
            raise HTTPException(404, f"no dead delivery {dead_id}")
        return {"requeued": dead_id}
