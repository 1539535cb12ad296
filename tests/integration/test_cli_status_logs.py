"""``satgw status`` as a table and the log format of ``satgw`` processes, run as a user runs them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import REDIS_URL, delete_prefix, unique_prefix
from tests.integration.test_cli import _queue_some, ok, provisioned, satgw

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A topic and key prefix of this test's own; its keys are deleted afterwards."""
    name = unique_prefix()
    yield name
    await delete_prefix(REDIS_URL, name)


class TestStatusTable:
    async def test_table_off_a_tty_has_no_colour(self, prefix: str) -> None:
        """Piped, ``status`` prints the class table and the distress alarm without escape codes."""
        await _queue_some(prefix)
        out = (await ok(prefix, "status")).out
        assert "\x1b" not in out
        assert out.splitlines()[0].startswith("!! DISTRESS WAITING: 1 (1 queued, 0 in transmission)")
        rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines() if line.strip()}
        assert (rows["distress"], rows["urgency"], rows["routine"]) == (["1", "0"], ["0", "0"], ["2", "0"])

    async def test_color_always_paints_distress(self, prefix: str) -> None:
        """``--color always`` colours the table even through a pipe; the text under the codes is the same."""
        await _queue_some(prefix)
        plain, coloured = (await ok(prefix, "status")).out, (await ok(prefix, "status", "--color", "always")).out
        assert coloured.startswith("\x1b[1;31m!! DISTRESS WAITING")
        assert _without_ages(ANSI.sub("", coloured)) == _without_ages(plain)

    async def test_json_never_coloured(self, prefix: str) -> None:
        """``--json --color always`` still prints plain JSON: queues both ways, counters, terminals, incidents."""
        await _queue_some(prefix)
        out = (await ok(prefix, "status", "--json", "--color", "always")).out
        assert "\x1b" not in out
        assert set(json.loads(out)) == {"queues", "downlink", "counters", "terminals", "incidents"}


class TestLogFormat:
    async def test_logs_off_a_tty_are_json_lines_without_the_key(self, prefix: str, tmp_path: Path) -> None:
        """A warning from a piped ``satgw`` is one JSON object on stderr, and the terminal key is not in it."""
        creds = await _readable_creds(prefix, tmp_path)
        run = await satgw(prefix, "terminal", "send", "--creds", str(creds), "--raw-out", str(tmp_path / "p.bin"))
        assert run.code == 0, run.err
        (line,) = run.err.splitlines()
        record = json.loads(line)
        assert (record["level"], record["logger"]) == ("WARNING", "gateway.credentials")
        assert "chmod 600" in record["msg"]
        assert json.loads(creds.read_text())["key"] not in run.err

    async def test_log_format_text_overrides(self, prefix: str, tmp_path: Path) -> None:
        """``SATGW_LOG_FORMAT=text`` gives the human line even through a pipe."""
        creds = await _readable_creds(prefix, tmp_path)
        raw = str(tmp_path / "p.bin")
        run = await satgw(prefix, "terminal", "send", "--creds", str(creds), "--raw-out", raw, SATGW_LOG_FORMAT="text")
        assert run.code == 0, run.err
        assert " WARNING gateway.credentials: " in run.err
        assert not run.err.startswith("{")

    async def test_bad_log_format_exits_2(self, prefix: str) -> None:
        """An unknown ``SATGW_LOG_FORMAT`` stops the command with exit 2 and a one-line message naming it."""
        run = await satgw(prefix, "status", SATGW_LOG_FORMAT="yaml")
        assert run.code == 2
        assert run.err.strip() == "satgw: SATGW_LOG_FORMAT must be json or text, got 'yaml'"


async def _readable_creds(prefix: str, tmp_path: Path) -> Path:
    """A provisioned terminal's credentials file that others may read, so loading it logs a warning."""
    creds = await provisioned(prefix, f"L{prefix}", tmp_path)
    creds.chmod(0o644)
    return creds


def _without_ages(text: str) -> str:
    """``text`` with ages (which move between two runs) blanked."""
    return re.sub(r"\d+(\.\d)?s|\d+m\d\ds", "AGE", text)
