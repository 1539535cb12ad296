"""The dashboard's data routes on a running gateway (real Redis and Mosquitto): history samples, link timelines."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config import GatewayConfig, Settings
from gateway.links.geo import GeoProfile
from gateway.links.leo import LeoProfile
from gateway.links.orbits import find_passes
from gateway.links.outages import OutagePlan, Window
from gateway.service import Gateway
from protocols.envelope import Priority
from tests.harness import FAST_LINK, running_gateway, until
from tests.harness import accepted_entry as _accepted

pytestmark = pytest.mark.integration

LEO = LeoProfile(name="leo", tle="swarm-like", gateway_lat=59.91, gateway_lon=10.75, pass_capacity_frames=4)


def dashboard_config(outage: Window) -> GatewayConfig:
    """The fast link, a Swarm-like LEO link at Oslo, and a GEO link with one scheduled outage; samples every 0.1 s."""
    geo = GeoProfile(name="geo", max_frame_bytes=200, interval_s=60.0, outages=OutagePlan(windows=(outage,)))
    return GatewayConfig(links=(FAST_LINK, LEO, geo), reclaim_idle_s=2.0, history_every_s=0.1, history_window_s=120.0)


async def get(base: str, path: str) -> tuple[int, Any]:
    """(status, parsed JSON) of GET ``path`` (urllib in a thread, so the gateway's loop keeps serving)."""

    def call() -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(call)


@pytest.fixture
def outage() -> Window:
    return Window(time.time() + 600.0, time.time() + 1200.0)


@pytest.fixture
async def gateway(settings: Settings, outage: Window) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, dashboard_config(outage)) as gw:
        yield gw


@pytest.fixture
def base(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.http.port}"


class TestHistory:
    async def test_samples_follow_the_queues(self, gateway: Gateway, base: str) -> None:
        """Samples come oldest first, one per period, and show the class depths the queue has (every link paused)."""
        for link in ("fast", "leo", "geo"):
            gateway.operations.pause(link)
        await gateway.queue.enqueue([_accepted("T1", 1, Priority.SAFETY), _accepted("T1", 2, Priority.SAFETY)])

        async def both_queued() -> dict[str, Any] | None:
            status, history = await get(base, "/api/v1/history")
            assert status == 200
            latest = history["samples"][-1]["queues"]["safety"]
            return history if latest["depth"] + latest["pending"] == 2 else None

        body = await until(both_queued, timeout=10, what="a sample with both safety messages")
        assert (body["every_s"], body["window_s"]) == (0.1, 120.0)
        ats = [s["at"] for s in body["samples"]]
        assert ats == sorted(ats)
        assert len(set(ats)) == len(ats)
        assert list(body["samples"][-1]["queues"]) == ["distress", "urgency", "safety", "routine"]
        assert body["samples"][-1]["queues"]["safety"]["oldest_age_s"] >= 0

    async def test_minutes_selects_the_last_minutes(self, base: str) -> None:
        """minutes=1 answers the samples of the last minute (here all of them, as the gateway just started)."""
        status, one = await get(base, "/api/v1/history?minutes=1")
        assert status == 200
        assert one["samples"]
        newest = one["samples"][-1]["at"]
        assert all(newest - s["at"] <= 60.0 for s in one["samples"])

    @pytest.mark.parametrize("minutes", ["0", "3", "-1", "x", "1.5"])
    async def test_minutes_outside_the_window_is_422(self, base: str, minutes: str) -> None:
        """minutes must be a whole number from 1 to the window (2 minutes here); anything else is 422 JSON."""
        status, body = await get(base, f"/api/v1/history?minutes={minutes}")
        assert status == 422
        assert body["error"] == "invalid request"
        assert body["detail"][0]["loc"] == "query.minutes"


class TestTimeline:
    async def test_leo_passes_equal_the_orbit_module(self, base: str) -> None:
        """The LEO link's pass spans are find_passes over the answer's stretch: satellite, rise, set, peak."""
        status, body = await get(base, "/api/v1/links/leo/timeline?hours=6")
        assert status == 200
        assert body["link"] == "leo"
        assert body["start"] == pytest.approx(body["now"] - 600.0)
        assert body["end"] == pytest.approx(body["now"] + 6 * 3600)
        want = find_passes(LEO.satellites(), LEO.site(), body["start"], body["end"], min_elevation_deg=10.0)
        got = [s for s in body["spans"] if s["kind"] == "pass"]
        assert len(want) >= 3
        assert [(s["label"], s["start"], s["end"], s["peak_at"], s["peak_elevation_deg"]) for s in got] == [
            (p.satellite, p.rise, p.set, p.culmination, p.max_elevation_deg) for p in want
        ]
        assert set(body["next_send_at"]) == {"distress", "urgency", "safety", "routine"}
        assert all(t >= body["now"] for t in body["next_send_at"].values())

    async def test_geo_is_in_view_with_its_scheduled_outage(self, base: str, outage: Window) -> None:
        """The GEO link is in view over the whole stretch, with its scheduled outage whole."""
        status, body = await get(base, "/api/v1/links/geo/timeline?hours=1")
        assert status == 200
        spans = [(s["kind"], s["label"]) for s in body["spans"]]
        assert spans == [("in_view", "GEO 110.5°E"), ("outage", "scheduled")]
        sky, down = body["spans"]
        assert (sky["start"], sky["end"]) == (body["start"], body["end"])
        assert (down["start"], down["end"]) == (outage.start, outage.end)

    async def test_unknown_link_is_404_json(self, base: str) -> None:
        """A timeline of a link that does not exist is 404 with a JSON error naming it."""
        assert await get(base, "/api/v1/links/nope/timeline") == (404, {"error": "no link nope"})

    @pytest.mark.parametrize("hours", ["0", "-2", "24.5", "nan", "inf", "x"])
    async def test_bad_hours_is_422(self, base: str, hours: str) -> None:
        """hours must be a finite number above 0 and at most 24; anything else is 422 JSON."""
        status, body = await get(base, f"/api/v1/links/leo/timeline?hours={hours}")
        assert status == 422
        assert body["detail"][0]["loc"] == "query.hours"

    async def test_the_routes_are_in_the_schema(self, base: str) -> None:
        """/openapi.json documents both routes and the 404 of the timeline."""
        _, schema = await get(base, "/openapi.json")
        assert "/api/v1/history" in schema["paths"]
        assert "404" in schema["paths"]["/api/v1/links/{name}/timeline"]["get"]["responses"]
        assert not math.isnan(
            float(schema["paths"]["/api/v1/history"]["get"]["parameters"][0]["schema"]["anyOf"][0]["maximum"])
        )
