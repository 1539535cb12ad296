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
    "PositionOut",
    "PurgedOut",
    "QueueOut",
    "ReadyOut",
    "RequeuedOut",
    "StatusOut",
    "TerminalCountersOut",
    "TerminalOut",
    "TerminalsOut",
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


class TerminalsOut(BaseModel):
    """Terminal numbers, from every gateway process's flushes (up to one flush interval behind)."""

    registered: int = Field(description="terminals in the registry, revoked ones included")
    online: int = Field(description="terminals with a message accepted within online_window_s")
    seen: int = Field(description="terminals a message was ever accepted from")
    online_window_s: float


class StatusOut(BaseModel):
    """The gateway at a glance."""

    node: str
    version: str
    uptime_s: float
    queues: dict[str, QueueOut] = Field(description="by class, most urgent first")
    downlink: dict[str, QueueOut] = Field(
        default_factory=dict, description="the downlink queues (messages to terminals) by class"
    )
    backlog: int = Field(description="entries this process holds for retry")
    links: list[LinkOut]
    counters: dict[str, int] = Field(description="this process's counters")
    terminals: TerminalsOut


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


class PositionOut(BaseModel):
    """A terminal's last reported position."""

    lat: float
    lon: float
    at: float = Field(description="when the gateway received the message that carried it (Unix seconds)")
    ts: float = Field(description="the terminal's own time in that message (0 if it gave none)")


class TerminalCountersOut(BaseModel):
    """What a terminal sent, summed over every gateway process (up to one flush interval behind)."""

    accepted: int = Field(description="messages accepted and queued")
    accepted_by_class: dict[str, int] = Field(description="the same, by class")
    delivered: int = Field(description="messages of it the ground published to applications")
    duplicates: int = Field(description="sealed messages refused as replays of a seq already used")
    rejected: dict[str, int] = Field(description="other sealed messages refused, by reason (e.g. quota_exceeded)")
    rejected_unauthenticated: int = Field(
        description="messages naming this terminal whose seal did not verify, or sent after revocation: "
        "counted under the id they claim, which they do not prove"
    )


class TerminalOut(BaseModel):
    """One registered terminal (never its key), where and when it was last heard, and what it sent."""

    terminal: str
    created_at: float
    revoked_at: float | None
    revoked: bool
    online: bool = Field(description="a message of it was accepted within the online window")
    last_seen: float | None = Field(description="when its latest accepted message was received (Unix seconds)")
    last_seen_age_s: float | None = Field(description="seconds since last_seen")
    last_position: PositionOut | None = Field(description="the position in its latest accepted message carrying one")
    counters: TerminalCountersOut


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
