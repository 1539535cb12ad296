"""``satgw demo``: a gateway, simulated terminals with mixed traffic, a live view, and a report per class.

Traffic goes both ways: terminals send a mix of classes up; the demo answers every SOS delivered
with a distress-class acknowledgement down to its terminal, and halfway through a weather service's
CAP alert goes down to the terminals last seen inside its area (:mod:`gateway.alerts.inbound`).
Both directions count as lost whatever does not arrive.

The demo runs under a prefix of its own (keys and topics), so it never touches
a real deployment's queues, and removes its keys when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from gateway.config import GatewayConfig, Settings
from gateway.credentials import Credentials
from gateway.mqtt import Inbound, MqttClient
from gateway.names import Keys, Topics
from gateway.service import Gateway
from gateway.sim.terminal import SimTerminal, is_down_message
from gateway.terminals import Registry
from protocols import cap
from protocols.envelope import Kind, Message, Position, Priority
from protocols.seal import new_key, seal

__all__ = ["run_demo"]

# Share of traffic per class, and what each class carries.
_MIX = ((Priority.DISTRESS, 0.01), (Priority.URGENCY, 0.04), (Priority.SAFETY, 0.10), (Priority.ROUTINE, 0.85))
_SETTLE_TIMEOUT_S = 30.0
_SOS_ACK = "SOS received: rescue coordination centre alerted, stay on this channel"
_WARNING = "Gale warning: NE force 8-9 in your area from 18:00, seek shelter"


@dataclass
class _Tally:
    published: dict[str, tuple[Priority, float]] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    receipts: Counter[str] = field(default_factory=Counter)
    rejected_ids: set[str] = field(default_factory=set)
    bad_sent: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    to_acknowledge: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    """Terminals whose SOS was delivered and is not yet acknowledged down."""
    sending_down: int = 0
    down_sent: dict[str, tuple[Priority, float]] = field(default_factory=dict)
    down_received: dict[str, float] = field(default_factory=dict)
    cap_in: tuple[int, int] = (0, 0)
    """(terminals the CAP alert went to, terminals in the demo)."""

    def count(self, priority: Priority) -> tuple[int, int, list[float]]:
        """(published, delivered, latencies in ms) for one class."""
        ids = [i for i, (p, _) in self.published.items() if p is priority]
        lat = [(self.delivered[i] - self.published[i][1]) * 1000 for i in ids if i in self.delivered]
        return len(ids), len(lat), lat

    def count_down(self, priority: Priority) -> tuple[int, int, list[float]]:
        """(sent, received, latencies in ms) of one class on the downlink."""
        ids = [i for i, (p, _) in self.down_sent.items() if p is priority]
        lat = [(self.down_received[i] - self.down_sent[i][1]) * 1000 for i in ids if i in self.down_received]
        return len(ids), len(lat), lat

    def settled(self) -> bool:
        """True once everything published arrived up, and everything sent down arrived down."""
        up = len(self.delivered) >= len(self.published)
        down = (
            self.to_acknowledge.empty() and not self.sending_down and self.down_received.keys() >= self.down_sent.keys()
        )
        return up and down


async def run_demo(settings: Settings, config: GatewayConfig, *, terminals: int, duration: float, rate: float) -> int:
    """Run the demo and print its report; return 0 if nothing was lost."""
    if terminals < 1 or duration <= 0 or rate <= 0:
        raise ValueError("terminals, duration and rate must be positive")
    prefix = f"demo{uuid.uuid4().hex[:8]}"
    host, _ = settings.http_address
    settings = settings.model_copy(update={"topic_prefix": prefix, "node": prefix, "http": f"{host}:0"})
    print(f"satgw demo: {terminals} terminals, {rate:.0f} msg/s for {duration:.0f} s, prefix {prefix}")
    print(f"  redis {settings.redis_url}  mqtt {settings.mqtt_url}  links: {', '.join(p.name for p in config.links)}")
    tally = _Tally()
    try:
        async with Gateway(settings=settings, config=config) as gateway:
            try:
                await _drive(gateway, settings, tally, terminals=terminals, duration=duration, rate=rate)
            finally:
                tally.counters = gateway.counters.snapshot()
    finally:  # after the gateway has stopped, so nothing it runs trips over the missing keys
        await _remove_keys(settings)
    return _report(tally)


async def _drive(
    gateway: Gateway, settings: Settings, tally: _Tally, *, terminals: int, duration: float, rate: float
) -> None:
    stop = asyncio.Event()
    serving = asyncio.create_task(gateway.serve(stop), name="satgw.demo.serve")
    registry = Registry(redis=gateway.redis, keys=gateway.keys)
    sims = [await _provision(registry, settings, gateway.topics, i) for i in range(terminals)]
    observer = MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-observer")
    _observe(observer, gateway.topics, tally)
    async with observer, MqttClient(url=settings.mqtt_url, client_id=f"{settings.topic_prefix}-terminals") as pub:
        await observer.subscribe(f"{gateway.topics.prefix}/delivered/+", qos=1)
        await observer.subscribe(f"{gateway.topics.prefix}/down/+", qos=1)
        view = asyncio.create_task(_live_view(gateway, tally), name="satgw.demo.view")
        down = [
            asyncio.create_task(_acknowledge(gateway, tally), name="satgw.demo.acknowledge"),
            asyncio.create_task(_broadcast(gateway, sims, tally, after=duration / 2), name="satgw.demo.broadcast"),
        ]
        await _traffic(pub, sims, tally, duration=duration, rate=rate)
        await _settle(tally)
        for task in [view, *down]:
            task.cancel()
    stop.set()
    await serving


async def _provision(registry: Registry, settings: Settings, topics: Topics, index: int) -> SimTerminal:
    record = await registry.add(f"T{index:06d}")
    creds = Credentials(
        terminal=record.terminal, key=record.key, mqtt_url=settings.mqtt_url, topic_prefix=topics.prefix
    )
    return SimTerminal(creds=creds, topics=topics)


def _observe(observer: MqttClient, topics: Topics, tally: _Tally) -> None:
    def on_delivered(message: Inbound) -> None:
        delivery = json.loads(message.payload)
        if delivery["id"] not in tally.delivered and delivery["kind"] == Kind.SOS.value:
            tally.to_acknowledge.put_nowait(delivery["terminal"])
        tally.delivered.setdefault(delivery["id"], time.time())
        message.ack()

    def on_receipt(message: Inbound) -> None:
        message.ack()
        receipt = json.loads(message.payload)
        if is_down_message(receipt):
            tally.down_received.setdefault(receipt["id"], time.time())
            return
        tally.receipts[receipt["receipt"]] += 1
        if receipt["receipt"] == "rejected" and receipt.get("seq") is not None:
            tally.rejected_ids.add(f"{receipt['terminal']}:{receipt['seq']}")

    observer.route(f"{topics.prefix}/delivered/+", on_delivered)
    observer.route(f"{topics.prefix}/down/+", on_receipt)


async def _traffic(pub: MqttClient, sims: list[SimTerminal], tally: _Tally, *, duration: float, rate: float) -> None:
    rng = random.Random(7)
    start, sent, pending = time.monotonic(), 0, []
    bad_at = {int(rate * duration * f) for f in (0.25, 0.5, 0.75)}
    while (elapsed := time.monotonic() - start) < duration:
        due = int(elapsed * rate)
        while sent < due:
            sim = rng.choice(sims)
            if sent in bad_at:
                pending.append(_send_bad(pub, sim, tally, kind=len(bad_at)))
                bad_at.discard(sent)
            message = _random_message(sim, rng)
            pending.append(sim.publish(pub, message))
            tally.published[f"{message.terminal}:{message.seq}"] = (message.priority, time.time())
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*pending)


def _random_message(sim: SimTerminal, rng: random.Random) -> Message:
    priority = rng.choices([p for p, _ in _MIX], weights=[w for _, w in _MIX])[0]
    position = Position(round(rng.uniform(18, 53), 5), round(rng.uniform(73, 135), 5))
    if priority is Priority.DISTRESS:
        return sim.message(priority=priority, kind=Kind.SOS, text="MAYDAY engine fire", position=position, receipt=True)
    if priority is Priority.ROUTINE:
        kind = rng.choice([Kind.POSITION, Kind.TELEMETRY, Kind.TEXT])
        body = {"position": "", "telemetry": f"batt={rng.randint(10, 99)} temp={rng.randint(-20, 40)}"}
        return sim.message(kind=kind, text=body.get(kind.value, "all well, ETA 14:30"), position=position)
    return sim.message(
        priority=priority, kind=Kind.TEXT, text=f"{priority.label} report", position=position, receipt=True
    )


def _send_bad(pub: MqttClient, sim: SimTerminal, tally: _Tally, *, kind: int) -> asyncio.Future[None]:
    """Three kinds of bad input, to show rejection: a forged SOS, garbage bytes, a replay."""
    tally.bad_sent += 1
    topics = sim.topics
    if kind == 3:
        forged = sim.message(priority=Priority.DISTRESS, kind=Kind.SOS, text="forged", receipt=True)
        return pub.publish(topics.up_sos(sim.creds.terminal), seal(forged, new_key()))
    if kind == 2:
        return pub.publish(topics.up(sim.creds.terminal), b"\x01garbage that is not a sealed message")
    message = sim.message(kind=Kind.TEXT, text="sent twice", receipt=True)
    topic, payload = sim.wire(message)
    tally.published[f"{message.terminal}:{message.seq}"] = (message.priority, time.time())
    pub.publish(topic, payload)
    return pub.publish(topic, payload)


async def _acknowledge(gateway: Gateway, tally: _Tally) -> None:
    """Answer every SOS delivered with a distress-class message down to its terminal."""
    while True:
        terminal = await tally.to_acknowledge.get()
        await _send_down(gateway, tally, terminal, _SOS_ACK, Priority.DISTRESS)


async def _broadcast(gateway: Gateway, sims: list[SimTerminal], tally: _Tally, *, after: float) -> None:
    """After ``after`` seconds, a weather service's CAP alert for the coast goes down to the terminals in it."""
    await asyncio.sleep(after)
    sent_at = time.time()
    done = await gateway.emergency.intake.accept(cap.build_alert(_gale_alert(sent_at)))
    for message_id in done.messages.values():
        tally.down_sent[message_id] = (done.priority, sent_at)
    tally.cap_in = (len(done.messages), len(sims))


def _gale_alert(now: float) -> cap.Alert:
    """A CAP 1.2 gale warning for the eastern half of the demo's terminals' area (18-53 N, 73-135 E)."""
    sent = datetime.fromtimestamp(int(now), UTC)
    coast = ((18.0, 104.0), (18.0, 135.0), (53.0, 135.0), (53.0, 104.0), (18.0, 104.0))
    info = cap.Info(
        categories=(cap.Category.MET,),
        event="Gale",
        urgency=cap.Urgency.EXPECTED,
        severity=cap.Severity.SEVERE,
        certainty=cap.Certainty.LIKELY,
        headline=_WARNING,
        instruction="Seek shelter.",
        expires=sent + timedelta(hours=6),
        areas=(cap.Area(area_desc="east of 104 E", polygons=(coast,)),),
    )
    return cap.Alert(
        identifier=f"gale-{int(now)}",
        sender="meteo.demo",
        sent=sent,
        status=cap.Status.EXERCISE,
        msg_type=cap.MsgType.ALERT,
        scope=cap.Scope.PUBLIC,
        infos=(info,),
    )


async def _send_down(gateway: Gateway, tally: _Tally, terminal: str, text: str, priority: Priority) -> None:
    tally.sending_down += 1
    try:
        sent_at = time.time()
        message_id = await gateway.downlink.send(terminal=terminal, body=text, priority=priority)
        tally.down_sent[message_id] = (priority, sent_at)
    finally:
        tally.sending_down -= 1


async def _settle(tally: _Tally) -> None:
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    while time.monotonic() < deadline and not tally.settled():
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late receipts


async def _live_view(gateway: Gateway, tally: _Tally) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        with contextlib.suppress(Exception):
            depths = await gateway.queue.depths()
            queues = "  ".join(f"{d.priority.label} {d.depth + d.pending:>4}" for d in depths)
            line = f"  t={time.monotonic() - start:5.1f}s  queued: {queues}  | published {len(tally.published):>6}"
            down = f"down {len(tally.down_received)}/{len(tally.down_sent)}"
            print(f"{line}  delivered {len(tally.delivered):>6}  | {down}", flush=True)


def _report(tally: _Tally) -> int:
    print(
        f"\n{'class':<10}{'published':>10}{'accepted':>10}{'delivered':>10}"
        f"{'rejected':>9}{'lost':>6}{'p50 ms':>9}{'p99 ms':>9}"
    )
    lost_total = 0
    for priority in Priority:
        published, delivered, lat = tally.count(priority)
        accepted = tally.counters.get(f"accepted.{priority.label}", 0)
        lost = published - delivered
        lost_total += lost
        p50 = f"{statistics.median(lat):.0f}" if lat else "-"
        p99 = f"{statistics.quantiles(lat, n=100)[98]:.0f}" if len(lat) >= 2 else p50
        row = f"{priority.label:<10}{published:>10}{accepted:>10}{delivered:>10}"
        print(f"{row}{_rejected_in(tally, priority):>9}{lost:>6}{p50:>9}{p99:>9}")
    rejected = {k.split(".", 1)[1]: v for k, v in tally.counters.items() if k.startswith("rejected.")}
    print(f"\nbad input sent on purpose: {tally.bad_sent} (forged SOS, garbage, replay); gateway rejected: {rejected}")
    print("receipts seen by terminals: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.receipts.items())))
    lifted = tally.counters.get("ingest.lifted_to_distress", 0)
    alerts = {k.rsplit(".", 1)[1]: v for k, v in tally.counters.items() if k.startswith("incidents.alerts.")}
    print(
        f"SOS incidents: CAP alerts {alerts or 'none'}; {lifted} position reports of terminals in distress "
        "rode in the distress class (so 'accepted' counts them there)"
    )
    lost_total += _report_down(tally)
    print(f"lost: {lost_total}" + ("" if lost_total == 0 else "  <-- something went wrong"))
    return 0 if lost_total == 0 else 1


def _report_down(tally: _Tally) -> int:
    """Print the downlink's rows (SOS acknowledgements, the CAP gale warning); return how many were lost."""
    print(f"\n{'downlink':<10}{'sent':>10}{'received':>10}{'lost':>6}{'p50 ms':>9}{'p99 ms':>9}")
    lost_total = 0
    for priority in (Priority.DISTRESS, Priority.SAFETY):
        sent, received, lat = tally.count_down(priority)
        lost_total += sent - received
        p50 = f"{statistics.median(lat):.0f}" if lat else "-"
        p99 = f"{statistics.quantiles(lat, n=100)[98]:.0f}" if len(lat) >= 2 else p50
        print(f"{priority.label:<10}{sent:>10}{received:>10}{sent - received:>6}{p50:>9}{p99:>9}")
    inside, everyone = tally.cap_in
    print(f"CAP gale warning (safety): sent to the {inside} of {everyone} terminals last seen inside its polygon")
    return lost_total


def _rejected_in(tally: _Tally, priority: Priority) -> int:
    """Rejections of messages the demo published as genuine (the replayed copy counts here)."""
    return sum(1 for i in tally.rejected_ids if i in tally.published and tally.published[i][0] is priority)


async def _remove_keys(settings: Settings) -> None:
    pattern = Keys(settings.topic_prefix).pattern
    with contextlib.suppress(Exception):
        async with Redis.from_url(settings.redis_url) as redis:
            keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
            if keys:
                await redis.delete(*keys)
