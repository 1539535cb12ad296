"""``satgw bench ingest``: sealed QoS 1 messages, publish → durable in Redis, satgw against a naive bridge.

Both systems run in the same sitting, on the same machine, broker, Redis and workload, each in a
process of its own, interleaved run by run so drift hits both alike. The headline is the live
method (a local publisher process; rate = N / first publish → all N durable); the drain method
(the broker pre-loaded for an offline session) is reported beside it as each system's own ceiling.
See :mod:`bench.runner` for the methods and perf.md §3c-3e for where they come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.broker import PrivateBroker, find_mosquitto
from bench.procs import CpuMeter, cpu_seconds
from bench.runner import Runner, Sample
from bench.subjects import BenchError, Naive, Satgw, Services, Subject
from bench.workload import Workload
from gateway.config import Settings
from gateway.mqtt import BrokerAddress

__all__ = ["MIN_RATE", "MIN_RATIO", "run_bench"]

MIN_RATE = 15_000.0
"""Target: messages/s into Redis with PUBACK after persist, without receipts, on the 2-core box."""
MIN_RATIO = 2.5
"""Target: satgw against the naive bridge, measured in the same run."""
_TERMINALS = 1000
_MESSAGES_PER_TERMINAL = 10  # at least, so a short run (the smoke test) provisions fewer terminals
_VARIANTS = ("satgw", "naive")
_METHODS = ("live", "drain")
_NAMES = {"satgw": "satgw (gmqtt)", "naive": "naive (aiomqtt)"}
_CPU_COLUMNS = ("subject", "publisher", "broker", "redis", "bench", "others")
_BUSY_WARN_PERCENT = 25.0


@dataclass(frozen=True, slots=True)
class _Broker:
    url: str
    description: str
    private: bool
    pid: int | None


async def run_bench(settings: Settings, *, messages: int, runs: int, as_json: bool) -> int:
    """Run the ingest benchmark and print a table (or, with ``as_json``, one JSON object); return 0.

    Args:
        settings: where Redis is (and the broker, used only when no ``mosquitto`` binary is found).
        messages: messages per measured run.
        runs: runs per variant and method; medians are reported.
        as_json: print one JSON object instead of the table.

    Raises:
        BenchError: a process died, a count stalled, or a service is missing.
    """
    if messages < 1 or runs < 1:
        raise BenchError("--messages and --runs must be at least 1")
    terminals = max(1, min(_TERMINALS, messages // _MESSAGES_PER_TERMINAL))
    workload = Workload.build(terminals=terminals, messages=messages)
    busy = await _machine_busy()
    if busy > _BUSY_WARN_PERCENT:
        _say(
            f"the machine is {busy:.0f} % busy before the bench starts (100 = one core): figures will be low and noisy"
        )
    with tempfile.TemporaryDirectory(prefix="satgw-bench-") as tmp, _stop_on_sigterm():
        async with _broker(settings, Path(tmp)) as broker, Redis.from_url(settings.redis_url) as redis:
            samples = await _measure(settings, broker, redis, workload, Path(tmp), runs, quiet=as_json)
    report = _report(samples, workload=workload, runs=runs, broker=broker)
    report["machine_busy_before_percent"] = busy
    print(json.dumps(report) if as_json else _table(report))
    return 0


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into cancellation (as asyncio does for Ctrl-C), so every process and key is cleaned up."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    stopped = []

    def stop() -> None:
        stopped.append(signal.SIGTERM)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield
    except asyncio.CancelledError:
        if stopped:
            raise BenchError("stopped by SIGTERM; its processes and keys are cleaned up") from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.asynccontextmanager
async def _broker(settings: Settings, workdir: Path) -> AsyncIterator[_Broker]:
    binary = find_mosquitto()
    if binary is None:
        _say(
            f"no mosquitto binary found: using {settings.mqtt_url}, live only "
            "(its max_queued_messages must hold the backlog)"
        )
        yield _Broker(settings.mqtt_url, f"{settings.mqtt_url} (configured)", private=False, pid=None)
        return
    async with PrivateBroker(binary=binary, workdir=workdir) as broker:
        assert broker.process is not None
        description = f"{broker.version}, private on {broker.host}:{broker.port} (max_queued_messages 1000000)"
        yield _Broker(broker.url, description, private=True, pid=broker.process.pid)


async def _measure(
    settings: Settings, broker: _Broker, redis: Redis, workload: Workload, workdir: Path, runs: int, *, quiet: bool
) -> dict[tuple[str, str], list[Sample]]:
    address = BrokerAddress.from_url(broker.url)
    pids = {"broker": broker.pid, "redis": await _redis_pid(redis), "bench": os.getpid()}
    runner = Runner(host=address.host, port=address.port, workload=workload, workdir=workdir, pids=pids)
    services = Services(redis=redis, redis_url=settings.redis_url, mqtt_url=broker.url, workdir=workdir)
    methods = _METHODS if broker.private else ("live",)
    samples: dict[tuple[str, str], list[Sample]] = {(m, v): [] for m in methods for v in _VARIANTS}
    for run in range(1, runs + 1):
        for method in methods:
            for variant in _VARIANTS:
                subject = _subject(variant, settings, services, workload)
                sample = await _one(runner, subject, method, private=broker.private)
                samples[(method, variant)].append(sample)
                if not quiet:
                    cpu = ", ".join(f"{name} {value:.0f}" for name, value in sample.cpu.items())
                    _say(f"run {run}/{runs} {method:<5} {variant:<5} {sample.rate:>9,.0f} msg/s   CPU %: {cpu}")
    return samples


def _subject(variant: str, settings: Settings, services: Services, workload: Workload) -> Subject:
    if variant == "satgw":
        return Satgw(services=services, workload=workload, config=settings.config)
    return Naive(services=services)


async def _one(runner: Runner, subject: Subject, method: str, *, private: bool) -> Sample:
    try:
        await subject.prepare()
        return await (runner.live(subject) if method == "live" else runner.drain(subject))
    finally:
        with contextlib.suppress(BenchError):
            await subject.stop()
        await subject.cleanup(broker_is_private=private)


async def _machine_busy(seconds: float = 0.5) -> float:
    """How busy the machine is (100 = one core) while the bench does nothing yet."""
    meter = CpuMeter({})
    meter.start()
    await asyncio.sleep(seconds)
    return meter.percent().get("machine", 0.0)


async def _redis_pid(redis: Redis) -> int | None:
    """Redis's pid if it runs on this machine (its CPU use is then worth reporting)."""
    pid = int((await redis.info("server")).get("process_id", 0))
    return pid if pid and cpu_seconds(pid) is not None and _is_redis(pid) else None


def _is_redis(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().startswith("redis")
    return False


def _report(
    samples: dict[tuple[str, str], list[Sample]], *, workload: Workload, runs: int, broker: _Broker
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "messages": len(workload.measured),
        "runs": runs,
        "terminals": len(workload.terminals),
        "payload_bytes": round(workload.payload_bytes, 1),
        "qos": 1,
        "receipts": False,
        "broker": broker.description,
        **_figures(samples, "live"),
    }
    if ("drain", "satgw") in samples:
        report["drain"] = _figures(samples, "drain")
    report["targets"] = {
        "min_msgs_per_s": MIN_RATE,
        "min_ratio": MIN_RATIO,
        "met": report["satgw_msgs_per_s"] >= MIN_RATE and report["ratio"] >= MIN_RATIO,
    }
    return report


def _figures(samples: dict[tuple[str, str], list[Sample]], method: str) -> dict[str, Any]:
    out: dict[str, Any] = {"method": method}
    for variant in _VARIANTS:
        rates = [s.rate for s in samples[(method, variant)]]
        out[f"{variant}_msgs_per_s"] = round(statistics.median(rates), 1)
        out[f"{variant}_runs"] = [round(r, 1) for r in rates]
        out[f"{variant}_cpu_percent"] = _median_cpu(samples[(method, variant)])
    out["ratio"] = round(out["satgw_msgs_per_s"] / out["naive_msgs_per_s"], 2)
    return out


def _median_cpu(samples: list[Sample]) -> dict[str, float]:
    names = sorted({name for s in samples for name in s.cpu})
    return {n: round(statistics.median(s.cpu[n] for s in samples if n in s.cpu), 1) for n in names}


def _table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (readable in a terminal, and pasted as is into the README)."""
    lines = [
        f"satgw bench ingest: {report['messages']:,} sealed messages of ~{report['payload_bytes']:.0f} B at QoS 1 "
        f"from {report['terminals']:,} terminals, no receipts; {report['runs']} run(s) per row, median",
        f"broker: {report['broker']}; machine busy before start: {report['machine_busy_before_percent']:.0f} %",
        "",
        "| method | variant | msgs/s per run | median msgs/s | CPU % " + " / ".join(_CPU_COLUMNS) + " |",
        "|---|---|---|---:|---|",
    ]
    sections = [report, report["drain"]] if "drain" in report else [report]
    for figures in sections:
        for variant in _VARIANTS:
            runs = ", ".join(f"{r:,.0f}" for r in figures[f"{variant}_runs"])
            cpu = " / ".join(_cpu(figures[f"{variant}_cpu_percent"], n) for n in _CPU_COLUMNS)
            median = figures[f"{variant}_msgs_per_s"]
            lines.append(f"| {figures['method']} | {_NAMES[variant]} | {runs} | {median:,.0f} | {cpu} |")
    lines.append("")
    lines.append("ratio satgw/naive: " + ", ".join(f"{f['method']} {f['ratio']:.2f}x" for f in sections))
    targets = report["targets"]
    verdict = "met" if targets["met"] else "NOT met"
    lines.append(
        f"targets (live): >= {targets['min_msgs_per_s']:,.0f} msg/s and >= {targets['min_ratio']}x naive: {verdict}"
    )
    return "\n".join(lines)


def _cpu(cpu: dict[str, float], name: str) -> str:
    return f"{cpu[name]:.0f}" if name in cpu else "-"


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)
