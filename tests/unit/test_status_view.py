"""gateway.status_view: what ``satgw status`` prints, from queue depths and the stats counters."""

from __future__ import annotations

import re

import pytest

from gateway.incidents import AlertRef, Incident, IncidentState
from gateway.queue import Depth
from gateway.queue.presence import Fix, PresenceSummary, TerminalPresence
from gateway.status_view import format_age, render, summarize, terminals_json, use_color
from protocols.envelope import Position, Priority

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RED = "\x1b[1;31m"

COUNTERS = {
    "accepted.distress": 5,
    "sent.distress": 4,
    "delivered.distress": 3,
    "accepted.routine": 1000,
    "sent.routine": 870,
    "delivered.routine": 860,
    "expired.routine": 7,
    "dead.routine": 2,
    "rejected.bad_seal": 3,
    "rejected.replay": 10,
    "link.lab-geo-1.sent": 800,
    "link.lab-geo-1.lost": 4,
    "link.lab-geo-1.interval_not_reached": 30,
    "link.leo.v2.sent": 70,
    "link.leo.v2.fragments": 7,
    "ground.duplicates": 2,
    "receipts.accepted": 12,
}


def depths(distress: tuple[int, int] = (0, 0), routine: tuple[int, int] = (120, 4)) -> list[Depth]:
    """Depths of the four classes: distress and routine as (depth, pending), the others empty."""
    ages = {Priority.DISTRESS: 3.25 if sum(distress) else None, Priority.ROUTINE: 3725.0 if sum(routine) else None}
    given = {Priority.DISTRESS: distress, Priority.ROUTINE: routine}
    return [Depth(p, *given.get(p, (0, 0)), ages.get(p)) for p in Priority]


def table_rows(text: str, first: str) -> dict[str, list[str]]:
    """The table whose header starts with ``first``, as row name → the remaining cells."""
    lines = text.split("\n\n")
    (block,) = [b for b in lines if b.startswith(first)]
    rows = [line.split() for line in block.splitlines()]
    return {row[0]: row[1:] for row in rows}


class TestSummarize:
    def test_counters_sorted_into_classes_links_reasons_and_the_rest(self) -> None:
        """Each stats counter lands in exactly one place: its class row, its link, its reason, or other."""
        summary = summarize(depths(), COUNTERS)
        routine = next(r for r in summary.classes if r.label == "routine")
        assert (routine.depth, routine.pending, routine.counts) == (120, 4, (1000, 870, 860, 7, 2))
        assert summary.links == {
            "lab-geo-1": {"sent": 800, "lost": 4, "interval_not_reached": 30},
            "leo.v2": {"sent": 70, "fragments": 7},
        }
        assert list(summary.rejected.items()) == [("replay", 10), ("bad_seal", 3)]
        assert summary.other == {"ground.duplicates": 2, "receipts.accepted": 12}

    def test_distress_row_and_waiting(self) -> None:
        """The distress row counts queued plus in-transmission messages as waiting."""
        summary = summarize(depths(distress=(1, 2)), {})
        assert summary.distress is not None
        assert summary.distress.waiting == 3


class TestRender:
    def test_plain_output_has_no_escape_codes(self) -> None:
        """Without colour not one ANSI escape is printed, even with distress waiting and dead letters."""
        text = render(summarize(depths(distress=(1, 0)), COUNTERS), color=False)
        assert "\x1b" not in text

    def test_class_table_columns(self) -> None:
        """The class table has one row per class plus a total, with depth, pending, oldest age and counters."""
        text = render(summarize(depths(distress=(1, 2)), COUNTERS), color=False)
        rows = table_rows(text, "class")
        assert rows["class"] == ["depth", "pending", "oldest", "accepted", "sent", "delivered", "expired", "dead"]
        assert rows["distress"] == ["1", "2", "3.2s", "5", "4", "3", "0", "0"]
        assert rows["urgency"] == ["0", "0", "-", "0", "0", "0", "0", "0"]
        assert rows["routine"] == ["120", "4", "1h02m", "1000", "870", "860", "7", "2"]
        assert rows["total"] == ["121", "6", "1h02m", "1005", "874", "863", "7", "2"]

    def test_columns_line_up(self) -> None:
        """Every line of the class table is as wide as its header, numbers right-aligned under it."""
        text = render(summarize(depths(), COUNTERS), color=False)
        block = next(b for b in text.split("\n\n") if b.startswith("class"))
        widths = {len(line) for line in block.splitlines()}
        assert len(widths) == 1

    def test_links_and_rejections(self) -> None:
        """Links list sent, fragments and failure codes by short name; rejections come most frequent first."""
        text = render(summarize(depths(), COUNTERS), color=False)
        links = table_rows(text, "link")
        assert links["link"] == ["sent", "fragments", "lost", "interval"]
        assert links["lab-geo-1"] == ["800", "0", "4", "30"]
        assert links["leo.v2"] == ["70", "7", "0", "0"]
        assert list(table_rows(text, "rejected").items()) == [
            ("rejected", ["count"]),
            ("replay", ["10"]),
            ("bad_seal", ["3"]),
            ("total", ["13"]),
        ]
        assert table_rows(text, "counter")["ground.duplicates"] == ["2"]

    def test_distress_waiting_is_announced_first(self) -> None:
        """With distress queued or in transmission the first line says so, with the counts and oldest age."""
        text = render(summarize(depths(distress=(1, 2)), {}), color=False)
        assert text.splitlines()[0] == "!! DISTRESS WAITING: 3 (1 queued, 2 in transmission), oldest 3.2s"

    def test_quiet_gateway(self) -> None:
        """No distress, no links and no rejections read as such instead of empty tables."""
        text = render(summarize(depths(routine=(0, 0)), {}), color=False)
        assert text.splitlines()[0] == "no distress waiting"
        assert "rejected: none" in text
        assert "link" not in text

    def test_forced_colour_marks_distress_red(self) -> None:
        """With colour, the distress line and the distress row are red; without the codes the text is unchanged."""
        summary = summarize(depths(distress=(1, 0)), COUNTERS)
        text = render(summary, color=True)
        assert text.startswith(f"{RED}!! DISTRESS WAITING")
        distress_line = next(line for line in text.splitlines() if ANSI.sub("", line).startswith("distress"))
        assert distress_line.startswith(f"{RED}distress")
        assert ANSI.sub("", text) == render(summary, color=False)

    def test_no_red_when_distress_is_empty(self) -> None:
        """With colour on and no distress waiting, nothing is painted red."""
        text = render(summarize(depths(), COUNTERS), color=True)
        assert RED not in text
        assert "\x1b[" in text  # headers and warnings are still styled


class TestTerminals:
    NOW = 10_000.0

    def summary(self) -> PresenceSummary:
        """Five registered, two of three seen are online; T1 also had refusals."""
        t1 = TerminalPresence(
            "T1",
            self.NOW - 4.2,
            Fix(59.91391, 10.75225, self.NOW - 4.2, 0.0),
            {"accepted.routine": 7, "accepted.distress": 1, "duplicates": 2, "unauthenticated": 1},
        )
        t2 = TerminalPresence("T2", self.NOW - 125.0, None, {"accepted.routine": 3})
        t3 = TerminalPresence("T3", self.NOW - 3600.0, None, {"accepted.safety": 1})
        return PresenceSummary(registered=5, online=2, seen=3, window_s=900.0, recent=(t1, t2, t3))

    def test_totals_line_and_recent_table(self) -> None:
        """satgw status says how many terminals are registered, online and seen, then the recent ones newest first."""
        text = render(summarize(depths(), {}, self.summary(), now=self.NOW), color=False)
        assert "terminals: 5 registered, 2 online (seen within 15m00s), 3 ever seen" in text
        section = text.split("terminals: ", 1)[1].split("\n", 1)[1]  # the table under the totals line
        rows = table_rows(section, "terminal")
        assert rows["T1"] == ["4.2s", "yes", "59.91391,10.75225", "8", "3"]
        assert rows["T2"] == ["2m05s", "yes", "-", "3", "0"]
        assert rows["T3"] == ["1h00m", "no", "-", "1", "0"]

    def test_json_form(self) -> None:
        """satgw status --json carries the totals and each recent terminal with online, position and counters."""
        got = terminals_json(self.summary(), now=self.NOW)
        assert {k: got[k] for k in ("registered", "online", "seen", "online_window_s")} == {
            "registered": 5,
            "online": 2,
            "seen": 3,
            "online_window_s": 900.0,
        }
        first, *_, last = got["recent"]
        assert first["last_position"] == {"lat": 59.91391, "lon": 10.75225, "at": self.NOW - 4.2}
        assert (first["online"], first["counters"]["duplicates"]) == (True, 2)
        assert (last["terminal"], last["online"], last["last_position"]) == ("T3", False, None)

    def test_no_terminal_section_without_presence(self) -> None:
        """Without a presence summary (an older caller) nothing about terminals is printed."""
        assert "terminals" not in render(summarize(depths(), {}), color=False)

    def test_none_seen_yet(self) -> None:
        """A fresh gateway prints the totals line alone."""
        empty = PresenceSummary(registered=2, online=0, seen=0, window_s=900.0)
        text = render(summarize(depths(), {}, empty, now=self.NOW), color=False)
        assert "terminals: 2 registered, 0 online (seen within 15m00s), 0 ever seen" in text
        assert "refused" not in text


class TestColourChoice:
    @pytest.mark.parametrize(
        ("choice", "isatty", "environ", "expected"),
        [
            ("always", False, {}, True),
            ("never", True, {}, False),
            ("auto", True, {}, True),
            ("auto", False, {}, False),
            ("auto", True, {"NO_COLOR": "1"}, False),
            ("auto", True, {"NO_COLOR": ""}, True),
            ("auto", True, {"TERM": "dumb"}, False),
        ],
    )
    def test_choice(self, choice: str, isatty: bool, environ: dict[str, str], expected: bool) -> None:
        """always and never win; auto colours a TTY unless NO_COLOR is set or TERM is dumb."""
        assert use_color(choice, isatty=isatty, environ=environ) is expected

    def test_unknown_choice(self) -> None:
        """Any other choice is a ValueError naming it."""
        with pytest.raises(ValueError, match="'sometimes'"):
            use_color("sometimes", isatty=True, environ={})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (-1.0, "0.0s"), (4.24, "4.2s"), (187, "3m07s"), (5 * 3600 + 125, "5h02m"), (76 * 3600, "3d04h")],
)
def test_format_age(seconds: float | None, text: str) -> None:
    """Ages read short: seconds with a tenth, then minutes, hours and days with the next unit."""
    assert format_age(seconds) == text


class TestIncidents:
    @staticmethod
    def incident(state: IncidentState) -> Incident:
        return Incident(
            id="T7-3",
            terminal="T7",
            state=state,
            opened_at=1000.0,
            updated_at=1100.0,
            nature="fire aboard",
            position=Position(30.5, 122.25),
            alerts=(AlertRef("satgw.n1.T7-3.1", 1000.0, "Alert"),),
        )

    def test_active_incidents_come_right_after_the_distress_line_in_red(self) -> None:
        """An open SOS incident is announced in red near the top with its state, age, position and alerts."""
        summary = summarize(depths(), COUNTERS, now=1300.0, incidents=[self.incident(IncidentState.OPEN)])
        text = render(summary, color=True)
        lines = ANSI.sub("", text).splitlines()
        assert lines[2] == "!! SOS INCIDENTS ACTIVE: 1"
        assert lines[3].split() == ["incident", "state", "age", "position", "emergency", "CAP", "alerts"]
        assert lines[4].split() == ["T7-3", "open", "5m00s", "30.50000,122.25000", "fire", "aboard", "1"]
        assert f"{RED}!! SOS INCIDENTS ACTIVE: 1" in text

    def test_finished_incidents_are_not_shown(self) -> None:
        """Closed and cancelled incidents leave no incident table."""
        ended = [self.incident(IncidentState.CLOSED), self.incident(IncidentState.CANCELLED)]
        assert "SOS INCIDENTS" not in render(summarize(depths(), COUNTERS, incidents=ended), color=False)


def test_downlink_table_shows_only_when_something_waits_to_go_down() -> None:
    """Messages waiting to go down to terminals get a table of their own; an idle downlink none."""
    waiting = [Depth(p, depth=2 if p is Priority.SAFETY else 0, pending=0, oldest_age_s=None) for p in Priority]
    shown = table_rows(render(summarize(depths(), COUNTERS, downlink=waiting), color=False), "downlink")
    assert shown["safety"] == ["2", "0", "-"]
    idle = [Depth(p, 0, 0, None) for p in Priority]
    assert "downlink" not in render(summarize(depths(), COUNTERS, downlink=idle), color=False)
