"""The ``satgw`` command: run, demo, terminal, status, trace, bench, links, rdss."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from gateway import cli_links, cli_rdss, config, logs, status_view, trace_view
from gateway.api_trace import trace_out
from gateway.credentials import Credentials
from gateway.exceptions import GatewayError
from gateway.mqtt import MqttClient
from gateway.names import Keys, Topics
from gateway.queue import Depth, Queue, Stats
from gateway.queue.incidents import IncidentStore
from gateway.queue.presence import PresenceStore
from gateway.queue.trace import Trace
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal
from gateway.terminals import Registry
from protocols.envelope import Kind, Position, Priority
from protocols.seal import new_key

__all__ = ["main"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_STATUS_RECENT = 5
"""Terminals most recently seen that `satgw status` lists."""
_STATUS_INCIDENTS = 100
"""Incidents `satgw status` reads (newest first) to show the active ones."""
Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``satgw`` console script."""
    args = _parser().parse_args(argv)
    try:
        log_format = logs.parse_format(os.environ.get("SATGW_LOG_FORMAT"))
        level = _log_level(args)
    except ValueError as exc:
        print(f"satgw: {exc}", file=sys.stderr)
        return 2
    logs.configure(level, json=log_format)
    _install_uvloop()
    try:
        command: Command = args.command
        return asyncio.run(command(args))
    except (GatewayError, OSError, ValueError) as exc:
        print(f"satgw: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _log_level(args: argparse.Namespace) -> str:
    """``--log-level``, else ``SATGW_LOG_LEVEL``, else the command's own default (INFO for run)."""
    level: str = args.log_level or os.environ.get("SATGW_LOG_LEVEL") or args.default_log_level
    if level.upper() not in _LOG_LEVELS:
        raise ValueError(f"SATGW_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {level!r}")
    return level.upper()


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satgw", description="BeiDou-style satellite short-message gateway")
    parser.add_argument("--log-level", choices=_LOG_LEVELS, help="default: SATGW_LOG_LEVEL, else INFO for run")
    parser.set_defaults(default_log_level="WARNING")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="serve until SIGTERM, then drain and exit 0")
    run.set_defaults(command=_run, default_log_level="INFO")
    _add_demo(sub)
    _add_terminal(sub)
    status = sub.add_parser("status", help="queue depths per class and gateway counters")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--color", choices=["auto", "always", "never"], default="auto", help="colour the table (default: on a TTY)"
    )
    status.set_defaults(command=_status)
    _add_trace(sub)
    _add_bench(sub)
    cli_links.register(sub)
    cli_rdss.register(sub)
    return parser


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run a gateway with simulated terminals and report per class")
    demo.add_argument("--terminals", type=int, default=20, help="simulated terminals (default 20)")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds of traffic (default 15)")
    demo.add_argument("--rate", type=float, default=200.0, help="messages per second, all terminals (default 200)")
    demo.set_defaults(command=_demo)


def _add_terminal(sub: Any) -> None:
    terminal = sub.add_parser("terminal", help="provision terminals and send as one").add_subparsers(required=True)
    add = terminal.add_parser("add", help="create a terminal and its key")
    add.add_argument("id")
    add.add_argument("--out", type=Path, help="write the terminal's credentials (JSON) here")
    add.set_defaults(command=_terminal_add)
    terminal.add_parser("list", help="list terminals").set_defaults(command=_terminal_list)
    revoke = terminal.add_parser("revoke", help="revoke a terminal's key")
    revoke.add_argument("id")
    revoke.set_defaults(command=_terminal_revoke)
    send = terminal.add_parser("send", help="publish as a terminal")
    send.add_argument("--creds", type=Path, required=True, help="credentials file from 'terminal add --out'")
    send.add_argument(
        "--priority", type=Priority.parse, default=Priority.ROUTINE, help="distress|urgency|safety|routine"
    )
    send.add_argument("--kind", type=Kind, default=Kind.TEXT, choices=list(Kind), help="sos|position|telemetry|text")
    send.add_argument("--text", default="", help="message body")
    send.add_argument("--lat", type=float)
    send.add_argument("--lon", type=float)
    send.add_argument("--ttl", type=int, help="seconds a routine message may wait before it expires")
    send.add_argument("--count", type=int, default=1)
    send.add_argument("--receipt", action="store_true", help="ask for receipts on {prefix}/down/{terminal}")
    send.add_argument("--raw-out", type=Path, help="write the exact MQTT payload here instead of publishing")
    send.set_defaults(command=_terminal_send)


def _add_trace(sub: Any) -> None:
    trace = sub.add_parser("trace", help="where one message is, and every hop it went through with its time")
    trace.add_argument("id", help="the message id TERMINAL:SEQ, or the terminal id when SEQ follows")
    trace.add_argument("seq", nargs="?", help="the message's seq, after a terminal id")
    trace.add_argument("--json", action="store_true", help="print one JSON object (as GET /api/v1/messages/{id})")
    trace.set_defaults(command=_trace)


def _add_bench(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(required=True)
    ingest = bench.add_parser("ingest", help="MQTT publish → durable in Redis, against a naive bridge")
    ingest.add_argument("--json", action="store_true", help="print one JSON object")
    ingest.add_argument("--messages", type=int, default=60_000, help="messages per measured run")
    ingest.add_argument("--runs", type=int, default=3, help="runs per variant; the median is reported")
    ingest.set_defaults(command=_bench_ingest)
    packing = bench.add_parser("packing", help="messages per hour through a BDS-2 level-3 card, packed vs one per send")
    packing.add_argument("--json", action="store_true", help="print one JSON object")
    packing.set_defaults(command=_bench_packing)


def _tune_gc() -> None:
    """Move start-up objects out of the collector's sight and collect less often.

    Under load ingest holds thousands of short-lived futures; measured with py-spy, full
    collections took 15-20 % of the gateway's time with the default thresholds.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _run(args: argparse.Namespace) -> int:
    settings, gateway_config = config.load()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(settings=settings, config=gateway_config) as gateway:
        host, _port = settings.http_address
        logging.getLogger("satgw").info(
            "serving: %d links, http://%s:%d/healthz", len(gateway.relays), host, gateway.http.port
        )
        await gateway.serve(stop)
    logging.getLogger("satgw").info("drained; bye")
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from gateway.sim.demo import run_demo

    settings, gateway_config = config.load()
    return await run_demo(settings, gateway_config, terminals=args.terminals, duration=args.duration, rate=args.rate)


def _registry(settings: config.Settings) -> tuple[Redis, Registry]:
    redis = Redis.from_url(settings.redis_url)
    return redis, Registry(redis=redis, keys=Keys(settings.topic_prefix))


async def _terminal_add(args: argparse.Namespace) -> int:
    settings, _ = config.load()
    creds = Credentials(terminal=args.id, key=new_key(), mqtt_url=settings.mqtt_url, topic_prefix=settings.topic_prefix)
    if args.out:
        creds.save(args.out)  # first: a file we cannot write must not leave a terminal whose key nobody has
    redis, registry = _registry(settings)
    try:
        async with redis:
            await registry.add(args.id, key=creds.key)
    except BaseException:
        if args.out:
            args.out.unlink(missing_ok=True)
        raise
    print(f"terminal {args.id} added; credentials in {args.out}" if args.out else creds.to_json())
    return 0


async def _terminal_list(args: argparse.Namespace) -> int:
    settings, _ = config.load()
    redis, registry = _registry(settings)
    async with redis:
        records = await registry.list()
    for r in records:
        print(f"{r.terminal:<32} created {r.created_at:.0f}  {'revoked' if r.revoked_at else 'active'}")
    return 0


async def _terminal_revoke(args: argparse.Namespace) -> int:
    settings, _ = config.load()
    redis, registry = _registry(settings)
    async with redis:
        await registry.revoke(args.id)
    print(f"terminal {args.id} revoked")
    return 0


async def _terminal_send(args: argparse.Namespace) -> int:
    creds = Credentials.load(args.creds)
    terminal = SimTerminal(creds=creds, topics=Topics(creds.topic_prefix))
    position = Position(args.lat, args.lon) if args.lat is not None and args.lon is not None else None
    priority = Priority.DISTRESS if args.kind is Kind.SOS else args.priority
    messages = [
        terminal.message(
            priority=priority, kind=args.kind, text=args.text, position=position, ttl=args.ttl, receipt=args.receipt
        )
        for _ in range(args.count)
    ]
    if args.raw_out:
        args.raw_out.write_bytes(terminal.wire(messages[0])[1])
        print(f"{terminal.wire(messages[0])[0]} {args.raw_out}")
        return 0
    client_id = f"{creds.terminal}-cli-{os.urandom(3).hex()}"  # two senders as one terminal must not evict each other
    async with MqttClient(url=creds.mqtt_url, client_id=client_id) as client:
        await asyncio.gather(*(terminal.publish(client, m) for m in messages))
    print(f"published {len(messages)} as {creds.terminal} (seq {messages[0].seq}..{messages[-1].seq})")
    return 0


def _depths_json(depths: Sequence[Depth]) -> dict[str, dict[str, Any]]:
    return {d.priority.label: {"depth": d.depth, "pending": d.pending, "oldest_age_s": d.oldest_age_s} for d in depths}


async def _status(args: argparse.Namespace) -> int:
    settings, gateway_config = config.load()
    now = time.time()
    async with Redis.from_url(settings.redis_url) as redis:
        keys = Keys(settings.topic_prefix)
        queue = Queue(redis=redis, keys=keys, consumer="status")
        await queue.setup()  # idempotent; before the first `satgw run` the streams do not exist yet
        depths = await queue.depths()
        down_queue = Queue(redis=redis, keys=keys.downlink, consumer="status")
        await down_queue.setup()
        down = await down_queue.depths()
        counters = await Stats(redis=redis, keys=keys).read()
        presence = await PresenceStore(redis=redis, keys=keys).summary(
            now=now, window_s=gateway_config.online_window_s, recent=_STATUS_RECENT
        )
        incidents = await IncidentStore(redis=redis, keys=keys, consumer="status").list(limit=_STATUS_INCIDENTS)
    active = [i for i in incidents if i.state.active]
    if args.json:
        report = {"queues": _depths_json(depths), "downlink": _depths_json(down), "counters": counters}
        terminals = status_view.terminals_json(presence, now=now)
        sos = [json.loads(i.to_json()) for i in active]
        print(json.dumps(report | {"terminals": terminals, "incidents": sos}))
        return 0
    color = status_view.use_color(args.color, isatty=sys.stdout.isatty(), environ=os.environ)
    summary = status_view.summarize(depths, counters, presence, now=now, incidents=active, downlink=down)
    print(status_view.render(summary, color=color))
    return 0


async def _trace(args: argparse.Namespace) -> int:
    settings, _ = config.load()
    message_id = args.id if args.seq is None else f"{args.id}:{args.seq}"
    async with Redis.from_url(settings.redis_url) as redis:
        found = await Trace(redis=redis, keys=Keys(settings.topic_prefix)).get(message_id)
    if found is None:
        why = "never seen under this prefix, its trace expired, or tracing is off"
        print(f"satgw: no trace of message {message_id} ({why})", file=sys.stderr)
        return 1
    print(trace_out(found).model_dump_json() if args.json else trace_view.render(found))
    return 0


async def _bench_packing(args: argparse.Namespace) -> int:
    from bench.packing import main as packing_main

    return await packing_main(["--json"] if args.json else [])


async def _bench_ingest(args: argparse.Namespace) -> int:
    from bench.ingest import run_bench

    settings, _ = config.load()
    result: int = await run_bench(settings, messages=args.messages, runs=args.runs, as_json=args.json)
    return result
