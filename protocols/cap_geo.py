"""Geometry for CAP areas: is a point inside a polygon or a circle, and one circle around it all.

Coordinates are WGS-84 decimal degrees as CAP writes them, latitude first. The Earth is
a sphere of mean radius :data:`EARTH_RADIUS_KM` (haversine distances, in kilometres).

Polygons follow CAP: a ring of ``(lat, lon)`` vertices joined by straight lines *in
latitude/longitude* (as on a plate carrée map; that is what alerting tools draw and
what the spec leaves unsaid), each edge taking the shorter way round in longitude, so
a ring may cross the antimeridian (170 -> -170 is a 20-degree step east). An edge of
exactly 180 degrees of longitude goes east. A ring that winds once round a pole (its
longitudes, followed edge by edge, gain or lose 360 degrees) has no inside on this map:
:func:`winds_round_pole` finds them, and ``check_alert`` refuses them. Points on an
edge or a vertex (within :data:`EDGE_TOLERANCE_DEG`) and on a circle's rim (within
one metre) count as inside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import pairwise

__all__ = [
    "EARTH_RADIUS_KM",
    "EDGE_TOLERANCE_DEG",
    "PreparedRing",
    "bounding_circle",
    "distance_km",
    "in_circle",
    "in_ring",
    "winds_round_pole",
]

EARTH_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius."""
EDGE_TOLERANCE_DEG = 1e-9
"""How far (in degrees, about 0.1 mm) a point may be off an edge and still be on it."""
_RIM_TOLERANCE_KM = 1e-3
_DENSIFY_STEP_DEG = 0.5
_BOUND_FACTOR = 1.001
_BOUND_EXTRA_KM = 0.1
_WHOLE_EARTH = (0.0, 0.0, math.pi * EARTH_RADIUS_KM * _BOUND_FACTOR + _BOUND_EXTRA_KM)

Point = tuple[float, float]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, h))))


def in_circle(center_lat: float, center_lon: float, radius_km: float, lat: float, lon: float) -> bool:
    """True if the point is within ``radius_km`` of the centre (the rim counts); False for NaN or infinite input."""
    if not (_sane([(center_lat, center_lon), (lat, lon)]) and math.isfinite(radius_km)):
        return False
    return distance_km(center_lat, center_lon, lat, lon) <= radius_km + _RIM_TOLERANCE_KM


def _unwrap(ring: Sequence[Point]) -> list[Point]:
    """The ring closed, with each longitude moved by whole turns to lie within 180 degrees of the one before."""
    closed = list(ring) if ring[0] == ring[-1] else [*ring, ring[0]]
    out = [closed[0]]
    for (_, before), (lat, lon) in pairwise(closed):
        step = (lon - before) % 360.0
        out.append((lat, out[-1][1] + (step - 360.0 if step > 180.0 else step)))
    return out


def winds_round_pole(ring: Sequence[Point]) -> bool:
    """True if following the ring's edges gains or loses a whole turn of longitude."""
    if len(ring) < 2:
        return False
    unwrapped = _unwrap(ring)
    return abs(unwrapped[-1][1] - unwrapped[0][1]) > 180.0


def _on_segment(a: Point, b: Point, lat: float, lon: float) -> bool:
    (y1, x1), (y2, x2) = a, b
    if not (min(x1, x2) - EDGE_TOLERANCE_DEG <= lon <= max(x1, x2) + EDGE_TOLERANCE_DEG):
        return False
    if not (min(y1, y2) - EDGE_TOLERANCE_DEG <= lat <= max(y1, y2) + EDGE_TOLERANCE_DEG):
        return False
    cross = (x2 - x1) * (lat - y1) - (y2 - y1) * (lon - x1)
    return abs(cross) <= EDGE_TOLERANCE_DEG * max(math.hypot(x2 - x1, y2 - y1), 1.0)


Edge = tuple[Point, Point]
_TURNS = (-720.0, -360.0, 0.0, 360.0, 720.0)
_MAX_BANDS = 256
_SANE_DEG = 1e4


def _in_plane(edges: Iterable[Edge], lat: float, lon: float) -> bool:
    """Even-odd ray casting towards east over ``edges``, with points on an edge counted as inside."""
    inside = False
    for (y1, x1), (y2, x2) in edges:
        if _on_segment((y1, x1), (y2, x2), lat, lon):
            return True
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _sane(points: Iterable[Sequence[float]]) -> bool:
    """False for no points or for coordinates no check passes (NaN, infinite, huge): such a ring covers nothing.

    Without this, arithmetic on them fails (NaN bands) or never ends (densifying a 1e300-degree edge).
    """
    values = [value for point in points for value in point]
    return bool(values) and all(math.isfinite(value) and abs(value) <= _SANE_DEG for value in values)


class PreparedRing:
    """A polygon ready for many point tests: unwrapped once, its edges filed in latitude bands.

    A point's crossings and edge contacts come only from edges whose latitude span holds
    the point's latitude, so each test reads one band: a 1000-vertex ring costs a few
    edges per point instead of a thousand.
    """

    def __init__(self, ring: Sequence[Point]) -> None:
        unwrapped = _unwrap(ring) if _sane(ring) else []
        edges = list(pairwise(unwrapped))
        lats, lons = [lat for lat, _ in unwrapped], [lon for _, lon in unwrapped]
        self._south, self._north = min(lats, default=math.inf), max(lats, default=-math.inf)  # empty: no point fits
        self._west = min(lons, default=math.inf) - EDGE_TOLERANCE_DEG
        self._east = max(lons, default=-math.inf) + EDGE_TOLERANCE_DEG
        self._count = max(1, min(len(edges), _MAX_BANDS))
        self._height = (self._north - self._south) / self._count or 1.0
        self._bands: list[list[Edge]] = [[] for _ in range(self._count)]
        for edge in edges:
            (y1, _), (y2, _) = edge
            low, high = min(y1, y2) - EDGE_TOLERANCE_DEG, max(y1, y2) + EDGE_TOLERANCE_DEG
            for band in range(self._band(low), self._band(high) + 1):
                self._bands[band].append(edge)

    def _band(self, lat: float) -> int:
        return min(self._count - 1, max(0, int((lat - self._south) / self._height)))

    def contains(self, lat: float, lon: float) -> bool:
        """True if the point is inside or on the boundary, at its longitude or any whole turn from it."""
        if not self._south - EDGE_TOLERANCE_DEG <= lat <= self._north + EDGE_TOLERANCE_DEG:
            return False
        edges = self._bands[self._band(lat)]
        return any(self._west <= lon + turn <= self._east and _in_plane(edges, lat, lon + turn) for turn in _TURNS)


def in_ring(ring: Sequence[Point], lat: float, lon: float) -> bool:
    """True if the point is inside the polygon ``ring`` or on its boundary (an open ring is closed first).

    The ring's longitudes are unwrapped (so it may span the antimeridian, reaching past
    +-180), and the point is tried at its longitude plus each whole turn that can meet it.
    For many points against one ring, make a :class:`PreparedRing` once.
    """
    return PreparedRing(ring).contains(lat, lon)


def _densified(ring: Sequence[Point]) -> Iterable[Point]:
    """The ring's vertices plus points along each edge at most half a degree apart, each once."""
    unwrapped = _unwrap(ring)
    if len(unwrapped) == 1:
        yield unwrapped[0]
    for (y1, x1), (y2, x2) in pairwise(unwrapped):
        steps = max(1, math.ceil(max(abs(y2 - y1), abs(x2 - x1)) / _DENSIFY_STEP_DEG))
        for k in range(steps):  # the edge's end is the next edge's start
            yield y1 + (y2 - y1) * k / steps, x1 + (x2 - x1) * k / steps


def _mean_direction(points: Iterable[Point]) -> Point | None:
    """Latitude and longitude of the mean of the points' unit vectors, or None if they cancel out."""
    x = y = z = 0.0
    for lat, lon in points:
        phi, lam = math.radians(lat), math.radians(lon)
        x, y, z = x + math.cos(phi) * math.cos(lam), y + math.cos(phi) * math.sin(lam), z + math.sin(phi)
    norm = math.sqrt(x * x + y * y + z * z)
    if norm < 1e-9:
        return None
    return math.degrees(math.asin(max(-1.0, min(1.0, z / norm)))), math.degrees(math.atan2(y, x))


def bounding_circle(
    rings: Sequence[Sequence[Point]], circles: Sequence[tuple[float, float, float]]
) -> tuple[float, float, float] | None:
    """A circle ``(lat, lon, radius_km)`` holding every ring and circle, or None if there are none.

    Made for a prefilter such as Redis ``GEOSEARCH ... BYRADIUS``: the radius is widened
    by 0.1 % and 100 m, more than covers Redis's larger Earth radius (6372.797 km, 0.03 %)
    and its geohash rounding, so the prefilter never drops a point that :func:`in_ring`
    or :func:`in_circle` would accept. Rings are measured along their edges, not just at
    their vertices, because lat/lon-straight edges bulge away from great circles. Rings
    and circles with coordinates no check passes (NaN, infinite, huge) are left out.
    """
    ring_points = [point for ring in rings if _sane(ring) for point in _densified(ring)]
    circles = [(lat, lon, radius) for lat, lon, radius in circles if _sane([(lat, lon)]) and 0 <= radius < math.inf]
    centre = _mean_direction([*ring_points, *((lat, lon) for lat, lon, _ in circles)])
    if centre is None:
        return None if not ring_points and not circles else _WHOLE_EARTH
    lat0, lon0 = centre
    reach = [distance_km(lat0, lon0, lat, lon) for lat, lon in ring_points]
    reach += [distance_km(lat0, lon0, lat, lon) + radius for lat, lon, radius in circles]
    return lat0, lon0, max(reach) * _BOUND_FACTOR + _BOUND_EXTRA_KM
