"""Receipts: what the gateway tells a terminal about its message, on ``{prefix}/down/{terminal}``.

A terminal asks for receipts per message (the receipt flag, like the BeiDou
answer flag). Receipts are JSON so any MQTT client can read them.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Receipt", "ReceiptKind", "ReceiptSink"]


class ReceiptKind(enum.StrEnum):
    """The hops a receipt reports."""

    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Receipt:
    """One receipt for one message."""

    kind: ReceiptKind
    terminal: str
    seq: int | None
    message_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    link: str | None = None
    at: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        """Encode as the JSON published to the terminal; absent fields are left out."""
        body: dict[str, object] = {"receipt": self.kind.value, "terminal": self.terminal, "seq": self.seq}
        extras = {"id": self.message_id, "reason": self.reason, "detail": self.detail, "link": self.link}
        body.update({k: v for k, v in extras.items() if v is not None})
        body["at"] = round(self.at, 6)
        return json.dumps(body, separators=(",", ":")).encode()


class ReceiptSink(Protocol):
    """Where receipts go; the service publishes them over MQTT, tests may collect them."""

    def send(self, receipt: Receipt) -> None:
        """Queue ``receipt`` for delivery without waiting (receipts are best effort, QoS 1)."""
        ...
