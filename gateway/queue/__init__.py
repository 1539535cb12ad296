"""The only code that speaks Redis streams: class queues, replay/dedup, dead letters, ground outbox, counters.

See docs/internals.md for the stream entry fields and the path a message takes through here.
"""

from __future__ import annotations

from gateway.queue.entries import MAX_SEQ, Accepted, DeadLetter, Depth, EnqueueOutcome, Entry
from gateway.queue.outbox import Delivery, Outbox, OutboxEntry
from gateway.queue.stats import Stats
from gateway.queue.streams import Queue

__all__ = [
    "MAX_SEQ",
    "Accepted",
    "DeadLetter",
    "Delivery",
    "Depth",
    "EnqueueOutcome",
    "Entry",
    "Outbox",
    "OutboxEntry",
    "Queue",
    "Stats",
]
