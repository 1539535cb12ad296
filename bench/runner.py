"""One measured run of one subject, by either method.

live: the subject runs and is warm; a publisher process publishes the N messages as fast as the
broker takes them; rate = N / (first publish → the moment all N are durable in Redis).

drain: the subject's persistent session is offline while the broker takes all N; then the subject
starts; rate = messages persisted / (first one durable → last one durable). No publisher competes
for the CPU, so this is the subject's own ceiling (perf.md §3c, §3e).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Child, CpuMeter
from bench.publisher import publish, write_messages
from bench.subjects import BenchError, Subject
from bench.workload import Workload, on_topics

__all__ = ["Runner", "Sample"]

_POLL_S = 0.01  # a poll costs the bench ~0.1 ms of CPU; 10 ms is 0.3 % of a 3 s window
_STALL_S = 20.0
_READY_TIMEOUT_S = 30.0
_PROBE_WAIT_S = 0.2


@dataclass(frozen=True, slots=True)
class Sample:
    """One run: messages per second, the window it took, and CPU % per process over that window."""

    rate: float
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)


class Runner:
    """Runs subjects against one broker and one workload.

    Args:
        host: the broker's address.
        port: the broker's port.
        workload: the messages.
        workdir: where message files and logs go.
        pids: other processes whose CPU use is worth reporting (``broker``, ``redis``).
    """

    def __init__(self, *, host: str, port: int, workload: Workload, workdir: Path, pids: dict[str, int | None]) -> None:
        self._host, self._port, self._workload, self._workdir, self._pids = host, port, workload, workdir, pids

    async def live(self, subject: Subject) -> Sample:
        """Measure publish → durable with the subject running and warm."""
        await subject.start()
        base = await self._warm(subject)
        publisher = await self._publisher(subject)
        try:
            meter = self._meter(subject)
            meter.start()
            _go(publisher)
            done = await self._wait_count(subject, base + len(self._workload.measured), since=base)
            cpu = meter.percent()
            first, publisher_cpu_s = await self._published(publisher)
        finally:
            await publisher.stop()
        await subject.stop()
        cpu["publisher"] = round(100 * publisher_cpu_s / (done - first), 1)  # it has exited: /proc cannot tell
        return Sample(len(self._workload.measured) / (done - first), done - first, _with_others(cpu))

    async def drain(self, subject: Subject) -> Sample:
        """Measure how fast the subject empties a broker backlog queued for its offline session."""
        await subject.start()
        base = await self._warm(subject)
        await subject.stop()
        publisher = await self._publisher(subject)
        try:
            _go(publisher)
            await self._published(publisher)
        finally:
            await publisher.stop()
        await subject.start()
        started, count0 = await self._first_progress(subject, base)
        meter = self._meter(subject)
        meter.start()
        target = base + len(self._workload.measured)
        done = await self._wait_count(subject, target, since=base)
        cpu = meter.percent()
        await subject.stop()
        return Sample((target - count0) / max(done - started, 1e-9), done - started, _with_others(cpu))

    def _meter(self, subject: Subject) -> CpuMeter:
        assert subject.child is not None
        return CpuMeter({"subject": subject.child.pid, **self._pids})

    async def _warm(self, subject: Subject) -> int:
        """Wait until the subject takes messages, send one per terminal, and return the settled count."""
        await self._await_ready(subject)
        before = await subject.durable()
        await publish(self._host, self._port, "satgw-bench-warmup", on_topics(self._workload.warmup, subject.topics))
        await self._wait_count(subject, before + len(self._workload.warmup), since=before)
        await asyncio.sleep(0.1)  # a late probe may still land; count it now, not in the measured window
        return await subject.durable()

    async def _await_ready(self, subject: Subject) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive(subject)
            probe = on_topics([self._workload.probe()], subject.topics)
            await publish(self._host, self._port, "satgw-bench-probe", probe)
            wait_until = time.monotonic() + _PROBE_WAIT_S
            while time.monotonic() < wait_until:
                if await subject.durable() > 0:
                    return
                await asyncio.sleep(_POLL_S * 2)
        raise BenchError(f"{subject.label} took no message within {_READY_TIMEOUT_S:.0f} s{_tail(subject)}")

    async def _publisher(self, subject: Subject) -> Child:
        path = self._workdir / f"{subject.topics.prefix}.msgs"
        write_messages(path, on_topics(self._workload.measured, subject.topics))
        argv = [sys.executable, "-m", "bench.publisher", self._host, str(self._port), str(path)]
        log = self._workdir / f"{subject.topics.prefix}-publisher.log"
        child = await Child.start(
            [*argv, "--client-id", f"{subject.topics.prefix}-pub"], name="publisher", log=log, stdio=True
        )
        assert child.process.stdout is not None
        if (await child.process.stdout.readline()).strip() != b"ready":
            await child.stop()
            raise BenchError(f"the publisher did not start:\n{child.tail()}")
        return child

    async def _published(self, publisher: Child) -> tuple[float, float]:
        """Wait for the publisher's report; return the monotonic time of its first publish and its CPU seconds."""
        assert publisher.process.stdout is not None
        line = await publisher.process.stdout.readline()
        try:
            report = json.loads(line)
        except ValueError:
            raise BenchError(f"the publisher failed:\n{publisher.tail()}") from None
        if report["count"] != len(self._workload.measured):
            raise BenchError(f"the publisher sent {report['count']} of {len(self._workload.measured)}")
        return float(report["first_publish"]), float(report["cpu_s"])

    async def _first_progress(self, subject: Subject, base: int) -> tuple[float, int]:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            count = await subject.durable()
            if count > base:
                return time.monotonic(), count
            self._check_alive(subject)
            await asyncio.sleep(_POLL_S)
        raise BenchError(f"{subject.label} took no queued message within {_READY_TIMEOUT_S:.0f} s{_tail(subject)}")

    async def _wait_count(self, subject: Subject, target: int, *, since: int) -> float:
        """Poll until the subject holds ``target`` messages; return the monotonic time it did."""
        last, last_change = -1, time.monotonic()
        while True:
            count = await subject.durable()
            now = time.monotonic()
            if count >= target:
                return now
            if count != last:
                last, last_change = count, now
            elif now - last_change > _STALL_S:
                raise BenchError(
                    f"{subject.label} stalled at {count - since} of {target - since} messages for {_STALL_S:.0f} s "
                    f"(did the broker drop some? its max_queued_messages must hold the backlog){_tail(subject)}"
                )
            self._check_alive(subject)
            await asyncio.sleep(_POLL_S)

    @staticmethod
    def _check_alive(subject: Subject) -> None:
        if subject.child is None or subject.child.exited:
            raise BenchError(f"{subject.label} is not running{_tail(subject)}")


def _with_others(cpu: dict[str, float]) -> dict[str, float]:
    """Add ``others``: what the machine was busy with beyond the processes named (other people's work)."""
    if "machine" in cpu:
        named = sum(v for k, v in cpu.items() if k != "machine")
        cpu["others"] = round(max(cpu["machine"] - named, 0.0), 1)
    return cpu


def _go(publisher: Child) -> None:
    assert publisher.process.stdin is not None
    publisher.process.stdin.write(b"go\n")


def _tail(subject: Subject) -> str:
    if subject.child is None:
        return ""
    return f"; its last output:\n{subject.child.tail()}"
