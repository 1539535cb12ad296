"""HTTP route of the downlink: ``POST /api/v1/terminals/{terminal}/messages`` queues a message down to a terminal.

The body is JSON ``{"body": "...", "priority": "distress"|"urgency"|"safety"|"routine", "kind": "text",
"ttl": null, "position": null}`` (``priority`` may also be given as ``class``; it defaults to routine,
``kind`` to text). The answer is 202 ``{"id", "terminal", "seq", "priority"}`` once the message is
durable in the downlink queue (the relays send it as the link allows; the terminal receives it on
``{prefix}/down/{terminal}``, see :mod:`gateway.downlink`). Refusals are JSON ``{"error", "reason"}``:
404 ``unknown_terminal``, 409 ``revoked_terminal``, 422 ``oversized`` or ``invalid_field``; a request
that does not parse is 422 like every other route's.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gateway.downlink import Downlink
from gateway.exceptions import MessageRejected
from protocols.envelope import MAX_BODY_BYTES, TERMINAL_ID_PATTERN, Kind, Position, Priority
from protocols.errors import Reason

__all__ = ["DownlinkIn", "DownlinkOut", "RefusedOut", "add_downlink_routes"]

_STATUS = {Reason.UNKNOWN_TERMINAL: 404, Reason.REVOKED_TERMINAL: 409}


class PositionIn(BaseModel):
    """A WGS-84 position in decimal degrees."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DownlinkIn(BaseModel):
    """A message for one terminal."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    body: str = Field(description=f"the text, at most {MAX_BODY_BYTES} bytes of UTF-8")
    priority: Literal["distress", "urgency", "safety", "routine"] = Field(
        "routine", validation_alias=AliasChoices("priority", "class"), description="the class (alias: class)"
    )
    kind: Literal["text", "position", "telemetry", "sos"] = "text"
    ttl: int | None = Field(None, description="seconds it may wait for the link before it is dropped; not distress")
    position: PositionIn | None = None


class DownlinkOut(BaseModel):
    """The message is queued, durably; it goes as the link allows."""

    id: str = Field(description='"{terminal}:{seq}", the id every hop names it by')
    terminal: str
    seq: int = Field(description="the gateway's count of its messages to this terminal")
    priority: str


class RefusedOut(BaseModel):
    """The message was refused for good, with the reason."""

    error: str
    reason: str


_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"model": RefusedOut, "description": "unknown terminal"},
    409: {"model": RefusedOut, "description": "the terminal was revoked"},
}


def add_downlink_routes(app: FastAPI, downlink: Downlink) -> None:
    """Add the downlink route to ``app``."""
    terminal_id = Path(pattern=TERMINAL_ID_PATTERN.pattern, description="the terminal's id")

    @app.post(
        "/api/v1/terminals/{terminal}/messages",
        status_code=202,
        response_model=DownlinkOut,
        tags=["downlink"],
        responses=_REFUSED,
    )
    async def send_down(message: DownlinkIn, terminal: str = terminal_id) -> JSONResponse:
        """Queue a message down to a terminal; 202 once it is durable."""
        priority = Priority[message.priority.upper()]
        position = None if message.position is None else Position(message.position.lat, message.position.lon)
        try:
            sent = await downlink.send(
                terminal=terminal,
                body=message.body,
                priority=priority,
                kind=Kind(message.kind),
                ttl=message.ttl,
                position=position,
            )
        except MessageRejected as exc:
            refused = RefusedOut(error=exc.detail, reason=exc.reason.value)
            return JSONResponse(refused.model_dump(), status_code=_STATUS.get(exc.reason, 422))
        seq = int(sent.rpartition(":")[2])
        out = DownlinkOut(id=sent, terminal=terminal, seq=seq, priority=priority.label)
        return JSONResponse(out.model_dump(), status_code=202)
