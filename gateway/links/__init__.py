"""Satellite links: the seam every link implements, the link models, and the clocks they run on."""

from __future__ import annotations

from gateway.links.base import Clock, Feedback, FeedbackCode, FrameSink, Link
from gateway.links.clock import RealClock, SimClock
from gateway.links.geo import GeoLink, GeoProfile, LinkStats
from gateway.links.geometry import (
    EARTH_RADIUS_KM,
    GEO_ALTITUDE_KM,
    LIGHT_SPEED_KM_S,
    elevation_deg,
    geo_path_delay_s,
    geo_slant_range_km,
    one_way_delay_s,
)
from gateway.links.mock import MockLink

__all__ = [
    # the seam
    "Clock",
    "Feedback",
    "FeedbackCode",
    "FrameSink",
    "Link",
    # clocks
    "RealClock",
    "SimClock",
    # models
    "GeoLink",
    "GeoProfile",
    "LinkStats",
    "MockLink",
    # geometry
    "EARTH_RADIUS_KM",
    "GEO_ALTITUDE_KM",
    "LIGHT_SPEED_KM_S",
    "elevation_deg",
    "geo_path_delay_s",
    "geo_slant_range_km",
    "one_way_delay_s",
]
