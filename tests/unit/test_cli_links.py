"""``satgw links passes``: the pass-window command, run through a parser built with gateway.cli_links.register."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from gateway.cli_links import register
from gateway.links.orbits import Site, find_passes, iso_utc, load_tle

BEIJING = ["--lat", "39.9042", "--lon", "116.4074", "--alt", "50"]
DAY_START = "2026-11-26T00:00:00Z"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse ``argv`` with a fresh parser holding only the links commands, run the command, return (code, out, err)."""
    parser = argparse.ArgumentParser(prog="satgw")
    register(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    code = asyncio.run(args.command(args))
    out, err = capsys.readouterr()
    return code, out, err


def passes_argv(*extra: str, tle: str = "swarm-like") -> list[str]:
    return ["links", "passes", "--tle", tle, *BEIJING, "--start", DAY_START, *extra]


class TestPasses:
    def test_prints_the_windows_as_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The output is a JSON list of passes with satellite, ISO-8601 UTC times, max elevation and duration."""
        code, out, err = run(passes_argv("--hours", "6"), capsys)
        assert (code, err) == (0, "")
        printed = json.loads(out)
        start = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
        expected = find_passes(load_tle("swarm-like"), Site(39.9042, 116.4074, 50.0), start, start + 6 * 3600.0)
        assert printed == [p.to_json() for p in expected]
        assert len(printed) >= 3
        assert printed[0] == {
            "satellite": "SWARMLIKE-1",
            "rise": "2026-11-26T01:18:46Z",
            "culmination": "2026-11-26T01:22:11Z",
            "set": "2026-11-26T01:25:34Z",
            "max_elevation_deg": 27.4,
            "duration_s": 407.7,
        }

    def test_defaults_are_a_day_at_ten_degrees(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --hours and --min-elevation the output equals that of --hours 24 --min-elevation 10."""
        _, defaults, _ = run(passes_argv(), capsys)
        _, explicit, _ = run(passes_argv("--hours", "24", "--min-elevation", "10"), capsys)
        _, shorter, _ = run(passes_argv("--hours", "12"), capsys)
        assert json.loads(defaults) == json.loads(explicit)
        assert len(json.loads(shorter)) < len(json.loads(defaults))
        assert json.loads(defaults)[-1]["rise"] > "2026-11-26T20:00:00Z"

    def test_mask_and_file_path_are_honoured(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A TLE file path works, and --min-elevation 40 keeps only passes peaking above 40°."""
        path = tmp_path / "iridium.tle"
        path.write_text((resources.files("gateway.links") / "tle" / "iridium-like.tle").read_text())
        code, out, _ = run(passes_argv("--min-elevation", "40", tle=str(path)), capsys)
        printed = json.loads(out)
        assert code == 0
        assert printed
        assert all(p["satellite"].startswith("IRIDIUMLIKE-") and p["max_elevation_deg"] >= 40.0 for p in printed)

    def test_start_defaults_to_now(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --start the window begins now: no pass in the output has set before the command ran."""
        before = time.time()
        code, out, _ = run(["links", "passes", "--tle", "iridium-like", *BEIJING, "--hours", "3"], capsys)
        assert code == 0
        assert all(p["set"] >= iso_utc(before - 1) for p in json.loads(out))

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (passes_argv(tle="/no/such.tle"), "TLE file /no/such.tle not found"),
            (["links", "passes", "--tle", "swarm-like", "--lat", "91", "--lon", "0"], "latitude must be between"),
            (passes_argv("--hours", "0"), "--hours must be above 0"),
            (passes_argv("--min-elevation", "95"), "min_elevation_deg must be between"),
            (["links", "passes", "--tle", "swarm-like", "--lat", "0", "--lon", "0", "--start", "soon"], "ISO-8601"),
        ],
    )
    def test_bad_input_is_one_line_and_exit_2(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        """A missing file, a latitude out of range, a zero window, a mask over 90° or a bad time: one line, exit 2."""
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1
        assert err.startswith("satgw links passes: ")
        assert message in err

    def test_bad_checksum_names_the_file_and_line(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A TLE file with one digit changed fails with its path, the line number and the checksum, exit 2."""
        text = (resources.files("gateway.links") / "tle" / "swarm-like.tle").read_text()
        path = tmp_path / "bad.tle"
        path.write_text(text.replace("97.5012  20.0000", "97.5013  20.0000", 1))
        code, _, err = run(passes_argv(tle=str(path)), capsys)
        assert code == 2
        assert f"{path} line 3: checksum is" in err
        assert err.count("\n") == 1
