"""Errors raised by the pure codecs.

```
DecodeError (ValueError)    input bytes or fields that no codec accepts; .reason is a Reason
```

Every decoder raises only :class:`DecodeError`, whatever the input, so a caller
needs one ``except`` to turn any garbage into a specific, reportable reason.
"""

from __future__ import annotations

import enum

__all__ = ["DecodeError", "Reason"]


class Reason(enum.StrEnum):
    """Why a message was refused; the values appear in receipts, logs and metrics."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    OVERSIZED = "oversized"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_TERMINAL = "unknown_terminal"
    REVOKED_TERMINAL = "revoked_terminal"
    BAD_SEAL = "bad_seal"
    REPLAY = "replay"
    TOPIC_MISMATCH = "topic_mismatch"
    QUOTA_EXCEEDED = "quota_exceeded"


class DecodeError(ValueError):
    """Input that a codec refuses, with the reason a receipt will carry."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
