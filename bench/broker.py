"""A private Mosquitto for the bench, on a free loopback port, configured to hold a whole backlog.

Mosquitto keeps at most ``max_queued_messages`` (default 1000) QoS 1 messages per client beyond
those in flight, online or offline, and drops the rest without a word. A subscriber that falls
behind the publisher (the naive bridge does, by tens of thousands) would lose messages and never
reach the count the bench waits for; the broker-preloaded drain queues every message for an
offline session. So the bench runs its own broker with the limit raised, the same for every variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from bench.publisher import Publisher

__all__ = ["PrivateBroker", "find_mosquitto"]

_SBIN = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0
# In flight per subscriber: as satgw's default receive maximum, and perf.md §3e showed Mosquitto's default
# of 20 costs 7-10 % at saturation. MQTT 5 clients (satgw) may ask for fewer; 3.1.1 clients (aiomqtt) get this.
_INFLIGHT = 1000


def find_mosquitto() -> str | None:
    """Return the path of the ``mosquitto`` binary (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((path for path in _SBIN if os.access(path, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateBroker:
    """A Mosquitto process of our own, as an async context manager.

    Args:
        binary: the ``mosquitto`` executable.
        workdir: where its config and log go (the caller removes it).
    """

    def __init__(self, *, binary: str, workdir: Path) -> None:
        if not workdir.is_dir():
            raise ValueError(f"workdir {workdir} is not a directory")
        self._binary = binary
        self._workdir = workdir
        self.host = "127.0.0.1"
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of this broker."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def version(self) -> str:
        """The first line of ``mosquitto -h``, e.g. ``mosquitto version 2.0.11``."""
        result = subprocess.run([self._binary, "-h"], capture_output=True, text=True, check=False)
        return (result.stdout or result.stderr).splitlines()[0].strip() if (result.stdout or result.stderr) else "?"

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            f"max_inflight_messages {_INFLIGHT}",
            f"log_dest file {self._workdir / 'mosquitto.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user 'mosquitto', who cannot read our private folder
        path = self._workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def __aenter__(self) -> PrivateBroker:
        self.port = _free_port()
        config = self._config()
        self.process = await asyncio.create_subprocess_exec(
            self._binary, "-c", str(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.returncode is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self._workdir}")
            try:
                async with Publisher(host=self.host, port=self.port, client_id="satgw-bench-probe"):
                    return
            except (TimeoutError, OSError):
                if loop.time() > deadline:
                    raise RuntimeError(f"mosquitto did not answer on {self.url} within {_START_TIMEOUT_S} s") from None
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and forget every session it held."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
