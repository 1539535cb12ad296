"""The JSON documents of the HTTP API, as pydantic models (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "DeadLetterDetail",
    "DeadLetterOut",
    "DistressOut",
    "ErrorOut",
    "HealthOut",
    "LinkCapacity",
    "LinkOut",
    "LinkState",
    "MessageOut",
    "PurgedOut",
    "QueueOut",
    "ReadyOut",
    "RequeuedOut",
    "StatusOut",
    "TerminalOut",
]

LinkState = Literal["paused", "sending", "waiting", "ready"]


class ErrorOut(BaseModel):
    """Every error: a message, and for bad parameters what was wrong with each."""

    error: str
    detail: list[dict[str, str]] | None = None


class HealthOut(BaseModel):
    """The process serves."""

    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    """Whether each dependency answers."""

    redis: bool
    mqtt: bool


class QueueOut(BaseModel):
    """One class queue."""

    depth: int = Field(description="entries waiting to be taken")
    pending: int = Field(description="entries taken by a relay and not yet acked")
    oldest_age_s: float | None = Field(description="seconds since the oldest entry was received; null when empty")


class LinkCapacity(BaseModel):
    """A link's capacity ceilings (only when ceilings are configured)."""

    per_hour: float = Field(description="frames an hour the link can carry at most")
    used: dict[str, float] = Field(description="share of the window used by each class and less urgent ones")
    share: dict[str, float] = Field(description="the ceiling of each class that has one")


class LinkOut(BaseModel):
    """One link and its relay."""

    name: str
    state: LinkState = Field(description="paused by an operator, sending, waiting out an interval or pass, or ready")
    paused: bool
    in_flight: int
    next_send_s: dict[str, float] = Field(description="seconds until a frame of each class may go")
    transmissions: dict[str, int] = Field(description="transmissions by outcome, in this process")
    capacity: LinkCapacity | None = None


class StatusOut(BaseModel):
    """The gateway at a glance."""

    node: str
    version: str
    uptime_s: float
    queues: dict[str, QueueOut] = Field(description="by class, most urgent first")
    backlog: int = Field(description="entries this process holds for retry")
    links: list[LinkOut]
    counters: dict[str, int] = Field(description="this process's counters")


class MessageOut(BaseModel):
    """A queued message's envelope as the queue holds it."""

    message_id: str
    terminal: str
    seq: int
    received_at: float
    expires_at: float | None
    receipt: bool


class DeadLetterOut(BaseModel):
    """One dead letter."""

    id: str
    reason: str
    dead_at: float
    priority: str
    stream_id: str = Field(description="its id in the class stream it left")
    message: MessageOut | None = Field(description="null when its fields were malformed")


class DeadLetterDetail(DeadLetterOut):
    """One dead letter with its raw fields and, if it decodes, the message it carries."""

    fields: dict[str, str] = Field(description="raw stream fields (binary ones as hex)")
    kind: str | None = None
    body: str | None = None
    position: dict[str, float] | None = None


class RequeuedOut(BaseModel):
    """A dead letter went back to its class queue."""

    requeued: str


class PurgedOut(BaseModel):
    """How many dead letters were dropped."""

    purged: int


class TerminalOut(BaseModel):
    """One registered terminal (never its key)."""

    terminal: str
    created_at: float
    revoked_at: float | None
    revoked: bool


class DistressOut(BaseModel):
    """One distress message still in the queue: waiting, or taken by a relay and not yet acked."""

    message_id: str
    terminal: str
    seq: int
    received_at: float
    age_s: float = Field(description="seconds since it was received")
    taken: bool = Field(description="a relay has taken it and not yet acked it")
    position: dict[str, float] | None = Field(description="lat/lon the terminal reported, if any")
    body: str | None = Field(description="its text, null if the record does not decode")
