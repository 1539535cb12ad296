"""Hypothesis strategies shared by the protocols tests."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from protocols.envelope import MAX_BODY_BYTES, MAX_SEQ, MAX_TS, MAX_TTL_S, Kind, Message, Position, Priority

terminals = st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=32)
bodies = st.text(st.characters(codec="utf-8"), max_size=1100).map(
    lambda s: s.encode()[:MAX_BODY_BYTES].decode("utf-8", "ignore")
)
positions = st.builds(Position, st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False)) | st.none()
times = st.floats(0, MAX_TS)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Any valid message: every kind with a priority it allows, ttl only off distress."""
    kind = draw(st.sampled_from(Kind))
    priority = Priority.DISTRESS if kind is Kind.SOS else draw(st.sampled_from(Priority))
    ttl = None if priority is Priority.DISTRESS else draw(st.none() | st.integers(1, MAX_TTL_S))
    return Message(
        terminal=draw(terminals),
        seq=draw(st.integers(0, MAX_SEQ)),
        priority=priority,
        kind=kind,
        body=draw(bodies),
        position=draw(positions),
        ttl=ttl,
        ts=draw(times),
        receipt=draw(st.booleans()),
    )
