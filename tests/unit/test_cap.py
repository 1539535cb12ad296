"""CAP 1.2: built alerts pass the official OASIS XSD, bad input gets its own reason; geometry; downlink text."""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlschema

from protocols.cap import (
    CAP_NAMESPACE,
    DEFAULT_SOS_RADIUS_KM,
    MAX_ALERT_BYTES,
    Alert,
    Area,
    CapError,
    CapReason,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    Reference,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    build_alert,
    check_alert,
    downlink_text,
    parse_alert,
    sos_alert,
)
from protocols.cap_geo import distance_km
from protocols.cap_text import cut_points

DATA = Path(__file__).parent.parent / "data" / "cap"
SPEC = Path(__file__).resolve().parents[2] / "protocols" / "SPEC.md"
EARTHQUAKE = (DATA / "earthquake.xml").read_bytes()
SENT = datetime(2026, 8, 15, 6, 2, 37, tzinfo=UTC)
NOW = SENT + timedelta(minutes=5)
CST = timezone(timedelta(hours=8))
SQUARE = ((0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0), (0.0, 0.0))


@functools.cache
def schema() -> xmlschema.XMLSchema:
    """The official OASIS CAP 1.2 schema, loaded once."""
    return xmlschema.XMLSchema(str(DATA / "CAP-v1.2-schema.xsd"))


def assert_schema_valid(xml: bytes) -> None:
    """Fail with the schema's own message unless ``xml`` is a valid CAP 1.2 document."""
    schema().validate(xml.decode("utf-8"))


def info(**fields: object) -> Info:
    defaults: dict[str, object] = {
        "categories": (Category.MET,),
        "event": "Typhoon",
        "urgency": Urgency.EXPECTED,
        "severity": Severity.SEVERE,
        "certainty": Certainty.LIKELY,
    }
    return Info(**(defaults | fields))  # type: ignore[arg-type]


def alert(**fields: object) -> Alert:
    defaults: dict[str, object] = {
        "identifier": "cma-2026-0042",
        "sender": "cap@example.cn",
        "sent": SENT,
        "status": Status.ACTUAL,
        "msg_type": MsgType.ALERT,
        "scope": Scope.PUBLIC,
        "infos": (info(areas=(Area(area_desc="coast", polygons=(SQUARE,)),)),),
    }
    return Alert(**(defaults | fields))  # type: ignore[arg-type]


def full_alert() -> Alert:
    """An alert that uses every field the model has."""
    return alert(
        sent=datetime(2026, 8, 15, 14, 2, 37, tzinfo=CST),
        status=Status.EXERCISE,
        msg_type=MsgType.UPDATE,
        scope=Scope.PRIVATE,
        restriction="not used with Private, still carried",
        addresses=("ops@example.cn", "Harbour Master", "台风 办公室"),
        note="second update & <corrections>\r\nline two",
        references=(Reference("cap@example.cn", "cma-2026-0041", SENT - timedelta(hours=1)),),
        incidents=("TY-2026-07",),
        infos=(
            info(
                language="zh-CN",
                categories=(Category.MET, Category.SAFETY),
                response_types=(ResponseType.SHELTER, ResponseType.NONE),
                expires=datetime(2026, 8, 16, 5, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
                sender_name="气象台",
                headline="台风红色预警 🌀",
                description="]]> is fine in text",
                instruction="Stay indoors.",
                web="https://example.cn/ty/07",
                contact="12121",
                parameters=(("wind_kt", "95"), ("", "")),
                areas=(
                    Area(
                        area_desc="Pearl River delta",
                        polygons=(SQUARE, ((1e-7, -0.5), (2.5, 179.9999999), (-3.25, -179.5), (1e-7, -0.5))),
                        circles=(Circle(22.3, 114.2, 80.0), Circle(-0.0, 180.0, 1e-3)),
                        geocodes=(("GB/T2260", "440000"),),
                    ),
                    Area(area_desc=""),
                ),
            ),
            info(),
        ),
    )


def refusal(xml: bytes, now: datetime = NOW) -> CapError:
    """The CapError that parsing and checking ``xml`` raise (fails if they accept it)."""
    with pytest.raises(CapError) as caught:
        check_alert(parse_alert(xml), now=now)
    return caught.value


def without(xml: bytes, element: str) -> bytes:
    """``xml`` with the first ``<element>...</element>`` (on one line) removed."""
    text, count = re.subn(rf"\s*<{element}>[^\n]*</{element}>", "", xml.decode(), count=1)
    assert count == 1, element
    return text.encode()


def replaced(xml: bytes, old: str, new: str) -> bytes:
    assert old.encode() in xml, old
    return xml.replace(old.encode(), new.encode(), 1)


class TestBuild:
    def test_full_alert_validates_and_round_trips(self) -> None:
        """An alert using every modelled field passes the official XSD and parses back equal."""
        xml = build_alert(full_alert())
        assert_schema_valid(xml)
        assert parse_alert(xml) == full_alert()

    def test_times_use_signed_offsets_and_utc_is_minus_zero(self) -> None:
        """Times are written YYYY-MM-DDThh:mm:ss+-hh:mm: UTC as -00:00 (never Z), other offsets kept."""
        xml = build_alert(full_alert()).decode()
        assert "<sent>2026-08-15T14:02:37+08:00</sent>" in xml
        assert "<expires>2026-08-16T05:30:00-05:30</expires>" in xml
        assert ",2026-08-15T05:02:37-00:00</references>" in xml
        assert "Z<" not in xml

    def test_namespace_order_and_escaping(self) -> None:
        """The root is in the CAP 1.2 namespace, elements follow the XSD order, and text is escaped."""
        xml = build_alert(full_alert()).decode()
        assert xml.startswith(f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{CAP_NAMESPACE}">')
        assert "<note>second update &amp; &lt;corrections&gt;&#13;\nline two</note>" in xml
        assert '<addresses>ops@example.cn "Harbour Master" "台风 办公室"</addresses>' in xml
        names = re.findall(r"<(\w+)>", xml.split("<info>")[0])
        expected = "identifier sender sent status msgType scope restriction addresses note references incidents"
        assert names == expected.split()

    def test_geometry_text(self) -> None:
        """Polygons are "lat,lon lat,lon ...", circles "lat,lon radius", numbers plain decimals without exponents."""
        xml = build_alert(full_alert()).decode()
        assert "<polygon>0.0,0.0 0.0,10.0 10.0,10.0 10.0,0.0 0.0,0.0</polygon>" in xml
        assert "<polygon>0.0000001,-0.5 2.5,179.9999999 -3.25,-179.5 0.0000001,-0.5</polygon>" in xml
        assert "<circle>22.3,114.2 80.0</circle>" in xml
        assert "<circle>-0.0,180.0 0.001</circle>" in xml

    @pytest.mark.parametrize(
        ("change", "detail"),
        [
            ({"sent": datetime(2026, 1, 1)}, "alert.sent: a naive time"),
            ({"sent": SENT.replace(microsecond=5)}, "alert.sent: fractional seconds"),
            ({"sent": SENT.replace(tzinfo=timezone(timedelta(hours=14, minutes=1)))}, "within +-14:00"),
            ({"sent": SENT.replace(tzinfo=timezone(timedelta(seconds=30)))}, "whole minutes"),
            ({"sent": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))}, "years 1-9999"),
            ({"identifier": "a\x00b"}, "alert.identifier: U+0000 cannot appear in XML"),
            ({"note": "lone \udc80"}, "alert.note: U+DC80"),
            ({"status": "Actuall"}, "alert.status: not a Status"),
            ({"addresses": ('say "hi"',)}, "alert.addresses"),
            ({"addresses": ("",)}, "alert.addresses"),
            ({"references": (Reference("a,b", "c", SENT),)}, "alert.references"),
            ({"references": (Reference("a", "c d", SENT),)}, "alert.references"),
            ({"infos": (info(categories=()),)}, "alert.info[0].category"),
            ({"infos": (info(language="en_US"),)}, "alert.info[0].language"),
            ({"infos": (info(urgency="Now"),)}, "alert.info[0].urgency"),
            ({"infos": (info(areas=(Area(area_desc="x", circles=(Circle(0, 0, float("nan")),)),)),)}, "circle[0]"),
            ({"infos": (info(areas=(Area(area_desc="x", polygons=(((float("inf"), 0.0),),)),)),)}, "polygon[0]"),
        ],
    )
    def test_unwritable_alerts_are_refused(self, change: dict[str, object], detail: str) -> None:
        """What XML or the XSD cannot carry is refused with invalid_field or missing_field naming the field."""
        with pytest.raises(CapError) as caught:
            build_alert(alert(**change))
        assert caught.value.reason in {CapReason.INVALID_FIELD, CapReason.MISSING_FIELD}
        assert detail in caught.value.detail


class TestSos:
    def sos(self, **fields: object) -> Alert:
        defaults: dict[str, object] = {
            "identifier": "satgw-sos-1",
            "sender": "satgw@example.org",
            "terminal": "bd-000042",
            "sent": SENT.replace(microsecond=250_000),
            "position": (39.9042, 116.4074),
            "incident": "sos-bd-000042-1",
        }
        return sos_alert(**(defaults | fields))  # type: ignore[arg-type]

    def test_alert_update_cancel_validate_and_pass_the_checks(self) -> None:
        """The SOS Alert, an Update and the Cancel, referencing earlier alerts, pass the XSD and check_alert."""
        first = self.sos(text="fell, leg broken")
        ref = Reference(first.sender, first.identifier, first.sent)
        update = self.sos(identifier="satgw-sos-2", msg_type=MsgType.UPDATE, references=[ref], accuracy_m=12.0)
        cancel = self.sos(identifier="satgw-sos-3", msg_type=MsgType.CANCEL, references=[ref], position=None)
        for made in (first, update, cancel):
            xml = build_alert(made)
            assert_schema_valid(xml)
            assert parse_alert(xml) == made
            check_alert(made, now=NOW)
        assert "<references>satgw@example.org,satgw-sos-1,2026-08-15T06:02:37-00:00</references>" in xml.decode()

    def test_fields(self) -> None:
        """An SOS is Rescue / Immediate / Extreme / Observed, names the terminal, and circles the reported position."""
        made = self.sos(accuracy_m=25.0)
        [only] = made.infos
        assert (made.msg_type, made.scope, made.incidents, made.sent) == (
            MsgType.ALERT,
            Scope.RESTRICTED,
            ("sos-bd-000042-1",),
            SENT,
        )
        assert (only.categories, only.urgency, only.severity, only.certainty) == (
            (Category.RESCUE,),
            Urgency.IMMEDIATE,
            Severity.EXTREME,
            Certainty.OBSERVED,
        )
        assert only.headline == "SOS from terminal bd-000042"
        assert only.parameters == (("terminal", "bd-000042"),)
        assert only.areas[0].circles == (Circle(39.9042, 116.4074, 0.025),)
        assert self.sos().infos[0].areas[0].circles[0].radius_km == DEFAULT_SOS_RADIUS_KM
        cancel = self.sos(msg_type=MsgType.CANCEL, references=[Reference("s", "i", SENT)]).infos[0]
        assert cancel.response_types == (ResponseType.ALL_CLEAR,)
        assert cancel.headline == "SOS from terminal bd-000042 cancelled"

    def test_spec_example(self) -> None:
        """SPEC.md's SOS example is what sos_alert and build_alert write (minus its indentation), and it reads back."""
        block = re.search(r"<!-- vector: cap.sos -->\s*```xml\n(.*?)\n```", SPEC.read_text(), re.DOTALL)
        assert block is not None
        example = re.sub(r">\n\s*<", "><", block.group(1)).replace("?><alert", "?>\n<alert") + "\n"
        made = sos_alert(
            identifier="satgw-sos-0242407-1",
            sender="satgw@example.org",
            terminal="0242407",
            sent=SENT,
            position=(-33.8568, 151.2153),
            accuracy_m=25,
            text="MOB",
            incident="sos-0242407-1",
        )
        assert build_alert(made).decode() == example
        assert parse_alert(block.group(1).encode()) == made
        assert downlink_text(made, 20) == "SOS from terminal…"

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"msg_type": MsgType.ACK}, "Alert, Update or Cancel"),
            ({"msg_type": MsgType.UPDATE}, "must reference"),
            ({"sent": datetime(2026, 1, 1)}, "timezone-aware"),
        ],
    )
    def test_bad_arguments(self, fields: dict[str, object], message: str) -> None:
        """Arguments that cannot make an SOS alert raise ValueError at once, with a plain message."""
        with pytest.raises(ValueError, match=message):
            self.sos(**fields)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""


class TestParseHostile:
    @pytest.mark.parametrize(
        "xml",
        [
            BILLION_LAUGHS,
            EXTERNAL_ENTITY,
            b'<!DOCTYPE alert SYSTEM "http://example.org/cap.dtd">' + EARTHQUAKE.split(b"?>", 1)[1],
            b"<!DOCTYPE alert>" + EARTHQUAKE.split(b"?>", 1)[1],
        ],
        ids=["billion-laughs", "external-entity", "external-dtd", "bare-doctype"],
    )
    def test_dtds_and_entities_are_forbidden(self, xml: bytes) -> None:
        """Any DTD, entity declaration or external reference is refused as xml_forbidden before it is expanded."""
        assert refusal(xml).reason is CapReason.XML_FORBIDDEN

    def test_external_entity_never_reads_the_file(self) -> None:
        """The refusal of an external entity does not carry the referenced file's content."""
        error = refusal(EXTERNAL_ENTITY)
        assert "root:" not in str(error)
        assert error.detail == "DTDForbidden"

    @pytest.mark.parametrize(
        ("xml", "detail"),
        [
            (EARTHQUAKE.replace(b"emergency:cap:1.2", b"emergency:cap:1.1"), "CAP 1.1; only CAP 1.2 is read"),
            (EARTHQUAKE.replace(b' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', b""), "root is 'alert'"),
            (EARTHQUAKE.replace(b"emergency:cap:1.2", b"example:other"), "not a CAP 1.2 alert"),
            (b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "{http://www.w3.org/2005/Atom}feed"),
        ],
        ids=["cap-1.1", "no-namespace", "other-namespace", "atom"],
    )
    def test_wrong_root_or_namespace(self, xml: bytes, detail: str) -> None:
        """A root that is not the CAP 1.2 alert (CAP 1.1, no namespace, another format) is refused as not_cap."""
        error = refusal(xml)
        assert error.reason is CapReason.NOT_CAP
        assert detail in error.detail

    @pytest.mark.parametrize(
        "xml", [b"", b"<alert", b"\xff\xfe\x00", EARTHQUAKE[:-20], b"<a>\xc3</a>", b"<a>&#0;</a>", b"<a/><b/>"]
    )
    def test_malformed_xml(self, xml: bytes) -> None:
        """Bytes that are not well-formed XML are refused as malformed_xml."""
        assert refusal(xml).reason is CapReason.MALFORMED_XML

    @pytest.mark.parametrize("encoding", ["klingon", "utf-32", "gb2312", "rot13", "base64", "idna", "punycode"])
    def test_declared_encodings_expat_cannot_read(self, encoding: str) -> None:
        """An unknown, multi-byte or non-text encoding is malformed_xml (not LookupError or the like)."""
        xml = f'<?xml version="1.0" encoding="{encoding}"?><alert>\u00e9</alert>'.encode()
        assert refusal(xml).reason is CapReason.MALFORMED_XML

    def test_size_limit(self) -> None:
        """A document over MAX_ALERT_BYTES is refused as too_large without being parsed; one at the limit is read."""
        padded = EARTHQUAKE.replace(b"<note>", b"<note>" + b" " * (MAX_ALERT_BYTES - len(EARTHQUAKE)))
        assert len(padded) == MAX_ALERT_BYTES
        parse_alert(padded)
        assert refusal(padded.replace(b"<note>", b"<note> ")).reason is CapReason.TOO_LARGE


class TestParse:
    def test_real_world_alert(self) -> None:
        """A pretty-printed alert with two infos and elements satgw drops (resource, eventCode...) parses fully."""
        parsed = parse_alert(EARTHQUAKE)
        assert parsed.sent == datetime(2026, 8, 15, 6, 2, 37, tzinfo=UTC)
        assert parsed.references == (
            Reference("alerts@example.gov.cn", "CN-EQ-2026-0815-000", SENT - timedelta(seconds=275)),
        )
        assert parsed.incidents == ("EQ-20260815", "Sichuan sequence")
        first, second = parsed.infos
        assert (first.language, first.event, second.language) == ("zh-CN", "地震", "en-US")
        assert first.response_types == (ResponseType.SHELTER, ResponseType.MONITOR)
        assert first.areas[0].circles == (Circle(30.5, 103.0, 50.0),)
        assert first.areas[0].geocodes == (("GB/T2260", "510000"),)
        check_alert(parsed, now=NOW)

    def test_signature_and_default_language(self) -> None:
        """An XML signature after the infos is skipped, and an info without language is en-US."""
        signed = EARTHQUAKE.replace(
            b"</alert>", b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature></alert>'
        )
        parsed = parse_alert(without(signed, "language"))
        assert parsed.infos[0].language == "en-US"

    @pytest.mark.parametrize(
        "field",
        [
            "identifier",
            "sender",
            "sent",
            "status",
            "msgType",
            "scope",
            "category",
            "event",
            "urgency",
            "severity",
            "certainty",
            "areaDesc",
        ],
    )
    def test_missing_required_fields(self, field: str) -> None:
        """Each element the spec requires, when absent, is refused as missing_field naming it."""
        error = refusal(without(EARTHQUAKE, field))
        assert error.reason is CapReason.MISSING_FIELD
        assert error.detail.endswith(field)

    @pytest.mark.parametrize(
        ("old", "new", "detail"),
        [
            ("<status>Actual<", "<status>Real<", "alert.status: not a Status"),
            ("<msgType>Update<", "<msgType>update<", "alert.msgType"),
            ("<scope>Public<", "<scope>Everyone<", "alert.scope"),
            ("<category>Geo<", "<category>Quake<", "alert.info[0].category"),
            ("<responseType>Shelter<", "<responseType>Run<", "alert.info[0].responseType"),
            ("<certainty>Observed<", "<certainty>Very likely<", "alert.info[0].certainty"),
            ("<language>zh-CN<", "<language>chinese_simplified<", "alert.info[0].language"),
            ("14:02:37+08:00</sent>", "06:02:37Z</sent>", "alert.sent: not YYYY-MM-DDThh:mm:ss+hh:mm"),
            ("14:02:37+08:00</sent>", "14:02:37.5+08:00</sent>", "alert.sent"),
            ("2026-08-15T14:02:37+08:00</sent>", "2026-02-30T14:02:37+08:00</sent>", "alert.sent: no such time"),
            ("14:02:37+08:00</sent>", "14:02:37+15:00</sent>", "alert.sent: UTC offset"),
            ("2026-08-16T14:02:37+08:00</expires>", "tomorrow</expires>", "alert.info[0].expires"),
            ("000,2026-08-15T13:58:02+08:00<", "000<", "alert.references: not sender,identifier,sent"),
            ("000,2026-08-15T13:58:02+08:00<", "000,yesterday<", "alert.references"),
            ('"Sichuan sequence"', '"Sichuan sequence', "alert.incidents: unbalanced"),
            ("30.0,102.5 30.0,103.5", "30.0;102.5 30.0,103.5", "alert.info[0].area[0].polygon[0]: not lat,lon"),
            ("30.0,102.5 30.0,103.5", "30.0,1e2 30.0,103.5", "polygon[0]: not a decimal number"),
            ("30.0,102.5 30.0,103.5", "30.0,NaN 30.0,103.5", "polygon[0]: not a decimal number"),
            ("30.0,102.5 30.0,103.5", "30.0," + "9" * 400 + " 30.0,103.5", "polygon[0]: number out of range"),
            ("<circle>30.5,103.0 50<", "<circle>30.5,103.0<", "circle[0]: not 'lat,lon radius'"),
            ("<circle>30.5,103.0 50<", "<circle>30.5 103.0 50<", "circle[0]"),
            ("<circle>30.5,103.0 50<", "<circle>30.5,103.0 fifty<", "circle[0]: not a decimal number"),
            ("<note>", "<note>x</note><note>", "alert.note: appears 2 times"),
            ("<event>地震</event>", "<event>地<b>震</b></event>", "alert.info[0].event: holds elements"),
            ("<note>", "<color>red</color><note>", "alert: unexpected element '{urn:oasis"),
            ("<note>", '<note xmlns="">x</note><note>', "alert: unexpected element 'note'"),
            ("<source>", "stray text<source>", "alert: text between elements"),
        ],
    )
    def test_invalid_fields(self, old: str, new: str, detail: str) -> None:
        """Bad coded values, times, references, lists, geometry text and structure are refused as invalid_field."""
        error = refusal(replaced(EARTHQUAKE, old, new))
        assert error.reason is CapReason.INVALID_FIELD
        assert detail in error.detail

    @pytest.mark.parametrize(
        ("old", "detail"),
        [
            ("<valueName>magnitude</valueName>", "alert.info[0].parameter[0].valueName"),
            ("<value>6.4</value>", "alert.info[0].parameter[0].value"),
            ("<valueName>GB/T2260</valueName>", "alert.info[0].area[0].geocode[0].valueName"),
        ],
    )
    def test_pairs_need_name_and_value(self, old: str, detail: str) -> None:
        """A parameter or geocode without its valueName or value is refused as missing_field."""
        error = refusal(replaced(EARTHQUAKE, old, ""))
        assert (error.reason, error.detail) == (CapReason.MISSING_FIELD, detail)

    def test_whitespace_around_coded_values(self) -> None:
        """Surrounding whitespace is ignored in coded values, times and geometry, and kept in free text."""
        loose = replaced(EARTHQUAKE, "<status>Actual<", "<status>\n Actual \n<")
        loose = replaced(loose, "<sent>2026-08-15T14:02:37+08:00<", "<sent> 2026-08-15T14:02:37+08:00\t<")
        loose = replaced(loose, "<circle>30.5,103.0 50<", "<circle>\n  30.5,103.0\n  50\n<")
        loose = replaced(loose, "<contact>12322<", "<contact> 12322 <")
        parsed, plain = parse_alert(loose), parse_alert(EARTHQUAKE)
        assert (parsed.status, parsed.sent, parsed.infos[0].areas) == (plain.status, plain.sent, plain.infos[0].areas)
        assert parsed.infos[0].contact == " 12322 "

    def test_other_encodings(self) -> None:
        """A document in UTF-16 parses to the same alert; GB18030, which expat cannot read, is malformed_xml."""
        text = EARTHQUAKE.decode()
        utf16 = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
        assert parse_alert(utf16) == parse_alert(EARTHQUAKE)
        gb18030 = text.replace('encoding="UTF-8"', 'encoding="GB18030"').encode("gb18030")
        assert refusal(gb18030).reason is CapReason.MALFORMED_XML


class TestCheck:
    @pytest.mark.parametrize(
        ("old", "new", "reason", "detail"),
        [
            ("30.0,102.5 30.0,103.5 31.0,103.5 31.0,102.5 30.0,102.5", "30.0,102.5 30.0,103.5 31.0,103.5 31.0,102.5",
             CapReason.INVALID_AREA, "polygon[0]: not closed"),
            ("30.0,102.5 30.0,103.5 31.0,103.5 31.0,102.5 30.0,102.5", "30.0,102.5 30.0,103.5 30.0,102.5",
             CapReason.INVALID_AREA, "polygon[0]: 3 points; a polygon needs at least 4"),
            ("<polygon>30.0,102.5 30.0,103.5 31.0,103.5 31.0,102.5 30.0,102.5<", "<polygon><",
             CapReason.INVALID_AREA, "polygon[0]: 0 points"),
            ("31.0,103.5 31.0,102.5", "91.0,103.5 31.0,102.5", CapReason.INVALID_AREA, "91.0,103.5 is outside"),
            ("31.0,103.5 31.0,102.5", "31.0,183.5 31.0,102.5", CapReason.INVALID_AREA, "is outside"),
            ("30.0,102.5 30.0,103.5 31.0,103.5 31.0,102.5 30.0,102.5", "80,0 80,120 80,-120 80,0",
             CapReason.INVALID_AREA, "winds round a pole"),
            ("<circle>30.5,103.0 50<", "<circle>30.5,103.0 0<", CapReason.INVALID_AREA, "circle[0]: radius"),
            ("<circle>30.5,103.0 50<", "<circle>-90.5,103.0 50<", CapReason.INVALID_AREA, "circle[0]"),
            ("<scope>Public</scope>", "<scope>Private</scope>", CapReason.MISSING_FIELD,
             "alert.addresses: required when scope is Private"),
            ("<scope>Public</scope>", "<scope>Restricted</scope>", CapReason.MISSING_FIELD, "alert.restriction"),
            ("<scope>Public</scope>", "<scope>Restricted</scope><restriction> </restriction>",
             CapReason.MISSING_FIELD, "alert.restriction"),
            ("<expires>2026-08-16T14:02:37+08:00<", "<expires>2026-08-15T14:07:37+08:00<", CapReason.EXPIRED,
             "alert.info[0].expires"),
            ("<identifier>CN-EQ-2026-0815-001<", "<identifier>CN EQ<", CapReason.INVALID_FIELD, "alert.identifier"),
            ("<sender>alerts@example.gov.cn<", "<sender>a&amp;b<", CapReason.INVALID_FIELD, "alert.sender"),
            ("<sender>alerts@example.gov.cn<", "<sender><", CapReason.INVALID_FIELD, "alert.sender"),
            ("<references>alerts@example.gov.cn,CN-EQ-2026-0815-000,2026-08-15T13:58:02+08:00</references>", "",
             CapReason.MISSING_FIELD, "alert.references: required for msgType Update"),
        ],
        ids=[
            "open-polygon",
            "3-point-polygon",
            "empty-polygon",
            "latitude-91",
            "longitude-183",
            "polar-ring",
            "zero-radius",
            "circle-latitude",
            "private-no-addresses",
            "restricted-no-restriction",
            "restricted-blank-restriction",
            "expired",
            "identifier-space",
            "sender-ampersand",
            "sender-empty",
            "update-no-references",
        ],
    )  # fmt: skip
    def test_spec_rules_the_xsd_misses(self, old: str, new: str, reason: CapReason, detail: str) -> None:
        """Each CAP rule outside the XSD is refused by check_alert with its own reason and the field in the detail."""
        error = refusal(replaced(EARTHQUAKE, old, new))
        assert error.reason is reason
        assert detail in error.detail

    def test_xsd_accepts_what_check_refuses(self) -> None:
        """The XSD passes an open 3-point polygon and a Private alert without addresses; check_alert does not."""
        sloppy = alert(
            scope=Scope.PRIVATE,
            infos=(info(areas=(Area(area_desc="x", polygons=(((1.0, 1.0), (1.0, 2.0), (2.0, 2.0)),)),)),),
        )
        assert_schema_valid(build_alert(sloppy))
        with pytest.raises(CapError, match="addresses"):
            check_alert(sloppy, now=NOW)
        with pytest.raises(CapError, match="3 points"):
            check_alert(dataclasses.replace(sloppy, addresses=("ops",)), now=NOW)

    def test_expiry_is_checked_on_every_info(self) -> None:
        """An alert expires when any info's expiry is at or before now; infos without expiry never do."""
        later = info(expires=NOW + timedelta(seconds=1))
        check_alert(alert(infos=(later, info())), now=NOW)
        with pytest.raises(CapError) as caught:
            check_alert(alert(infos=(later, info(expires=NOW))), now=NOW)
        assert (caught.value.reason, caught.value.detail.split(":")[0]) == (CapReason.EXPIRED, "alert.info[1].expires")

    def test_naive_times(self) -> None:
        """A naive ``now`` is a programming error (ValueError); a naive time in the alert is invalid_field."""
        with pytest.raises(ValueError, match="timezone-aware"):
            check_alert(alert(), now=datetime(2026, 1, 1))
        with pytest.raises(CapError, match=r"alert.info\[0\].expires: a naive time"):
            check_alert(alert(infos=(info(expires=datetime(2030, 1, 1)),)), now=NOW)

    def test_every_message_type_that_points_back_needs_references(self) -> None:
        """Update, Cancel, Ack and Error need references; Alert does not."""
        check_alert(alert(msg_type=MsgType.ALERT), now=NOW)
        for msg_type in (MsgType.UPDATE, MsgType.CANCEL, MsgType.ACK, MsgType.ERROR):
            with pytest.raises(CapError, match=r"alert\.references: required"):
                check_alert(alert(msg_type=msg_type), now=NOW)
            check_alert(alert(msg_type=msg_type, references=(Reference("s", "i", SENT),)), now=NOW)


ANTIMERIDIAN = Area(
    area_desc="Fiji", polygons=(((-15.0, 175.0), (-15.0, -175.0), (-20.0, -175.0), (-20.0, 175.0), (-15.0, 175.0)),)
)
CONCAVE = (
    (0.0, 0.0),
    (0.0, 10.0),
    (10.0, 10.0),
    (10.0, 8.0),
    (2.0, 8.0),
    (2.0, 2.0),
    (10.0, 2.0),
    (10.0, 0.0),
    (0.0, 0.0),
)


class TestGeometry:
    @pytest.mark.parametrize(
        ("lat", "lon", "inside"),
        [
            (5.0, 5.0, True),
            (0.0, 5.0, True),  # on the south edge
            (10.0, 10.0, True),  # a vertex
            (5.0, 10.0, True),  # on the east edge
            (5.0, 10.000001, False),
            (-0.000001, 5.0, False),
            (15.0, 5.0, False),
            (5.0, -5.0, False),
        ],
    )
    def test_square_with_edges(self, lat: float, lon: float, inside: bool) -> None:
        """Points inside a square polygon and on its edges and vertices are inside; points just off it are not."""
        assert Area(area_desc="sq", polygons=(SQUARE,)).contains(lat, lon) is inside

    @pytest.mark.parametrize(
        ("lat", "lon", "inside"),
        [
            (5.0, 1.0, True),  # west arm
            (9.0, 9.0, True),  # east arm
            (1.0, 5.0, True),  # base
            (5.0, 5.0, False),  # the notch
            (5.0, 7.99, False),
            (2.0, 5.0, True),  # the notch's floor
            (5.0, 8.0, True),  # the notch's east side
        ],
    )
    def test_concave_polygon(self, lat: float, lon: float, inside: bool) -> None:
        """A C-shaped polygon excludes its notch and includes its arms and the notch's edges."""
        assert Area(area_desc="c", polygons=(CONCAVE,)).contains(lat, lon) is inside

    @pytest.mark.parametrize(
        ("lat", "lon", "inside"),
        [
            (-17.0, 179.5, True),
            (-17.0, -179.5, True),
            (-17.0, 180.0, True),
            (-17.0, -180.0, True),
            (-17.0, 175.0, True),  # west edge
            (-17.0, 174.9, False),
            (-17.0, -174.9, False),
            (-17.0, 0.0, False),
            (-21.0, 179.0, False),
        ],
    )
    def test_polygon_across_the_antimeridian(self, lat: float, lon: float, inside: bool) -> None:
        """A polygon from 175E to 175W covers both sides of the antimeridian, not the rest of the world."""
        assert ANTIMERIDIAN.contains(lat, lon) is inside

    def test_circles(self) -> None:
        """A point is in a circle up to its radius in great-circle km, rim included, across the antimeridian too."""
        area = Area(area_desc="c", circles=(Circle(0.0, 179.9, 50.0),))
        edge_lon = (179.9 + 50.0 / distance_km(0, 0, 0, 1)) - 360.0  # 50 km east of the centre, past 180
        assert area.contains(0.0, 179.9)
        assert area.contains(0.0, edge_lon)
        assert not area.contains(0.0, edge_lon + 1e-4)
        assert area.contains(0.3, -179.9)
        assert not area.contains(0.0, 0.0)

    def test_huge_circle(self) -> None:
        """A circle of 15000 km radius holds a point 12000 km from its centre, and its bounding circle does too."""
        area = Area(area_desc="most of the Earth", circles=(Circle(0.0, 0.0, 15_000.0),))
        far = (0.0, 12_000.0 / distance_km(0, 0, 0, 1))
        assert area.contains(*far)
        assert not area.contains(0.0, 180.0)
        lat, lon, radius = area.bounding_circle() or (0.0, 0.0, 0.0)
        assert (lat, lon) == pytest.approx((0.0, 0.0))
        assert 15_000 < radius < 15_100

    def test_geocode_only_area_contains_nothing(self) -> None:
        """An area with only geocodes contains no point and has no bounding circle (geocodes are not looked up)."""
        area = Area(area_desc="province", geocodes=(("GB/T2260", "510000"),))
        assert not area.contains(30.0, 103.0)
        assert area.bounding_circle() is None

    def test_bounding_circle(self) -> None:
        """The bounding circle is centred in the area and reaches every vertex and circle rim, with a margin."""
        lat, lon, radius = ANTIMERIDIAN.bounding_circle() or (0, 0, 0)
        assert lat == pytest.approx(-17.5, abs=0.1)
        assert abs(lon) == pytest.approx(180.0, abs=0.01)
        assert radius >= max(distance_km(lat, lon, a, b) for a, b in ANTIMERIDIAN.polygons[0])
        assert radius < 1000
        lat, lon, radius = Area(area_desc="c", circles=(Circle(10.0, 20.0, 5.0),)).bounding_circle() or (0, 0, 0)
        assert (lat, lon) == pytest.approx((10.0, 20.0))
        assert 5.0 < radius < 5.2

    def test_bounding_circle_of_opposite_points_is_the_whole_earth(self) -> None:
        """Circles at antipodes cancel out; the bounding circle then covers the whole Earth."""
        area = Area(area_desc="both", circles=(Circle(0.0, 0.0, 1.0), Circle(0.0, 180.0, 1.0)))
        assert (area.bounding_circle() or (0, 0, 0))[2] > 20_015


def sos_info(headline: str | None = None, event: str = "", instruction: str | None = None) -> Alert:
    return alert(infos=(info(headline=headline, event=event, instruction=instruction),))


class TestDownlinkText:
    def test_parts_in_order_compact_and_deduplicated(self) -> None:
        """Headline, event, instruction one per line, whitespace collapsed, a part inside an earlier one left out."""
        text = downlink_text(sos_info("Typhoon  warning:\n red", "Typhoon", " Stay\tindoors. "), 1000)
        assert text == "Typhoon warning: red\nStay indoors."
        assert downlink_text(alert(infos=(), note="exercise only"), 1000) == "exercise only"

    def test_chinese_text_is_cut_at_characters(self) -> None:
        """Chinese text (3 bytes a character in UTF-8, 2 in GB2312) is cut before the budget, with an ellipsis."""
        made = sos_info("台风红色预警", "台风", "请立即撤离到安全地带")
        full = "台风红色预警\n请立即撤离到安全地带"
        assert downlink_text(made, 100) == full
        assert downlink_text(made, 20) == "台风红色预…"  # 6 characters (18 bytes) and "…" (3) would be 21
        assert downlink_text(made, 21) == "台风红色预警…"
        assert downlink_text(made, 25) == "台风红色预警\n请…"
        assert downlink_text(made, 16, "gb2312") == "台风红色预警…"  # "…" is 2 bytes in GB2312, the newline dropped

    def test_emoji_sequences_stay_whole(self) -> None:
        """A ZWJ family, a skin-toned hand, a flag and an accented letter are never cut apart."""
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
        made = sos_info("Flood " + family + "\U0001f44b\U0001f3fd" + "\U0001f1e8\U0001f1f3" + "e\u0301")
        full = downlink_text(made, 1000)
        whole = {0, 1, 2, 3, 4, 5, 11, 13, 15, 17}  # "Flood", the family (5), the hand (2), the flag (2), the é (2)
        for budget in range(len(full.encode()) + 1):
            text = downlink_text(made, budget)
            assert len(text.encode()) <= budget
            kept = text.removesuffix("…")
            assert full.startswith(kept)
            assert len(kept) in whole, (budget, kept)

    def test_ascii_and_tiny_budgets(self) -> None:
        """Encodings without "…" get "..."; characters they lack become "?"; a budget below the marker gives ""."""
        made = sos_info("Überflutung im Tal")
        assert downlink_text(made, 10, "ascii") == "?berflu..."
        assert downlink_text(made, 2, "ascii") == ""
        assert downlink_text(made, 3) == "…"
        assert downlink_text(made, 0) == ""
        with pytest.raises(ValueError, match="max_bytes"):
            downlink_text(made, -1)

    def test_cut_points_follow_cluster_rules(self) -> None:
        """Cut points skip combining marks, ZWJ joins, variation selectors, regional-indicator pairs and CR LF."""
        assert cut_points("ae\u0301b") == [0, 1, 3, 4]
        assert cut_points("\u2764\ufe0f!") == [0, 2, 3]
        assert cut_points("\U0001f1e8\U0001f1f3\U0001f1fa\U0001f1f8\U0001f1ef") == [0, 2, 4, 5]
        assert cut_points("a\r\nb") == [0, 1, 3, 4]
        assert cut_points("") == [0]
        decomposed = unicodedata.normalize("NFD", "한")
        assert cut_points(decomposed) == [0, len(decomposed)]
