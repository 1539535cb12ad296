"""Helpers shared by the link-model tests."""

from __future__ import annotations

from gateway.links.clock import SimClock


class RecordingSink:
    """A ground segment that remembers what arrived, on which link, and when."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.frames: list[tuple[bytes, str, float]] = []

    async def receive(self, frame: bytes, *, link: str) -> None:
        self.frames.append((frame, link, self.clock.now()))
