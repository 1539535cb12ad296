"""Satellite geometry on a spherical Earth: slant range, elevation and propagation delay.

Pure math, no I/O. The model matches domain.md §5.1 and Appendix A: spherical Earth of
radius R = 6378.137 km, GEO altitude 35 786 km, c = 299 792.458 km/s. For a ground point
at elevation e the slant range is ``d = -R sin e + sqrt((R sin e)² + (R+h)² - R²)``; here it
is computed from the central angle instead, which gives the same number and also handles
ground points that are above sea level.

For orbits whose satellite moves (BDS-3 MEO, Iridium LEO) the link models do not track the
satellite; :func:`slant_range_km` gives the range at a stated elevation with the formula above.
"""

from __future__ import annotations

import math

__all__ = [
    "EARTH_RADIUS_KM",
    "GEO_ALTITUDE_KM",
    "IRIDIUM_ALTITUDE_KM",
    "LIGHT_SPEED_KM_S",
    "MEO_ALTITUDE_KM",
    "bent_pipe_delay_s",
    "elevation_deg",
    "geo_path_delay_s",
    "geo_slant_range_km",
    "one_way_delay_s",
    "slant_range_km",
]

EARTH_RADIUS_KM = 6378.137
GEO_ALTITUDE_KM = 35_786.0
LIGHT_SPEED_KM_S = 299_792.458
MEO_ALTITUDE_KM = 21_528.0
"""BDS-3 MEO altitude used in domain.md §5.1."""
IRIDIUM_ALTITUDE_KM = 780.0

_MIN_ALT_M = -1_000.0
_MAX_ALT_M = 100_000.0


def geo_slant_range_km(sat_lon_deg: float, lat_deg: float, lon_deg: float, alt_m: float = 0.0) -> float:
    """Return the straight-line distance from a ground point to a GEO satellite.

    Args:
        sat_lon_deg: the satellite's sub-satellite longitude, degrees east (-180..180).
        lat_deg: the ground point's latitude, degrees north (-90..90).
        lon_deg: the ground point's longitude, degrees east (-180..180).
        alt_m: the ground point's height above the sphere, metres.

    Returns:
        The slant range in km (also when the satellite is below the horizon).

    Raises:
        ValueError: a coordinate is not finite or out of range.
    """
    cos_gamma, r_ground = _central(sat_lon_deg, lat_deg, lon_deg, alt_m)
    r_sat = EARTH_RADIUS_KM + GEO_ALTITUDE_KM
    return math.sqrt(r_ground * r_ground + r_sat * r_sat - 2.0 * r_ground * r_sat * cos_gamma)


def elevation_deg(sat_lon_deg: float, lat_deg: float, lon_deg: float, alt_m: float = 0.0) -> float:
    """Return the GEO satellite's elevation above the ground point's horizon, degrees (negative: not visible).

    Args:
        sat_lon_deg: the satellite's sub-satellite longitude, degrees east.
        lat_deg: the ground point's latitude, degrees north.
        lon_deg: the ground point's longitude, degrees east.
        alt_m: the ground point's height above the sphere, metres.

    Raises:
        ValueError: a coordinate is not finite or out of range.
    """
    cos_gamma, r_ground = _central(sat_lon_deg, lat_deg, lon_deg, alt_m)
    sin_gamma = math.sqrt(max(0.0, 1.0 - cos_gamma * cos_gamma))
    # atan2 keeps the sub-satellite point (gamma = 0) at exactly 90 degrees.
    return math.degrees(math.atan2(cos_gamma - r_ground / (EARTH_RADIUS_KM + GEO_ALTITUDE_KM), sin_gamma))


def one_way_delay_s(sat_lon_deg: float, lat_deg: float, lon_deg: float, alt_m: float = 0.0) -> float:
    """Return the propagation delay of one leg, ground point ↔ GEO satellite, in seconds.

    Args:
        sat_lon_deg: the satellite's sub-satellite longitude, degrees east.
        lat_deg: the ground point's latitude, degrees north.
        lon_deg: the ground point's longitude, degrees east.
        alt_m: the ground point's height above the sphere, metres.

    Raises:
        ValueError: a coordinate is not finite or out of range.
    """
    return geo_slant_range_km(sat_lon_deg, lat_deg, lon_deg, alt_m) / LIGHT_SPEED_KM_S


def geo_path_delay_s(
    sat_lon_deg: float,
    *,
    from_lat: float,
    from_lon: float,
    to_lat: float,
    to_lon: float,
    from_alt_m: float = 0.0,
    to_alt_m: float = 0.0,
) -> float:
    """Return the delay of a bent-pipe hop through a GEO satellite: up one leg and down the other, in seconds.

    An RDSS inbound message goes terminal → satellite → central station, so its delay is
    the sum of both legs divided by c.

    Args:
        sat_lon_deg: the satellite's sub-satellite longitude, degrees east.
        from_lat: latitude of the sender (e.g. the terminal).
        from_lon: longitude of the sender.
        to_lat: latitude of the receiver (e.g. the central station).
        to_lon: longitude of the receiver.
        from_alt_m: the sender's height, metres.
        to_alt_m: the receiver's height, metres.

    Raises:
        ValueError: a coordinate is not finite or out of range.
    """
    up = geo_slant_range_km(sat_lon_deg, from_lat, from_lon, from_alt_m)
    down = geo_slant_range_km(sat_lon_deg, to_lat, to_lon, to_alt_m)
    return (up + down) / LIGHT_SPEED_KM_S


def _central(sat_lon_deg: float, lat_deg: float, lon_deg: float, alt_m: float) -> tuple[float, float]:
    """Return cos(central angle to the sub-satellite point) and the ground point's radius in km."""
    _check_range("satellite longitude", sat_lon_deg, -180.0, 180.0)
    _check_range("latitude", lat_deg, -90.0, 90.0)
    _check_range("longitude", lon_deg, -180.0, 180.0)
    _check_range("altitude in metres", alt_m, _MIN_ALT_M, _MAX_ALT_M)
    lat = math.radians(lat_deg)
    dlon = math.radians(lon_deg - sat_lon_deg)
    return math.cos(lat) * math.cos(dlon), EARTH_RADIUS_KM + alt_m / 1000.0


def _check_range(what: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{what} must be between {low:g} and {high:g}, got {value!r}")


def slant_range_km(altitude_km: float, elevation: float) -> float:
    """Return the range from a sea-level ground point to a satellite at ``altitude_km`` seen at ``elevation`` degrees.

    Raises:
        ValueError: the altitude is not positive or the elevation is outside 0..90 degrees.
    """
    _check_range("satellite altitude in km", altitude_km, 1.0, 1e6)
    _check_range("elevation in degrees", elevation, 0.0, 90.0)
    r_sin_e = EARTH_RADIUS_KM * math.sin(math.radians(elevation))
    r_sat = EARTH_RADIUS_KM + altitude_km
    return -r_sin_e + math.sqrt(r_sin_e * r_sin_e + r_sat * r_sat - EARTH_RADIUS_KM * EARTH_RADIUS_KM)


def bent_pipe_delay_s(altitude_km: float, *, up_elevation: float, down_elevation: float) -> float:
    """Return the delay up to a satellite at ``altitude_km`` and down again, each leg at its stated elevation, seconds.

    Raises:
        ValueError: as :func:`slant_range_km`.
    """
    up = slant_range_km(altitude_km, up_elevation)
    return (up + slant_range_km(altitude_km, down_elevation)) / LIGHT_SPEED_KM_S
