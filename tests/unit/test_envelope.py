"""The terminal message: field rules, priority names, and the inner JSON that the seal encrypts."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.envelope import (
    MAX_BODY_BYTES,
    MAX_SEQ,
    MAX_TS,
    MAX_TTL_S,
    Kind,
    Message,
    Position,
    Priority,
    decode_inner,
    encode_inner,
    validate_terminal_id,
)
from protocols.errors import DecodeError, Reason
from tests.unit.strategies import messages

INNER_KEYS = ["k", "b", "ts", "lat", "lon", "ttl"]


def _message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {"terminal": "bd-000042", "seq": 1, "priority": Priority.ROUTINE, "kind": Kind.TEXT}
    return Message(**(fields | overrides))


def _decode(raw: bytes) -> Message:
    return decode_inner(raw, terminal="bd-000042", seq=1, priority=Priority.ROUTINE, receipt=False)


class TestPriority:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("distress", Priority.DISTRESS),
            ("URGENCY", Priority.URGENCY),
            ("2", Priority.SAFETY),
            ("3", Priority.ROUTINE),
        ],
    )
    def test_parse(self, text: str, expected: Priority) -> None:
        """A class parses from its name in any case or from its value."""
        assert Priority.parse(text) is expected

    @pytest.mark.parametrize("text", ["4", "panic", ""])
    def test_parse_rejects_unknown(self, text: str) -> None:
        """An unknown name or value is refused with a ValueError or KeyError."""
        with pytest.raises((ValueError, KeyError)):
            Priority.parse(text)

    def test_order_and_label(self) -> None:
        """Distress sorts first and labels are the lower-case names."""
        assert sorted(Priority) == [Priority.DISTRESS, Priority.URGENCY, Priority.SAFETY, Priority.ROUTINE]
        assert [p.label for p in Priority] == ["distress", "urgency", "safety", "routine"]


class TestMessageRules:
    @pytest.mark.parametrize("terminal", ["a", "A-z_0.9", "x" * 32])
    def test_valid_terminal_ids(self, terminal: str) -> None:
        """Ids of 1-32 characters from A-Za-z0-9_.- are accepted unchanged."""
        assert validate_terminal_id(terminal) == terminal

    @pytest.mark.parametrize("terminal", ["", "x" * 33, "a b", "a/b", "bé", "a\n", "+"])
    def test_invalid_terminal_ids(self, terminal: str) -> None:
        """Empty, long, or ids with other characters (a trailing newline too) are invalid_field."""
        with pytest.raises(DecodeError) as info:
            _message(terminal=terminal)
        assert info.value.reason is Reason.INVALID_FIELD

    @pytest.mark.parametrize(
        "overrides",
        [
            {"seq": -1},
            {"seq": MAX_SEQ + 1},
            {"kind": Kind.SOS, "priority": Priority.URGENCY},
            {"ttl": 0},
            {"ttl": MAX_TTL_S + 1},
            {"kind": Kind.SOS, "priority": Priority.DISTRESS, "ttl": 60},
            {"ts": -0.001},
            {"ts": float("nan")},
            {"ts": float("inf")},
            {"ts": MAX_TS + 1},
            {"body": "ok \ud800 then"},
        ],
    )
    def test_invalid_fields(self, overrides: dict[str, Any]) -> None:
        """Each broken field rule raises DecodeError with reason invalid_field."""
        with pytest.raises(DecodeError) as info:
            _message(**overrides)
        assert info.value.reason is Reason.INVALID_FIELD

    @pytest.mark.parametrize(("lat", "lon"), [(90.0001, 0), (-91, 0), (0, 180.5), (0, -181), (float("nan"), 0)])
    def test_invalid_positions(self, lat: float, lon: float) -> None:
        """A position off the globe or not finite is invalid_field."""
        with pytest.raises(DecodeError) as info:
            Position(lat, lon)
        assert info.value.reason is Reason.INVALID_FIELD

    def test_body_limit_counts_utf8_bytes(self) -> None:
        """A body of exactly 1024 UTF-8 bytes (astral characters count 4) fits; one more byte is oversized."""
        body = "🛰" * (MAX_BODY_BYTES // 4)
        assert _message(body=body).body == body
        with pytest.raises(DecodeError) as info:
            _message(body=body + "x")
        assert info.value.reason is Reason.OVERSIZED

    def test_limits_are_inclusive(self) -> None:
        """The largest seq, ttl and ts are themselves valid."""
        message = _message(seq=MAX_SEQ, ttl=MAX_TTL_S, ts=MAX_TS)
        assert (message.seq, message.ttl, message.ts) == (MAX_SEQ, MAX_TTL_S, MAX_TS)


class TestInnerJson:
    @settings(max_examples=200)
    @given(messages())
    def test_round_trip(self, message: Message) -> None:
        """decode_inner(encode_inner(m)) with m's header fields gives m back exactly."""
        decoded = decode_inner(
            encode_inner(message),
            terminal=message.terminal,
            seq=message.seq,
            priority=message.priority,
            receipt=message.receipt,
        )
        assert decoded == message

    def test_compact_form(self) -> None:
        """The JSON has no spaces, leaves non-ASCII unescaped and omits absent position and ttl."""
        raw = encode_inner(_message(body="北斗", ts=1.5))
        assert raw == '{"k":"text","b":"北斗","ts":1.5}'.encode()

    def test_defaults_when_absent(self) -> None:
        """Only k is required: body defaults to empty and ts to zero."""
        assert _decode(b'{"k":"text"}') == _message()

    def test_header_fields_come_from_the_caller(self) -> None:
        """Terminal, seq, priority and receipt are taken from the arguments, never from the JSON."""
        message = decode_inner(b'{"k":"sos"}', terminal="boat-7", seq=9, priority=Priority.DISTRESS, receipt=True)
        assert message == replace(
            _message(), terminal="boat-7", seq=9, priority=Priority.DISTRESS, kind=Kind.SOS, receipt=True
        )

    @pytest.mark.parametrize(
        "raw",
        [b"", b"{", b"\xff\xfe{}", b'{"k":"text"} x', b"[" * 5000, b'{"k":"text","ttl":' + b"9" * 5000 + b"}"],
    )
    def test_malformed(self, raw: bytes) -> None:
        """Bytes that are not one UTF-8 JSON value (deep nesting and huge integers included) are malformed."""
        with pytest.raises(DecodeError) as info:
            _decode(raw)
        assert info.value.reason is Reason.MALFORMED

    @pytest.mark.parametrize(
        "inner",
        [
            [],
            "text",
            {"k": "text", "x": 1},
            {"k": "chat"},
            {"b": "no kind"},
            {"k": "text", "b": 5},
            {"k": "text", "ts": "1"},
            {"k": "text", "ts": True},
            {"k": "text", "lat": 1.0},
            {"k": "text", "lat": 1.0, "lon": False},
            {"k": "text", "ttl": 60.0},
            {"k": "text", "ttl": 0},
        ],
    )
    def test_invalid_fields(self, inner: object) -> None:
        """JSON that parses but is not a valid message is invalid_field, never a Python error."""
        with pytest.raises(DecodeError) as info:
            _decode(json.dumps(inner).encode())
        assert info.value.reason is Reason.INVALID_FIELD

    @pytest.mark.parametrize(
        "inner",
        [{"k": "text", "ts": 10**400}, {"k": "text", "lat": 10**400, "lon": 0}, {"k": "text", "b": "\ud800"}],
    )
    def test_json_beyond_strict_rfc_8259_is_malformed(self, inner: object) -> None:
        """Numbers beyond a double and lone surrogates are not interoperable JSON: refused as malformed."""
        with pytest.raises(DecodeError) as info:
            _decode(json.dumps(inner).encode())
        assert info.value.reason is Reason.MALFORMED

    @settings(max_examples=300)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(INNER_KEYS), inner),
            max_leaves=8,
        )
    )
    def test_any_json_gives_message_or_decode_error(self, value: object) -> None:
        """Arbitrary JSON values and objects of the right keys only ever yield a Message or DecodeError."""
        try:
            message = _decode(json.dumps(value).encode())
        except DecodeError:
            return
        assert isinstance(message, Message)
