"""Write the independent reference passes that tests/unit/test_orbits.py compares against.

Not part of the test run: it needs skyfield (not a satgw dependency). Run it by hand in a
throw-away environment with ``pip install skyfield==1.55``:

    python tests/unit/data/make_leo_reference.py > tests/unit/data/leo_passes_beijing.json

skyfield converts TEME to ITRS with full precession-nutation and its own leap-second table,
so agreement with gateway.links.orbits checks our frame handling, not just our root finding.
"""

import json
import sys
from pathlib import Path

from skyfield.api import EarthSatellite, load, wgs84

TLE_DIR = Path(__file__).resolve().parents[3] / "gateway" / "links" / "tle"
SETS = ("iridium-like", "swarm-like")
SITE = {"lat_deg": 39.9042, "lon_deg": 116.4074, "alt_m": 50.0}
START = "2026-11-26T00:00:00Z"
HOURS = 24.0
MASK_DEG = 10.0


def main() -> None:
    ts = load.timescale(builtin=True)  # builtin: no download
    site = wgs84.latlon(SITE["lat_deg"], SITE["lon_deg"], elevation_m=SITE["alt_m"])
    t0 = ts.utc(2026, 11, 26)
    passes = []
    for name in SETS:
        lines = [line.rstrip() for line in (TLE_DIR / f"{name}.tle").read_text().splitlines() if line.strip()]
        for i in range(0, len(lines), 3):
            sat = EarthSatellite(lines[i + 1], lines[i + 2], lines[i], ts)
            passes += _passes(sat, site, t0, t0 + HOURS / 24.0)
    passes.sort(key=lambda p: p["rise"])
    about = f"skyfield find_events, {', '.join(SETS)}, {START} + {HOURS:g} h, mask {MASK_DEG:g} deg; Unix seconds UTC"
    json.dump(
        {"about": about, "site": SITE, "start": START, "hours": HOURS, "min_elevation_deg": MASK_DEG, "passes": passes},
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


def _passes(sat, site, t0, t1):
    times, events = sat.find_events(site, t0, t1, altitude_degrees=MASK_DEG)
    out, current = [], None
    for t, event in zip(times, events, strict=True):
        unix = round(t.utc_datetime().timestamp(), 2)
        if event == 0:
            current = {"satellite": sat.name, "rise": unix}
        elif event == 1 and current is not None:
            current["culmination"] = unix
            current["max_elevation_deg"] = round((sat - site).at(t).altaz()[0].degrees, 3)
        elif event == 2 and current is not None and "culmination" in current:
            out.append(current | {"set": unix})
            current = None
    return out


if __name__ == "__main__":
    main()
