"""Messages per hour through one BeiDou-2 level-3 card, with packing and with one message per transmission.

The card is the real link model (``bds2-rdss-l3``: 628 bits = 78 bytes, one send per 60 s,
4.5 % loss) on a simulated clock, so an hour takes well under a second. A backlog of small
telemetry from many terminals waits; each time the card may send, the relay's own packing
rule (:mod:`gateway.packing`) fills the frame, or one message goes alone (the baseline). A lost
frame is sent again. The ground decodes every frame it receives and counts the messages.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import packing
from gateway.links.base import Link
from gateway.links.clock import SimClock
from gateway.links.factory import build_link
from gateway.links.profiles import configure
from protocols.envelope import Kind, Message, Position, Priority
from protocols.frame import read_frame
from protocols.record import Record, encode_record

__all__ = ["Result", "main", "run"]

_PROFILE = "bds2-rdss-l3"
_HOUR_S = 3600.0
_START = 1_795_000_000.0


@dataclass(frozen=True, slots=True)
class Result:
    """What one variant carried in the simulated hour."""

    variant: str
    messages: int
    frames: int
    lost_frames: int
    frame_bytes: float
    """Mean bytes per frame sent."""

    @property
    def per_frame(self) -> float:
        """Messages per frame that arrived."""
        return self.messages / max(1, self.frames - self.lost_frames)


class _Ground:
    """Decodes every frame and counts the messages it carried."""

    def __init__(self) -> None:
        self.messages = 0

    async def receive(self, frame: bytes, *, link: str) -> None:
        self.messages += len(read_frame(frame).records)


def backlog(count: int, *, seed: int, positions: bool) -> list[bytes]:
    """``count`` small telemetry records from 200 terminals, written over the hour before, oldest first."""
    rng = random.Random(seed)
    seqs = {f"T{i:06d}": rng.randrange(1000, 5000) for i in range(200)}
    out = []
    for n in range(count):
        terminal = rng.choice(list(seqs))
        seqs[terminal] += 1
        ts = _START - _HOUR_S + n * _HOUR_S / count
        body = f"b={rng.uniform(3.3, 4.2):.1f}" + (f" t={rng.randrange(-20, 45)}" if rng.random() < 0.5 else "")
        where = Position(rng.uniform(18, 53), rng.uniform(73, 135)) if positions else None
        message = Message(
            terminal=terminal, seq=seqs[terminal], priority=Priority.ROUTINE, kind=Kind.TELEMETRY, body=body,
            position=where, ts=ts,
        )  # fmt: skip
        out.append(encode_record(Record(message=message, received_at=ts + rng.uniform(0.2, 3.0))))
    return out


async def _carry(link: Link, clock: SimClock, queue: deque[bytes], *, pack: bool) -> tuple[int, int, list[int]]:
    frames = lost = 0
    sizes: list[int] = []
    while clock.now() < _START + _HOUR_S and queue:
        await clock.sleep(link.ready_in(Priority.ROUTINE))
        head = list(queue)[:255] if pack else [queue[0]]
        count = max(1, packing.packable(head, mtu=link.mtu, limit=255))
        frame = packing.encode(head[:count])
        feedback = await link.transmit(frame, priority=Priority.ROUTINE)
        frames, sizes = frames + 1, [*sizes, len(frame)]
        if feedback.sent:
            for _ in range(count):
                queue.popleft()
        else:
            lost += 1
    return frames, lost, sizes


async def run(variant: str, records: Sequence[bytes], *, seed: int) -> Result:
    """Carry ``records`` over one card for a simulated hour, packed or one per transmission."""
    clock, ground = SimClock(start=_START), _Ground()
    link = build_link(configure(_PROFILE, name=f"bench-{variant}", overrides={"seed": seed}), clock=clock, sink=ground)
    frames, lost, sizes = await clock.drive(_carry(link, clock, deque(records), pack=variant == "packed"))
    return Result(variant, ground.messages, frames, lost, statistics.fmean(sizes) if sizes else 0.0)


async def main(argv: Sequence[str] | None = None) -> int:
    """Print the table (or one JSON object) for plain telemetry and telemetry with positions."""
    parser = argparse.ArgumentParser(prog="satgw bench packing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = []
    for workload, positions in (("telemetry", False), ("telemetry+position", True)):
        records = backlog(2000, seed=args.seed, positions=positions)
        single = await run("single", records, seed=args.seed)
        packed = await run("packed", records, seed=args.seed)
        rows.append((workload, statistics.fmean(map(len, records)), single, packed))
    report = _json(rows) if args.json else _table(rows, time.perf_counter() - started)
    print(report)
    return 0


def _json(rows: list[tuple[str, float, Result, Result]]) -> str:
    out = {"profile": _PROFILE, "mtu": 78, "interval_s": 60, "hours": 1, "workloads": {}}
    for workload, mean_record, single, packed in rows:
        out["workloads"][workload] = {  # type: ignore[index]
            "mean_record_bytes": round(mean_record, 1),
            "single_msgs_per_hour": single.messages,
            "packed_msgs_per_hour": packed.messages,
            "ratio": round(packed.messages / max(1, single.messages), 2),
        }
    return json.dumps(out)


def _table(rows: list[tuple[str, float, Result, Result]], took_s: float) -> str:
    lines = [
        f"satgw bench packing: one {_PROFILE} card (78-byte frames, 60 s interval, 4.5 % loss), "
        f"a simulated hour, backlog of 2,000 small messages from 200 terminals ({took_s:.1f} s of real time)",
        "",
        "| workload | mean record B | variant | msgs/hour | frames (lost) | msgs/frame | mean frame B |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for workload, mean_record, single, packed in rows:
        for r in (single, packed):
            lines.append(
                f"| {workload} | {mean_record:.1f} | {r.variant} | {r.messages:,} | {r.frames} ({r.lost_frames}) "
                f"| {r.per_frame:.2f} | {r.frame_bytes:.1f} |"
            )
    lines.append("")
    for workload, _, single, packed in rows:
        lines.append(f"ratio packed/single, {workload}: {packed.messages / max(1, single.messages):.2f}x")
    return "\n".join(lines)
