"""Per-terminal quotas: a token bucket per (terminal, class), distress exempt.

A satellite link carries a few messages a minute; one chatty terminal must not
eat what its neighbours need. Each class may have a :class:`Quota` (so many
messages per period, with a burst); a message over it is refused with a
``quota_exceeded`` receipt that names the quota. Buckets live in this process
(a gateway node judges the terminals its connection receives) and are checked
only after the seal is opened, so a forger cannot spend a terminal's quota.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protocols.envelope import Priority

__all__ = ["Quota", "Quotas"]

_MAX_BUCKETS = 200_000


@dataclass(frozen=True, slots=True)
class Quota:
    """``count`` messages per ``period_s`` seconds, of which up to ``burst`` at once."""

    count: int
    period_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.burst < 1 or not self.period_s > 0:
            raise ValueError(f"a quota needs count >= 1, burst >= 1 and period_s > 0, got {self}")

    @property
    def rate(self) -> float:
        """Tokens regained per second."""
        return self.count / self.period_s

    def describe(self, priority: Priority) -> str:
        """How a receipt names it, e.g. ``routine quota 60 per 3600 s (burst 10)``."""
        return f"{priority.label} quota {self.count} per {self.period_s:g} s (burst {self.burst})"


class Quotas:
    """Token buckets per (terminal, class).

    Args:
        limits: the quota of each class that has one; distress never has one.
        clock: monotonic seconds.
        max_buckets: buckets kept; the least recently used go first (a forgotten bucket restarts full).
    """

    def __init__(
        self,
        *,
        limits: Mapping[Priority, Quota],
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = _MAX_BUCKETS,
    ) -> None:
        if Priority.DISTRESS in limits:
            raise ValueError("distress is exempt from quotas; remove its limit")
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self._limits = dict(limits)
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[tuple[str, Priority], tuple[float, float]] = OrderedDict()

    def take(self, terminal: str, priority: Priority) -> str | None:
        """Spend one message of ``terminal``'s ``priority`` quota; return the quota's name if it is exhausted."""
        quota = self._limits.get(priority)
        if quota is None:
            return None
        key = (terminal, priority)
        tokens = self._tokens(key, quota)
        if tokens < 1.0:
            return quota.describe(priority)
        self._store(key, tokens - 1.0)
        return None

    def refund(self, terminal: str, priority: Priority) -> None:
        """Give back one message (it turned out a duplicate, so it cost the link nothing)."""
        quota = self._limits.get(priority)
        if quota is not None:
            key = (terminal, priority)
            self._store(key, min(float(quota.burst), self._tokens(key, quota) + 1.0))

    def _tokens(self, key: tuple[str, Priority], quota: Quota) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(quota.burst), now))
        return min(float(quota.burst), tokens + (now - at) * quota.rate)

    def _store(self, key: tuple[str, Priority], tokens: float) -> None:
        self._buckets[key] = (tokens, self._clock())
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
