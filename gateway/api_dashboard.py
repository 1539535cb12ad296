"""The dashboard's data routes: the recent history of the queues and each link's timeline.

``GET /api/v1/history?minutes=N`` answers the samples of :mod:`gateway.history` (this
process's ring buffer); ``GET /api/v1/links/{name}/timeline?hours=H`` answers a link's
passes, outages and send-interval state from ten minutes ago to ``H`` hours ahead
(:mod:`gateway.links.timeline`), in the link clock's seconds (Unix time in production).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from gateway.api_models import ErrorOut, QueueOut
from gateway.history import History, Sample
from gateway.links.base import Clock
from gateway.links.timeline import Span, SpanKind, timeline
from gateway.operations import Operations
from protocols.envelope import Priority

__all__ = [
    "PAST_S",
    "DashboardSources",
    "HistoryOut",
    "SampleOut",
    "SpanOut",
    "TimelineOut",
    "add_dashboard_routes",
]

PAST_S = 600.0
"""A timeline starts this long before now, so what just happened (a pass, an outage) still shows."""
MAX_HOURS = 24.0
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such link"}}


@dataclass(frozen=True, slots=True)
class DashboardSources:
    """What the dashboard routes read besides :class:`~gateway.operations.Operations`.

    Args:
        history: the sampled recent past of this process.
        clock: the links' clock (their timelines are in its time).
    """

    history: History
    clock: Clock


class SampleOut(BaseModel):
    """The queues at one moment and what flowed since the sample before."""

    at: float = Field(description="Unix seconds")
    interval_s: float = Field(description="seconds since the previous sample (0 for the first)")
    queues: dict[str, QueueOut] = Field(description="by class, most urgent first")
    accepted: dict[str, int] = Field(description="accepted in the interval, by class (classes with none left out)")
    sent: dict[str, int] = Field(description="taken by a link in the interval, by class")
    delivered: dict[str, int] = Field(description="delivered by the ground in the interval, by class")
    rejected: dict[str, int] = Field(description="rejected in the interval, by reason")


class HistoryOut(BaseModel):
    """The samples of this process's last minutes, oldest first."""

    every_s: float = Field(description="seconds between samples")
    window_s: float = Field(description="seconds of samples kept")
    samples: list[SampleOut]


class SpanOut(BaseModel):
    """One stretch of a link's timeline, from start (inclusive) to end (exclusive)."""

    kind: SpanKind = Field(
        description="pass (a LEO satellite above the mask), in_view (always a satellite), outage, "
        "or interval (a card may not send again before the end)"
    )
    start: float
    end: float
    label: str = Field(description="satellite, scheduled or random (outages), card")
    peak_at: float | None = Field(description="when a pass is highest")
    peak_elevation_deg: float | None = Field(description="how high a pass gets")


class TimelineOut(BaseModel):
    """A link's timeline: what is known of it from ten minutes ago to some hours ahead."""

    link: str
    now: float = Field(description="the link clock's time of the answer")
    start: float
    end: float
    spans: list[SpanOut] = Field(description="every span overlapping start..end, whole, by start")
    next_send_at: dict[str, float] = Field(description="when a frame of each class may go next (at least now)")


def add_dashboard_routes(app: FastAPI, *, ops: Operations, sources: DashboardSources) -> None:
    """Add ``/api/v1/history`` and ``/api/v1/links/{name}/timeline`` to ``app``."""
    history = sources.history
    window_minutes = max(1, int(history.window_s // 60))

    @app.get("/api/v1/history", response_model=HistoryOut, tags=["status"])
    async def recent(
        minutes: int | None = Query(None, ge=1, le=window_minutes, description="the last N minutes (default: all)"),
    ) -> HistoryOut:
        """Queue depth and oldest age per class, throughput and rejections, sampled every few seconds."""
        samples = list(history)
        if minutes is not None and samples:
            samples = history.since(samples[-1].at - minutes * 60.0)
        return HistoryOut(every_s=history.every_s, window_s=history.window_s, samples=[_sample(s) for s in samples])

    @app.get("/api/v1/links/{name}/timeline", response_model=TimelineOut, tags=["links"], responses=_NOT_FOUND)
    async def link_timeline(
        name: str,
        hours: float = Query(6.0, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="how far ahead"),
    ) -> TimelineOut:
        """Passes (rise, set, peak), outages and busy cards from ten minutes ago to ``hours`` ahead."""
        handle = ops.link(name)
        if handle is None:
            raise HTTPException(404, f"no link {name}")
        now = sources.clock.now()
        start, end = now - PAST_S, now + hours * 3600.0
        spans = [_span(s) for s in timeline(handle.link, start, end)]
        ahead = {p.label: round(now + max(0.0, handle.link.ready_in(p)), 3) for p in Priority}
        return TimelineOut(link=name, now=now, start=start, end=end, spans=spans, next_send_at=ahead)


def _sample(s: Sample) -> SampleOut:
    queues = {
        label: QueueOut(depth=q.depth, pending=q.pending, oldest_age_s=q.oldest_age_s) for label, q in s.queues.items()
    }
    return SampleOut(
        at=s.at,
        interval_s=s.interval_s,
        queues=queues,
        accepted=dict(s.accepted),
        sent=dict(s.sent),
        delivered=dict(s.delivered),
        rejected=dict(s.rejected),
    )


def _span(s: Span) -> SpanOut:
    return SpanOut(
        kind=s.kind,
        start=s.start,
        end=s.end,
        label=s.label,
        peak_at=s.peak_at,
        peak_elevation_deg=s.peak_elevation_deg,
    )
