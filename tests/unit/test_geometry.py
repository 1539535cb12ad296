"""GEO geometry: slant range, elevation and delay against domain.md §5.1 and the Appendix A formula."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.links.geometry import (
    EARTH_RADIUS_KM,
    GEO_ALTITUDE_KM,
    IRIDIUM_ALTITUDE_KM,
    LIGHT_SPEED_KM_S,
    MEO_ALTITUDE_KM,
    bent_pipe_delay_s,
    elevation_deg,
    geo_path_delay_s,
    geo_slant_range_km,
    one_way_delay_s,
    slant_range_km,
)

BEIJING = (39.9042, 116.4074)
URUMQI = (43.8256, 87.6168)
HARBIN = (45.8038, 126.5350)


def appendix_a_range_km(elevation: float) -> float:
    """The slant-range formula of domain.md Appendix A, from elevation."""
    r_sin_e = EARTH_RADIUS_KM * math.sin(math.radians(elevation))
    r_sat = EARTH_RADIUS_KM + GEO_ALTITUDE_KM
    return -r_sin_e + math.sqrt(r_sin_e**2 + r_sat**2 - EARTH_RADIUS_KM**2)


class TestDomainNumbers:
    @pytest.mark.parametrize(
        ("sat_lon", "city", "range_km", "delay_ms", "elevation"),
        [
            (110.5, BEIJING, 37_524, 125.2, 43.4),
            (140.0, URUMQI, 39_770, 132.7, 17.8),
            (80.0, HARBIN, None, 131.8, 20.5),
        ],
    )
    def test_matches_domain_within_half_percent(
        self, sat_lon: float, city: tuple[float, float], range_km: float | None, delay_ms: float, elevation: float
    ) -> None:
        """Range, one-way delay and elevation to Chinese cities match domain.md §5.1 within 0.5 %."""
        lat, lon = city
        if range_km is not None:
            assert geo_slant_range_km(sat_lon, lat, lon) == pytest.approx(range_km, rel=0.005)
        assert one_way_delay_s(sat_lon, lat, lon) * 1000 == pytest.approx(delay_ms, rel=0.005)
        assert elevation_deg(sat_lon, lat, lon) == pytest.approx(elevation, rel=0.005)

    def test_chinese_cities_fall_in_the_domain_delay_band(self) -> None:
        """Every BeiDou GEO to every listed city gives a one-way delay inside 119-136 ms (GEO nadir to 10°)."""
        for sat_lon in (80.0, 110.5, 140.0):
            for lat, lon in (BEIJING, URUMQI, HARBIN):
                assert 0.1194 <= one_way_delay_s(sat_lon, lat, lon) <= 0.1360


class TestGeometry:
    def test_sub_satellite_point_is_at_altitude_and_zenith(self) -> None:
        """Straight below the satellite the range is the GEO altitude and the elevation 90°."""
        assert geo_slant_range_km(110.5, 0.0, 110.5) == pytest.approx(GEO_ALTITUDE_KM)
        assert elevation_deg(110.5, 0.0, 110.5) == pytest.approx(90.0)

    def test_height_above_ground_shortens_the_range(self) -> None:
        """A point 2 km up at the sub-satellite point is 2 km closer."""
        assert geo_slant_range_km(80.0, 0.0, 80.0, alt_m=2_000) == pytest.approx(GEO_ALTITUDE_KM - 2.0)

    @given(
        lat=st.floats(-80, 80),
        dlon=st.floats(-80, 80),
        sat_lon=st.sampled_from([80.0, 110.5, 140.0]),
    )
    def test_agrees_with_appendix_a_formula(self, lat: float, dlon: float, sat_lon: float) -> None:
        """For any visible sea-level point, the range equals Appendix A's formula at the computed elevation."""
        lon = (sat_lon + dlon + 180.0) % 360.0 - 180.0
        elevation = elevation_deg(sat_lon, lat, lon)
        if elevation > 0:
            assert geo_slant_range_km(sat_lon, lat, lon) == pytest.approx(appendix_a_range_km(elevation), rel=1e-9)

    def test_far_side_of_the_earth_is_below_the_horizon(self) -> None:
        """The antipode of the sub-satellite point sees the satellite at -90°."""
        assert elevation_deg(110.5, 0.0, -69.5) == pytest.approx(-90.0)

    def test_delay_is_range_over_light_speed(self) -> None:
        """One-way delay is the slant range divided by c."""
        lat, lon = BEIJING
        assert one_way_delay_s(110.5, lat, lon) == geo_slant_range_km(110.5, lat, lon) / LIGHT_SPEED_KM_S

    def test_bent_pipe_path_adds_both_legs(self) -> None:
        """Terminal → GEO → centre takes the terminal leg plus the centre leg."""
        expected = one_way_delay_s(140.0, *URUMQI) + one_way_delay_s(140.0, *BEIJING)
        got = geo_path_delay_s(140.0, from_lat=URUMQI[0], from_lon=URUMQI[1], to_lat=BEIJING[0], to_lon=BEIJING[1])
        assert got == pytest.approx(expected, rel=1e-12)
        assert 0.24 < got < 0.27

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((110.5, 91.0, 116.0), "latitude"),
            ((110.5, 39.9, math.nan), "longitude"),
            ((200.0, 39.9, 116.0), "satellite longitude"),
            ((110.5, 39.9, 116.0, math.inf), "altitude"),
        ],
    )
    def test_rejects_impossible_coordinates(self, args: tuple[float, ...], message: str) -> None:
        """Out-of-range or non-finite coordinates raise ValueError naming the coordinate."""
        with pytest.raises(ValueError, match=message):
            geo_slant_range_km(*args)


class TestSlantRangeAtElevation:
    @pytest.mark.parametrize(
        ("altitude", "nadir_ms", "low_ms"),
        [(MEO_ALTITUDE_KM, 71.8, 87.0), (IRIDIUM_ALTITUDE_KM, 2.60, 7.76), (GEO_ALTITUDE_KM, 119.4, 135.4)],
    )
    def test_matches_the_domain_table(self, altitude: float, nadir_ms: float, low_ms: float) -> None:
        """One-way delay at nadir and at 10° matches domain.md §5.1 for BDS MEO, Iridium and GEO within 0.1 %."""
        assert slant_range_km(altitude, 90.0) / LIGHT_SPEED_KM_S * 1000 == pytest.approx(nadir_ms, rel=1e-3)
        assert slant_range_km(altitude, 10.0) / LIGHT_SPEED_KM_S * 1000 == pytest.approx(low_ms, rel=1e-3)

    @given(elevation=st.floats(0.0, 90.0))
    def test_agrees_with_the_geo_computation(self, elevation: float) -> None:
        """At GEO altitude the elevation formula gives Appendix A's range at every elevation."""
        assert slant_range_km(GEO_ALTITUDE_KM, elevation) == pytest.approx(appendix_a_range_km(elevation), rel=1e-12)

    def test_bent_pipe_adds_both_legs(self) -> None:
        """Up at one elevation and down at another takes the sum of both ranges over c."""
        got = bent_pipe_delay_s(MEO_ALTITUDE_KM, up_elevation=30.0, down_elevation=60.0)
        expected = (slant_range_km(MEO_ALTITUDE_KM, 30.0) + slant_range_km(MEO_ALTITUDE_KM, 60.0)) / LIGHT_SPEED_KM_S
        assert got == pytest.approx(expected, rel=1e-12)

    @pytest.mark.parametrize(
        ("altitude", "elevation", "message"),
        [(0.0, 45.0, "altitude"), (MEO_ALTITUDE_KM, -1.0, "elevation"), (MEO_ALTITUDE_KM, math.nan, "elevation")],
    )
    def test_rejects_impossible_arguments(self, altitude: float, elevation: float, message: str) -> None:
        """A non-positive altitude or an elevation outside 0-90° raises ValueError naming it."""
        with pytest.raises(ValueError, match=message):
            slant_range_km(altitude, elevation)
