"""In-process counters, cheap on the hot path, flushed to shared storage by the service."""

from __future__ import annotations

from collections import Counter

__all__ = ["Counters"]


class Counters:
    """Named monotonic counters; names look like ``rejected.bad_seal`` or ``delivered.distress``."""

    def __init__(self) -> None:
        self._totals: Counter[str] = Counter()
        self._unflushed: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self._totals[name] += n
        self._unflushed[name] += n

    def get(self, name: str) -> int:
        """Return the total of ``name`` in this process."""
        return self._totals[name]

    def snapshot(self) -> dict[str, int]:
        """Return every total in this process."""
        return dict(self._totals)

    def take_unflushed(self) -> dict[str, int]:
        """Return and forget the increments since the last call, for a shared store."""
        out, self._unflushed = dict(self._unflushed), Counter()
        return out

    def restore_unflushed(self, counts: dict[str, int]) -> None:
        """Put back increments that could not be flushed."""
        self._unflushed.update(counts)
