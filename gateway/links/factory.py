"""Build a running link from its settings: one entry point for every link kind the config can name."""

from __future__ import annotations

import random
import time

from gateway.links.base import Clock, FrameSink, Link
from gateway.links.geo import GeoProfile
from gateway.links.leo import LeoProfile
from gateway.links.orbits import find_passes
from gateway.links.rdss_serial import RdssSerialProfile
from gateway.links.sbd import SbdProfile

__all__ = ["LinkConfig", "build_link", "capacity_per_hour"]

LinkConfig = GeoProfile | SbdProfile | LeoProfile | RdssSerialProfile
"""The settings of any link kind: modelled BeiDou card pools over GEO or MEO, Iridium SBD modems, LEO
store-and-forward, and a real BeiDou terminal on a serial port (built unopened: ``async with`` it)."""

_DAY_S = 86_400.0


def build_link(cfg: LinkConfig, *, clock: Clock, sink: FrameSink, rng: random.Random | None = None) -> Link:
    """Return the link ``cfg`` describes, delivering to ``sink`` on ``clock``'s time.

    Args:
        cfg: the link's settings, e.g. from :func:`gateway.links.profiles.configure` or the TOML config.
        clock: the time source of the link model.
        sink: the ground segment that takes arriving frames.
        rng: the random source of losses; by default one seeded from ``cfg.seed`` (fresh if None).

    Raises:
        TypeError: ``cfg`` is not the settings of a known link kind.
    """
    match cfg:
        case GeoProfile():
            return cfg.build(sink=sink, clock=clock, rng=rng)
        case SbdProfile() | LeoProfile() | RdssSerialProfile():
            return cfg.build(sink=sink, clock=clock, rng=rng)
        case _:
            raise TypeError(f"no link kind takes settings of type {type(cfg).__name__}")


def capacity_per_hour(cfg: LinkConfig, *, now: float | None = None) -> float | None:
    """The most frames an hour the link described by ``cfg`` can carry, or None when it has no such limit.

    The capacity ceilings of the relay (``gateway/ceilings.py``) are shares of this figure.
    """
    match cfg:
        case GeoProfile():
            return cfg.cards * 3600.0 / cfg.interval_s if cfg.interval_s > 0 else None
        case SbdProfile():
            # One session at a time, started at most every interval_s: a full-size session bounds the pace.
            return 3600.0 / max(cfg.interval_s, cfg.session_s(cfg.max_frame_bytes))
        case LeoProfile():
            return _leo_capacity_per_hour(cfg, time.time() if now is None else now)
        case RdssSerialProfile():
            # The card tells its interval only once opened; the config may state it beforehand.
            return 3600.0 / cfg.interval_s if cfg.interval_s else None
        case _:
            raise TypeError(f"no link kind takes settings of type {type(cfg).__name__}")


def _leo_capacity_per_hour(cfg: LeoProfile, now: float) -> float | None:
    """Frames per pass times the passes of the coming day, per hour (None without a frame limit per pass)."""
    if cfg.pass_capacity_frames is None:
        return None
    passes = find_passes(cfg.satellites(), cfg.site(), now, now + _DAY_S, min_elevation_deg=cfg.min_elevation_deg)
    return max(len(passes), 1) * cfg.pass_capacity_frames * 3600.0 / _DAY_S
