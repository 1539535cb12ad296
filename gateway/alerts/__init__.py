"""Alerts out of the gateway: the sink seam and delivery to webhooks.

:class:`OutgoingAlert` is an opaque document (the CAP codec builds it) with an idempotency key;
every :class:`AlertSink` takes it. :class:`WebhookDispatcher` is the webhook sink (durable in Redis,
signed, retried, one task per endpoint); docs/webhooks.md is the receiver's side.
"""

from __future__ import annotations

from gateway.alerts.endpoints import Backoff, WebhookEndpoint, parse_retry_after
from gateway.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from gateway.alerts.sinks import CAP_CONTENT_TYPE, AlertSink, OutgoingAlert
from gateway.alerts.webhooks import WebhookDispatcher, user_agent

__all__ = [
    "CAP_CONTENT_TYPE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertSink",
    "Backoff",
    "OutgoingAlert",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "parse_retry_after",
    "sign",
    "user_agent",
    "verify",
]
