"""The trace routes: where one message is, and every hop it went through with its time.

``GET /api/v1/messages/{terminal}:{seq}`` and ``GET /api/v1/terminals/{terminal}/messages/{seq}``
give the same answer (a message id is ``"{terminal}:{seq}"``): 404 JSON when no trace is kept (never
traced, expired, or tracing off), 422 for an id that cannot be one. The traces come from
:mod:`gateway.queue.trace`; ``gateway.api.create_app`` registers these routes when given a reader.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from gateway.api_models import ErrorOut
from gateway.queue.entries import MAX_SEQ
from gateway.queue.trace import HopEvent, MessageTrace, TraceReader

__all__ = ["HopOut", "MessageTraceOut", "ReceiptOut", "StateOut", "add_trace_routes"]

_MESSAGE_ID = r"^[A-Za-z0-9_.-]{1,32}:[0-9]{1,19}$"
_TERMINAL = r"^[A-Za-z0-9_.-]{1,32}$"
_RESPONSES: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no trace of that message"}}


class HopOut(BaseModel):
    """One hop of a message."""

    event: str = Field(
        description="received, queued, duplicate, rejected, taken, reclaimed, failed, fragment, "
        "sent, delivered, ground_duplicate, published, expired, dead, requeued or purged"
    )
    at: float = Field(description="Unix seconds")
    elapsed_s: float = Field(description="seconds since the message was received (or since the first hop)")
    link: str | None = None
    details: dict[str, str] = Field(description="the hop's other details: class, reason, code, attempt, frag, ...")


class StateOut(BaseModel):
    """Where the message is now, as its trace tells."""

    stage: str = Field(
        description="rejected, received, queued, taken, retrying, sending, sent, at_ground, delivered, "
        "expired, dead, purged or unknown"
    )
    detail: str


class ReceiptOut(BaseModel):
    """A receipt the gateway sent the terminal at one of the hops (only when it asked for receipts)."""

    kind: str = Field(description="accepted, sent, delivered, expired or rejected")
    at: float


class MessageTraceOut(BaseModel):
    """The trace of one message."""

    id: str
    terminal: str
    seq: int
    priority: str | None = Field(description="the message's class, if a hop names it")
    state: StateOut
    hops: list[HopOut] = Field(description="in time order")
    receipts: list[ReceiptOut]
    unreadable_lines: int = Field(description="stored lines that are not hops (skipped)")


def trace_out(found: MessageTrace) -> MessageTraceOut:
    """The API form of a trace."""
    received = [h.at for h in found.hops if h.event is HopEvent.RECEIVED]
    start = received[0] if received else (found.hops[0].at if found.hops else 0.0)
    extra = {"link"}
    return MessageTraceOut(
        id=found.message_id,
        terminal=found.terminal,
        seq=found.seq,
        priority=None if found.priority is None else found.priority.label,
        state=StateOut(stage=found.state.stage.value, detail=found.state.detail),
        hops=[
            HopOut(
                event=h.event.value,
                at=h.at,
                elapsed_s=round(h.at - start, 6),
                link=h.link,
                details={k: v for k, v in h.details.items() if k not in extra},
            )
            for h in found.hops
        ],
        receipts=[ReceiptOut(kind=kind, at=at) for kind, at in found.receipts],
        unreadable_lines=found.unreadable,
    )


def add_trace_routes(app: FastAPI, trace: TraceReader) -> None:
    """Serve the trace routes of ``app`` from ``trace``."""

    async def answer(message_id: str) -> MessageTraceOut:
        try:
            found = await trace.get(message_id)
        except ValueError as exc:  # e.g. a seq above 2^63-1, which the path pattern lets through
            error = {"loc": ("path", "message_id"), "msg": str(exc), "type": "value_error"}
            raise RequestValidationError([error]) from None
        if found is None:
            raise HTTPException(404, f"no trace of message {message_id}")
        return trace_out(found)

    @app.get("/api/v1/messages/{message_id}", response_model=MessageTraceOut, tags=["messages"], responses=_RESPONSES)
    async def message(
        message_id: str = Path(pattern=_MESSAGE_ID, description="terminal:seq"),
    ) -> MessageTraceOut:
        """Where the message is now and every hop it went through, with times."""
        return await answer(message_id)

    @app.get(
        "/api/v1/terminals/{terminal}/messages/{seq}",
        response_model=MessageTraceOut,
        tags=["messages"],
        responses=_RESPONSES,
    )
    async def terminal_message(
        terminal: str = Path(pattern=_TERMINAL, description="the terminal id"),
        seq: int = Path(ge=0, le=MAX_SEQ, description="the message's seq"),
    ) -> MessageTraceOut:
        """The same answer as ``/api/v1/messages/{terminal}:{seq}``."""
        return await answer(f"{terminal}:{seq}")
