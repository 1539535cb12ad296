"""Capacity ceilings per class, in the manner of The Things Stack's duty-cycle ceilings, with aging.

A link can carry so many frames an hour. Each class may use at most a share of
that over a sliding window, counted together with every less urgent class: with
``routine = 0.5`` and ``safety = 0.8``, routine alone stays under half of the
link's capacity and safety plus routine under 80 %, so headroom is always left
for urgency and distress (which has no ceiling). A class held back by its
ceiling for ``aging_s`` gets one frame anyway, so no class starves.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protocols.envelope import Priority

__all__ = ["Ceilings", "Shares"]


@dataclass(frozen=True, slots=True)
class Shares:
    """The ceiling settings: share per class (0 < share <= 1), window and aging, seconds."""

    shares: Mapping[Priority, float] = field(default_factory=dict)
    window_s: float = 3600.0
    aging_s: float = 600.0

    def __post_init__(self) -> None:
        if Priority.DISTRESS in self.shares:
            raise ValueError("distress has no ceiling; remove its share")
        for priority, share in self.shares.items():
            if not 0 < share <= 1:
                raise ValueError(f"the {priority.label} share must be in (0, 1], got {share}")
        if not (self.window_s > 0 and self.aging_s > 0):
            raise ValueError("window_s and aging_s must be positive")


class Ceilings:
    """Tracks what one link carried per class and says which classes may use it now.

    Args:
        shares: the settings.
        capacity_per_hour: frames per hour the link can carry at most.
    """

    def __init__(self, *, shares: Shares, capacity_per_hour: float) -> None:
        if not capacity_per_hour > 0:
            raise ValueError(f"capacity_per_hour must be positive, got {capacity_per_hour}")
        self._shares = shares
        self._capacity = capacity_per_hour * shares.window_s / 3600.0
        self._sent: collections.deque[tuple[float, tuple[float, ...]]] = collections.deque()
        self._used = [0.0] * len(Priority)
        self._blocked_since: dict[Priority, float] = {}

    def record(self, now: float, classes: Sequence[Priority]) -> None:
        """Count one frame that carried records of ``classes`` (each record an equal part of the frame)."""
        parts = [0.0] * len(Priority)
        for priority in classes:
            parts[priority] += 1.0 / len(classes)
        self._sent.append((now, tuple(parts)))
        self._used = [u + p for u, p in zip(self._used, parts, strict=True)]
        for priority in set(classes):
            self._blocked_since.pop(priority, None)

    def ceiling(self, now: float) -> Priority:
        """The least urgent class that may go now (every more urgent one may too)."""
        self._expire(now)
        allowed = Priority.DISTRESS
        for priority in list(Priority)[1:]:
            if not self._may_use(priority, now):
                break
            allowed = priority
        return allowed

    def usage(self, priority: Priority) -> float:
        """The share of the window's capacity used by ``priority`` and less urgent classes."""
        return sum(self._used[priority:]) / self._capacity

    def _may_use(self, priority: Priority, now: float) -> bool:
        share = self._shares.shares.get(priority)
        if share is None or self.usage(priority) < share:
            self._blocked_since.pop(priority, None)
            return True
        since = self._blocked_since.setdefault(priority, now)
        return now - since >= self._shares.aging_s  # aged: one frame, then record() restarts the wait

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self._shares.window_s:
            _, parts = self._sent.popleft()
            self._used = [max(0.0, u - p) for u, p in zip(self._used, parts, strict=True)]
