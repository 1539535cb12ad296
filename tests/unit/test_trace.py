"""Message trace lines: encoding, parsing (never raising but ValueError), the state and receipts a trace tells."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_file
from gateway.exceptions import ConfigError
from gateway.queue.trace import (
    Hop,
    HopEvent,
    Stage,
    escape,
    hop_line,
    parse_hop,
    parse_hops,
    parse_message_id,
    receipts_of,
    state_of,
)
from protocols.envelope import Priority

_KEYS = st.from_regex(r"[a-z_]{1,32}", fullmatch=True)
_TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def _hop(event: HopEvent, at: float, **details: str) -> Hop:
    return Hop(event, at, details)


class TestLines:
    @given(
        event=st.sampled_from(HopEvent),
        at=_TIMES,
        details=st.dictionaries(_KEYS, st.text(max_size=40), max_size=5),
    )
    def test_a_line_parses_back_to_its_hop(self, event: HopEvent, at: float, details: dict[str, str]) -> None:
        """Any event, time and details (spaces, newlines, percent signs, any Unicode) survive a round trip."""
        details.pop("class", None)  # a class must be 0..3: covered below
        hop = parse_hop(hop_line(event, at, **details).encode())
        assert (hop.event, hop.details) == (event, details)
        assert hop.at == pytest.approx(at, abs=1e-6)

    @given(st.binary(max_size=200))
    def test_arbitrary_bytes_raise_only_value_error(self, raw: bytes) -> None:
        """Parsing any bytes as a hop line either gives a hop or raises ValueError, nothing else."""
        try:
            hop = parse_hop(raw)
        except ValueError:
            return
        assert isinstance(hop.event, HopEvent)

    @given(st.lists(st.one_of(st.binary(max_size=60), st.builds(lambda t: f"sent {t}".encode(), _TIMES)), max_size=8))
    def test_a_stored_trace_never_raises_and_comes_out_in_time_order(self, lines: list[bytes]) -> None:
        """A stored trace of any bytes parses without raising; hops come out sorted by time, the rest counted."""
        hops, bad = parse_hops(b"\n".join(lines))
        assert [h.at for h in hops] == sorted(h.at for h in hops)
        assert len(hops) + bad <= len(lines) + sum(line.count(b"\n") for line in lines)

    @pytest.mark.parametrize(
        "line",
        [
            b"",
            b"sent",
            b"nonsense 1.0",
            b"sent nan",
            b"sent inf",
            b"sent 1e999",
            b"sent 1_000",
            b"sent 1.0 link",
            b"sent 1.0 Link=x",
            b"sent 1.0 link=a link=b",
            b"sent 1.0 link=%FF",
            b"received 1.0 class=7",
            b"sent 1.0  link=a",
            b"\xff 1.0",
        ],
    )
    def test_malformed_lines_are_value_errors(self, line: bytes) -> None:
        """A line without a known event, a finite time, or well-formed new key=value details is refused."""
        with pytest.raises(ValueError):  # noqa: PT011 - the documented error of parse_hop
            parse_hop(line)

    def test_escape_covers_what_splits_a_line(self) -> None:
        """Percent, space and control characters are escaped; other text (Unicode too) is left as it is."""
        assert escape("a b%c\nd\x7fé") == "a%20b%25c%0Ad%7Fé"

    def test_details_that_are_none_are_left_out(self) -> None:
        """hop_line drops details whose value is None and prints the time to the microsecond."""
        assert hop_line(HopEvent.SENT, 12.5, link="x", fragments=None, records=3) == "sent 12.500000 link=x records=3"

    def test_unreadable_lines_are_counted_not_fatal(self) -> None:
        """A stored trace with a corrupt line keeps the good hops and counts the bad one."""
        hops, bad = parse_hops(b"received 1.0 class=3 receipt=0\ngarbage\nqueued 2.0 sid=1-0\n")
        assert [h.event for h in hops] == [HopEvent.RECEIVED, HopEvent.QUEUED]
        assert bad == 1
        assert hops[0].priority is Priority.ROUTINE


class TestMessageId:
    @pytest.mark.parametrize(("text", "expected"), [("T1:5", ("T1", 5)), ("a.b-c_d:007", ("a.b-c_d", 7))])
    def test_valid_ids(self, text: str, expected: tuple[str, int]) -> None:
        """terminal:seq splits into the terminal and the seq as an integer."""
        assert parse_message_id(text) == expected

    @pytest.mark.parametrize(
        "text", ["", "T1", ":5", "T1:", "T1:-1", "T1:x", "T 1:5", "T1:9223372036854775808", "a" * 33 + ":1", "T1:5:6"]
    )
    def test_invalid_ids(self, text: str) -> None:
        """Anything but a 1-32 character terminal id, a colon and a seq in 0..2^63-1 is refused."""
        with pytest.raises(ValueError, match="terminal:seq"):
            parse_message_id(text)


class TestState:
    def test_queued_names_its_class(self) -> None:
        """A message only received and queued is queued in its class."""
        state = state_of([_hop(HopEvent.RECEIVED, 1, **{"class": "1"}), _hop(HopEvent.QUEUED, 2)])
        assert state.stage is Stage.QUEUED
        assert "urgency" in state.detail

    def test_failed_attempt_means_retrying(self) -> None:
        """After a failed attempt the message waits for a retry, and the state says which link and why."""
        hops = [
            _hop(HopEvent.QUEUED, 1),
            _hop(HopEvent.TAKEN, 2, link="L"),
            _hop(HopEvent.FAILED, 3, link="L", code="lost", attempt="1"),
        ]
        state = state_of(hops)
        assert state.stage is Stage.RETRYING
        assert state.detail == "attempt 1 on link L failed (lost); held for a retry"

    def test_a_later_lost_report_does_not_undo_a_delivery(self) -> None:
        """A link that reports lost after the ground got the frame leaves the message at the ground."""
        hops = [_hop(HopEvent.TAKEN, 1), _hop(HopEvent.DELIVERED, 2, link="L"), _hop(HopEvent.FAILED, 3, link="L")]
        assert state_of(hops).stage is Stage.AT_GROUND

    def test_requeue_starts_over(self) -> None:
        """A dead letter put back is queued again, whatever it went through before."""
        hops = [
            _hop(HopEvent.QUEUED, 1),
            _hop(HopEvent.DEAD, 2, reason="x"),
            _hop(HopEvent.REQUEUED, 3, **{"class": "3"}),
        ]
        assert state_of(hops).stage is Stage.QUEUED
        assert state_of(hops[:2]).stage is Stage.DEAD

    def test_published_is_delivered(self) -> None:
        """The published hop means delivered, even if the relay's sent hop was written after the ground's."""
        hops, _ = parse_hops(b"queued 1 sid=1-0\ndelivered 3 link=L\nsent 2 link=L records=1\npublished 4\n")
        assert [h.event for h in hops] == [HopEvent.QUEUED, HopEvent.SENT, HopEvent.DELIVERED, HopEvent.PUBLISHED]
        assert state_of(hops).stage is Stage.DELIVERED

    def test_only_replays_is_unknown(self) -> None:
        """A trace holding only duplicate hops cannot tell where the message is."""
        assert state_of([_hop(HopEvent.DUPLICATE, 1)]).stage is Stage.UNKNOWN


class TestReceipts:
    def test_receipts_follow_the_hops_when_asked(self) -> None:
        """A terminal that asked gets accepted, sent, delivered; a relay's dead letter gives rejected."""
        hops = [
            _hop(HopEvent.RECEIVED, 1, receipt="1"),
            _hop(HopEvent.QUEUED, 2),
            _hop(HopEvent.SENT, 3),
            _hop(HopEvent.PUBLISHED, 4),
            _hop(HopEvent.DEAD, 5, reason="link_failed"),
            _hop(HopEvent.DEAD, 6, reason="max_deliveries"),
        ]
        assert receipts_of(hops) == [("accepted", 2), ("sent", 3), ("delivered", 4), ("rejected", 5)]

    def test_no_receipts_unless_asked(self) -> None:
        """Without the receipt flag no receipt is listed."""
        assert receipts_of([_hop(HopEvent.RECEIVED, 1, receipt="0"), _hop(HopEvent.QUEUED, 2)]) == []


class TestConfig:
    def test_trace_ttl_comes_from_the_queue_table(self, tmp_path: Path) -> None:
        """``[queue] trace_ttl_s`` sets the retention (default a day); 0 is allowed, a negative value is refused."""
        assert load_file(None).trace_ttl_s == 86_400
        path = tmp_path / "satgw.toml"
        path.write_text("[queue]\ntrace_ttl_s = 0\n")
        assert load_file(path).trace_ttl_s == 0
        path.write_text("[queue]\ntrace_ttl_s = -1\n")
        with pytest.raises(ConfigError, match="trace_ttl_s"):
            load_file(path)
