"""A LEO store-and-forward link (Swarm/Iridium-like): frames go up only while a satellite passes over.

What is modelled (domain.md §3, §5.1-5.2):

* **Pass windows**: from the profile's TLEs with SGP4 (:mod:`gateway.links.orbits`), for the
  gateway's position and an elevation mask (10° by default). Outside every window nothing
  is sent: ``transmit`` answers ``NO_PASS`` with the seconds until the next rise.
* **Per-pass capacity**: each pass carries at most ``pass_capacity_bytes`` and/or
  ``pass_capacity_frames``; every transmitted frame (lost ones too) uses some. A spent pass
  also answers ``NO_PASS``, with the wait until the next pass that can take the frame.
  When several satellites are in view, the one that sets first is used first.
* **Propagation**: gateway → satellite, slant range over c at the moment of sending. The
  satellite stores the frame; that store is the model's ground segment (the sink), so the
  later downlink to a ground station is not part of the delay.
* **Loss**: each frame is lost with probability ``loss_rate``, drawn after the flight.

No class is exempt: without a satellite in view even distress must wait.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from gateway.links.base import Clock, Feedback, FeedbackCode, FrameSink
from gateway.links.orbits import Pass, Satellite, Site, delay_s, find_passes, load_tle
from gateway.links.outages import NO_OUTAGES, OutagePlan, Outages
from gateway.links.timeline import Span, ordered, outage_spans, pass_span
from protocols.envelope import Priority

__all__ = ["LeoLink", "LeoProfile", "LeoStats"]

_EPS_S = 1e-9
"""Float slack: a pass rising within a nanosecond counts as open, so ``sleep(ready_in())`` always suffices."""
_CHUNK_S = 6 * 3600.0
"""Passes are computed this far ahead at a time."""
_SEARCH_S = 48 * 3600.0
"""How far ahead a link looks for a next pass before it answers "ask again then"."""
_TIMELINE_CHUNK_S = 3600.0
"""Timeline passes are computed and kept by the hour (a whole number of the orbit module's 60 s samples)."""
_TIMELINE_CHUNKS = 48
"""How many hours of timeline passes a link keeps."""


@dataclass(frozen=True, slots=True)
class LeoStats:
    """A snapshot of a LEO link's counters since it was built."""

    sent: int = 0
    """Frames the satellite took (``SENT``)."""
    lost: int = 0
    """Frames that went up but never arrived (``LOST``)."""
    too_large: int = 0
    """Frames refused for exceeding the MTU."""
    no_pass: int = 0
    """Transmissions refused because no satellite in view had capacity left for the frame."""
    bytes_sent: int = 0
    """Bytes in frames that arrived (``SENT`` only)."""
    passes_used: int = 0
    """Passes that carried at least one frame."""
    outage_refusals: int = 0
    """Transmissions refused because the link was in an outage (ground station or network down)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeoProfile:
    """The settings of a :class:`LeoLink`, as data (for config); validated on construction.

    Raises:
        ValueError: a setting cannot work, or the TLE source cannot be loaded; the message says which and why.
    """

    name: str
    tle: str
    """A shipped element set's name (``swarm-like``, ``iridium-like``) or a TLE file's path."""
    gateway_lat: float
    gateway_lon: float
    gateway_alt_m: float = 0.0
    min_elevation_deg: float = 10.0
    pass_capacity_bytes: int | None = None
    """Bytes one pass carries; None for no byte limit (then ``pass_capacity_frames`` must be set)."""
    pass_capacity_frames: int | None = None
    """Frames one pass carries; None for no frame limit."""
    mtu: int = 192
    """The largest frame, bytes (192: a Swarm packet)."""
    loss_rate: float = 0.0
    seed: int | None = None
    """Seed of the loss draws; None draws from the OS."""
    outages: OutagePlan = NO_OUTAGES
    """Scheduled and random outages, on top of the gaps between passes."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        _check_count("mtu", self.mtu)
        if self.pass_capacity_bytes is None and self.pass_capacity_frames is None:
            raise ValueError("set pass_capacity_bytes or pass_capacity_frames (or both)")
        if self.pass_capacity_bytes is not None:
            _check_count("pass_capacity_bytes", self.pass_capacity_bytes)
            if self.pass_capacity_bytes < self.mtu:
                raise ValueError(f"pass_capacity_bytes ({self.pass_capacity_bytes}) is below the mtu ({self.mtu})")
        if self.pass_capacity_frames is not None:
            _check_count("pass_capacity_frames", self.pass_capacity_frames)
        if not (math.isfinite(self.min_elevation_deg) and 0.0 <= self.min_elevation_deg < 90.0):
            raise ValueError(f"min_elevation_deg must be at least 0 and below 90, got {self.min_elevation_deg!r}")
        if not (math.isfinite(self.loss_rate) and 0.0 <= self.loss_rate < 1.0):
            raise ValueError(f"loss_rate must be at least 0 and below 1, got {self.loss_rate!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if not isinstance(self.outages, OutagePlan):
            raise ValueError("outages must be an OutagePlan")
        try:
            self.site()
        except ValueError as exc:
            raise ValueError(f"gateway position: {exc}") from None
        self.satellites()

    def site(self) -> Site:
        """The gateway's position as an orbit-model site."""
        return Site(self.gateway_lat, self.gateway_lon, self.gateway_alt_m)

    def satellites(self) -> tuple[Satellite, ...]:
        """Load the satellites of :attr:`tle`.

        Raises:
            ValueError: the source is missing or not valid TLE, or two satellites share a name.
        """
        satellites = load_tle(self.tle)
        names = [s.name for s in satellites]
        if len(set(names)) != len(names):
            raise ValueError(f"TLE {self.tle}: satellite names must be unique")
        return satellites

    def build(self, *, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> LeoLink:
        """Return a :class:`LeoLink` with these settings that delivers to ``sink`` on ``clock``'s time."""
        return LeoLink(profile=self, sink=sink, clock=clock, rng=rng)


class _Window:
    """A pass and what is left of its capacity (mutable: transmissions use it up)."""

    __slots__ = ("bytes_left", "frames_left", "pass_", "used")

    def __init__(self, pass_: Pass, profile: LeoProfile) -> None:
        self.pass_ = pass_
        self.bytes_left = math.inf if profile.pass_capacity_bytes is None else profile.pass_capacity_bytes
        self.frames_left = math.inf if profile.pass_capacity_frames is None else profile.pass_capacity_frames
        self.used = False

    def fits(self, size: int) -> bool:
        return self.frames_left >= 1 and self.bytes_left >= size


class LeoLink:
    """A store-and-forward link through the profile's LEO satellites; implements :class:`~gateway.links.base.Link`."""

    def __init__(self, *, profile: LeoProfile, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> None:
        """Build the link; passes are computed when first needed, in the clock's time (Unix seconds).

        Args:
            profile: the settings.
            sink: what takes arriving frames (the satellites' store).
            clock: the time source; pass windows are in its time, propagation delays are slept on it.
            rng: random source for losses; default ``random.Random(profile.seed)``.
        """
        self._profile = profile
        self._sink = sink
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(profile.seed)
        self._site = profile.site()
        self._satellites = {s.name: s for s in profile.satellites()}
        self._windows: list[_Window] = []
        """Known passes that have not set, by rise; every pass rising before ``_horizon`` is among them."""
        self._horizon = -math.inf
        self._stats = LeoStats()
        self._outages = None if profile.outages.empty else Outages(profile.outages, origin=clock.now())
        self._chunks: dict[int, list[Pass]] = {}
        """Timeline passes by hour (Unix seconds // 3600), computed when first asked."""

    @property
    def name(self) -> str:
        """The link's unique name."""
        return self._profile.name

    @property
    def mtu(self) -> int:
        """The largest frame one transmission carries, bytes."""
        return self._profile.mtu

    @property
    def profile(self) -> LeoProfile:
        """The settings this link was built from."""
        return self._profile

    def stats(self) -> LeoStats:
        """Return a snapshot of the counters."""
        return self._stats

    def upcoming(self) -> list[Pass]:
        """The passes that have not set yet, as far as computed (at least up to the next rise), by rise."""
        self._refresh(self._clock.now())
        return [w.pass_ for w in self._windows]

    def timeline(self, start: float, end: float) -> list[Span]:
        """The passes overlapping ``[start, end)``, exactly as :func:`~gateway.links.orbits.find_passes` gives them,
        and the outages known now (see :mod:`gateway.links.timeline`)."""
        passes = [pass_span(p) for p in self._passes_between(start, end)]
        return ordered([*passes, *outage_spans(self._outages, start, end, now=self._clock.now())])

    def _passes_between(self, start: float, end: float) -> list[Pass]:
        """Passes overlapping ``[start, end)`` from the hourly chunks (the same samples give bit-identical passes)."""
        first, last = math.floor(start / _TIMELINE_CHUNK_S), math.ceil(end / _TIMELINE_CHUNK_S)
        found = {(p.satellite, p.rise): p for k in range(first, last) for p in self._chunk(k) if p.rise < end}
        return sorted((p for p in found.values() if p.set > start), key=lambda p: (p.rise, p.satellite))

    def _chunk(self, k: int) -> list[Pass]:
        if k not in self._chunks:
            if len(self._chunks) >= _TIMELINE_CHUNKS:
                del self._chunks[min(self._chunks)]  # the earliest hour: timelines move forward with the clock
            p, start = self._profile, k * _TIMELINE_CHUNK_S
            self._chunks[k] = find_passes(
                self._satellites.values(),
                self._site,
                start,
                start + _TIMELINE_CHUNK_S,
                min_elevation_deg=p.min_elevation_deg,
            )
        return self._chunks[k]

    def ready_in(self, priority: Priority) -> float:
        """Seconds until a frame may go: 0 while a satellite with capacity is in view, else until the next rise.

        Every class waits alike: no satellite (or an outage), no transmission.
        """
        now = self._clock.now()
        down = self._outage_left(now)
        if down > 0.0:
            return down
        return self._wait_for(1)

    def _outage_left(self, now: float) -> float:
        end = None if self._outages is None else self._outages.until(now)
        return 0.0 if end is None else end - now

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Send ``frame`` to a satellite in view; return once it has it, or why it did not go.

        ``wait_s`` in a ``NO_PASS`` answer is the time until a pass that can take this frame.
        An exception from the sink propagates; the frame then counts as neither sent nor lost,
        and the pass capacity it used stays used.
        """
        if len(frame) > self.mtu:
            self._stats = replace(self._stats, too_large=self._stats.too_large + 1)
            return Feedback(FeedbackCode.TOO_LARGE)
        if (down := self._outage_left(self._clock.now())) > 0.0:
            self._stats = replace(self._stats, outage_refusals=self._stats.outage_refusals + 1)
            return Feedback(FeedbackCode.OUTAGE, wait_s=down)
        window = self._reserve(len(frame))
        if window is None:
            self._stats = replace(self._stats, no_pass=self._stats.no_pass + 1)
            return Feedback(FeedbackCode.NO_PASS, wait_s=self._wait_for(len(frame)))
        flight = delay_s(self._satellites[window.pass_.satellite], self._site, self._clock.now())
        await self._clock.sleep(flight)
        if self._rng.random() < self._profile.loss_rate:
            self._stats = replace(self._stats, lost=self._stats.lost + 1)
            return Feedback(FeedbackCode.LOST, wait_s=self.ready_in(priority))
        await self._sink.receive(frame, link=self.name)
        self._stats = replace(self._stats, sent=self._stats.sent + 1, bytes_sent=self._stats.bytes_sent + len(frame))
        return Feedback(FeedbackCode.SENT, wait_s=self.ready_in(priority), delay_s=flight)

    def _reserve(self, size: int) -> _Window | None:
        """Take ``size`` bytes and one frame from the open pass that sets first and can carry them, or return None.

        Synchronous on purpose: no await between choosing and using up, so concurrent
        transmissions never overdraw a pass.
        """
        now = self._clock.now()
        window = next((w for w in self._open(now) if w.fits(size)), None)
        if window is None:
            return None
        window.bytes_left -= size
        window.frames_left -= 1
        if not window.used:
            window.used = True
            self._stats = replace(self._stats, passes_used=self._stats.passes_used + 1)
        return window

    def _wait_for(self, size: int) -> float:
        """Seconds until some pass can carry a frame of ``size`` bytes (0 if one is open now)."""
        now = self._clock.now()
        if any(w.fits(size) for w in self._open(now)):
            return 0.0
        # Passes not yet risen have all their capacity, and the profile ensures any frame fits in that.
        rises = [w.pass_.rise - now for w in self._windows if w.pass_.rise - now > _EPS_S]
        return min(rises, default=_SEARCH_S)

    def _open(self, now: float) -> list[_Window]:
        """The passes in progress at ``now``, the one setting first first."""
        self._refresh(now)
        return sorted((w for w in self._windows if w.pass_.rise - now <= _EPS_S), key=lambda w: w.pass_.set)

    def _refresh(self, now: float) -> None:
        """Forget set passes and compute new ones until the next rise after ``now`` is known (or none within 48 h)."""
        self._windows = [w for w in self._windows if w.pass_.set > now]
        self._horizon = max(self._horizon, now)
        limit = now + _SEARCH_S
        while self._horizon < limit and not any(w.pass_.rise > now for w in self._windows):
            self._extend(min(self._horizon + _CHUNK_S, limit))

    def _extend(self, until: float) -> None:
        """Add the passes overlapping ``[_horizon, until)`` that are not known yet."""
        p = self._profile
        found = find_passes(
            self._satellites.values(), self._site, self._horizon, until, min_elevation_deg=p.min_elevation_deg
        )
        # A pass straddling the old horizon is found again; keep the known one, with its used capacity.
        self._windows += [_Window(q, p) for q in found if not any(_same(q, w.pass_) for w in self._windows)]
        self._windows.sort(key=lambda w: w.pass_.rise)
        self._horizon = until


def _same(a: Pass, b: Pass) -> bool:
    """True if two computed passes are the same one (root finding from other samples may differ by milliseconds)."""
    return a.satellite == b.satellite and abs(a.rise - b.rise) < 1.0


def _check_count(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
