"""The link seam: what the relay needs from any satellite link, and what a link reports back.

A link is given whole frames (bytes) and a priority class. Like an RDSS terminal's
FKI feedback, it answers every transmission with :class:`Feedback`: sent, or not
sent with a reason and how long to wait. A link that reports ``sent`` has handed
the frame to the ground segment (its :class:`FrameSink`), which has made it durable,
so the relay may XACK what the frame carried.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from protocols.envelope import Priority

__all__ = ["Clock", "Feedback", "FeedbackCode", "FrameSink", "Link"]


class FeedbackCode(enum.StrEnum):
    """Why a transmission did or did not happen (after RDSS ``$BDFKI`` reasons)."""

    SENT = "sent"
    INTERVAL = "interval_not_reached"
    TOO_LARGE = "too_large"
    LOST = "lost"
    OUTAGE = "outage"
    NO_PASS = "no_pass"


@dataclass(frozen=True, slots=True)
class Feedback:
    """A link's answer to one transmission."""

    code: FeedbackCode
    wait_s: float = 0.0
    """Seconds until the link could take another frame of this class."""
    delay_s: float = 0.0
    """Propagation delay the frame took (sent frames only)."""

    @property
    def sent(self) -> bool:
        """True if the frame reached the ground segment."""
        return self.code is FeedbackCode.SENT


class Clock(Protocol):
    """Time as the link models see it; tests inject a simulated one."""

    def now(self) -> float:
        """Return the current time in seconds (Unix epoch for the real clock)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class FrameSink(Protocol):
    """The far end of a link: the ground segment."""

    async def receive(self, frame: bytes, *, link: str) -> None:
        """Take a frame off the link and make what it carries durable before returning."""
        ...


class Link(Protocol):
    """A satellite link: narrow, slow, sometimes unavailable."""

    @property
    def name(self) -> str:
        """A unique name, used in logs, metrics and traces."""
        ...

    @property
    def mtu(self) -> int:
        """The largest frame, in bytes, that one transmission carries."""
        ...

    def ready_in(self, priority: Priority) -> float:
        """Seconds until a frame of ``priority`` may be sent (0 when it may go now)."""
        ...

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Send one frame; return when the ground segment has it, or why it did not go."""
        ...
