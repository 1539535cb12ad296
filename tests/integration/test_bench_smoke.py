"""Smoke test of ``satgw bench ingest``: a short run end to end, through the real command.

It runs satgw (a real ``satgw run`` process) and the naive bridge against a private Mosquitto
the bench starts and the real Redis, so it checks the harness works and reports sane figures;
it does not check the targets, which need the full-size run on a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from redis.asyncio import Redis

from bench.broker import find_mosquitto
from tests.integration.conftest import REDIS_URL

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_mosquitto() is None, reason="the bench starts its own mosquitto; none is installed"),
]

_MESSAGES = 2000
_CLI = "import sys; from gateway.cli import main; sys.exit(main())"


_TAG = f"smoke{uuid.uuid4().hex[:6]}"
"""Marks this test's bench keys, so a bench running meanwhile cannot fail the clean-up check."""


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATGW_")}
    env["SATGW_REDIS_URL"] = REDIS_URL
    env["SATGW_BENCH_TAG"] = _TAG
    argv = [sys.executable, "-c", _CLI, "bench", "ingest", "--messages", str(_MESSAGES), "--runs", "1", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


async def _bench_keys(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter(match="{bench" + _TAG + "*", count=1000)]


class TestBenchIngest:
    """The ingest benchmark, run small."""

    @pytest.mark.timeout(90)
    async def test_json_report_has_both_rates_and_leaves_nothing_behind(self, redis: Redis) -> None:
        """`--json` prints one object with positive rates for both systems and both methods, and cleans up."""
        before = set(await _bench_keys(redis))
        result = _bench("--json")
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout)
        assert report["messages"] == _MESSAGES
        assert report["runs"] == 1
        for figures in (report, report["drain"]):
            assert figures["satgw_msgs_per_s"] > 0
            assert figures["naive_msgs_per_s"] > 0
            assert figures["ratio"] == pytest.approx(figures["satgw_msgs_per_s"] / figures["naive_msgs_per_s"], 0.01)
            assert len(figures["satgw_runs"]) == len(figures["naive_runs"]) == 1
            assert figures["satgw_cpu_percent"]["subject"] > 0
        assert 90 <= report["payload_bytes"] <= 130
        assert isinstance(report["targets"]["met"], bool)
        assert set(await _bench_keys(redis)) <= before  # every key the bench made is gone
