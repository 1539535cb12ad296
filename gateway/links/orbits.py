"""LEO pass prediction: SGP4 positions from TLEs, seen from a ground site, and the windows above a mask.

Pure computation on the times passed in (Unix seconds, UTC); nothing here reads a clock.

Frames: SGP4 gives positions in TEME. They are turned into Earth-fixed coordinates by the
Greenwich mean sidereal time alone (IAU-82, as in Vallado's ``gstime``), ignoring polar
motion and UT1-UTC; both move a LEO pass edge by well under a second. Sites are WGS-84
geodetic points, so "elevation" is measured from the local ellipsoid normal.

Pass search: elevation is sampled every ``step_s`` over the window (widened by
:data:`MAX_PASS_S` on both sides so passes already in progress keep their true rise and
set); each local maximum is refined by golden-section search, and each mask crossing by
bisection on ``elevation - mask``. A LEO pass is a single hump in elevation, so a pass
whose peak lies between two samples that are both below the mask is still found.

Shipped element sets (``gateway/links/tle/*.tle``) are representative, written for this
project; see ``gateway/links/tle/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sgp4.api import SGP4_ERRORS, Satrec  # type: ignore[import-untyped]

from gateway.links.geometry import LIGHT_SPEED_KM_S

__all__ = [
    "MAX_PASS_S",
    "Pass",
    "Satellite",
    "Site",
    "delay_s",
    "elevation_deg",
    "find_passes",
    "iso_utc",
    "load_tle",
    "parse_tle",
    "shipped_tle_sets",
    "slant_range_km",
    "subpoint",
]

MAX_PASS_S = 1_800.0
"""The search window is widened by this much each side; LEO passes last minutes, so none is cut."""
_WGS84_A_KM = 6378.137
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)
_UNIX_EPOCH_JD = 2_440_587.5
_DAY_S = 86_400.0
_TIME_TOL_S = 1e-3
"""Root and peak refinement stop when the bracket is narrower than this."""
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_MIN_ALT_M = -1_000.0
_MAX_ALT_M = 100_000.0
_TLE_SUFFIX = ".tle"


@dataclass(frozen=True, slots=True)
class Site:
    """A ground point on the WGS-84 ellipsoid; validated on construction.

    Raises:
        ValueError: a coordinate is not finite or out of range.
    """

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    _ecef: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    _up: tuple[float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_range("latitude", self.lat_deg, -90.0, 90.0)
        _check_range("longitude", self.lon_deg, -180.0, 180.0)
        _check_range("altitude in metres", self.alt_m, _MIN_ALT_M, _MAX_ALT_M)
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        n = _WGS84_A_KM / math.sqrt(1.0 - _WGS84_E2 * math.sin(lat) ** 2)
        h = self.alt_m / 1000.0
        ecef = ((n + h) * math.cos(lat) * math.cos(lon), (n + h) * math.cos(lat) * math.sin(lon))
        # Derived once here because every elevation sample needs them.
        object.__setattr__(self, "_ecef", (*ecef, (n * (1.0 - _WGS84_E2) + h) * math.sin(lat)))
        object.__setattr__(self, "_up", (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)))


@dataclass(frozen=True, slots=True, eq=False)
class Satellite:
    """One satellite's element set, ready to propagate; build with :func:`parse_tle`."""

    name: str
    catalog: int
    epoch: float
    """The element set's epoch, Unix seconds UTC."""
    satrec: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass of a satellite above a site's elevation mask; times are Unix seconds UTC."""

    satellite: str
    rise: float
    culmination: float
    set: float
    max_elevation_deg: float

    @property
    def duration_s(self) -> float:
        """Seconds from rise to set."""
        return self.set - self.rise

    def contains(self, t: float) -> bool:
        """True if ``t`` lies in the window (rise inclusive, set exclusive)."""
        return self.rise <= t < self.set

    def to_json(self) -> dict[str, object]:
        """The pass as a JSON-ready object: ISO-8601 UTC times to the second, angles to 0.01°."""
        return {
            "satellite": self.satellite,
            "rise": iso_utc(self.rise),
            "culmination": iso_utc(self.culmination),
            "set": iso_utc(self.set),
            "max_elevation_deg": round(self.max_elevation_deg, 2),
            "duration_s": round(self.duration_s, 1),
        }


def iso_utc(t: float) -> str:
    """Format Unix seconds as ISO-8601 UTC to the nearest second, e.g. ``2026-11-20T03:04:05Z``."""
    return datetime.fromtimestamp(round(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_tle(text: str, *, source: str = "TLE") -> tuple[Satellite, ...]:
    """Parse two- or three-line element sets (blank lines and ``#`` comments allowed).

    Args:
        text: the element sets; a name line before a set is optional.
        source: what to call the text in error messages (e.g. the file name).

    Returns:
        The satellites, in file order; unnamed ones are called by their catalog number.

    Raises:
        ValueError: a line is malformed, has a wrong checksum, the pair does not match, or there is no set.
    """
    lines = [(n, line.rstrip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
    satellites: list[Satellite] = []
    i = 0
    while i < len(lines):
        name = None
        if not lines[i][1].startswith("1 "):
            name, i = lines[i][1].strip(), i + 1
        if i + 1 >= len(lines):
            raise ValueError(f"{source}: element set at line {lines[i - 1][0]} is incomplete")
        satellites.append(_satellite(name, lines[i], lines[i + 1], source))
        i += 2
    if not satellites:
        raise ValueError(f"{source}: no element sets")
    return tuple(satellites)


def shipped_tle_sets() -> tuple[str, ...]:
    """Names of the element sets shipped with satgw (usable wherever a TLE file is asked for)."""
    folder = resources.files("gateway.links") / "tle"
    return tuple(sorted(p.name.removesuffix(_TLE_SUFFIX) for p in folder.iterdir() if p.name.endswith(_TLE_SUFFIX)))


def load_tle(source: str | Path) -> tuple[Satellite, ...]:
    """Load satellites from a shipped set's name (see :func:`shipped_tle_sets`) or a TLE file's path.

    Raises:
        ValueError: the name is neither a shipped set nor an existing file, or the file is not valid TLE.
    """
    name = str(source)
    if name in shipped_tle_sets():
        resource = resources.files("gateway.links") / "tle" / f"{name}{_TLE_SUFFIX}"
        return parse_tle(resource.read_text(encoding="ascii"), source=name)
    path = Path(source)
    if not path.is_file():
        sets = ", ".join(shipped_tle_sets())
        raise ValueError(f"TLE file {name} not found (shipped sets: {sets})")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"TLE file {name} cannot be read: {exc}") from None
    return parse_tle(text, source=name)


def elevation_deg(sat: Satellite, site: Site, t: float) -> float:
    """Return the satellite's elevation above the site's horizon at Unix time ``t``, degrees.

    Raises:
        ValueError: SGP4 cannot propagate the element set to ``t`` (e.g. it has decayed).
    """
    d = _topocentric(sat, site, t)
    up = _dot(d, site._up)
    # atan2, not asin: rounding can push |up| / range just past 1 when the satellite is overhead.
    return math.degrees(math.atan2(up, math.sqrt(max(0.0, _dot(d, d) - up * up))))


def slant_range_km(sat: Satellite, site: Site, t: float) -> float:
    """Return the straight-line distance from the site to the satellite at Unix time ``t``, km.

    Divide by :data:`~gateway.links.geometry.LIGHT_SPEED_KM_S` for the one-way propagation delay.

    Raises:
        ValueError: SGP4 cannot propagate the element set to ``t``.
    """
    d = _topocentric(sat, site, t)
    return math.sqrt(_dot(d, d))


def delay_s(sat: Satellite, site: Site, t: float) -> float:
    """Return the one-way propagation delay site ↔ satellite at Unix time ``t``, seconds."""
    return slant_range_km(sat, site, t) / LIGHT_SPEED_KM_S


def subpoint(sat: Satellite, t: float) -> tuple[float, float, float]:
    """Return the satellite's geodetic latitude and longitude (degrees) and height above WGS-84 (km) at ``t``.

    Raises:
        ValueError: SGP4 cannot propagate the element set to ``t``.
    """
    x, y, z = _ecef(sat, t)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1.0 - _WGS84_E2))
    for _ in range(6):  # fixed-point iteration; converges to well below a millimetre in a few rounds at LEO heights
        n = _WGS84_A_KM / math.sqrt(1.0 - _WGS84_E2 * math.sin(lat) ** 2)
        h = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1.0 - _WGS84_E2 * n / (n + h)))
    n = _WGS84_A_KM / math.sqrt(1.0 - _WGS84_E2 * math.sin(lat) ** 2)
    return math.degrees(lat), math.degrees(math.atan2(y, x)), p / math.cos(lat) - n


def find_passes(
    satellites: Iterable[Satellite],
    site: Site,
    start: float,
    end: float,
    *,
    min_elevation_deg: float = 10.0,
    step_s: float = 60.0,
) -> list[Pass]:
    """Return every pass above ``min_elevation_deg`` that overlaps ``[start, end)``, ordered by rise.

    A pass already in progress at ``start`` or still in progress at ``end`` is reported whole.

    Args:
        satellites: the satellites to consider.
        site: the ground point.
        start: window start, Unix seconds UTC.
        end: window end, Unix seconds UTC (after ``start``).
        min_elevation_deg: the elevation mask, degrees, 0 <= mask < 90.
        step_s: coarse sampling step, seconds; must be shorter than half a pass (60 s suits LEO).

    Raises:
        ValueError: an argument is out of range, or SGP4 cannot propagate an element set over the window.
    """
    _check_range("min_elevation_deg", min_elevation_deg, 0.0, 90.0)
    if min_elevation_deg >= 90.0:
        raise ValueError("min_elevation_deg must be below 90")
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ValueError(f"the window must be finite with start < end, got {start!r} .. {end!r}")
    if not (math.isfinite(step_s) and 1.0 <= step_s <= 300.0):
        raise ValueError(f"step_s must be between 1 and 300 seconds, got {step_s!r}")
    found: list[Pass] = []
    for sat in satellites:
        found.extend(p for p in _passes_of(sat, site, start, end, min_elevation_deg, step_s) if p.set > start)
    return sorted(found, key=lambda p: (p.rise, p.satellite))


def _passes_of(sat: Satellite, site: Site, start: float, end: float, mask: float, step: float) -> list[Pass]:
    """Passes of one satellite overlapping [start, end); sampling starts MAX_PASS_S early to catch their rise."""
    # Samples on a grid of whole steps from the Unix epoch: windows that overlap sample the same instants, so
    # a pass found from two windows comes out bit-identical (the LEO link relies on that to keep pass state).
    first = math.floor((start - MAX_PASS_S) / step)
    last = math.ceil((end + MAX_PASS_S) / step)
    times = [n * step for n in range(first, last + 1)]
    elev = [elevation_deg(sat, site, t) for t in times]
    passes: list[Pass] = []
    for i in range(1, len(times) - 1):
        if elev[i - 1] < elev[i] >= elev[i + 1]:
            found = _pass_at_peak(sat, site, times, elev, i, mask)
            if found is not None and found.rise < end and (not passes or found.rise >= passes[-1].set):
                passes.append(found)
    return passes


def _pass_at_peak(
    sat: Satellite, site: Site, times: Sequence[float], elev: Sequence[float], i: int, mask: float
) -> Pass | None:
    """The pass around the sampled local maximum ``i``, or None if its refined peak stays below the mask."""
    f = _above(sat, site, mask)
    peak_t = _golden_max(f, times[i - 1], times[i + 1])
    peak = f(peak_t) + mask
    if peak < mask:
        return None
    j = i
    while j > 0 and elev[j - 1] >= mask:
        j -= 1
    k = i
    while k < len(times) - 1 and elev[k + 1] >= mask:
        k += 1
    # A pass still above the mask at the sampled edge is cut there (only non-LEO orbits get that far).
    # For a short pass no sample is above the mask, and the refined peak is the inner end of both brackets.
    rise = times[0] if j == 0 else _bisect(f, times[j - 1], times[j] if elev[j] >= mask else peak_t)
    set_ = times[-1] if k == len(times) - 1 else _bisect(f, times[k] if elev[k] >= mask else peak_t, times[k + 1])
    return Pass(sat.name, rise, peak_t, set_, peak)


def _above(sat: Satellite, site: Site, mask: float) -> Callable[[float], float]:
    return lambda t: elevation_deg(sat, site, t) - mask


def _bisect(f: Callable[[float], float], a: float, b: float) -> float:
    """The time where ``f`` changes sign in [a, b] (f(a) and f(b) of opposite signs), to within _TIME_TOL_S."""
    fa = f(a)
    while b - a > _TIME_TOL_S:
        mid = 0.5 * (a + b)
        fm = f(mid)
        if (fm < 0.0) == (fa < 0.0):
            a, fa = mid, fm
        else:
            b = mid
    return 0.5 * (a + b)


def _golden_max(f: Callable[[float], float], a: float, b: float) -> float:
    """The time of the maximum of unimodal ``f`` on [a, b], to within _TIME_TOL_S."""
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    while b - a > _TIME_TOL_S:
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return 0.5 * (a + b)


def _satellite(name: str | None, first: tuple[int, str], second: tuple[int, str], source: str) -> Satellite:
    """Check one line pair and build its Satellite."""
    for expected, (number, line) in (("1", first), ("2", second)):
        where = f"{source} line {number}"
        if len(line) != 69 or line[0] != expected or line[1] != " ":
            raise ValueError(f"{where}: not TLE line {expected} (69 characters starting '{expected} ')")
        if str(_checksum(line)) != line[68]:
            raise ValueError(f"{where}: checksum is {line[68]}, the line sums to {_checksum(line)}")
    if first[1][2:7] != second[1][2:7]:
        raise ValueError(f"{source} line {second[0]}: catalog number differs from line {first[0]}")
    satrec = Satrec.twoline2rv(first[1], second[1])
    if satrec.error:
        raise ValueError(f"{source} line {first[0]}: elements rejected by SGP4 ({SGP4_ERRORS[satrec.error]})")
    epoch = (satrec.jdsatepoch - _UNIX_EPOCH_JD + satrec.jdsatepochF) * _DAY_S
    catalog = int(satrec.satnum)
    return Satellite(name=name or str(catalog), catalog=catalog, epoch=epoch, satrec=satrec)


def _checksum(line: str) -> int:
    """TLE checksum: the digits of the first 68 characters summed, each minus sign counting 1, modulo 10."""
    return sum(int(c) if c.isdigit() else c == "-" for c in line[:68]) % 10


def _ecef(sat: Satellite, t: float) -> tuple[float, float, float]:
    """Earth-fixed position of the satellite at Unix time ``t``, km (TEME rotated by GMST)."""
    days = t / _DAY_S
    whole = math.floor(days)
    jd, fr = _UNIX_EPOCH_JD + whole, days - whole
    error, (x, y, z), _ = sat.satrec.sgp4(jd, fr)
    if error:
        raise ValueError(f"satellite {sat.name}: SGP4 cannot propagate to {iso_utc(t)} ({SGP4_ERRORS[error]})")
    theta = _gmst(jd, fr)
    c, s = math.cos(theta), math.sin(theta)
    return c * x + s * y, -s * x + c * y, z


def _topocentric(sat: Satellite, site: Site, t: float) -> tuple[float, float, float]:
    x, y, z = _ecef(sat, t)
    sx, sy, sz = site._ecef
    return x - sx, y - sy, z - sz


def _gmst(jd: float, fr: float) -> float:
    """Greenwich mean sidereal time, radians (IAU-82, Vallado's ``gstime``; UT1 taken as UTC)."""
    tut1 = (jd - 2_451_545.0 + fr) / 36_525.0
    seconds = -6.2e-6 * tut1**3 + 0.093104 * tut1**2 + (876_600.0 * 3600.0 + 8_640_184.812866) * tut1 + 67_310.54841
    return math.radians(seconds / 240.0) % math.tau


def _dot(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _check_range(what: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high
    ):
        raise ValueError(f"{what} must be between {low:g} and {high:g}, got {value!r}")
