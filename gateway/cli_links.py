"""``satgw links ...``: link planning commands (pass windows of LEO satellites over a site).

Kept out of :mod:`gateway.cli` so it can grow on its own; ``cli`` adds it with :func:`register`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime
from typing import Any

from gateway.links.orbits import Site, find_passes, load_tle, shipped_tle_sets

__all__ = ["register"]

_MAX_HOURS = 14 * 24.0
"""Longest window ``links passes`` computes; TLEs are not worth more, and it bounds the run time."""


def register(sub: Any) -> None:
    """Add the ``links`` command group to ``sub``, an argparse subparsers object."""
    links = sub.add_parser("links", help="satellite link planning").add_subparsers(required=True, metavar="COMMAND")
    passes = links.add_parser("passes", help="LEO pass windows over a site, as JSON")
    passes.add_argument("--tle", required=True, help=f"TLE file, or a shipped set: {', '.join(shipped_tle_sets())}")
    passes.add_argument("--lat", type=float, required=True, help="site latitude, degrees north")
    passes.add_argument("--lon", type=float, required=True, help="site longitude, degrees east")
    passes.add_argument("--alt", type=float, default=0.0, help="site height above the WGS-84 ellipsoid, metres")
    passes.add_argument("--start", help="window start, ISO-8601 UTC (default: now)")
    passes.add_argument("--hours", type=float, default=24.0, help="window length, hours (default 24)")
    passes.add_argument("--min-elevation", type=float, default=10.0, help="elevation mask, degrees (default 10)")
    passes.set_defaults(command=_passes)


async def _passes(args: argparse.Namespace) -> int:
    """Print the passes overlapping the window as a JSON list; bad input is one line on stderr and exit 2."""
    try:
        start = _start(args.start)
        if not (math.isfinite(args.hours) and 0.0 < args.hours <= _MAX_HOURS):
            raise ValueError(f"--hours must be above 0 and at most {_MAX_HOURS:g}, got {args.hours:g}")
        site = Site(args.lat, args.lon, args.alt)
        satellites = load_tle(args.tle)
        found = find_passes(satellites, site, start, start + args.hours * 3600.0, min_elevation_deg=args.min_elevation)
    except ValueError as exc:
        print(f"satgw links passes: {exc}", file=sys.stderr)
        return 2
    print(json.dumps([p.to_json() for p in found], indent=2))
    return 0


def _start(text: str | None) -> float:
    """Unix seconds of an ISO-8601 time (UTC unless it names an offset), or now."""
    if text is None:
        return time.time()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start {text!r} is not an ISO-8601 time (e.g. 2026-11-26T06:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
