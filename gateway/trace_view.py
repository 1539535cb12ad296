"""``satgw trace`` output: one message's hops as a table (pure rendering, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.queue.trace import Hop, HopEvent, MessageTrace

__all__ = ["render"]

_HEAD = ("time (UTC)", "elapsed", "event", "details")


def render(found: MessageTrace) -> str:
    """The trace as text: a summary (class, state, receipts), then one row per hop."""
    start = _start(found)
    klass = f" ({found.priority.label})" if found.priority is not None else ""
    lines = [f"message {found.message_id}{klass}: {found.state.stage.value} - {found.state.detail}"]
    if found.receipts:
        lines.append("receipts: " + ", ".join(f"{kind} {_elapsed(at - start)}" for kind, at in found.receipts))
    if found.unreadable:
        lines.append(f"({found.unreadable} stored line(s) were not hops and are left out)")
    rows = [_HEAD, *((_when(h.at), _elapsed(h.at - start), h.event.value, _details(h)) for h in found.hops)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines.append("")
    lines += [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def _start(found: MessageTrace) -> float:
    received = [h.at for h in found.hops if h.event is HopEvent.RECEIVED]
    return received[0] if received else (found.hops[0].at if found.hops else 0.0)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _elapsed(seconds: float) -> str:
    return f"{seconds:+.3f}s"


def _details(hop: Hop) -> str:
    # The link first, the class by name; the rest as stored.
    parts = [f"link={hop.link}"] if hop.link is not None else []
    for key, value in hop.details.items():
        if key == "class" and hop.priority is not None:
            parts.append(f"class={hop.priority.label}")
        elif key != "link":
            parts.append(f"{key}={value}")
    return " ".join(parts)
