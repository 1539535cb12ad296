"""Child processes of the bench, and the CPU time they use (from ``/proc/<pid>/stat``).

Every system under test and the publisher run in processes of their own, so each gets a core
of its own as in production, and their CPU use can be told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Child", "CpuMeter", "busy_seconds", "cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")
_STOP_TIMEOUT_S = 15.0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid``, or None if it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces; it ends at the last ')'
    return (int(fields[11]) + int(fields[12])) / _TICKS


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (all cores, all processes), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # all but idle and iowait


class CpuMeter:
    """CPU use of named processes, and of the whole ``machine``, over a window (100 % = one core).

    Call :meth:`start`, then :meth:`percent`. The machine's figure minus the named ones is what
    other processes took: on a shared 2-core box, the first thing to check when figures drop.
    """

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._start: dict[str, float | None] = {}
        self._t0 = 0.0

    def _read(self) -> dict[str, float | None]:
        return {"machine": busy_seconds(), **{name: cpu_seconds(pid) for name, pid in self._pids.items()}}

    def start(self) -> None:
        """Begin the window now."""
        self._t0 = time.monotonic()
        self._start = self._read()

    def percent(self) -> dict[str, float]:
        """CPU % of each process and the machine since :meth:`start` (processes that vanished are left out)."""
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        out = {}
        for name, now in self._read().items():
            before = self._start.get(name)
            if before is not None and now is not None:
                out[name] = round(100 * (now - before) / elapsed, 1)
        return out


class Child:
    """A process started by the bench; its output goes to ``log``, so a failure can show its tail."""

    def __init__(self, process: asyncio.subprocess.Process, *, name: str, log: Path) -> None:
        self.process = process
        self.name = name
        self.log = log

    @classmethod
    async def start(
        cls, argv: Sequence[str], *, name: str, log: Path, env: Mapping[str, str] | None = None, stdio: bool = False
    ) -> Child:
        """Start ``argv``; with ``stdio`` its stdin and stdout are pipes, else stdout joins the log."""
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdio else out,
                stderr=out,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the bench only; it stops its children
            )
        return cls(process, name=name, log=log)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def exited(self) -> bool:
        """True once the process has ended."""
        return self.process.returncode is not None

    def tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of the process's output."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> int:
        """Ask the process to end (SIGTERM), kill it after ``timeout_s``, and return its exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        return await self.process.wait()
