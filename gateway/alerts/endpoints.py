"""Webhook endpoints as configured, and when a failed delivery is tried again.

Pure values: no I/O. :mod:`gateway.config` builds :class:`WebhookEndpoint` from ``[[alerts.webhooks]]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

__all__ = ["RETRY_AFTER_MAX_S", "Backoff", "WebhookEndpoint", "parse_retry_after"]

RETRY_AFTER_MAX_S = 3600.0
"""The longest ``Retry-After`` honoured, so one bad header cannot park an alert for days."""
MIN_SECRET = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``n`` failed → wait between half and all of ``min(cap, base·2^(n-1))``.

    Half the ceiling is kept so retries never bunch at zero (full jitter's weakness); the other
    half is random, so endpoints that failed together do not retry together. A ``Retry-After``
    from the receiver is a floor (up to :data:`RETRY_AFTER_MAX_S`).
    """

    base_s: float
    cap_s: float

    def __post_init__(self) -> None:
        _positive("backoff_base_s", self.base_s)
        _positive("backoff_cap_s", self.cap_s)
        if self.cap_s < self.base_s:
            raise ValueError(f"backoff_cap_s ({self.cap_s}) must not be below backoff_base_s ({self.base_s})")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt number ``attempt`` (1 for the first)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(max(attempt - 1, 0), 60))

    def delay(self, attempt: int, *, random: Callable[[], float], retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``; ``random()`` returns a float in [0, 1)."""
        ceiling = self.ceiling(attempt)
        wait = ceiling / 2 + random() * ceiling / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_MAX_S))
        return wait


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """One receiver of alerts: an HTTP(S) URL taking signed POSTs.

    ``secret`` and ``url`` stay out of ``repr`` (a URL often carries a token); logs name the endpoint.

    Args:
        name: Names the endpoint in logs, metrics and Redis keys.
        url: Where alerts are POSTed (http or https).
        secret: The HMAC key shared with the receiver (at least 16 characters).
        timeout_s: The most one attempt may take, connection to response.
        max_attempts: Attempts before a delivery goes to the dead-letter list.
        backoff: When a failed delivery is tried again.
    """

    name: str
    url: str = field(repr=False)
    secret: str = field(repr=False)
    timeout_s: float = 10.0
    max_attempts: int = 20
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, cap_s=300.0))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError("name: must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit")
        _check_url(self.url)
        if not isinstance(self.secret, str) or len(self.secret) < MIN_SECRET:
            raise ValueError(f"secret: must be at least {MIN_SECRET} characters")
        _positive("timeout_s", self.timeout_s)
        if self.timeout_s > 300:
            raise ValueError(f"timeout_s: must be at most 300, got {self.timeout_s}")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts: must be an integer, got {self.max_attempts!r}")
        if not 1 <= self.max_attempts <= 1000:
            raise ValueError(f"max_attempts: must be in 1..1000, got {self.max_attempts}")
        if not isinstance(self.backoff, Backoff):
            raise ValueError(f"backoff: must be a Backoff, got {type(self.backoff).__name__}")

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the URL: safe to show (no path, query or credentials)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be a positive number of seconds, got {value!r}")


def _check_url(url: object) -> None:
    # The message never repeats the URL: it may hold a token.
    if not isinstance(url, str):
        raise ValueError("url: must be a string")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ValueError("url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url: scheme must be http or https, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("url: has no host")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError("url: contains whitespace or control characters")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 10**9))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
