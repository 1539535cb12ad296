"""``satgw demo``, as a newcomer runs it: it finishes, reports every class, and loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.harness import MQTT_URL, REDIS_URL

pytestmark = pytest.mark.e2e


def test_demo_runs_to_its_report_and_exits_zero() -> None:
    """A short demo prints the per-class table with lost 0 and exits 0 (it once hung on shutdown)."""
    env = os.environ | {"SATGW_REDIS_URL": REDIS_URL, "SATGW_MQTT_URL": MQTT_URL}
    argv = [sys.executable, "-m", "gateway", "demo", "--terminals", "5", "--duration", "2", "--rate", "100"]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for label in ("distress", "urgency", "safety", "routine"):
        assert f"\n{label}" in run.stdout
    assert "lost: 0" in run.stdout
