"""The bench's messages: terminals with keys, and every sealed payload, made before any clock starts.

A payload is sealed under its terminal's key; the topic prefix is not part of the seal, so one
workload serves every run (each run provisions the same keys under a fresh prefix). Per terminal,
seq 1 is the warm-up message and the measured messages follow from seq 2, in publish order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.names import Topics
from protocols.envelope import Kind, Message, Priority
from protocols.seal import new_key, seal

__all__ = ["PROBE_TERMINAL", "Workload", "on_topics"]

PROBE_TERMINAL = "probe"
"""A terminal of its own for readiness probes, so they never touch the measured terminals' seqs."""

# A telemetry line: with the clear header, the JSON framing and the 16-byte tag, ~105 bytes on the wire.
_BODY = "t=21.5C p=1013hPa v=12.{:01d}"


@dataclass(frozen=True)
class Workload:
    """Terminals, their keys, and the sealed (terminal, payload) pairs of one bench."""

    keys: dict[str, bytes] = field(repr=False)
    warmup: list[tuple[str, bytes]] = field(repr=False)
    measured: list[tuple[str, bytes]] = field(repr=False)
    _probe_seqs: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def build(cls, *, terminals: int, messages: int) -> Workload:
        """Make keys for ``terminals`` terminals, one warm-up message each and ``messages`` measured ones."""
        if terminals < 1:
            raise ValueError("terminals must be at least 1")
        if messages < 1:
            raise ValueError("messages must be at least 1")
        ids = [f"T{i:06d}" for i in range(terminals)]
        keys = {terminal: new_key() for terminal in ids}
        keys[PROBE_TERMINAL] = new_key()
        warmup = [(t, seal(_message(t, 1, 0), keys[t])) for t in ids]
        measured = [(ids[i % terminals], i) for i in range(messages)]
        sealed = [(t, seal(_message(t, 2 + i // terminals, i), keys[t])) for t, i in measured]
        return cls(keys=keys, warmup=warmup, measured=sealed)

    @property
    def terminals(self) -> list[str]:
        """The measured terminals (the probe terminal excluded)."""
        return [t for t in self.keys if t != PROBE_TERMINAL]

    @property
    def payload_bytes(self) -> float:
        """Mean size of a measured payload, in bytes."""
        return sum(len(p) for _, p in self.measured) / len(self.measured)

    def probe(self) -> tuple[str, bytes]:
        """A fresh message of the probe terminal."""
        return PROBE_TERMINAL, seal(_message(PROBE_TERMINAL, next(self._probe_seqs), 0), self.keys[PROBE_TERMINAL])


def on_topics(pairs: list[tuple[str, bytes]], topics: Topics) -> list[tuple[str, bytes]]:
    """Return (topic, payload) for each (terminal, payload): each terminal publishes on its uplink topic."""
    return [(topics.up(terminal), payload) for terminal, payload in pairs]


def _message(terminal: str, seq: int, n: int) -> Message:
    return Message(
        terminal=terminal,
        seq=seq,
        priority=Priority.ROUTINE,
        kind=Kind.TELEMETRY,
        body=_BODY.format(n % 10),
        ts=time.time(),
    )
