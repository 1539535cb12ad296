"""OASIS CAP 1.2 alerts: build, parse and check them, find who is inside, and say it in a few bytes.

- :func:`build_alert` writes an :class:`Alert` as CAP 1.2 XML that the official OASIS
  schema accepts, or raises :class:`CapError` for what XML or the schema cannot carry
  (a naive or fractional-second time, a control character, an address with a quote...).
- :func:`parse_alert` reads CAP 1.2 XML from outside, safely (no DTD, entities or external
  references, at most :data:`MAX_ALERT_BYTES`); whatever the input, it raises only
  :class:`CapError`.
- :func:`check_alert` applies the rules of the CAP 1.2 spec that its schema does not
  (closed polygons, coordinate ranges, scope needs, references, expiry).
- :meth:`Area.contains` and :meth:`Area.bounding_circle` place terminals in an area;
  :func:`sos_alert` makes the alert for a terminal's SOS; :func:`downlink_text` turns
  an alert into text for a narrow downlink.

Elements of CAP 1.2 that satgw does not use (source, code, audience, eventCode,
effective, onset, resource, altitude, ceiling, signatures) are accepted and dropped
on parsing, never written. ``protocols/SPEC.md`` ("CAP 1.2") has the rules in full.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree
from defusedxml.common import DefusedXmlException

from protocols import cap_geo, cap_text

__all__ = [
    "CAP_NAMESPACE",
    "DEFAULT_SOS_RADIUS_KM",
    "MAX_ALERT_BYTES",
    "Alert",
    "Area",
    "CapError",
    "CapReason",
    "Category",
    "Certainty",
    "Circle",
    "Info",
    "MsgType",
    "Reference",
    "ResponseType",
    "Scope",
    "Severity",
    "Status",
    "Urgency",
    "build_alert",
    "check_alert",
    "downlink_text",
    "parse_alert",
    "sos_alert",
]

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_ALERT_BYTES = 256 * 1024
"""Largest CAP document :func:`parse_alert` reads; real alerts with many polygons stay well under 100 KiB."""
DEFAULT_SOS_RADIUS_KM = 1.0
"""Radius of an SOS area when the fix gives no accuracy."""
MAX_UTC_OFFSET = timedelta(hours=14)
"""XML Schema allows time-zone offsets up to +-14:00."""

_OLD_NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.1": "CAP 1.1",
    "http://www.incident.com/cap/1.0": "CAP 1.0",
}
_DSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"


class CapReason(enum.StrEnum):
    """Why an alert was refused; the values appear in API answers, logs and metrics."""

    TOO_LARGE = "too_large"
    MALFORMED_XML = "malformed_xml"
    XML_FORBIDDEN = "xml_forbidden"
    NOT_CAP = "not_cap"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_AREA = "invalid_area"
    EXPIRED = "expired"


class CapError(ValueError):
    """An alert that cannot be built, parsed or accepted; ``detail`` names the field."""

    def __init__(self, reason: CapReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class Status(enum.StrEnum):
    """``status``: how the alert is meant to be handled."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(enum.StrEnum):
    """``msgType``: what the alert does to earlier ones."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(enum.StrEnum):
    """``scope``: who may see the alert."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(enum.StrEnum):
    """``category`` of an info block."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(enum.StrEnum):
    """``responseType``: what the audience should do."""

    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(enum.StrEnum):
    """``urgency``: when to act."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(enum.StrEnum):
    """``severity``: how bad it is."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(enum.StrEnum):
    """``certainty``: how sure the sender is."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class Reference(NamedTuple):
    """An earlier alert, named as CAP ``references`` name it."""

    sender: str
    identifier: str
    sent: datetime


class Circle(NamedTuple):
    """A CAP ``circle``: centre in WGS-84 degrees and radius in kilometres."""

    lat: float
    lon: float
    radius_km: float


Ring = tuple[tuple[float, float], ...]
"""A polygon: ``(lat, lon)`` vertices, the first repeated at the end."""
Pair = tuple[str, str]
"""A CAP ``valueName`` and ``value`` (parameter, geocode)."""


@dataclass(frozen=True, kw_only=True)
class Area:
    """A CAP ``area``: a description and the polygons, circles and geocodes that make it up."""

    area_desc: str
    polygons: tuple[Ring, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[Pair, ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        """True if the point is in one of the polygons or circles (edges count; geocodes are not looked up).

        Meaningful for an area that :func:`check_alert` accepted; see :mod:`protocols.cap_geo`
        for the geometry (lat/lon-straight edges, antimeridian handled).
        """
        return any(ring.contains(lat, lon) for ring in self._rings) or any(
            cap_geo.in_circle(c.lat, c.lon, c.radius_km, lat, lon) for c in self.circles
        )

    @functools.cached_property
    def _rings(self) -> tuple[cap_geo.PreparedRing, ...]:
        # Prepared on the first test and kept: the gateway tests many terminals against one area.
        return tuple(cap_geo.PreparedRing(ring) for ring in self.polygons if ring)

    def bounding_circle(self) -> tuple[float, float, float] | None:
        """``(lat, lon, radius_km)`` enclosing every polygon and circle, for a geo-index prefilter; None if none."""
        return cap_geo.bounding_circle(self.polygons, self.circles)


@dataclass(frozen=True, kw_only=True)
class Info:
    """A CAP ``info`` block: the event and what to do about it, in one language."""

    categories: tuple[Category, ...]
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    language: str = "en-US"
    response_types: tuple[ResponseType, ...] = ()
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[Pair, ...] = ()
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Alert:
    """A CAP 1.2 ``alert``. Times are timezone-aware and whole seconds."""

    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    scope: Scope
    restriction: str | None = None
    addresses: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[Reference, ...] = ()
    incidents: tuple[str, ...] = ()
    infos: tuple[Info, ...] = ()


# --- writing -------------------------------------------------------------------------------

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_SPACE_OR_COMMA = re.compile(r"[\s,]")
_SPACE = re.compile(r"\s")
_E = TypeVar("_E", bound=enum.StrEnum)


def build_alert(alert: Alert) -> bytes:
    """The alert as UTF-8 CAP 1.2 XML, elements in the schema's order; CapError if it cannot be written."""
    body = "".join(_alert_parts(alert))
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{CAP_NAMESPACE}">{body}</alert>\n'.encode()


def _escape(text: str) -> str:
    # A literal CR would come back as LF from any XML parser, so it is written as a character reference.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _leaf(name: str, text: str, path: str) -> str:
    bad = _XML_ILLEGAL.search(text)
    if bad:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: U+{ord(bad.group()):04X} cannot appear in XML")
    return f"<{name}>{_escape(text)}</{name}>"


def _optional(name: str, text: str | None, path: str) -> list[str]:
    return [] if text is None else [_leaf(name, text, path)]


def _code(kind: type[_E], value: str, path: str) -> str:
    try:
        return kind(value).value
    except ValueError:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not a {kind.__name__}: {value!r:.40}") from None


def _coded(name: str, kind: type[_E], value: str, parent: str) -> str:
    """The element ``name`` holding ``value`` as a code of ``kind`` (codes need no XML checks)."""
    return f"<{name}>{_code(kind, value, f'{parent}.{name}')}</{name}>"


def _format_time(value: datetime, path: str) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: a naive time; CAP times need a UTC offset")
    if value.microsecond:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: fractional seconds; CAP 1.2 times are whole seconds")
    if offset % timedelta(minutes=1) or abs(offset) > MAX_UTC_OFFSET:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: UTC offset must be whole minutes within +-14:00")
    _check_utc_range(value, path)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes > 0 else "-"  # CAP 1.2 writes UTC as -00:00
    hours, minutes = divmod(abs(minutes), 60)
    date = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return f"{date}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}{sign}{hours:02d}:{minutes:02d}"


def _check_utc_range(value: datetime, path: str) -> None:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: beyond the years 1-9999 in UTC") from None


def _format_number(value: float, path: str) -> str:
    if not math.isfinite(value):
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not a finite number")
    return format(Decimal(repr(float(value))), "f")  # shortest exact digits, never an exponent


def _format_list(items: Sequence[str], path: str) -> str | None:
    """CAP's space-separated list (addresses, incidents); items with spaces are double-quoted."""
    for item in items:
        if not item or '"' in item:
            raise CapError(CapReason.INVALID_FIELD, f"{path}: an item is empty or holds a double quote")
    return " ".join(f'"{item}"' if _SPACE.search(item) else item for item in items) if items else None


def _format_references(references: Sequence[Reference], path: str) -> str | None:
    out = []
    for sender, identifier, sent in references:
        if not sender or not identifier or _SPACE_OR_COMMA.search(sender + identifier):
            raise CapError(CapReason.INVALID_FIELD, f"{path}: sender and identifier must be non-empty, no , or space")
        out.append(f"{sender},{identifier},{_format_time(sent, path)}")
    return " ".join(out) if out else None


def _alert_parts(alert: Alert) -> Iterable[str]:
    yield _leaf("identifier", alert.identifier, "alert.identifier")
    yield _leaf("sender", alert.sender, "alert.sender")
    yield _leaf("sent", _format_time(alert.sent, "alert.sent"), "alert.sent")
    yield _coded("status", Status, alert.status, "alert")
    yield _coded("msgType", MsgType, alert.msg_type, "alert")
    yield _coded("scope", Scope, alert.scope, "alert")
    yield from _optional("restriction", alert.restriction, "alert.restriction")
    yield from _optional("addresses", _format_list(alert.addresses, "alert.addresses"), "alert.addresses")
    yield from _optional("note", alert.note, "alert.note")
    yield from _optional("references", _format_references(alert.references, "alert.references"), "alert.references")
    yield from _optional("incidents", _format_list(alert.incidents, "alert.incidents"), "alert.incidents")
    for number, info in enumerate(alert.infos):
        yield f"<info>{''.join(_info_parts(info, f'alert.info[{number}]'))}</info>"


def _info_parts(info: Info, path: str) -> Iterable[str]:
    if not _LANGUAGE.fullmatch(info.language):
        raise CapError(CapReason.INVALID_FIELD, f"{path}.language: not a language tag: {info.language!r:.40}")
    yield _leaf("language", info.language, f"{path}.language")
    if not info.categories:
        raise CapError(CapReason.MISSING_FIELD, f"{path}.category")
    yield from (_coded("category", Category, category, path) for category in info.categories)
    yield _leaf("event", info.event, f"{path}.event")
    yield from (_coded("responseType", ResponseType, response, path) for response in info.response_types)
    yield _coded("urgency", Urgency, info.urgency, path)
    yield _coded("severity", Severity, info.severity, path)
    yield _coded("certainty", Certainty, info.certainty, path)
    expires = None if info.expires is None else _format_time(info.expires, f"{path}.expires")
    yield from _optional("expires", expires, f"{path}.expires")
    texts = {
        "senderName": info.sender_name,
        "headline": info.headline,
        "description": info.description,
        "instruction": info.instruction,
        "web": info.web,
        "contact": info.contact,
    }  # in the schema's order
    for name, text in texts.items():
        yield from _optional(name, text, f"{path}.{name}")
    yield from (_pair("parameter", pair, f"{path}.parameter[{n}]") for n, pair in enumerate(info.parameters))
    yield from (_area(area, f"{path}.area[{n}]") for n, area in enumerate(info.areas))


def _pair(name: str, pair: Pair, path: str) -> str:
    value_name, value = pair
    return f"<{name}>{_leaf('valueName', value_name, path)}{_leaf('value', value, path)}</{name}>"


def _area(area: Area, path: str) -> str:
    parts = [_leaf("areaDesc", area.area_desc, f"{path}.areaDesc")]
    for n, ring in enumerate(area.polygons):
        where = f"{path}.polygon[{n}]"
        parts.append(_leaf("polygon", " ".join(_format_point(point, where) for point in ring), where))
    for n, (lat, lon, radius) in enumerate(area.circles):
        where = f"{path}.circle[{n}]"
        parts.append(_leaf("circle", f"{_format_point((lat, lon), where)} {_format_number(radius, where)}", where))
    parts += (_pair("geocode", pair, f"{path}.geocode[{n}]") for n, pair in enumerate(area.geocodes))
    return f"<area>{''.join(parts)}</area>"


def _format_point(point: tuple[float, float], path: str) -> str:
    lat, lon = point
    return f"{_format_number(lat, path)},{_format_number(lon, path)}"


# --- reading -------------------------------------------------------------------------------

# Child elements in the schema's order (the split strings read like the XSD; ruff would list one per line).
_ALERT_FIELDS = frozenset(
    "identifier sender sent status msgType source scope restriction addresses code note references incidents "  # noqa: SIM905
    "info".split()
)
_INFO_FIELDS = frozenset(
    "language category event responseType urgency severity certainty audience eventCode effective onset "  # noqa: SIM905
    "expires senderName headline description instruction web contact parameter resource area".split()
)
_AREA_FIELDS = frozenset("areaDesc polygon circle geocode altitude ceiling".split())  # noqa: SIM905
_PAIR_FIELDS = frozenset({"valueName", "value"})
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[-+][0-9]{2}:[0-9]{2}")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_LIST_ITEM = re.compile(r'"([^"]+)"|([^\s"]+)|(\S)')


def parse_alert(data: bytes) -> Alert:
    """Read a CAP 1.2 alert; CapError (and nothing else) for anything that is not one.

    Surrounding whitespace is ignored in coded values, times and geometry, kept in free text.
    """
    fields = _Fields(_parse_root(data), "alert", _ALERT_FIELDS, signatures=True)
    return Alert(
        identifier=fields.required("identifier"),
        sender=fields.required("sender"),
        sent=_parse_time(fields.required("sent"), "alert.sent"),
        status=fields.code("status", Status),
        msg_type=fields.code("msgType", MsgType),
        scope=fields.code("scope", Scope),
        restriction=fields.text("restriction"),
        addresses=_parse_list(fields.text("addresses") or "", "alert.addresses"),
        note=fields.text("note"),
        references=_parse_references(fields.text("references") or "", "alert.references"),
        incidents=_parse_list(fields.text("incidents") or "", "alert.incidents"),
        infos=tuple(_read_info(info) for info in fields.nested("info", _INFO_FIELDS)),
    )


def _parse_root(data: bytes) -> Element:
    if len(data) > MAX_ALERT_BYTES:
        raise CapError(CapReason.TOO_LARGE, f"{len(data)} bytes, at most {MAX_ALERT_BYTES}")
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CapError(CapReason.XML_FORBIDDEN, type(exc).__name__) from None
    except (ParseError, ValueError, LookupError) as exc:  # the last two: a declared encoding expat cannot use
        raise CapError(CapReason.MALFORMED_XML, str(exc)[:120]) from None
    if root.tag != f"{{{CAP_NAMESPACE}}}alert":
        namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
        version = _OLD_NAMESPACES.get(namespace)
        detail = f"{version}; only CAP 1.2 is read" if version else f"root is {root.tag!r:.80}, not a CAP 1.2 alert"
        raise CapError(CapReason.NOT_CAP, detail)
    return root


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


class _Fields:
    """The CAP child elements of one element, by local name; ``path`` prefixes error details."""

    def __init__(self, element: Element, path: str, names: frozenset[str], *, signatures: bool = False) -> None:
        self.path = path
        self._found: dict[str, list[Element]] = {}
        if not _blank(element.text) or any(not _blank(child.tail) for child in element):
            raise CapError(CapReason.INVALID_FIELD, f"{path}: text between elements")
        for child in element:
            namespace, _, name = child.tag[1:].rpartition("}") if child.tag.startswith("{") else ("", "", child.tag)
            if signatures and namespace == _DSIG_NAMESPACE:
                continue
            if namespace != CAP_NAMESPACE or name not in names:
                raise CapError(CapReason.INVALID_FIELD, f"{path}: unexpected element {child.tag!r:.80}")
            self._found.setdefault(name, []).append(child)

    def _leaves(self, name: str) -> list[str]:
        texts = []
        for element in self._found.get(name, []):
            if len(element):
                raise CapError(CapReason.INVALID_FIELD, f"{self.path}.{name}: holds elements, not text")
            texts.append(element.text or "")
        return texts

    def text(self, name: str) -> str | None:
        """The text of the element ``name``, None if absent; CapError if it appears twice."""
        texts = self._leaves(name)
        if len(texts) > 1:
            raise CapError(CapReason.INVALID_FIELD, f"{self.path}.{name}: appears {len(texts)} times, once allowed")
        return texts[0] if texts else None

    def texts(self, name: str) -> list[str]:
        """The texts of every element ``name``."""
        return self._leaves(name)

    def required(self, name: str) -> str:
        """The text of the element ``name``; CapError ``missing_field`` if absent."""
        text = self.text(name)
        if text is None:
            raise CapError(CapReason.MISSING_FIELD, f"{self.path}.{name}")
        return text

    def code(self, name: str, kind: type[_E]) -> _E:
        """The required coded value ``name`` as a member of ``kind``."""
        return _parse_code(kind, self.required(name), f"{self.path}.{name}")

    def nested(self, name: str, names: frozenset[str]) -> list[_Fields]:
        """The fields of every element ``name``, which holds elements among ``names``."""
        found = self._found.get(name, [])
        return [_Fields(element, f"{self.path}.{name}[{n}]", names) for n, element in enumerate(found)]

    def pairs(self, name: str) -> tuple[Pair, ...]:
        """Every ``name`` element as (valueName, value)."""
        return tuple((pair.required("valueName"), pair.required("value")) for pair in self.nested(name, _PAIR_FIELDS))


def _parse_code(kind: type[_E], text: str, path: str) -> _E:
    try:
        return kind(text.strip())
    except ValueError:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not a {kind.__name__}: {text!r:.40}") from None


def _parse_time(text: str, path: str) -> datetime:
    text = text.strip()
    if not _TIME.fullmatch(text):
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not YYYY-MM-DDThh:mm:ss+hh:mm: {text!r:.40}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: no such time: {text!r}") from None
    offset = value.utcoffset()
    if offset is None or abs(offset) > MAX_UTC_OFFSET:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: UTC offset beyond +-14:00")
    _check_utc_range(value, path)
    return value


def _parse_number(text: str, path: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not a decimal number: {text!r:.40}")
    value = float(text)
    if not math.isfinite(value):
        raise CapError(CapReason.INVALID_FIELD, f"{path}: number out of range")
    return value


def _parse_point(text: str, path: str) -> tuple[float, float]:
    lat, comma, lon = text.partition(",")
    if not comma:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not lat,lon: {text!r:.40}")
    return _parse_number(lat, path), _parse_number(lon, path)


def _parse_polygon(text: str, path: str) -> Ring:
    return tuple(_parse_point(pair, path) for pair in text.split())


def _parse_circle(text: str, path: str) -> Circle:
    parts = text.split()
    if len(parts) != 2:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not 'lat,lon radius': {text!r:.40}")
    lat, lon = _parse_point(parts[0], path)
    return Circle(lat, lon, _parse_number(parts[1], path))


def _parse_list(text: str, path: str) -> tuple[str, ...]:
    items = []
    for match in _LIST_ITEM.finditer(text):
        quoted, bare, stray = match.groups()
        if stray is not None:
            raise CapError(CapReason.INVALID_FIELD, f"{path}: unbalanced or empty double quotes")
        items.append(quoted if quoted is not None else bare)
    return tuple(items)


def _parse_references(text: str, path: str) -> tuple[Reference, ...]:
    references = []
    for item in text.split():
        parts = item.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise CapError(CapReason.INVALID_FIELD, f"{path}: not sender,identifier,sent: {item!r:.80}")
        references.append(Reference(parts[0], parts[1], _parse_time(parts[2], path)))
    return tuple(references)


def _read_info(fields: _Fields) -> Info:
    expires = fields.text("expires")
    language = fields.text("language") or ""
    categories = tuple(_parse_code(Category, c, f"{fields.path}.category") for c in fields.texts("category"))
    if not categories:
        raise CapError(CapReason.MISSING_FIELD, f"{fields.path}.category")
    return Info(
        language=_parse_language(language, f"{fields.path}.language") if language.strip() else "en-US",
        categories=categories,
        event=fields.required("event"),
        response_types=tuple(
            _parse_code(ResponseType, r, f"{fields.path}.responseType") for r in fields.texts("responseType")
        ),
        urgency=fields.code("urgency", Urgency),
        severity=fields.code("severity", Severity),
        certainty=fields.code("certainty", Certainty),
        expires=None if expires is None else _parse_time(expires, f"{fields.path}.expires"),
        sender_name=fields.text("senderName"),
        headline=fields.text("headline"),
        description=fields.text("description"),
        instruction=fields.text("instruction"),
        web=fields.text("web"),
        contact=fields.text("contact"),
        parameters=fields.pairs("parameter"),
        areas=tuple(_read_area(area) for area in fields.nested("area", _AREA_FIELDS)),
    )


def _parse_language(text: str, path: str) -> str:
    text = text.strip()  # xs:language collapses whitespace
    if not _LANGUAGE.fullmatch(text):
        raise CapError(CapReason.INVALID_FIELD, f"{path}: not a language tag: {text!r:.40}")
    return text


def _read_area(fields: _Fields) -> Area:
    polygons = fields.texts("polygon")
    circles = fields.texts("circle")
    return Area(
        area_desc=fields.required("areaDesc"),
        polygons=tuple(_parse_polygon(text, f"{fields.path}.polygon[{n}]") for n, text in enumerate(polygons)),
        circles=tuple(_parse_circle(text, f"{fields.path}.circle[{n}]") for n, text in enumerate(circles)),
        geocodes=fields.pairs("geocode"),
    )


# --- checking ------------------------------------------------------------------------------

_NEEDS_REFERENCES = frozenset({MsgType.UPDATE, MsgType.CANCEL, MsgType.ACK, MsgType.ERROR})
_NOT_IN_ID = re.compile(r"[\s,<&]")


def check_alert(alert: Alert, *, now: datetime) -> None:
    """Raise CapError for a CAP 1.2 rule the schema does not check; ``now`` (aware) judges expiry."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    for name, value in [("identifier", alert.identifier), ("sender", alert.sender)]:
        if not value or _NOT_IN_ID.search(value):
            raise CapError(CapReason.INVALID_FIELD, f"alert.{name}: must be non-empty, without spaces , < or &")
    _check_aware(alert.sent, "alert.sent")
    _check_scope(alert)
    _check_references(alert)
    for number, info in enumerate(alert.infos):
        _check_info(info, f"alert.info[{number}]", now)


def _check_aware(value: datetime, path: str) -> None:
    if value.utcoffset() is None:
        raise CapError(CapReason.INVALID_FIELD, f"{path}: a naive time; CAP times need a UTC offset")


def _check_scope(alert: Alert) -> None:
    if alert.scope == Scope.PRIVATE and not alert.addresses:
        raise CapError(CapReason.MISSING_FIELD, "alert.addresses: required when scope is Private")
    if alert.scope == Scope.RESTRICTED and not (alert.restriction or "").strip():
        raise CapError(CapReason.MISSING_FIELD, "alert.restriction: required when scope is Restricted")


def _check_references(alert: Alert) -> None:
    if alert.msg_type in _NEEDS_REFERENCES and not alert.references:
        raise CapError(CapReason.MISSING_FIELD, f"alert.references: required for msgType {alert.msg_type}")
    for sender, identifier, sent in alert.references:
        if not sender or not identifier or _NOT_IN_ID.search(sender + identifier):
            raise CapError(CapReason.INVALID_FIELD, "alert.references: sender and identifier must be non-empty")
        _check_aware(sent, "alert.references")


def _check_info(info: Info, path: str, now: datetime) -> None:
    if not info.categories:
        raise CapError(CapReason.MISSING_FIELD, f"{path}.category")
    if info.expires is not None:
        _check_aware(info.expires, f"{path}.expires")
        if info.expires <= now:
            raise CapError(CapReason.EXPIRED, f"{path}.expires: {info.expires.isoformat()} is not after now")
    for number, area in enumerate(info.areas):
        _check_area(area, f"{path}.area[{number}]")


def _check_area(area: Area, path: str) -> None:
    for number, ring in enumerate(area.polygons):
        where = f"{path}.polygon[{number}]"
        if len(ring) < 4:
            raise CapError(CapReason.INVALID_AREA, f"{where}: {len(ring)} points; a polygon needs at least 4")
        if ring[0] != ring[-1]:
            raise CapError(CapReason.INVALID_AREA, f"{where}: not closed (the first point must be repeated last)")
        for lat, lon in ring:
            _check_coordinates(lat, lon, where)
        if cap_geo.winds_round_pole(ring):
            raise CapError(CapReason.INVALID_AREA, f"{where}: winds round a pole; split it at the antimeridian")
    for number, (lat, lon, radius) in enumerate(area.circles):
        where = f"{path}.circle[{number}]"
        _check_coordinates(lat, lon, where)
        if not (math.isfinite(radius) and radius > 0):
            raise CapError(CapReason.INVALID_AREA, f"{where}: radius must be above 0 km")


def _check_coordinates(lat: float, lon: float, path: str) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CapError(CapReason.INVALID_AREA, f"{path}: {lat},{lon} is outside -90..90, -180..180")


# --- SOS and downlink text ---------------------------------------------------------------------

_SOS_HEADLINES = {
    MsgType.ALERT: "SOS from terminal {}",
    MsgType.UPDATE: "SOS update from terminal {}",
    MsgType.CANCEL: "SOS from terminal {} cancelled",
}


def sos_alert(
    *,
    identifier: str,
    sender: str,
    terminal: str,
    sent: datetime,
    msg_type: MsgType = MsgType.ALERT,
    references: Sequence[Reference] = (),
    position: tuple[float, float] | None = None,
    accuracy_m: float | None = None,
    text: str | None = None,
    incident: str | None = None,
    status: Status = Status.ACTUAL,
    scope: Scope = Scope.RESTRICTED,
    restriction: str | None = "search and rescue services only",
    addresses: Sequence[str] = (),
) -> Alert:
    """The CAP alert for an SOS from ``terminal``: Rescue, Immediate, Extreme, Observed.

    ``msg_type`` is Alert for the first report, Update for later ones (new position or
    text) and Cancel when the SOS ends; Update and Cancel name the earlier alerts in
    ``references``. ``incident`` ties them together. With a ``position`` the info has an
    area: a circle of the fix's accuracy (or :data:`DEFAULT_SOS_RADIUS_KM`). ``sent`` is
    cut to whole seconds. Scope defaults to Restricted: an SOS locates a person.
    """
    if msg_type not in _SOS_HEADLINES:
        raise ValueError(f"an SOS alert is an Alert, Update or Cancel, not {msg_type}")
    if msg_type != MsgType.ALERT and not references:
        raise ValueError(f"an SOS {msg_type} must reference the earlier alerts")
    if sent.utcoffset() is None:
        raise ValueError("sent must be timezone-aware")
    info = Info(
        categories=(Category.RESCUE,),
        event="SOS",
        response_types=(ResponseType.ALL_CLEAR,) if msg_type == MsgType.CANCEL else (),
        urgency=Urgency.IMMEDIATE,
        severity=Severity.EXTREME,
        certainty=Certainty.OBSERVED,
        headline=_SOS_HEADLINES[msg_type].format(terminal),
        description=text,
        parameters=(("terminal", terminal),),
        areas=() if position is None else (_sos_area(terminal, position, accuracy_m),),
    )
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=sent.replace(microsecond=0),
        status=status,
        msg_type=msg_type,
        scope=scope,
        restriction=restriction if scope == Scope.RESTRICTED else None,
        addresses=tuple(addresses),
        references=tuple(references),
        incidents=(incident,) if incident else (),
        infos=(info,),
    )


def _sos_area(terminal: str, position: tuple[float, float], accuracy_m: float | None) -> Area:
    radius_km = accuracy_m / 1000 if accuracy_m is not None and accuracy_m > 0 else DEFAULT_SOS_RADIUS_KM
    return Area(area_desc=f"Reported position of terminal {terminal}", circles=(Circle(*position, radius_km),))


def downlink_text(alert: Alert, max_bytes: int, encoding: str = "utf-8") -> str:
    """The first info's headline, event and instruction, one per line, fitted into ``max_bytes`` encoded bytes.

    Whitespace inside each part is collapsed, a part already contained in an earlier one
    is left out, and characters the encoding lacks become ``?``. If it is too long, the
    end is cut (so the headline survives longest) at a character-cluster boundary and
    "…" (or "..." where the encoding has no "…") marks the cut; see
    :func:`protocols.cap_text.fit_text`. An alert without info gives its note.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be at least 0, not {max_bytes}")
    candidates = [alert.note]
    if alert.infos:
        first = alert.infos[0]
        candidates = [first.headline, first.event, first.instruction]
    parts: list[str] = []
    for candidate in candidates:
        part = " ".join((candidate or "").split())
        if part and not any(part in kept for kept in parts):
            parts.append(part)
    text = "\n".join(parts).encode(encoding, "replace").decode(encoding)
    marker = "…" if "…".encode(encoding, "replace").decode(encoding) == "…" else "..."
    return cap_text.fit_text(text, max_bytes, encoding, marker)
