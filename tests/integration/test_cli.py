"""The ``satgw`` command as a user runs it: a subprocess against the real Redis and Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from gateway.cli import main
from gateway.credentials import Credentials
from gateway.names import Keys
from gateway.queue import Accepted, Queue
from gateway.terminals import Registry
from protocols.envelope import Priority
from protocols.seal import decode_key, open_sealed, peek_header
from tests.harness import (
    MQTT_URL,
    REDIS_URL,
    config_with,
    delete_prefix,
    eventually,
    observing,
    running_gateway,
    settings_for,
    unique_prefix,
)

pytestmark = pytest.mark.integration

_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Run:
    """What one ``satgw`` invocation did."""

    code: int
    out: str
    err: str


async def satgw(prefix: str, *args: str, **env: str) -> Run:
    """Run ``python -m gateway ARGS`` with the test services and ``prefix``, without blocking the event loop."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SATGW_")}
    environ |= {"SATGW_REDIS_URL": REDIS_URL, "SATGW_MQTT_URL": MQTT_URL, "SATGW_TOPIC_PREFIX": prefix} | env
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def ok(prefix: str, *args: str) -> Run:
    """Run ``satgw ARGS`` and fail the test unless it exits 0."""
    run = await satgw(prefix, *args)
    assert run.code == 0, f"satgw {' '.join(args)} exited {run.code}: {run.err}"
    return run


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A topic and key prefix of this test's own; its keys are deleted afterwards."""
    name = unique_prefix()
    yield name
    await delete_prefix(REDIS_URL, name)


async def add_terminal(prefix: str, terminal: str, tmp_path: Path) -> Path:
    """``satgw terminal add`` and return the credentials file."""
    creds = tmp_path / f"{terminal}.json"
    await ok(prefix, "terminal", "add", terminal, "--out", str(creds))
    return creds


async def provisioned(prefix: str, terminal: str, tmp_path: Path) -> Path:
    """Register ``terminal`` in-process (quicker than a process) and write its credentials file."""
    async with Redis.from_url(REDIS_URL) as redis:
        record = await Registry(redis=redis, keys=Keys(prefix)).add(terminal)
    creds = tmp_path / f"{terminal}.json"
    Credentials(terminal=terminal, key=record.key, mqtt_url=MQTT_URL, topic_prefix=prefix).save(creds)
    return creds


def listed(run: Run) -> dict[str, str]:
    """``terminal list`` output as terminal id → state (active or revoked)."""
    rows = [line.split() for line in run.out.splitlines() if line.strip()]
    return {row[0]: row[-1] for row in rows}


class TestTerminalAdmin:
    async def test_add_writes_private_credentials_and_lists_the_terminal(self, prefix: str, tmp_path: Path) -> None:
        """``terminal add ID --out FILE`` writes 0600 JSON credentials and the terminal is listed as active."""
        creds = await add_terminal(prefix, "T100", tmp_path)
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        document = json.loads(creds.read_text())
        assert (document["terminal"], document["topic_prefix"], document["mqtt_url"]) == ("T100", prefix, MQTT_URL)
        assert len(decode_key(document["key"])) == 32
        assert listed(await ok(prefix, "terminal", "list")) == {"T100": "active"}

    async def test_adding_an_existing_terminal_fails_clearly(self, prefix: str, tmp_path: Path) -> None:
        """Adding a registered id again exits non-zero with a one-line message naming it, and writes no file."""
        await add_terminal(prefix, "T101", tmp_path)
        again = tmp_path / "again.json"
        run = await satgw(prefix, "terminal", "add", "T101", "--out", str(again))
        assert run.code != 0
        assert "T101" in run.err
        assert "already registered" in run.err
        assert "Traceback" not in run.err
        assert not again.exists()

    async def test_add_with_an_unwritable_out_file_registers_nothing(self, prefix: str, tmp_path: Path) -> None:
        """If the credentials file cannot be written, ``terminal add`` fails cleanly and leaves no terminal behind."""
        taken = tmp_path / "taken.json"
        taken.write_text("{}")
        run = await satgw(prefix, "terminal", "add", "T102", "--out", str(taken))
        assert run.code != 0
        assert "T102" not in listed(await ok(prefix, "terminal", "list"))  # else its key is lost and the id taken
        assert "Traceback" not in run.err

    async def test_revoke_shows_revoked_in_the_list(self, prefix: str, tmp_path: Path) -> None:
        """``terminal revoke ID`` marks the terminal revoked in ``terminal list``; others stay active."""
        await asyncio.gather(add_terminal(prefix, "T103", tmp_path), add_terminal(prefix, "T104", tmp_path))
        run = await ok(prefix, "terminal", "revoke", "T103")
        assert "T103" in run.out
        assert listed(await ok(prefix, "terminal", "list")) == {"T103": "revoked", "T104": "active"}

    async def test_revoking_an_unknown_terminal_fails_clearly(self, prefix: str) -> None:
        """Revoking an id that was never added exits 2 with a message naming it."""
        run = await satgw(prefix, "terminal", "revoke", "nobody")
        assert run.code == 2
        assert "nobody" in run.err
        assert "not registered" in run.err
        assert "Traceback" not in run.err


class TestTerminalSend:
    async def test_raw_out_writes_a_sealed_payload(self, prefix: str, tmp_path: Path) -> None:
        """``terminal send --raw-out F`` writes the exact payload, which opens with the terminal's key."""
        terminal = f"S{prefix}"  # `terminal send` connects as "{id}-cli": unique, so parallel runs never collide
        creds = await provisioned(prefix, terminal, tmp_path)
        raw = tmp_path / "payload.bin"
        run = await ok(
            prefix, "terminal", "send", "--creds", str(creds), "--text", "hi", "--receipt", "--raw-out", str(raw)
        )
        assert run.out.split()[0] == f"{prefix}/up/{terminal}"
        payload = raw.read_bytes()
        key = decode_key(json.loads(creds.read_text())["key"])
        message = open_sealed(payload, key, peek_header(payload))
        assert (message.terminal, message.body, message.priority, message.receipt) == (
            terminal,
            "hi",
            Priority.ROUTINE,
            True,
        )

    async def test_send_count_is_delivered_through_a_running_gateway(self, prefix: str, tmp_path: Path) -> None:
        """``terminal send --count 3 --receipt`` publishes three messages that a running gateway delivers."""
        terminal = f"S{prefix}"  # `terminal send` connects as "{id}-cli": unique, so parallel runs never collide
        creds = await provisioned(prefix, terminal, tmp_path)
        settings = settings_for(prefix)
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            await ok(prefix, "terminal", "send", "--creds", str(creds), "--text", "hi", "--count", "3", "--receipt")
            await eventually(lambda: len(seen.delivered) >= 3, what="three deliveries")
            seqs = sorted(d["seq"] for d in seen.delivered)
            await eventually(
                lambda: all("delivered" in seen.receipts_of(terminal, s) for s in seqs), what="delivered receipts"
            )
        assert len(seen.delivered) == 3
        assert len(set(seqs)) == 3
        assert {(d["terminal"], d["body"]) for d in seen.delivered} == {(terminal, "hi")}
        assert all(seen.receipts_of(terminal, s)[0] == "accepted" for s in seqs)

    @pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub is not installed")
    async def test_raw_payload_published_with_mosquitto_pub_is_delivered(self, prefix: str, tmp_path: Path) -> None:
        """A payload from ``--raw-out`` published by plain ``mosquitto_pub`` is delivered like any other."""
        terminal = f"S{prefix}"  # `terminal send` connects as "{id}-cli": unique, so parallel runs never collide
        creds = await provisioned(prefix, terminal, tmp_path)
        raw = tmp_path / "payload.bin"
        await ok(prefix, "terminal", "send", "--creds", str(creds), "--text", "from the shell", "--raw-out", str(raw))
        broker = urlsplit(MQTT_URL)
        settings = settings_for(prefix)
        async with running_gateway(settings, config_with()), observing(settings) as seen:
            pub = await asyncio.create_subprocess_exec(
                "mosquitto_pub", "-h", broker.hostname or "127.0.0.1", "-p", str(broker.port or 1883),
                "-q", "1", "-t", f"{prefix}/up/{terminal}", "-f", str(raw),
            )  # fmt: skip
            assert await asyncio.wait_for(pub.wait(), _TIMEOUT_S) == 0
            await eventually(lambda: len(seen.delivered) == 1, what="the delivery")
        assert (seen.delivered[0]["terminal"], seen.delivered[0]["body"]) == (terminal, "from the shell")


async def _queue_some(prefix: str) -> None:
    async with Redis.from_url(REDIS_URL) as redis:
        queue = Queue(redis=redis, keys=Keys(prefix), consumer="cli-test")
        await queue.setup()
        now = time.time()
        items = [
            Accepted(f"T300:{seq}", "T300", seq, priority, b"record", now, None, False)
            for seq, priority in enumerate([Priority.ROUTINE, Priority.ROUTINE, Priority.DISTRESS], start=1)
        ]
        await queue.enqueue(items)


class TestStatus:
    async def test_status_json_reports_every_class(self, prefix: str) -> None:
        """``status --json`` prints one JSON object with depth and pending for each of the four classes."""
        await _queue_some(prefix)
        queues = json.loads((await ok(prefix, "status", "--json")).out)["queues"]
        assert set(queues) == {"distress", "urgency", "safety", "routine"}
        depths = {name: (q["depth"], q["pending"]) for name, q in queues.items()}
        assert depths == {"distress": (1, 0), "urgency": (0, 0), "safety": (0, 0), "routine": (2, 0)}
        assert queues["urgency"]["oldest_age_s"] is None
        assert queues["routine"]["oldest_age_s"] >= 0

    async def test_status_before_the_first_run_shows_empty_queues(self, prefix: str) -> None:
        """``status --json`` on a gateway that never ran reports four empty queues instead of a Redis error."""
        queues = json.loads((await ok(prefix, "status", "--json")).out)["queues"]
        assert {name: q["depth"] for name, q in queues.items()} == dict.fromkeys(
            ["distress", "urgency", "safety", "routine"], 0
        )


class TestConfigAndHelp:
    @pytest.mark.parametrize(
        ("toml", "named"),
        [
            ("[relay]\npack_maxx = 3\n", "pack_maxx"),
            ("bogus = 1\n", "bogus"),
            ("[[links]]\nname='a'\nmax_frame_bytes=100\ninterval_s=0\nfreq=1\n", "freq"),
        ],
    )
    async def test_unknown_config_key_exits_2_naming_it(
        self, prefix: str, tmp_path: Path, toml: str, named: str
    ) -> None:
        """A SATGW_CONFIG TOML with an unknown key stops the command with exit 2 and a message naming the key."""
        path = tmp_path / "satgw.toml"
        path.write_text(toml)
        run = await satgw(prefix, "status", SATGW_CONFIG=str(path))
        assert run.code == 2
        assert named in run.err
        assert str(path) in run.err
        assert "Traceback" not in run.err

    async def test_help_runs_as_a_command(self, prefix: str) -> None:
        """``satgw --help`` run as a process prints usage listing every command and exits 0."""
        run = await ok(prefix, "--help")
        assert run.out.startswith("usage: satgw")
        assert all(name in run.out for name in ("run", "demo", "terminal", "status", "bench"))

    # In-process: argparse exits before anything else runs, and one process per subcommand costs ~1 s each.
    @pytest.mark.parametrize(
        "command",
        [["run"], ["demo"], ["status"], ["bench"], ["bench", "ingest"], ["terminal"], ["terminal", "add"],
         ["terminal", "list"], ["terminal", "revoke"], ["terminal", "send"]],
        ids=" ".join,
    )  # fmt: skip
    def test_every_subcommand_has_help(self, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """``satgw SUBCOMMAND --help`` prints that subcommand's usage and exits 0."""
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: satgw {' '.join(command)}")
