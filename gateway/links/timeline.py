"""A link's timeline: the stretches of time it knows about, past and ahead (passes, outages, busy cards).

A link model that can say what lies ahead implements :class:`HasTimeline`; the dashboard
asks through :func:`timeline`, which answers an empty list for a link that cannot say
(a scripted test link, say). Every time is in the link clock's seconds (Unix time in
production). What a span means:

* ``pass``: a LEO satellite above the elevation mask, rise to set (AOS to LOS), with its peak.
* ``in_view``: a satellite the link can use is always there (GEO, an Iridium constellation).
* ``outage``: nothing goes, whatever the class. Scheduled outages are known ahead; random ones
  only once they have begun, as an operator would learn of them (the model draws them ahead,
  but showing those would be foretelling).
* ``interval``: a card (or modem) may not send again before the span ends, except distress
  under an emergency exemption; one span per busy card.

A span overlapping the asked stretch is reported whole, as :func:`~gateway.links.orbits.find_passes`
reports passes, so a pass under way at the start keeps its true rise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from gateway.links.base import Link
from gateway.links.orbits import Pass
from gateway.links.outages import Outages

__all__ = ["HasTimeline", "Span", "SpanKind", "busy_spans", "ordered", "outage_spans", "pass_span", "timeline"]

SpanKind = Literal["pass", "in_view", "outage", "interval"]
_EPS_S = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One stretch of a link's timeline, from ``start`` (inclusive) to ``end`` (exclusive); validated.

    Raises:
        ValueError: a time is not finite or the span is empty.
    """

    kind: SpanKind
    start: float
    end: float
    label: str = ""
    """What the span is about: a satellite, ``scheduled`` or ``random``, a card."""
    peak_at: float | None = None
    """When a pass is highest (passes only)."""
    peak_elevation_deg: float | None = None
    """How high a pass gets (passes only)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end) and self.start < self.end):
            raise ValueError(f"a span must be finite and end after it starts, got {self.start!r}..{self.end!r}")

    def overlaps(self, start: float, end: float) -> bool:
        """True if the span shares some time with ``[start, end)``."""
        return self.start < end and start < self.end


@runtime_checkable
class HasTimeline(Protocol):
    """A link that can tell its timeline."""

    def timeline(self, start: float, end: float) -> list[Span]:
        """The spans overlapping ``[start, end)`` as known now, ordered by start."""
        ...


def timeline(link: Link, start: float, end: float) -> list[Span]:
    """The spans of ``link`` overlapping ``[start, end)``, ordered by start; empty when the link cannot tell.

    Raises:
        ValueError: the stretch is not finite or not ordered.
    """
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ValueError(f"the stretch must be finite with start < end, got {start!r}..{end!r}")
    if not isinstance(link, HasTimeline):
        return []
    return ordered(link.timeline(start, end))


def ordered(spans: Iterable[Span]) -> list[Span]:
    """``spans`` by start, then end, then kind and label (a stable order for the same input)."""
    return sorted(spans, key=lambda s: (s.start, s.end, s.kind, s.label))


def pass_span(p: Pass) -> Span:
    """A LEO pass as a span: rise to set, with its peak."""
    return Span(
        kind="pass",
        start=p.rise,
        end=p.set,
        label=p.satellite,
        peak_at=p.culmination,
        peak_elevation_deg=p.max_elevation_deg,
    )


def outage_spans(outages: Outages | None, start: float, end: float, *, now: float) -> list[Span]:
    """The outages overlapping ``[start, end)`` known at ``now``: every scheduled one, random ones once begun."""
    if outages is None:
        return []
    return [Span(kind="outage", start=w.start, end=w.end, label=why) for why, w in outages.known(start, end, now=now)]


def busy_spans(free_at: Iterable[float], start: float, end: float, *, now: float, label: str) -> list[Span]:
    """One ``interval`` span per card still busy at ``now``: from now until it may send again.

    Cards are numbered from 1 in ``free_at`` order (``label`` 1, 2, … after the given word);
    a single card is just ``label``.
    """
    times = list(free_at)
    spans = []
    for i, free in enumerate(times, 1):
        name = label if len(times) == 1 else f"{label} {i}"
        if free - now > _EPS_S and now < end and start < free:
            spans.append(Span(kind="interval", start=now, end=free, label=name))
    return spans
