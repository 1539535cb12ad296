"""How a webhook receiver knows an alert came from this gateway, unchanged and recently.

Every delivery carries two headers (the scheme of Stripe's and GitHub's webhooks)::

    X-Satgw-Timestamp: 1767225600
    X-Satgw-Signature: sha256=5f0c…  (64 lowercase hex digits)

The signature is ``HMAC-SHA256(secret, "<timestamp>." + body)`` over the exact bytes of the
request body, with the endpoint's shared secret (UTF-8) as the key. ``timestamp`` is the Unix time
in whole seconds when the attempt was sent; each retry is signed afresh. A receiver should:

1. compute the HMAC over the timestamp header, a ``.``, and the raw body *before* parsing it;
2. compare it with the hex after ``sha256=`` in constant time;
3. refuse a timestamp more than a few minutes from its clock (5 by default), so a captured request
   cannot be replayed later;
4. drop a repeat by its ``Idempotency-Key`` (the CAP identifier): delivery is at least once.

:func:`verify` does steps 1-3; docs/webhooks.md shows the same in a few lines for receivers.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "TOLERANCE_S", "sign", "verify"]

SIGNATURE_HEADER = "X-Satgw-Signature"
TIMESTAMP_HEADER = "X-Satgw-Timestamp"
TOLERANCE_S = 300.0
"""How far a timestamp may be from the receiver's clock, by default."""
_PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Satgw-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    message = str(int(timestamp)).encode() + b"." + body
    return _PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, *, timestamp: str, signature: str, body: bytes, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp`` with ``secret`` and ``timestamp`` is within tolerance.

    Args:
        timestamp: The ``X-Satgw-Timestamp`` header as received.
        signature: The ``X-Satgw-Signature`` header as received.
        body: The raw request body.
        now: The receiver's clock (Unix seconds).
    """
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, int(timestamp), body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
