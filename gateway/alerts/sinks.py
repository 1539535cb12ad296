"""What the gateway hands to every alert sink: an opaque alert document, and the sink seam.

The sinks (webhooks here; the MQTT topic ``{prefix}/alerts/cap`` in :mod:`gateway.mqtt`'s hands)
never look inside the document: the CAP codec builds it, a sink only carries it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CAP_CONTENT_TYPE", "MAX_ALERT_BYTES", "AlertSink", "OutgoingAlert"]

CAP_CONTENT_TYPE = "application/cap+xml"
MAX_ALERT_BYTES = 1 << 20
"""The largest alert document a sink takes (CAP alerts are a few kB; the cap keeps Redis and receivers safe)."""

# Visible ASCII only: these values travel in HTTP headers, where a CR or LF would split the header.
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
_CONTENT_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,126}")


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """One alert document to deliver to every sink.

    Args:
        key: The idempotency key: the CAP ``identifier``, unique per alert message. Receivers
            drop a repeat by it, since delivery is at least once.
        kind: A short label for receivers and logs, such as ``Alert``, ``Update`` or ``Cancel``.
        body: The document, as bytes.
        content_type: Its media type.
    """

    key: str
    kind: str
    body: bytes
    content_type: str = CAP_CONTENT_TYPE

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _TOKEN.fullmatch(self.key):
            raise ValueError(f"key must be 1-256 visible ASCII characters (no spaces), got {self.key!r}")
        if not isinstance(self.kind, str) or not _TOKEN.fullmatch(self.kind):
            raise ValueError(f"kind must be 1-256 visible ASCII characters (no spaces), got {self.kind!r}")
        if not isinstance(self.body, bytes) or not self.body:
            raise ValueError("body must be non-empty bytes")
        if len(self.body) > MAX_ALERT_BYTES:
            raise ValueError(f"body is {len(self.body)} bytes; the most is {MAX_ALERT_BYTES}")
        if not isinstance(self.content_type, str) or not _CONTENT_TYPE.fullmatch(self.content_type):
            raise ValueError(f"content_type must be a media type in printable ASCII, got {self.content_type!r}")


class AlertSink(Protocol):
    """Somewhere alerts go. ``publish`` returns once the alert is durable for this sink (or raises)."""

    async def publish(self, alert: OutgoingAlert) -> None:
        """Take ``alert`` for delivery; raise :class:`~gateway.exceptions.TransientError` if it could not be kept."""
        ...
