"""CAP 1.2 properties: what build_alert writes passes the OASIS XSD and parses back equal; parsing raises only CapError.

Also: whatever parse_alert accepts can be written again (XSD-valid), the point-in-area
answer does not change when a whole scene is turned round the Earth's axis (so crossing
the antimeridian changes nothing), the bounding circle holds every point inside, and the
downlink text always fits its budget as a shortened prefix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any, TypeVar

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocols import cap_geo
from protocols.cap import (
    Alert,
    Area,
    CapError,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    Reference,
    ResponseType,
    Ring,
    Scope,
    Severity,
    Status,
    Urgency,
    build_alert,
    check_alert,
    downlink_text,
    parse_alert,
)
from protocols.cap_geo import PreparedRing, distance_km, winds_round_pole
from protocols.cap_text import cut_points, fit_text
from tests.unit.test_cap import EARTHQUAKE, NOW, assert_schema_valid

SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T = TypeVar("T")
XML_ILLEGAL = "".join(chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])
REDIS_EARTH_RADIUS_KM = 6372.7976
OPTIONAL_TEXTS = ["sender_name", "headline", "description", "instruction", "web", "contact"]


def tuples(elements: st.SearchStrategy[T], max_size: int = 3, min_size: int = 0) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, min_size=min_size, max_size=max_size).map(tuple)


def optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


# --- alerts build_alert must write (any XML text, aware whole-second times, finite numbers) ---

xml_chars = st.characters(exclude_categories=["Cs"], exclude_characters=XML_ILLEGAL)
texts = st.text(xml_chars, max_size=10)
tokens = st.text(xml_chars.filter(lambda c: not c.isspace() and c != ","), min_size=1, max_size=8)
list_items = st.text(xml_chars.filter(lambda c: c != '"'), min_size=1, max_size=8)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
times = st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=offsets).map(
    lambda value: value.replace(microsecond=0)
)
lats = st.floats(-90, 90)
lons = st.floats(-180, 180)
rings = st.lists(st.tuples(lats, lons), min_size=3, max_size=6).map(lambda points: (*points, points[0]))
areas = st.builds(
    Area,
    area_desc=texts,
    polygons=tuples(rings, 2),
    circles=tuples(st.builds(Circle, lats, lons, st.floats(1e-3, 1e4)), 2),
    geocodes=tuples(st.tuples(texts, texts), 2),
)
infos = st.builds(
    Info,
    categories=tuples(st.sampled_from(Category), min_size=1),
    event=texts,
    urgency=st.sampled_from(Urgency),
    severity=st.sampled_from(Severity),
    certainty=st.sampled_from(Certainty),
    language=st.from_regex(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,2}", fullmatch=True),
    response_types=tuples(st.sampled_from(ResponseType)),
    expires=optional(times),
    **{name: optional(texts) for name in OPTIONAL_TEXTS},
    parameters=tuples(st.tuples(texts, texts)),
    areas=tuples(areas, 2),
)
alerts = st.builds(
    Alert,
    identifier=texts,
    sender=texts,
    sent=times,
    status=st.sampled_from(Status),
    msg_type=st.sampled_from(MsgType),
    scope=st.sampled_from(Scope),
    restriction=optional(texts),
    addresses=tuples(list_items),
    note=optional(texts),
    references=tuples(st.builds(Reference, tokens, tokens, times), 2),
    incidents=tuples(list_items),
    infos=tuples(infos, 2),
)

# --- one field set to anything at all, typed or not: build_alert writes valid CAP or raises CapError ---

raw_texts = st.text(max_size=6)
raw_codes = st.text(max_size=4) | st.sampled_from(["Actual", "Geo", "None", "Public", "Immediate"])
raw_times = st.datetimes(
    timezones=st.none() | st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59)).map(timezone)
)
raw_numbers = st.floats() | st.integers(-1000, 1000)
WILD: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "alert": {
        **dict.fromkeys(["identifier", "sender", "restriction", "note"], raw_texts),
        **dict.fromkeys(["status", "msg_type", "scope"], raw_codes),
        "sent": raw_times,
        "addresses": tuples(raw_texts),
        "incidents": tuples(raw_texts),
        "references": tuples(st.builds(Reference, raw_texts, raw_texts, raw_times)),
    },
    "info": {
        **dict.fromkeys(["event", "language", *OPTIONAL_TEXTS], raw_texts),
        **dict.fromkeys(["urgency", "severity", "certainty"], raw_codes),
        "categories": tuples(raw_codes),
        "response_types": tuples(raw_codes),
        "expires": raw_times,
        "parameters": tuples(st.tuples(raw_texts, raw_texts)),
    },
    "area": {
        "area_desc": raw_texts,
        "polygons": tuples(tuples(st.tuples(raw_numbers, raw_numbers), 5), 2),
        "circles": tuples(st.builds(Circle, raw_numbers, raw_numbers, raw_numbers)),
        "geocodes": tuples(st.tuples(raw_texts, raw_texts)),
    },
}
WILD_FIELDS = [(level, name) for level, fields in WILD.items() for name in fields]


def with_wild_field(alert: Alert, data: st.DataObject) -> Alert:
    """``alert`` with one field of the alert, of its first info or of that info's first area drawn from WILD."""
    level, name = data.draw(st.sampled_from(WILD_FIELDS), label="field")
    value = data.draw(WILD[level][name], label=name)
    if level == "alert":
        return dataclasses.replace(alert, **{name: value})
    first = alert.infos[0] if alert.infos else data.draw(infos)
    if level == "area":
        area = first.areas[0] if first.areas else Area(area_desc="")
        first = dataclasses.replace(first, areas=(dataclasses.replace(area, **{name: value}), *first.areas[1:]))
    else:
        first = dataclasses.replace(first, **{name: value})
    return dataclasses.replace(alert, infos=(first, *alert.infos[1:]))


def parses_or_refuses(data: bytes) -> Alert | None:
    """``parse_alert(data)``, or None if it raised CapError; any other exception fails, naming the input."""
    try:
        return parse_alert(data)
    except CapError:
        return None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped for {data[:300]!r}") from exc


def rewrite_accepted(parsed: Alert) -> None:
    """An accepted alert can be written again as XSD-valid CAP that parses back equal, and checking it is safe."""
    xml = build_alert(parsed)
    assert_schema_valid(xml)
    assert parse_alert(xml) == parsed
    with contextlib.suppress(CapError):
        check_alert(parsed, now=NOW)


class TestBuildProperties:
    @SOME
    @given(alerts)
    def test_every_alert_validates_and_round_trips(self, alert: Alert) -> None:
        """Any alert of XML text, aware whole-second times and finite numbers is written XSD-valid, reads back equal."""
        xml = build_alert(alert)
        assert_schema_valid(xml)
        assert parse_alert(xml) == alert

    @SOME
    @given(alerts, st.data())
    def test_anything_is_written_valid_or_refused(self, tame: Alert, data: st.DataObject) -> None:
        """With any value at all in one field, build_alert raises CapError or writes XSD-valid CAP that reads back."""
        alert = with_wild_field(tame, data)
        try:
            xml = build_alert(alert)
        except CapError:
            return
        assert_schema_valid(xml)
        assert parse_alert(xml) == alert


def mutate_tree(xml: bytes, rng: random.Random) -> bytes:
    """``xml`` with one to three structural edits: an element dropped, doubled, renamed, emptied or given new text."""
    root = ET.fromstring(xml)
    for _ in range(rng.randint(1, 3)):
        parents = [(parent, child) for parent in root.iter() for child in parent]
        if not parents:
            break
        parent, child = rng.choice(parents)
        edit = rng.choice(["drop", "double", "rename", "text", "text", "empty"])
        if edit == "drop":
            parent.remove(child)
        elif edit == "double":
            parent.append(child)
        elif edit == "rename":
            child.tag = child.tag.rpartition("}")[0] + "}" + rng.choice(["info", "area", "circle", "value", "x"])
        elif edit == "text":
            child.text = rng.choice(["", " ", "Actual", "0,0 1,1", "1,2 3", "2026-01-01T00:00:00-00:00", "é", "a b"])
        else:
            child.text, child[:] = None, []
    return ET.tostring(root)


class TestParseProperties:
    @SOME
    @given(st.binary(max_size=400))
    def test_random_bytes(self, data: bytes) -> None:
        """Random bytes give CapError and nothing else."""
        assert parses_or_refuses(data) is None

    @SOME
    @given(alerts, st.integers(0, 2**32))
    def test_mutated_alerts_raise_only_cap_error(self, alert: Alert, seed: int) -> None:
        """Structurally mutated alerts give CapError or an alert that can be written again, XSD-valid."""
        rng = random.Random(seed)
        for xml in (build_alert(alert), EARTHQUAKE):
            parsed = parses_or_refuses(mutate_tree(xml, rng))
            if parsed is not None:
                rewrite_accepted(parsed)

    @SOME
    @given(st.integers(0, 2**32))
    def test_byte_mutations(self, seed: int) -> None:
        """Bytes flipped, inserted or cut in a real alert give CapError or an alert that can be written again."""
        rng = random.Random(seed)
        data = bytearray(EARTHQUAKE)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            edit = rng.choice(["flip", "insert", "delete"])
            if edit == "flip":
                data[at] ^= 1 << rng.randrange(8)
            elif edit == "insert":
                data[at:at] = rng.choice([b"<", b"&", b"&amp;", b"]]>", b"\x00", b"\xe4\xb8", b" ", b",", b'"'])
            else:
                del data[at : at + rng.randint(1, 6)]
        parsed = parses_or_refuses(bytes(data))
        if parsed is not None:
            rewrite_accepted(parsed)


GRID = st.integers(-80, 80).map(lambda quarters: quarters / 4)
"""Coordinates on a quarter-degree grid, so edges and points never sit a rounding error apart."""


def scene(shift: float) -> Callable[[float, float], tuple[float, float]]:
    """A map that turns a point ``shift`` degrees east, wrapped into -180..180."""
    return lambda lat, lon: (lat, (lon + shift + 180.0) % 360.0 - 180.0)


class TestGeometryProperties:
    @SOME
    @given(st.lists(st.tuples(GRID, GRID), min_size=3, max_size=7), st.tuples(GRID, GRID), st.integers(-180, 180))
    def test_turning_the_scene_round_the_axis_changes_nothing(
        self, vertices: list[tuple[float, float]], point: tuple[float, float], shift: int
    ) -> None:
        """A point is inside a polygon exactly when it still is after both are turned by the same longitude."""
        turn = scene(float(shift))
        ring = (*vertices, vertices[0])
        turned = tuple(turn(*vertex) for vertex in ring)
        before = Area(area_desc="", polygons=(ring,)).contains(*point)
        assert Area(area_desc="", polygons=(turned,)).contains(*turn(*point)) is before

    @SOME
    @given(st.lists(st.tuples(GRID, GRID), min_size=3, max_size=400), st.lists(st.tuples(GRID, GRID), max_size=20))
    def test_latitude_bands_answer_as_every_edge_does(
        self, vertices: list[tuple[float, float]], points: list[tuple[float, float]]
    ) -> None:
        """A PreparedRing, which reads one latitude band of edges, answers as ray casting over every edge does."""
        ring = (*vertices, vertices[0])
        prepared = PreparedRing(ring)
        every_edge = list(pairwise(cap_geo._unwrap(ring)))
        for lat, lon in [*points, *vertices]:
            expected = any(cap_geo._in_plane(every_edge, lat, lon + turn) for turn in (-720, -360, 0, 360, 720))
            assert prepared.contains(lat, lon) is expected, (lat, lon)

    @SOME
    @given(tuples(tuples(st.tuples(raw_numbers, raw_numbers), 6), 2), raw_numbers, raw_numbers)
    def test_any_numbers_give_an_answer(self, polygons: tuple[Ring, ...], lat: float, lon: float) -> None:
        """Area.contains and bounding_circle answer for any coordinates at all (NaN, infinite, huge), never raise."""
        area = Area(area_desc="", polygons=polygons, circles=(Circle(lat, lon, lon),))
        assert isinstance(area.contains(lat, lon), bool)
        area.bounding_circle()

    @SOME
    @given(
        st.lists(st.tuples(lats, lons), min_size=3, max_size=6),
        tuples(st.builds(Circle, lats, lons, st.floats(1e-3, 3000)), 2),
        st.tuples(lats, lons),
    )
    def test_bounding_circle_holds_every_point_inside(
        self, vertices: list[tuple[float, float]], circles: tuple[Circle, ...], point: tuple[float, float]
    ) -> None:
        """Every point an area contains lies in its bounding circle, measured on Redis's larger Earth too."""
        ring = (*vertices, vertices[0])
        assume(not winds_round_pole(ring))  # check_alert refuses those: they have no inside
        area = Area(area_desc="", polygons=(ring,), circles=circles)
        for lat, lon in [point, *vertices, *((c.lat, c.lon) for c in circles)]:
            if area.contains(lat, lon):
                centre_lat, centre_lon, radius = area.bounding_circle() or (0.0, 0.0, -1.0)
                reach = distance_km(centre_lat, centre_lon, lat, lon)
                assert reach * REDIS_EARTH_RADIUS_KM / 6371.0088 <= radius


ENCODINGS = st.sampled_from(["utf-8", "utf-16", "gb18030", "ascii", "gb2312", "latin-1"])
mixed_text = st.text(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(["\u0301", "\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1e8", "\r", "\n", " ", "北", "🛰"]),
    max_size=40,
)


class TestTextProperties:
    @SOME
    @given(mixed_text, st.integers(0, 80), ENCODINGS)
    def test_fit_text_fits_as_a_prefix_at_a_cluster_boundary(self, text: str, budget: int, encoding: str) -> None:
        """The result encodes within the budget and is the whole text, or a cluster-bounded prefix plus the marker."""
        text = text.encode(encoding, "replace").decode(encoding)
        marker = "..."
        fitted = fit_text(text, budget, encoding, marker)
        assert len(fitted.encode(encoding)) <= max(budget, len("".encode(encoding)))  # utf-16 always has its BOM
        if fitted != text and fitted:
            kept = fitted.removesuffix(marker)
            assert fitted.endswith(marker)
            assert text.startswith(kept)
            assert any(text[:point].rstrip() == kept for point in cut_points(text))

    @SOME
    @given(mixed_text, mixed_text, optional(mixed_text), st.integers(0, 120), ENCODINGS)
    def test_downlink_text_always_fits(
        self, headline: str, event: str, instruction: str | None, budget: int, encoding: str
    ) -> None:
        """downlink_text always encodes within the budget and shortens the full text only by cutting its end."""
        info = Info(
            categories=(Category.MET,),
            event=event,
            urgency=Urgency.FUTURE,
            severity=Severity.MINOR,
            certainty=Certainty.POSSIBLE,
            headline=headline,
            instruction=instruction,
        )
        alert = Alert(
            identifier="i", sender="s", sent=NOW, status=Status.TEST, msg_type=MsgType.ALERT, scope=Scope.PUBLIC,
            infos=(info,),
        )  # fmt: skip
        text = downlink_text(alert, budget, encoding)
        full = downlink_text(alert, 10**6, encoding)
        assert len(text.encode(encoding)) <= max(budget, len("".encode(encoding)))
        assert text == full or full.startswith(text.removesuffix("…").removesuffix("..."))
