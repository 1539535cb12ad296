"""A link whose every answer comes from a test's handler, in the style of httpx's ``MockTransport``.

Relay tests use it to script feedback (sent, lost, interval, outage) frame by frame
without modelling a satellite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.links.base import Feedback, FeedbackCode
from protocols.envelope import Priority

__all__ = ["Handler", "MockLink", "ReadyIn"]

Handler = Callable[[bytes, Priority], Awaitable[Feedback]]
"""``async (frame, priority) -> Feedback``: decides what happens to one transmission."""
ReadyIn = Callable[[Priority], float]
"""``(priority) -> seconds``: what :meth:`MockLink.ready_in` answers."""


def _always_ready(priority: Priority) -> float:
    return 0.0


class MockLink:
    """A :class:`~gateway.links.base.Link` that passes every transmission to ``handler``.

    Frames larger than ``mtu`` are answered ``TOO_LARGE`` without calling the handler, as
    every link does. Each transmission that reaches the handler is recorded in
    :attr:`transmissions`.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        name: str = "mock",
        mtu: int = 1024,
        ready_in: ReadyIn = _always_ready,
    ) -> None:
        """Create the link.

        Args:
            handler: ``async (frame, priority) -> Feedback``, called once per transmission.
            name: the link's name.
            mtu: the largest frame accepted, bytes.
            ready_in: answers :meth:`ready_in`; by default the link is always ready.

        Raises:
            ValueError: ``name`` is empty or ``mtu`` is not a positive integer.
        """
        if not name:
            raise ValueError("name must be a non-empty string")
        if isinstance(mtu, bool) or not isinstance(mtu, int) or mtu < 1:
            raise ValueError(f"mtu must be a positive integer, got {mtu!r}")
        self._handler = handler
        self._name = name
        self._mtu = mtu
        self._ready_in = ready_in
        self.transmissions: list[tuple[bytes, Priority]] = []
        """Every (frame, priority) handed to the handler, in call order."""

    @property
    def name(self) -> str:
        """The link's name."""
        return self._name

    @property
    def mtu(self) -> int:
        """The largest frame accepted, bytes."""
        return self._mtu

    def ready_in(self, priority: Priority) -> float:
        """Return what the ``ready_in`` callable says for ``priority``."""
        return self._ready_in(priority)

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Answer ``TOO_LARGE`` for oversize frames, else record the frame and return the handler's answer."""
        if len(frame) > self._mtu:
            return Feedback(FeedbackCode.TOO_LARGE)
        self.transmissions.append((frame, priority))
        return await self._handler(frame, priority)
