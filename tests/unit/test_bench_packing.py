"""``satgw bench packing``: the simulated hour on a BDS-2 level-3 card, packed against one message per send."""

from __future__ import annotations

import json

import pytest

from bench.packing import backlog, run
from gateway.cli import main


async def test_packing_carries_more_than_one_message_per_transmission() -> None:
    """Packed, the card carries at least three times the small telemetry an hour that single sends do."""
    records = backlog(500, seed=3, positions=False)
    single = await run("single", records, seed=3)
    packed = await run("packed", records, seed=3)
    assert 55 <= single.messages <= 61  # one send a minute, a few lost and sent again
    assert packed.messages >= 3 * single.messages
    assert packed.frames == single.frames


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object with messages per hour and the ratio per workload."""
    assert main(["bench", "packing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    telemetry = report["workloads"]["telemetry"]
    assert telemetry["ratio"] == pytest.approx(
        telemetry["packed_msgs_per_hour"] / telemetry["single_msgs_per_hour"], abs=0.01
    )
