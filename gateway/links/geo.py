"""A BeiDou-like short-message link: one or more terminal cards talking through a satellite to the centre.

The path is a GEO (BDS-2 RDSS, BDS-3 RSMC) by default, or a BDS-3 MEO (GSMC) with
``orbit="meo"``; :mod:`gateway.links.profiles` holds the real card profiles.

What is modelled (domain.md §1.2-1.4, §5.1):

* **Frame size**: one transmission carries at most ``max_frame_bytes`` (the card level's cap).
  With ``express_bytes`` set, distress frames up to that size go as express (特快) messages,
  whose cap does not depend on the card level, so distress may exceed the level's cap.
* **Service frequency**: each card may send once per ``interval_s``; the interval starts when
  the card sends. The central station drops early requests, so the model refuses them with
  ``INTERVAL`` and the seconds to wait, as ``$BDFKI`` does.
* **Emergency exemption**: distress may go even when no card is ready. The card used that
  way must then wait 2x its interval before its next send of another class.
* **Propagation**: terminal → satellite → centre, the two slant ranges over c. Transmissions
  on different cards overlap in flight. A MEO moves, so its legs use a stated elevation.
* **Loss**: each frame is lost with probability ``loss_rate``, drawn after the flight.
* **Outages** (:mod:`gateway.links.outages`): while one lasts nothing goes, distress included
  (``OUTAGE`` with the seconds until it ends); a frame in flight when one starts is lost.

The burst itself takes milliseconds, so a card is not held while its frame is in flight;
only its interval limits it (with ``interval_s = 0`` a lab link sends without limit).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from gateway.links.base import Clock, Feedback, FeedbackCode, FrameSink
from gateway.links.geometry import MEO_ALTITUDE_KM, bent_pipe_delay_s, elevation_deg, geo_path_delay_s
from gateway.links.outages import NO_OUTAGES, OutagePlan, Outages
from gateway.links.timeline import Span, busy_spans, ordered, outage_spans
from protocols.envelope import Priority

__all__ = ["GeoLink", "GeoProfile", "LinkStats"]

_EPS_S = 1e-9
"""Float slack: a card due within a nanosecond counts as ready, so ``sleep(ready_in())`` always suffices."""
_EXEMPTION_FACTOR = 2.0
_BEIJING_LAT = 39.9042
_BEIJING_LON = 116.4074
"""Default terminal and centre position: Beijing, where the RDSS central station is assumed to be."""
_MEO_ELEVATION_DEG = 30.0
"""Elevation of both MEO legs: the model does not track the satellite, so it assumes a mid-sky one."""
_ORBITS = ("geo", "meo")


@dataclass(frozen=True, slots=True)
class LinkStats:
    """A snapshot of a link's counters since it was built."""

    sent: int = 0
    """Frames the ground segment took (``SENT``)."""
    lost: int = 0
    """Frames that went out but never arrived (``LOST``)."""
    too_large: int = 0
    """Frames refused for exceeding the MTU."""
    interval_refusals: int = 0
    """Transmissions refused because no card was ready."""
    bytes_sent: int = 0
    """Bytes in frames that arrived (``SENT`` only)."""
    exemptions: int = 0
    """Distress frames sent under the emergency exemption of the interval."""
    express: int = 0
    """Distress frames sent as express messages because they exceeded the card level's cap."""
    outage_refusals: int = 0
    """Transmissions refused because the link was in an outage."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoProfile:
    """The settings of a :class:`GeoLink`, as data (for config); validated on construction.

    Raises:
        ValueError: a setting cannot work; the message says which and why.
    """

    name: str
    max_frame_bytes: int
    interval_s: float
    """Per-card minimum send interval (RDSS service frequency), seconds; 0 for lab links."""
    terminal_lat: float = _BEIJING_LAT
    terminal_lon: float = _BEIJING_LON
    ground_lat: float = _BEIJING_LAT
    """Latitude of the centre (the ground segment)."""
    ground_lon: float = _BEIJING_LON
    cards: int = 1
    loss_rate: float = 0.0
    sat_lon: float = 110.5
    """Sub-satellite longitude of the GEO, degrees east (BeiDou GEOs: 80, 110.5, 140)."""
    orbit: str = "geo"
    """``geo`` (path via the GEO at ``sat_lon``) or ``meo`` (BDS-3 MEO, global; both legs at ``elevation_deg``)."""
    elevation_deg: float = _MEO_ELEVATION_DEG
    """Elevation of the MEO on both legs, degrees (``meo`` only)."""
    express_bytes: int = 0
    """Cap of an express (distress) message, bytes; 0 when the profile has no express messages."""
    outages: OutagePlan = NO_OUTAGES
    seed: int | None = None
    """Seed of the loss draws; None draws a fresh one."""
    profile: str = "custom"
    """The catalogue profile these settings came from (informational)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        _check_count("max_frame_bytes", self.max_frame_bytes)
        _check_count("cards", self.cards)
        if not (math.isfinite(self.interval_s) and self.interval_s >= 0):
            raise ValueError(f"interval_s must be a finite number >= 0, got {self.interval_s!r}")
        if not (math.isfinite(self.loss_rate) and 0.0 <= self.loss_rate < 1.0):
            raise ValueError(f"loss_rate must be at least 0 and below 1, got {self.loss_rate!r}")
        if isinstance(self.express_bytes, bool) or not isinstance(self.express_bytes, int) or self.express_bytes < 0:
            raise ValueError(f"express_bytes must be an integer >= 0, got {self.express_bytes!r}")
        if not isinstance(self.outages, OutagePlan):
            raise ValueError("outages must be an OutagePlan")
        if self.orbit not in _ORBITS:
            raise ValueError(f"orbit must be one of {', '.join(_ORBITS)}, got {self.orbit!r}")
        if self.orbit == "meo":
            if not (math.isfinite(self.elevation_deg) and 0.0 < self.elevation_deg <= 90.0):
                raise ValueError(f"elevation_deg must be above 0 and at most 90, got {self.elevation_deg!r}")
            return
        _check_visible("terminal", self.sat_lon, self.terminal_lat, self.terminal_lon)
        _check_visible("ground station", self.sat_lon, self.ground_lat, self.ground_lon)

    @property
    def delay_s(self) -> float:
        """Propagation delay terminal → satellite → centre, seconds."""
        if self.orbit == "meo":
            return bent_pipe_delay_s(
                MEO_ALTITUDE_KM, up_elevation=self.elevation_deg, down_elevation=self.elevation_deg
            )
        return geo_path_delay_s(
            self.sat_lon,
            from_lat=self.terminal_lat,
            from_lon=self.terminal_lon,
            to_lat=self.ground_lat,
            to_lon=self.ground_lon,
        )

    def max_frame_bytes_for(self, priority: Priority) -> int:
        """The largest frame of ``priority`` one transmission carries: distress may use the express cap."""
        if priority is Priority.DISTRESS:
            return max(self.max_frame_bytes, self.express_bytes)
        return self.max_frame_bytes

    def build(self, *, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> GeoLink:
        """Return a :class:`GeoLink` with these settings that delivers to ``sink`` on ``clock``'s time."""
        return GeoLink._from_profile(self, sink=sink, clock=clock, rng=rng)


class GeoLink:
    """A GEO RDSS channel made of ``cards`` terminal cards; implements :class:`~gateway.links.base.Link`."""

    def __init__(
        self,
        *,
        name: str,
        sink: FrameSink,
        clock: Clock,
        max_frame_bytes: int,
        interval_s: float,
        terminal_lat: float = _BEIJING_LAT,
        terminal_lon: float = _BEIJING_LON,
        ground_lat: float = _BEIJING_LAT,
        ground_lon: float = _BEIJING_LON,
        cards: int = 1,
        loss_rate: float = 0.0,
        sat_lon: float = 110.5,
        orbit: str = "geo",
        elevation_deg: float = _MEO_ELEVATION_DEG,
        express_bytes: int = 0,
        outages: OutagePlan = NO_OUTAGES,
        seed: int | None = None,
        profile: str = "custom",
        rng: random.Random | None = None,
    ) -> None:
        """Build the link; the arguments are those of :class:`GeoProfile` plus where frames go and whose time counts.

        Args:
            name: unique link name (logs, metrics, ``sink.receive(link=...)``).
            sink: the ground segment that takes arriving frames.
            clock: the time source; the propagation delay is slept on it.
            max_frame_bytes: the MTU.
            interval_s: per-card minimum send interval, seconds (0 allowed for lab links).
            terminal_lat: terminal latitude, degrees north (default Beijing).
            terminal_lon: terminal longitude, degrees east (default Beijing).
            ground_lat: centre latitude, degrees north (default Beijing).
            ground_lon: centre longitude, degrees east (default Beijing).
            cards: number of cards, each with its own interval.
            loss_rate: probability that a frame is lost, 0 <= p < 1.
            sat_lon: the GEO's longitude, degrees east.
            orbit: ``geo`` or ``meo``.
            elevation_deg: elevation of both MEO legs, degrees (``meo`` only).
            express_bytes: cap of distress frames sent as express messages (0: none).
            outages: scheduled and random outages.
            seed: seed of the loss draws (ignored when ``rng`` is given).
            profile: the catalogue profile name (informational).
            rng: random source for losses; seed one in tests.

        Raises:
            ValueError: a setting cannot work (see :class:`GeoProfile`).
        """
        settings = GeoProfile(
            name=name,
            max_frame_bytes=max_frame_bytes,
            interval_s=interval_s,
            terminal_lat=terminal_lat,
            terminal_lon=terminal_lon,
            ground_lat=ground_lat,
            ground_lon=ground_lon,
            cards=cards,
            loss_rate=loss_rate,
            sat_lon=sat_lon,
            orbit=orbit,
            elevation_deg=elevation_deg,
            express_bytes=express_bytes,
            outages=outages,
            seed=seed,
            profile=profile,
        )
        self._init(settings, sink=sink, clock=clock, rng=rng)

    @classmethod
    def _from_profile(cls, profile: GeoProfile, *, sink: FrameSink, clock: Clock, rng: random.Random | None) -> GeoLink:
        link = cls.__new__(cls)
        link._init(profile, sink=sink, clock=clock, rng=rng)
        return link

    def _init(self, profile: GeoProfile, *, sink: FrameSink, clock: Clock, rng: random.Random | None) -> None:
        self._profile = profile
        self._sink = sink
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(profile.seed)
        self._delay_s = profile.delay_s
        self._outages = None if profile.outages.empty else Outages(profile.outages, origin=clock.now())
        self._free_at = [-math.inf] * profile.cards
        """Per card: the time from which it may send a non-distress frame."""
        self._stats = LinkStats()

    @property
    def name(self) -> str:
        """The link's unique name."""
        return self._profile.name

    @property
    def mtu(self) -> int:
        """The largest frame one transmission carries, bytes."""
        return self._profile.max_frame_bytes

    @property
    def profile(self) -> GeoProfile:
        """The settings this link was built from."""
        return self._profile

    @property
    def delay_s(self) -> float:
        """Propagation delay of every frame, terminal → satellite → centre, seconds."""
        return self._delay_s

    def stats(self) -> LinkStats:
        """Return a snapshot of the counters."""
        return self._stats

    def max_frame_bytes_for(self, priority: Priority) -> int:
        """The largest frame of ``priority`` one transmission carries (distress may use the express cap)."""
        return self._profile.max_frame_bytes_for(priority)

    def timeline(self, start: float, end: float) -> list[Span]:
        """The satellite in view all along, the outages known now, and each card's interval still running."""
        now = self._clock.now()
        p = self._profile
        sky = Span(kind="in_view", start=start, end=end, label=f"GEO {p.sat_lon:g}°E" if p.orbit == "geo" else "MEO")
        outages = outage_spans(self._outages, start, end, now=now)
        return ordered([sky, *outages, *busy_spans(self._free_at, start, end, now=now, label="card")])

    def ready_in(self, priority: Priority) -> float:
        """Seconds until a frame of ``priority`` may be sent: until an outage ends, and for others than distress
        (exempt) until a card is free."""
        now = self._clock.now()
        down = self._outage_left(now)
        if priority is Priority.DISTRESS:
            return down
        wait = min(self._free_at) - now
        return max(down, wait if wait > _EPS_S else 0.0)

    def _outage_left(self, now: float) -> float:
        end = None if self._outages is None else self._outages.until(now)
        return 0.0 if end is None else end - now

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Send ``frame`` on a ready card; return once the centre has it, or why it did not go.

        ``wait_s`` in the answer is :meth:`ready_in` for the same class at the time of the
        answer. An exception from the sink propagates; the frame then counts as neither sent
        nor lost, and the card's interval still runs (the card did transmit).
        """
        if len(frame) > self.max_frame_bytes_for(priority):
            self._stats = replace(self._stats, too_large=self._stats.too_large + 1)
            return Feedback(FeedbackCode.TOO_LARGE)
        start = self._clock.now()
        if self._outage_left(start) > 0.0:
            self._stats = replace(self._stats, outage_refusals=self._stats.outage_refusals + 1)
            return Feedback(FeedbackCode.OUTAGE, wait_s=self.ready_in(priority))
        card = self._reserve(priority)
        if card is None:
            self._stats = replace(self._stats, interval_refusals=self._stats.interval_refusals + 1)
            return Feedback(FeedbackCode.INTERVAL, wait_s=self.ready_in(priority))
        if len(frame) > self.mtu:
            self._stats = replace(self._stats, express=self._stats.express + 1)
        await self._clock.sleep(self._delay_s)
        cut = self._outages is not None and self._outages.first_start(start, start + self._delay_s) is not None
        # Draw even when cut, so a seed gives the same losses with or without outages.
        if (self._rng.random() < self._profile.loss_rate) or cut:
            self._stats = replace(self._stats, lost=self._stats.lost + 1)
            return Feedback(FeedbackCode.LOST, wait_s=self.ready_in(priority))
        await self._sink.receive(frame, link=self.name)
        self._stats = replace(self._stats, sent=self._stats.sent + 1, bytes_sent=self._stats.bytes_sent + len(frame))
        return Feedback(FeedbackCode.SENT, wait_s=self.ready_in(priority), delay_s=self._delay_s)

    def _reserve(self, priority: Priority) -> int | None:
        """Pick the card free longest and start its interval, or return None if none may send ``priority`` now.

        Synchronous on purpose: no await between choosing and marking, so concurrent
        transmissions never share a card.
        """
        now = self._clock.now()
        card = min(range(len(self._free_at)), key=self._free_at.__getitem__)
        interval = self._profile.interval_s
        if self._free_at[card] - now <= _EPS_S:
            self._free_at[card] = now + interval
        elif priority is Priority.DISTRESS:
            self._free_at[card] = now + _EXEMPTION_FACTOR * interval
            self._stats = replace(self._stats, exemptions=self._stats.exemptions + 1)
        else:
            return None
        return card


def _check_count(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def _check_visible(what: str, sat_lon: float, lat: float, lon: float) -> None:
    try:
        elevation = elevation_deg(sat_lon, lat, lon)
    except ValueError as exc:
        raise ValueError(f"{what} position: {exc}") from None
    if elevation <= 0.0:
        raise ValueError(f"the satellite at {sat_lon:g}°E is below the {what}'s horizon ({elevation:.1f}°)")
