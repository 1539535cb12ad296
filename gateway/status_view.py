"""What ``satgw status`` prints: queues, counters and terminals as terminal tables, distress waiting first.

Pure: :func:`summarize` sorts queue depths, the ``{prefix}:stats`` counters and the terminal presence
summary (``PresenceStore.summary``) into a :class:`Summary`,
:func:`render` turns it into text (ANSI colour only when asked), so both are tested without Redis or a TTY.
Counter names are the ones the gateway writes: ``accepted.<class>``, ``sent.<class>``, ``delivered.<class>``,
``expired.<class>``, ``dead.<class>``, ``rejected.<reason>`` and ``link.<link>.<feedback code>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.incidents import Incident, IncidentState
from gateway.queue import Depth
from gateway.queue.presence import PresenceSummary, TerminalPresence
from protocols.envelope import Priority

__all__ = [
    "ClassRow",
    "Summary",
    "TerminalRow",
    "Terminals",
    "format_age",
    "render",
    "summarize",
    "terminals_json",
    "use_color",
]

CLASS_COUNTERS: Final = ("accepted", "sent", "delivered", "expired", "dead")
"""Per-class counters, in the order of the table's columns (``<name>.<class label>`` in the stats hash)."""

# Link columns in the order an operator reads them: what went, then why the rest did not.
_LINK_CODES: Final = {
    "sent": "sent",
    "fragments": "fragments",
    "lost": "lost",
    "outage": "outage",
    "no_pass": "no_pass",
    "interval_not_reached": "interval",
    "too_large": "too_large",
}
_TROUBLE: Final = frozenset({"lost", "outage", "too_large"})

_RESET: Final = "\x1b[0m"
_BOLD: Final = "\x1b[1m"
_ALARM: Final = "\x1b[1;31m"
_WARN: Final = "\x1b[33m"
_GOOD: Final = "\x1b[32m"


@dataclass(frozen=True, slots=True)
class ClassRow:
    """One priority class: its queue and its cumulative counters."""

    label: str
    depth: int
    pending: int
    oldest_age_s: float | None
    counts: tuple[int, ...]
    """The :data:`CLASS_COUNTERS`, in that order."""

    @property
    def waiting(self) -> int:
        """Messages in the queue: not yet taken plus taken and not yet acknowledged."""
        return self.depth + self.pending


@dataclass(frozen=True, slots=True)
class TerminalRow:
    """One recently seen terminal."""

    terminal: str
    age_s: float | None
    """Seconds since it was last seen."""
    online: bool
    position: str
    """``lat, lon`` of its last fix, or ``-``."""
    accepted: int
    refused: int
    """Its sealed messages refused (duplicates included) plus unauthenticated ones claiming it."""


@dataclass(frozen=True, slots=True)
class Terminals:
    """Terminal numbers and the most recently seen ones."""

    registered: int
    online: int
    seen: int
    window_s: float
    recent: tuple[TerminalRow, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything ``satgw status`` shows, sorted out of the raw depths and counters."""

    classes: tuple[ClassRow, ...]
    links: dict[str, dict[str, int]]
    """Link name → feedback code (``sent``, ``lost`` ...) → count."""
    rejected: dict[str, int]
    """Reason → count, most frequent first."""
    other: dict[str, int]
    """Every other counter (ingest, ground, receipts), by name."""
    terminals: Terminals | None = None
    incidents: tuple[Incident, ...] = ()
    """Active SOS incidents, newest first."""
    now: float = 0.0
    downlink: tuple[Depth, ...] = ()
    """The downlink queues (messages to terminals), by class."""

    @property
    def distress(self) -> ClassRow | None:
        """The distress class row, if the queue reported one."""
        return next((row for row in self.classes if row.label == Priority.DISTRESS.label), None)


def summarize(
    depths: Sequence[Depth],
    counters: Mapping[str, int],
    terminals: PresenceSummary | None = None,
    *,
    now: float = 0.0,
    incidents: Sequence[Incident] = (),
    downlink: Sequence[Depth] = (),
) -> Summary:
    """Sort ``depths`` (from ``Queue.depths``), ``counters`` (from ``Stats.read``) and ``terminals`` into a
    :class:`Summary`; ``now`` (Unix seconds) dates the terminals' last seen."""
    used: set[str] = set()
    classes = []
    for d in depths:
        names = [f"{counter}.{d.priority.label}" for counter in CLASS_COUNTERS]
        used.update(names)
        classes.append(
            ClassRow(d.priority.label, d.depth, d.pending, d.oldest_age_s, tuple(counters.get(n, 0) for n in names))
        )
    links: dict[str, dict[str, int]] = {}
    rejected: dict[str, int] = {}
    for name, value in counters.items():
        if name.startswith("link.") and "." in name[5:]:
            link, _, code = name[5:].rpartition(".")  # link names may hold dots; codes never do
            links.setdefault(link, {})[code] = value
        elif name.startswith("rejected."):
            rejected[name.removeprefix("rejected.")] = value
        else:
            continue
        used.add(name)
    other = {name: counters[name] for name in sorted(counters) if name not in used}
    by_count = dict(sorted(rejected.items(), key=lambda item: (-item[1], item[0])))
    view = None if terminals is None else _terminals(terminals, now)
    active = tuple(i for i in incidents if i.state.active)
    return Summary(tuple(classes), dict(sorted(links.items())), by_count, other, view, active, now, tuple(downlink))


def _terminals(summary: PresenceSummary, now: float) -> Terminals:
    rows = tuple(_terminal_row(t, now, summary.window_s) for t in summary.recent)
    return Terminals(summary.registered, summary.online, summary.seen, summary.window_s, rows)


def _terminal_row(t: TerminalPresence, now: float, window_s: float) -> TerminalRow:
    accepted = sum(n for name, n in t.counts.items() if name.startswith("accepted."))
    refused = sum(t.counts.values()) - accepted
    position = "-" if t.fix is None else f"{t.fix.lat:.5f},{t.fix.lon:.5f}"
    age = None if t.last_seen is None else now - t.last_seen
    return TerminalRow(t.terminal, age, t.online(now=now, window_s=window_s), position, accepted, refused)


def terminals_json(summary: PresenceSummary, *, now: float) -> dict[str, Any]:
    """The terminal part of ``satgw status --json``: totals and the recent terminals with their presence."""
    recent = [
        {
            "terminal": t.terminal,
            "last_seen": t.last_seen,
            "online": t.online(now=now, window_s=summary.window_s),
            "last_position": None if t.fix is None else {"lat": t.fix.lat, "lon": t.fix.lon, "at": t.fix.at},
            "counters": dict(t.counts),
        }
        for t in summary.recent
    ]
    totals = {"registered": summary.registered, "online": summary.online, "seen": summary.seen}
    return {**totals, "online_window_s": summary.window_s, "recent": recent}


def render(summary: Summary, *, color: bool) -> str:
    """The status as text: distress line, class table, links, rejections, other counters; ANSI only if ``color``."""
    sections = [
        [_distress_line(summary.distress, color)],
        _incident_table(summary.incidents, summary.now, color),
        _class_table(summary.classes, color),
        _downlink_table(summary.downlink, color),
        _link_table(summary.links, color),
        _rejected_table(summary.rejected, color),
        _terminal_table(summary.terminals, color),
        _other_table(summary.other, color),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines)


def use_color(choice: str, *, isatty: bool, environ: Mapping[str, str]) -> bool:
    """Decide ``--color``: always, never, or auto (a TTY, no ``NO_COLOR``, and not ``TERM=dumb``).

    Raises:
        ValueError: ``choice`` is none of the three.
    """
    if choice == "always":
        return True
    if choice == "never":
        return False
    if choice != "auto":
        raise ValueError(f"--color must be auto, always or never, got {choice!r}")
    return isatty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def format_age(seconds: float | None) -> str:
    """A short age: ``-`` for none, ``4.2s``, ``3m07s``, ``5h02m``, ``3d04h``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


Cell = tuple[str, str]
"""Text and the ANSI style it gets when colour is on ("" for none)."""


def _distress_line(row: ClassRow | None, color: bool) -> str:
    if row is None or row.waiting == 0:
        return _paint("no distress waiting", _GOOD, color)
    text = (
        f"!! DISTRESS WAITING: {row.waiting} ({row.depth} queued, {row.pending} in transmission), "
        f"oldest {format_age(row.oldest_age_s)}"
    )
    return _paint(text, _ALARM, color)


def _incident_table(incidents: Sequence[Incident], now: float, color: bool) -> list[str]:
    if not incidents:
        return []
    body = [
        [
            (i.id, _ALARM if i.state is IncidentState.OPEN else _WARN),
            (i.state.value, _ALARM if i.state is IncidentState.OPEN else _WARN),
            (format_age(now - i.opened_at), ""),
            ("-" if i.position is None else f"{i.position.lat:.5f},{i.position.lon:.5f}", ""),
            (i.nature or "-", ""),
            (str(len(i.alerts)), ""),
        ]
        for i in incidents
    ]
    title = _paint(f"!! SOS INCIDENTS ACTIVE: {len(incidents)}", _ALARM, color)
    return [title, *_table(["incident", "state", "age", "position", "emergency", "CAP alerts"], body, color)]


def _downlink_table(depths: Sequence[Depth], color: bool) -> list[str]:
    if not any(d.depth or d.pending for d in depths):
        return []
    body = [
        [(d.priority.label, ""), (str(d.depth), ""), (str(d.pending), ""), (format_age(d.oldest_age_s), "")]
        for d in depths
    ]
    return _table(["downlink", "depth", "pending", "oldest"], body, color)


def _class_table(rows: Sequence[ClassRow], color: bool) -> list[str]:
    header = ["class", "depth", "pending", "oldest", *CLASS_COUNTERS]
    body = [_class_cells(row) for row in rows]
    if rows:
        ages = [r.oldest_age_s for r in rows if r.oldest_age_s is not None]
        totals = [sum(r.depth for r in rows), sum(r.pending for r in rows)]
        counts = [sum(r.counts[i] for r in rows) for i in range(len(CLASS_COUNTERS))]
        total = ["total", *map(str, totals), format_age(max(ages, default=None)), *map(str, counts)]
        body.append([(text, "") for text in total])
    return _table(header, body, color)


def _class_cells(row: ClassRow) -> list[Cell]:
    alarm = row.label == Priority.DISTRESS.label and row.waiting > 0
    style = _ALARM if alarm else ""
    cells = [row.label, str(row.depth), str(row.pending), format_age(row.oldest_age_s)]
    out = [(text, style) for text in cells]
    for name, count in zip(CLASS_COUNTERS, row.counts, strict=True):
        out.append((str(count), style or (_WARN if name == "dead" and count else "")))
    return out


def _link_table(links: Mapping[str, Mapping[str, int]], color: bool) -> list[str]:
    if not links:
        return []
    seen = {code for counts in links.values() for code in counts}
    codes = [c for c in _LINK_CODES if c in seen or c == "sent"] + sorted(seen - _LINK_CODES.keys())
    header = ["link", *(_LINK_CODES.get(c, c) for c in codes)]
    body = []
    for name, counts in links.items():
        cells = [(str(counts.get(c, 0)), _WARN if c in _TROUBLE and counts.get(c, 0) else "") for c in codes]
        body.append([(name, ""), *cells])
    return _table(header, body, color)


def _rejected_table(rejected: Mapping[str, int], color: bool) -> list[str]:
    if not rejected:
        return ["rejected: none"]
    body = [[(reason, ""), (str(n), "")] for reason, n in rejected.items()]
    body.append([("total", ""), (str(sum(rejected.values())), "")])
    return _table(["rejected", "count"], body, color)


def _terminal_table(terminals: Terminals | None, color: bool) -> list[str]:
    if terminals is None:
        return []
    line = (
        f"terminals: {terminals.registered} registered, {terminals.online} online "
        f"(seen within {format_age(terminals.window_s)}), {terminals.seen} ever seen"
    )
    if not terminals.recent:
        return [line]
    body = [
        [
            (row.terminal, ""),
            (format_age(row.age_s), ""),
            ("yes" if row.online else "no", _GOOD if row.online else _WARN),
            (row.position, ""),
            (str(row.accepted), ""),
            (str(row.refused), _WARN if row.refused else ""),
        ]
        for row in terminals.recent
    ]
    return [line, *_table(["terminal", "last seen", "online", "position", "accepted", "refused"], body, color)]


def _other_table(other: Mapping[str, int], color: bool) -> list[str]:
    if not other:
        return []
    return _table(["counter", "count"], [[(name, ""), (str(n), "")] for name, n in other.items()], color)


def _table(header: Sequence[str], rows: Sequence[Sequence[Cell]], color: bool) -> list[str]:
    """Columns sized to their widest text (colour codes do not count); the first left-aligned, the rest right."""
    widths = [max([len(h), *(len(row[i][0]) for row in rows)]) for i, h in enumerate(header)]
    lines = [_row([(h, _BOLD) for h in header], widths, color)]
    lines += [_row(row, widths, color) for row in rows]
    return lines


def _row(cells: Sequence[Cell], widths: Sequence[int], color: bool) -> str:
    parts = []
    for i, ((text, style), width) in enumerate(zip(cells, widths, strict=True)):
        parts.append(_paint(text.ljust(width) if i == 0 else text.rjust(width), style, color))
    return "  ".join(parts).rstrip()


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color and style else text
