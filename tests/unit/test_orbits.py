"""LEO pass prediction (gateway.links.orbits): TLE parsing, geometry, pass search, and an independent reference."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.links.geometry import LIGHT_SPEED_KM_S
from gateway.links.orbits import (
    Pass,
    Satellite,
    Site,
    delay_s,
    elevation_deg,
    find_passes,
    iso_utc,
    load_tle,
    parse_tle,
    shipped_tle_sets,
    slant_range_km,
    subpoint,
)
from gateway.links.orbits import _checksum as checksum

TLE_EPOCH = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
DAY_START = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
DAY = 86_400.0
BEIJING = Site(39.9042, 116.4074, 50.0)
REFERENCE = Path(__file__).parent / "data" / "leo_passes_beijing.json"

ISS_2019 = """ISS (ZARYA)
1 25544U 98067A   19343.69339541  .00001764  00000-0  38792-4 0  9991
2 25544  51.6439 211.2001 0007417  17.6667  85.6398 15.50103472202482
"""
"""The element set of the python-sgp4 documentation, epoch 2019-12-09."""


def swarm() -> tuple[Satellite, ...]:
    return load_tle("swarm-like")


def both() -> tuple[Satellite, ...]:
    return load_tle("swarm-like") + load_tle("iridium-like")


def with_checksum(line: str) -> str:
    return line[:68] + str(checksum(line))


class TestTle:
    def test_shipped_sets_load_with_their_names_and_epoch(self) -> None:
        """Both shipped sets load: six satellites each, named in the file, all with epoch 2026-11-20 00:00 UTC."""
        assert shipped_tle_sets() == ("iridium-like", "swarm-like")
        assert [s.name for s in swarm()] == [f"SWARMLIKE-{i}" for i in range(1, 7)]
        assert [s.catalog for s in load_tle("iridium-like")] == list(range(99101, 99107))
        assert all(s.epoch == pytest.approx(TLE_EPOCH, abs=1e-3) for s in both())

    def test_a_documented_element_set_parses(self) -> None:
        """The ISS element set from the sgp4 documentation parses, with its epoch 2019-12-09 16:38:29 UTC."""
        (iss,) = parse_tle(ISS_2019)
        assert (iss.name, iss.catalog) == ("ISS (ZARYA)", 25544)
        assert iso_utc(iss.epoch) == "2019-12-09T16:38:29Z"

    def test_two_line_sets_comments_and_blank_lines(self) -> None:
        """Sets without a name line are named by catalog number; blank lines and # comments are skipped."""
        lines = ISS_2019.splitlines()
        text = f"# made by hand\n\n{lines[1]}\n{lines[2]}\n\n{ISS_2019}"
        assert [s.name for s in parse_tle(text)] == ["25544", "ISS (ZARYA)"]

    def test_file_path_works_like_a_shipped_name(self, tmp_path: Path) -> None:
        """load_tle reads a TLE file given by path."""
        path = tmp_path / "iss.tle"
        path.write_text(ISS_2019)
        assert [s.catalog for s in load_tle(path)] == [25544]
        assert [s.catalog for s in load_tle(str(path))] == [25544]

    def test_missing_file_names_the_shipped_sets(self, tmp_path: Path) -> None:
        """A path that does not exist raises ValueError listing the shipped sets."""
        with pytest.raises(ValueError, match=r"not found \(shipped sets: iridium-like, swarm-like\)"):
            load_tle(tmp_path / "nope.tle")

    def test_bad_checksum_is_refused_with_the_line_number(self) -> None:
        """Changing one digit of line 2 breaks its checksum; the error names the source and line."""
        lines = ISS_2019.splitlines()
        lines[2] = lines[2].replace("51.6439", "51.6449")
        with pytest.raises(ValueError, match=r"iss\.tle line 3: checksum is 2, the line sums to 3"):
            parse_tle("\n".join(lines), source="iss.tle")

    @pytest.mark.parametrize(
        ("edit", "message"),
        [
            (lambda ls: [ls[0], ls[1][:60], ls[2]], "not TLE line 1"),
            (lambda ls: [ls[0], ls[2], ls[1]], "not TLE line 1"),
            (lambda ls: [ls[0], ls[1]], "incomplete"),
            (lambda ls: [], "no element sets"),
            (lambda ls: [ls[0], ls[1], with_checksum(ls[2].replace("25544", "25545"))], "catalog number differs"),
        ],
    )
    def test_malformed_sets_are_refused(self, edit: Callable[[list[str]], list[str]], message: str) -> None:
        """Short lines, swapped lines, a missing line 2, an empty text and mismatched catalogs all raise ValueError."""
        lines = edit(ISS_2019.splitlines())
        with pytest.raises(ValueError, match=message):
            parse_tle("\n".join(lines))

    def test_checksum_counts_minus_signs_as_one(self) -> None:
        """The checksum sums digits and counts '-' as 1; the documented ISS lines end in their checksums."""
        first, second = ISS_2019.splitlines()[1:]
        assert (checksum(first), checksum(second)) == (1, 2)
        assert checksum("1 -" + "0" * 66) == 2


class TestGeometry:
    @pytest.mark.parametrize("hours", [0.0, 7.3, 30.0])
    def test_satellite_overhead_is_at_90_degrees_and_its_height_away(self, hours: float) -> None:
        """From the sub-satellite point, elevation is ~90° and the slant range equals the satellite's height."""
        sat = swarm()[2]
        t = TLE_EPOCH + hours * 3600.0
        lat, lon, height = subpoint(sat, t)
        site = Site(lat, lon, 0.0)
        assert elevation_deg(sat, site, t) > 89.99
        assert slant_range_km(sat, site, t) == pytest.approx(height, abs=0.01)
        assert 530.0 < height < 600.0

    def test_heights_match_the_constellations(self) -> None:
        """Over a day, Swarm-like satellites fly 530-600 km and Iridium-like ones 770-815 km above the ellipsoid."""
        for t in (DAY_START + h * 3600.0 for h in range(0, 24, 3)):
            assert all(530.0 < subpoint(s, t)[2] < 600.0 for s in swarm())
            assert all(770.0 < subpoint(s, t)[2] < 815.0 for s in load_tle("iridium-like"))

    def test_range_at_the_mask_matches_the_spherical_figure(self) -> None:
        """At a 550 km-class satellite's rise over a 10° mask the one-way delay is about 6.1 ms (domain.md §5.1)."""
        passes = find_passes(swarm(), BEIJING, DAY_START, DAY_START + DAY)
        sats = {s.name: s for s in swarm()}
        for p in passes:
            assert elevation_deg(sats[p.satellite], BEIJING, p.rise) == pytest.approx(10.0, abs=1e-3)
            assert delay_s(sats[p.satellite], BEIJING, p.rise) == pytest.approx(6.06e-3, abs=0.2e-3)
            assert slant_range_km(sats[p.satellite], BEIJING, p.rise) / LIGHT_SPEED_KM_S == delay_s(
                sats[p.satellite], BEIJING, p.rise
            )

    def test_decayed_element_set_raises(self) -> None:
        """Propagating an element set SGP4 rejects raises ValueError naming the satellite and the time."""
        lines = [
            "DECAY",
            with_checksum("1 99999U 26999A   26324.00000000  .05000000  00000-0  50000-1 0  9990"),
            with_checksum("2 99999  51.6000 100.0000 0005000  90.0000 270.0000 16.20000000  1000"),
        ]
        (sat,) = parse_tle("\n".join(lines))
        with pytest.raises(ValueError, match=r"satellite DECAY: SGP4 cannot propagate to 2026-11-30T00:00:00Z"):
            elevation_deg(sat, BEIJING, TLE_EPOCH + 10 * DAY)

    @pytest.mark.parametrize(("lat", "lon", "alt", "what"), [(90.5, 0, 0, "latitude"), (0, 181, 0, "longitude")])
    def test_site_out_of_range_is_refused(self, lat: float, lon: float, alt: float, what: str) -> None:
        """A site with a coordinate out of range raises ValueError naming it."""
        with pytest.raises(ValueError, match=what):
            Site(lat, lon, alt)

    def test_site_height_must_be_plausible(self) -> None:
        """A site 200 km up (or NaN high) is refused."""
        for alt in (200_000.0, math.nan):
            with pytest.raises(ValueError, match="altitude"):
                Site(0.0, 0.0, alt)


class TestPasses:
    def test_rise_culmination_set_are_ordered_and_on_the_mask(self) -> None:
        """Each pass rises and sets on the mask, peaks at its reported culmination, and rise < culmination < set."""
        sats = {s.name: s for s in both()}
        passes = find_passes(both(), BEIJING, DAY_START, DAY_START + DAY, min_elevation_deg=15.0)
        assert len(passes) > 20
        for p in passes:
            sat = sats[p.satellite]
            assert p.rise < p.culmination < p.set
            assert elevation_deg(sat, BEIJING, p.rise) == pytest.approx(15.0, abs=1e-3)
            assert elevation_deg(sat, BEIJING, p.set) == pytest.approx(15.0, abs=1e-3)
            assert elevation_deg(sat, BEIJING, p.culmination) == pytest.approx(p.max_elevation_deg, abs=1e-9)
            assert p.max_elevation_deg >= max(elevation_deg(sat, BEIJING, p.culmination + d) for d in (-5, 5))
        assert [p.rise for p in passes] == sorted(p.rise for p in passes)

    def test_swarm_class_passes_last_minutes(self) -> None:
        """Over a week at three sites, 550 km passes above 10° last at most ~8 min, high ones at least 5 min."""
        sites = (BEIJING, Site(-33.9, 18.4), Site(64.1, -21.9))
        passes = [p for site in sites for p in find_passes(swarm(), site, DAY_START, DAY_START + 7 * DAY)]
        assert len(passes) > 150
        assert all(0.0 < p.duration_s <= 8.2 * 60 for p in passes)
        assert all(p.duration_s >= 5 * 60 for p in passes if p.max_elevation_deg > 45.0)
        assert max(p.duration_s for p in passes) > 7.5 * 60

    def test_higher_mask_gives_fewer_and_shorter_passes(self) -> None:
        """Every pass above 30° lies inside a pass above 10° of the same satellite, and there are fewer of them."""
        low = find_passes(both(), BEIJING, DAY_START, DAY_START + DAY, min_elevation_deg=10.0)
        high = find_passes(both(), BEIJING, DAY_START, DAY_START + DAY, min_elevation_deg=30.0)
        assert 0 < len(high) < len(low)
        for p in high:
            (outer,) = [q for q in low if q.satellite == p.satellite and q.rise < p.rise < p.set < q.set]
            assert outer.duration_s > p.duration_s
            assert outer.max_elevation_deg == pytest.approx(p.max_elevation_deg, abs=1e-6)

    def test_no_pass_is_missed_by_the_coarse_step(self) -> None:
        """Sampling every 5 s finds no moment above the mask outside the reported passes, and each pass has some."""
        sat = load_tle("iridium-like")[3]
        passes = find_passes([sat], BEIJING, DAY_START, DAY_START + DAY)
        above = [t for t in range(int(DAY_START), int(DAY_START + DAY), 5) if elevation_deg(sat, BEIJING, t) >= 10.0]
        assert all(any(p.rise <= t <= p.set for p in passes) for t in above)
        assert all(any(p.rise <= t <= p.set for t in above) for p in passes if p.duration_s > 10)

    def test_short_pass_between_samples_is_found(self) -> None:
        """A pass whose peak barely clears the mask is found even when the coarse step straddles all of it."""
        sat = swarm()[2]
        p = next(p for p in find_passes([sat], BEIJING, DAY_START, DAY_START + DAY) if p.duration_s < 120)
        coarse = find_passes([sat], BEIJING, p.rise - 3000.0, p.set + 3000.0, step_s=300.0)
        assert any(q.rise == pytest.approx(p.rise, abs=0.01) for q in coarse)

    @pytest.mark.parametrize("step", [60.0, 7.3])
    def test_pass_in_progress_at_the_start_is_reported_whole(self, step: float) -> None:
        """A window starting mid-pass reports that pass whole, identical to the one found from an earlier window."""
        first = find_passes(swarm(), BEIJING, DAY_START, DAY_START + DAY, step_s=step)[0]
        middle = first.culmination + 0.123
        again = find_passes(swarm(), BEIJING, middle, middle + 600.0, step_s=step)
        assert again[0] == first  # samples sit on a fixed grid, so overlapping windows agree to the bit
        assert again[0].rise < middle

    def test_agrees_with_skyfield_within_a_second(self) -> None:
        """Against skyfield's find_events (an independent TEME→ITRS chain), every pass matches within 1 s and 0.01°."""
        ref = json.loads(REFERENCE.read_text())
        site = Site(**ref["site"])
        start = datetime.fromisoformat(ref["start"]).timestamp()
        end = start + ref["hours"] * 3600.0
        ours = find_passes(both(), site, start, end, min_elevation_deg=ref["min_elevation_deg"])
        ours = [p for p in ours if p.rise >= start and p.set <= end]  # skyfield reports events inside the window only
        assert [p.satellite for p in ours] == [r["satellite"] for r in ref["passes"]]
        for p, r in zip(ours, ref["passes"], strict=True):
            assert (p.rise, p.culmination, p.set) == pytest.approx((r["rise"], r["culmination"], r["set"]), abs=1.0)
            assert p.max_elevation_deg == pytest.approx(r["max_elevation_deg"], abs=0.01)

    def test_snapshot_of_one_day_over_beijing(self) -> None:
        """The first passes of 2026-11-26 over Beijing from the shipped sets, as JSON, to the second."""
        passes = find_passes(both(), BEIJING, DAY_START, DAY_START + 3 * 3600.0)
        assert [p.to_json() for p in passes[:3]] == [
            {
                "satellite": "IRIDIUMLIKE-1",
                "rise": "2026-11-26T00:06:38Z",
                "culmination": "2026-11-26T00:11:47Z",
                "set": "2026-11-26T00:16:54Z",
                "max_elevation_deg": 57.12,
                "duration_s": 615.9,
            },
            {
                "satellite": "IRIDIUMLIKE-6",
                "rise": "2026-11-26T00:30:59Z",
                "culmination": "2026-11-26T00:34:55Z",
                "set": "2026-11-26T00:38:53Z",
                "max_elevation_deg": 21.43,
                "duration_s": 473.6,
            },
            {
                "satellite": "SWARMLIKE-1",
                "rise": "2026-11-26T01:18:46Z",
                "culmination": "2026-11-26T01:22:11Z",
                "set": "2026-11-26T01:25:34Z",
                "max_elevation_deg": 27.4,
                "duration_s": 407.7,
            },
        ]
        assert len(passes) == 7

    def test_a_day_of_twelve_satellites_is_fast(self) -> None:
        """A day of passes for all twelve shipped satellites takes well under a second."""
        began = time.perf_counter()
        passes = find_passes(both(), BEIJING, DAY_START, DAY_START + DAY)
        assert time.perf_counter() - began < 0.8
        assert len(passes) == 46

    def test_pass_value_helpers(self) -> None:
        """Pass.duration_s is set - rise and contains() includes the rise and excludes the set."""
        p = Pass("X", rise=100.0, culmination=150.0, set=200.0, max_elevation_deg=42.0)
        assert p.duration_s == 100.0
        assert (p.contains(100.0), p.contains(199.9), p.contains(200.0), p.contains(99.9)) == (True, True, False, False)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"min_elevation_deg": 90.0}, "min_elevation_deg"),
            ({"min_elevation_deg": -1.0}, "min_elevation_deg"),
            ({"step_s": 0.5}, "step_s"),
            ({"end": DAY_START}, "start < end"),
            ({"end": math.inf}, "start < end"),
        ],
    )
    def test_bad_arguments_are_refused(self, kwargs: dict[str, float], message: str) -> None:
        """A mask of 90° or below 0, a tiny step and an empty or infinite window raise ValueError."""
        end = kwargs.pop("end", DAY_START + DAY)
        with pytest.raises(ValueError, match=message):
            find_passes(swarm(), BEIJING, DAY_START, end, **kwargs)
