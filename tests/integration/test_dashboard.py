"""The dashboard at ``GET /`` in a real headless Chromium, over a running gateway on real Redis and Mosquitto.

Browser tests need Debian's ``/usr/bin/chromium`` and the Python ``playwright`` package (no downloaded
browsers); without them they are skipped, naming what is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gateway.config import GatewayConfig, Settings
from gateway.links.geo import GeoProfile
from gateway.links.leo import LeoProfile
from gateway.links.outages import OutagePlan, Window
from gateway.mqtt import MqttClient
from gateway.service import Gateway
from protocols.envelope import Kind, Position, Priority
from tests.harness import FAST_LINK, config_with, provision, running_gateway, until
from tests.harness import accepted_entry as _accepted

if TYPE_CHECKING:
    from playwright.async_api import Page, Response

pytestmark = pytest.mark.integration

NONE = "\N{EN DASH}"  # what the page shows for a missing value
CLASSES = ("distress", "urgency", "safety", "routine")

CHROMIUM = Path("/usr/bin/chromium")
_MISSING = [
    what
    for what, present in (
        ("the playwright package (pip install playwright)", importlib.util.find_spec("playwright") is not None),
        (f"{CHROMIUM} (apt-get install chromium)", CHROMIUM.exists()),
    )
    if not present
]
needs_browser = pytest.mark.skipif(bool(_MISSING), reason=f"needs {' and '.join(_MISSING)}")

# Everything the page reads of one poll, in one evaluation so no redraw can fall between the reads.
_READ_PAGE = """() => {
  const text = (id) => document.getElementById(id).textContent;
  const rows = (id) => Array.from(document.getElementById(id).rows).map((tr) => ({
    key: tr.dataset.key,
    cells: Object.fromEntries(Array.from(tr.cells).filter((td) => td.dataset.field)
      .map((td) => [td.dataset.field, {text: td.textContent, value: td.dataset.value}])),
  }));
  return {
    uptime: document.getElementById("uptime").dataset.value,
    terminals: document.getElementById("terminals").hidden ? null : text("terminals-online"),
    queues: rows("queues"),
    downlink: rows("downlink-queues"),
    links: rows("links"),
    throughput: rows("throughput"),
    rejected: rows("rejected"),
    open: rows("distress-open"),
    incidents: rows("incidents"),
    distress: {depth: text("distress-depth"), pending: text("distress-pending"),
               open: document.getElementById("distress").dataset.open, summary: text("distress-summary")},
  };
}"""


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_get_now, url)


def _get_now(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def _get_json(url: str) -> Any:
    status, _, body = await _get(url)
    assert status == 200, (url, status, body[:200])
    return json.loads(body)


async def _post(url: str) -> int:
    def call() -> int:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as response:
            return int(response.status)

    return await asyncio.to_thread(call)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A serving gateway with one fast link named ``fast``."""
    async with running_gateway(settings, config_with()) as gw:
        yield gw


@pytest.fixture
def base(gateway: Gateway) -> str:
    """The gateway's HTTP address."""
    return f"http://127.0.0.1:{gateway.http.port}"


LEO = LeoProfile(name="leo", tle="swarm-like", gateway_lat=59.91, gateway_lon=10.75, pass_capacity_frames=4)


@pytest.fixture
def outage() -> Window:
    """A scheduled outage of the ``geo`` link, from 20 to 40 minutes from now."""
    return Window(time.time() + 1200.0, time.time() + 2400.0)


@pytest.fixture
async def sky(settings: Settings, outage: Window) -> AsyncIterator[Gateway]:
    """A gateway with the fast link, a Swarm-like LEO link at Oslo and a GEO link with a scheduled outage, sampling
    its history every 0.2 s."""
    geo = GeoProfile(name="geo", max_frame_bytes=200, interval_s=60.0, outages=OutagePlan(windows=(outage,)))
    config = GatewayConfig(links=(FAST_LINK, LEO, geo), reclaim_idle_s=2.0, history_every_s=0.2, history_window_s=120.0)
    async with running_gateway(settings, config) as gw:
        yield gw


@pytest.fixture
def sky_base(sky: Gateway) -> str:
    """The HTTP address of the ``sky`` gateway."""
    return f"http://127.0.0.1:{sky.http.port}"


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A page in Debian's headless Chromium (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def _until(page: Page, predicate: str, *, timeout: float = 10.0) -> None:
    """Wait until the JS function ``predicate`` is true in the page (evaluated from outside, so the CSP allows it)."""

    async def holds() -> bool:
        return bool(await page.evaluate(predicate))

    await until(holds, timeout=timeout, what=predicate)


async def _load(page: Page, base: str) -> list[Response]:
    """Open the dashboard, collecting every /api/v1/status answer it reads; return that list (it keeps growing)."""
    answers: list[Response] = []
    errors: list[str] = []
    page.on("response", lambda r: answers.append(r) if r.url.endswith("/api/v1/status") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(base + "/")
    await _until(page, "() => Number(document.body.dataset.polls || 0) >= 1")
    assert errors == []
    return answers


async def _shown_with_answer(page: Page, answers: list[Response]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the page shows now and the status answer it drew that from (matched by uptime, unique per poll)."""
    shown, status, _ = await _shown_with_answers(page, answers)
    return shown, status


async def _shown_with_answers(
    page: Page, answers: list[Response]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """What the page shows now, the status answer it drew that from, and the answer before that (if any)."""
    shown: dict[str, Any] = await page.evaluate(_READ_PAGE)
    bodies = [await r.json() for r in list(answers)]
    [index] = [i for i, b in enumerate(bodies) if b["uptime_s"] == float(shown["uptime"])]
    return shown, bodies[index], bodies[index - 1] if index > 0 else None


class TestAssets:
    async def test_page_and_assets_are_served_from_the_package(self, base: str) -> None:
        """/ is HTML that loads only same-origin assets; they are served with their types; unknown ones are 404 JSON."""
        status, headers, body = await _get(base + "/")
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b'src="/static/dashboard.js"' in body
        assert b"http://" not in body.replace(b'href="/api', b"")
        status, headers, body = await _get(base + "/static/dashboard.js")
        assert (status, headers["content-type"].split(";")[0]) == (200, "text/javascript")
        assert b"/api/v1/status" in body
        status, headers, _ = await _get(base + "/static/dashboard.css")
        assert (status, headers["content-type"].split(";")[0]) == (200, "text/css")
        status, _, body = await _get(base + "/static/secret.py")
        assert (status, json.loads(body)) == (404, {"error": "no asset secret.py"})


@needs_browser
class TestInBrowser:
    async def test_queue_numbers_equal_the_status_answer(self, gateway: Gateway, base: str, page: Page) -> None:
        """Each class's waiting, pending and oldest age, up and down, on the page are those of the status it read."""
        assert await _post(base + "/api/v1/links/fast/pause") == 200
        await gateway.queue.enqueue(
            [
                _accepted("T7", 1, Priority.SAFETY),
                _accepted("T7", 2, Priority.SAFETY),
                _accepted("T7", 3, Priority.URGENCY),
            ]
        )
        answers = await _load(page, base)
        await _until(page, "() => Number(document.body.dataset.polls) >= 2")
        shown, status = await _shown_with_answer(page, answers)
        assert [row["key"] for row in shown["queues"]] == list(status["queues"])
        for row in shown["queues"]:
            queue, cells = status["queues"][row["key"]], row["cells"]
            assert (int(cells["depth"]["text"]), int(cells["pending"]["text"])) == (queue["depth"], queue["pending"])
            if queue["oldest_age_s"] is None:
                assert (cells["oldest_age_s"]["text"], cells["oldest_age_s"]["value"]) == (NONE, "")
            else:
                assert float(cells["oldest_age_s"]["value"]) == queue["oldest_age_s"]
                assert abs(float(cells["oldest_age_s"]["text"]) - queue["oldest_age_s"]) <= 0.05
        waiting = {k: q["depth"] + q["pending"] for k, q in status["queues"].items()}
        assert waiting == {"distress": 0, "urgency": 1, "safety": 2, "routine": 0}
        assert [row["key"] for row in shown["downlink"]] == list(status["downlink"]) == list(status["queues"])
        for row in shown["downlink"]:
            queue, cells = status["downlink"][row["key"]], row["cells"]
            assert (int(cells["depth"]["text"]), int(cells["pending"]["text"])) == (queue["depth"], queue["pending"])
        [link] = shown["links"]
        cells = link["cells"]
        assert (link["key"], cells["state"]["text"], cells["paused"]["text"]) == ("fast", "paused", "yes")

    async def test_an_sos_held_by_a_paused_link_shows_on_the_distress_board(
        self, settings: Settings, gateway: Gateway, base: str, page: Page
    ) -> None:
        """An SOS published while the only link is paused shows as one open distress message, as the API says."""
        assert await _post(base + "/api/v1/links/fast/pause") == 200
        answers = await _load(page, base)
        assert (await page.evaluate(_READ_PAGE))["distress"]["open"] == "0"
        terminal = await provision(settings, "T000042")
        client_id = f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}"
        async with MqttClient(url=settings.mqtt_url, client_id=client_id) as pub:
            sos = terminal.message(
                priority=Priority.DISTRESS, kind=Kind.SOS, text="sos", position=Position(12.5, -3.25)
            )
            await terminal.publish(pub, sos)
        await _until(page, "() => document.getElementById('distress-open').rows[0].dataset.key !== undefined")
        shown, status = await _shown_with_answer(page, answers)
        distress = status["queues"]["distress"]
        assert distress["depth"] + distress["pending"] == 1
        assert (int(shown["distress"]["depth"]), int(shown["distress"]["pending"])) == (
            distress["depth"],
            distress["pending"],
        )
        assert shown["distress"]["summary"].startswith("1 distress message(s) not yet sent")
        assert status["counters"]["accepted.distress"] == 1
        [entry] = shown["open"]
        cells = {k: v["text"] for k, v in entry["cells"].items()}
        assert entry["key"] == f"T000042:{sos.seq}"
        assert (cells["terminal"], cells["seq"], cells["body"]) == ("T000042", str(sos.seq), "sos")
        assert cells["position"] == "12.5, -3.25"
        assert float(cells["age_s"]) >= 0

    async def test_an_sos_that_reached_the_ground_shows_as_an_open_incident(
        self, settings: Settings, gateway: Gateway, base: str, page: Page
    ) -> None:
        """An SOS delivered over the link opens an incident, which the board lists with its state and position."""
        await _load(page, base)
        terminal = await provision(settings, "T000043")
        client_id = f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}"
        async with MqttClient(url=settings.mqtt_url, client_id=client_id) as pub:
            sos = terminal.message(
                priority=Priority.DISTRESS, kind=Kind.SOS, text="man overboard", position=Position(31.25, 121.5)
            )
            await terminal.publish(pub, sos)
        await _until(page, "() => document.getElementById('incidents').rows[0].dataset.key !== undefined")
        [entry] = (await page.evaluate(_READ_PAGE))["incidents"]
        cells = {k: v["text"] for k, v in entry["cells"].items()}
        [incident] = await _get_json(base + "/api/v1/incidents")
        assert entry["key"] == incident["id"] == f"T000043-{sos.seq}"
        assert (cells["terminal"], cells["state"], cells["nature"]) == ("T000043", "open", "man overboard")
        assert cells["position"] == "31.25, 121.5"
        assert int(cells["alerts"]) == len(incident["alerts"]) == 1

    async def test_throughput_and_rejections_equal_the_counters(
        self, settings: Settings, gateway: Gateway, base: str, page: Page
    ) -> None:
        """Accepted and delivered per class, their rates and each rejection reason on the page follow the counters."""
        answers = await _load(page, base)
        terminal = await provision(settings, "T000043")
        client_id = f"{settings.topic_prefix}-pub-{uuid.uuid4().hex[:6]}"
        async with MqttClient(url=settings.mqtt_url, client_id=client_id) as pub:
            for i in range(2):
                await terminal.publish(pub, terminal.message(text=f"m{i}"))
            await pub.publish(terminal.topics.up("T000043"), b"not a sealed message", qos=1)
        delivered = """() => Array.from(document.getElementById("throughput").rows)
          .some((tr) => tr.dataset.key === "routine" && tr.cells[3].textContent === "2")"""
        await _until(page, delivered)
        await _until(page, "() => document.getElementById('rejected').rows[0].dataset.key !== undefined")
        shown, status, previous = await _shown_with_answers(page, answers)
        assert previous is not None
        counters, elapsed = status["counters"], status["uptime_s"] - previous["uptime_s"]
        assert [row["key"] for row in shown["throughput"]] == ["distress", "urgency", "safety", "routine"]
        for row in shown["throughput"]:
            for kind in ("accepted", "delivered"):
                name = f"{kind}.{row['key']}"
                assert int(row["cells"][kind]["text"]) == counters.get(name, 0)
                rate = (counters.get(name, 0) - previous["counters"].get(name, 0)) / elapsed
                assert abs(float(row["cells"][f"{kind}_rate"]["text"]) - rate) <= 0.0051
        rejected = {row["key"]: int(row["cells"]["count"]["text"]) for row in shown["rejected"]}
        assert rejected == {k.removeprefix("rejected."): v for k, v in counters.items() if k.startswith("rejected.")}
        assert sum(rejected.values()) == 1
        assert counters["accepted.routine"] == 2


# What the charts show: the sample times and, per chart and class, the values drawn, as the page holds them.
_READ_CHARTS = """() => Object.fromEntries(["chart-depth", "chart-age", "chart-delivered"].map((id) => {
  const box = document.getElementById(id);
  const ats = box.dataset.ats ? box.dataset.ats.split(",").map(Number) : [];
  const series = Object.fromEntries(Array.from(box.querySelectorAll("polyline")).map((line) =>
    [line.dataset.class, line.dataset.values ? line.dataset.values.split(",") : []]));
  return [id, {ats, series}];
}))"""

# The timeline of one link as drawn: its stretch, every span with its data, the now marker.
_READ_TIMELINE = """(link) => {
  const box = document.querySelector(`svg.timeline[data-link="${link}"]`);
  if (!box) return null;
  return {
    start: Number(box.dataset.start), end: Number(box.dataset.end),
    now: Number(box.querySelector("line.k-now").dataset.at),
    spans: Array.from(box.querySelectorAll("rect.span")).map((r) =>
      ({kind: r.dataset.kind, start: Number(r.dataset.start), end: Number(r.dataset.end), label: r.dataset.label,
        title: r.querySelector("title").textContent})),
    summary: box.closest("figure").querySelector(".summary").textContent,
  };
}"""


def _drawn(sample: dict[str, Any], chart: str, cls: str) -> str:
    """How the page writes one sample's value of ``chart`` for class ``cls`` (JS String() of the number)."""
    q = sample["queues"][cls]
    if chart == "chart-depth":
        return str(q["depth"] + q["pending"])
    if chart == "chart-age":
        return "null" if q["oldest_age_s"] is None else _js_number(q["oldest_age_s"])
    rate = sample["delivered"].get(cls, 0) / sample["interval_s"] if sample["interval_s"] > 0 else 0
    return _js_number(rate)


def _js_number(value: float) -> str:
    """JS String(number): integers without a fraction, others as the shortest repr (like Python's)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@needs_browser
class TestHistoryAndTimeline:
    async def test_charts_start_with_the_servers_history_and_keep_following_it(
        self, sky: Gateway, sky_base: str, page: Page
    ) -> None:
        """A page opened now charts the samples the gateway took before, each value as the API gives it, then adds
        the new ones as they come."""
        for link in ("fast", "leo", "geo"):
            assert await _post(f"{sky_base}/api/v1/links/{link}/pause") == 200
        await sky.queue.enqueue([_accepted("T8", 1, Priority.SAFETY), _accepted("T8", 2, Priority.SAFETY)])

        async def three_full_samples() -> list[dict[str, Any]] | None:
            samples: list[dict[str, Any]] = (await _get_json(sky_base + "/api/v1/history"))["samples"]
            full = [s for s in samples if s["queues"]["safety"]["depth"] + s["queues"]["safety"]["pending"] == 2]
            return samples if len(full) >= 3 else None

        before = await until(three_full_samples, timeout=10, what="three samples with both safety messages")
        opened = time.time()
        await _load(page, sky_base)
        charts = await page.evaluate(_READ_CHARTS)
        ats = charts["chart-depth"]["ats"]
        assert [s["at"] for s in before] == ats[: len(before)]  # the whole history at once, older than the page
        assert ats[0] < opened
        for name, chart in charts.items():
            assert chart["ats"] == ats
            for cls in CLASSES:
                assert chart["series"][cls][: len(before)] == [_drawn(sample, name, cls) for sample in before]
        assert charts["chart-depth"]["series"]["safety"][len(before) - 1] == "2"
        await _until(page, "() => Number(document.body.dataset.polls) >= 3")
        later = await page.evaluate(_READ_CHARTS)
        answer = {sample["at"]: sample for sample in (await _get_json(sky_base + "/api/v1/history"))["samples"]}
        newer = later["chart-depth"]["ats"]
        assert newer[-1] > ats[-1]
        assert set(newer) <= set(answer)  # a two-minute window: nothing has aged out yet
        for name, chart in later.items():
            for cls in CLASSES:
                assert chart["series"][cls] == [_drawn(answer[at], name, cls) for at in newer]

    async def test_leo_passes_and_geo_outage_on_the_timeline_equal_the_api(
        self, sky_base: str, page: Page, outage: Window
    ) -> None:
        """The LEO link's pass bars are the API's pass windows (satellite, rise, set); the GEO link shows its
        scheduled outage; each has a now marker at the server's time."""
        opened = time.time()
        await _load(page, sky_base)
        await _until(page, "() => Number(document.body.dataset.timelines || 0) >= 1")
        drawn = await page.evaluate(_READ_TIMELINE, "leo")
        api = await _get_json(sky_base + "/api/v1/links/leo/timeline?hours=6")
        assert opened - 1.0 <= drawn["now"] <= api["now"]
        assert drawn["end"] == pytest.approx(drawn["now"] + 6 * 3600.0)
        # The two answers were computed a moment apart: compare the stretch both cover.
        common = (api["start"], drawn["end"])
        shown = [(s["label"], s["start"], s["end"]) for s in drawn["spans"] if s["kind"] == "pass"]
        served = [(s["label"], s["start"], s["end"]) for s in api["spans"] if s["kind"] == "pass"]
        assert len(served) >= 3
        assert [p for p in shown if p[2] > common[0]] == [p for p in served if p[1] < common[1]]
        first = next(s for s in drawn["spans"] if s["kind"] == "pass")
        assert first["title"].startswith(f"{first['label']} pass ")
        assert "peak" in first["title"]
        assert "Next pass: " in drawn["summary"] or " in view until " in drawn["summary"]
        geo = await page.evaluate(_READ_TIMELINE, "geo")
        outages = [(s["start"], s["end"], s["label"]) for s in geo["spans"] if s["kind"] == "outage"]
        assert outages == [(outage.start, outage.end, "scheduled")]
        assert [s["kind"] for s in geo["spans"]].count("in_view") == 1

    async def test_terminals_online_shows_only_when_the_status_has_it(self, base: str, page: Page) -> None:
        """Without a terminals field in the status the line stays hidden; with one it shows online of registered."""
        answers = await _load(page, base)
        status = await answers[-1].json()
        shown = await page.evaluate(_READ_PAGE)
        if "terminals" in status:  # the status of this version may carry terminal numbers, or not
            t = status["terminals"]
            minutes = round(t["online_window_s"] / 60)
            assert shown["terminals"] == f"{t['online']} of {t['registered']} registered (heard within {minutes} min)"
        else:
            assert shown["terminals"] is None
        given = {"registered": 5, "online": 2, "seen": 3, "online_window_s": 900.0}
        for terminals, text in ((given, "2 of 5 registered (heard within 15 min)"), ({"online": 1}, "1")):
            await page.evaluate("(t) => drawTerminals({terminals: t})", terminals)
            assert (await page.evaluate(_READ_PAGE))["terminals"] == text
        await page.evaluate("() => drawTerminals({})")
        assert (await page.evaluate(_READ_PAGE))["terminals"] is None
