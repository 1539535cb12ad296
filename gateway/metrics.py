"""Prometheus metrics for one gateway, in a registry of its own (never the process-global one).

Nothing here runs on the ingest path. The counters ingest and the relays already keep
(:class:`~gateway.counters.Counters`) are turned into Prometheus counters at scrape time;
queue depths come from Redis at scrape time (one round trip); only the latency histograms
are observed as messages go, by the relays on ack and by the ground on delivery (O(1) each).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.counters import Counters
from gateway.queue import Depth, Entry, OutboxEntry
from gateway.queue.presence import PresenceSummary
from protocols.envelope import Priority

__all__ = ["LATENCY_BUCKETS", "LinkSample", "Metrics", "MqttSample", "Scrape"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600)
"""Seconds: from a fast lab link to a LEO constellation's longest gap between passes."""

_CLASSES = [p.label for p in Priority]
_BY_CLASS = {
    "accepted": "Messages accepted and queued, by class.",
    "sent": "Messages a link reported sent (acked from the queue), by class.",
    "delivered": "Messages published to applications by the ground, by class.",
    "expired": "Messages dropped because their TTL passed before a link took them, by class.",
    "dead": "Messages moved to the dead-letter stream by a relay, by class.",
}


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One link's state at scrape time."""

    name: str
    in_flight: int
    paused: bool
    ready_in: Mapping[str, float]
    """Seconds until a frame of each class may go."""
    capacity_per_hour: float | None
    used: Mapping[str, float] = field(default_factory=dict)
    """Share of the ceiling window used by each class and less urgent ones."""
    share: Mapping[str, float] = field(default_factory=dict)
    """The configured ceiling of each class that has one."""
    next_view_in: float | None = None
    """Seconds until a satellite is next in view (0 while one is; None if the link cannot tell)."""


@dataclass(frozen=True, slots=True)
class MqttSample:
    """One MQTT connection's state at scrape time."""

    client: str
    connected: bool
    reconnects: int


@dataclass(frozen=True, slots=True)
class Scrape:
    """What a scrape reads besides the counters: Redis depths (None if Redis failed), links, connections."""

    depths: Sequence[Depth] | None
    links: Sequence[LinkSample]
    mqtt: Sequence[MqttSample]
    backlog: int
    terminals: PresenceSummary | None = None
    """Terminals registered, online and seen, from Redis (None if Redis failed)."""
    downlink: Sequence[Depth] | None = None
    """The downlink queues' depths (None if not read)."""


class Metrics:
    """The metrics of one gateway process.

    Args:
        counters: the process counters to expose.
        node: this gateway's node name (a label of ``satgw_info``).
        version: the package version (a label of ``satgw_info``).
    """

    def __init__(self, *, counters: Counters, node: str, version: str) -> None:
        if not node:
            raise ValueError("node must not be empty")
        self.registry = CollectorRegistry(auto_describe=False)
        self._to_sent = Histogram(
            "satgw_ingest_to_sent_seconds",
            "Seconds from ingest to the link reporting the message sent, by class.",
            ["class"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._to_delivered = Histogram(
            "satgw_ingest_to_delivered_seconds",
            "Seconds from ingest to publication to applications, by class.",
            ["class"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Children looked up once, so an observation is a list index and a bucket search.
        self._sent_by_class = [self._to_sent.labels(c) for c in _CLASSES]
        self._delivered_by_class = [self._to_delivered.labels(c) for c in _CLASSES]
        self._scrape_collector = _ScrapeCollector(counters=counters, node=node, version=version)
        self.registry.register(self._scrape_collector)

    def sent(self, entries: Iterable[Entry]) -> None:
        """Observe the ingest→sent latency of ``entries`` (called once a link reported them sent)."""
        now = time.time()
        for entry in entries:
            self._sent_by_class[entry.priority].observe(max(0.0, now - entry.received_at))

    def delivered(self, entries: Iterable[OutboxEntry]) -> None:
        """Observe the ingest→delivered latency of ``entries`` (called once published to applications)."""
        now = time.time()
        for entry in entries:
            received_at = _received_at(entry.payload)
            if received_at is not None:
                self._delivered_by_class[entry.priority].observe(max(0.0, now - received_at))

    def render(self, scrape: Scrape) -> bytes:
        """The Prometheus text exposition of every metric, with ``scrape`` as the point-in-time state."""
        self._scrape_collector.scrape = scrape
        try:
            return generate_latest(self.registry)
        finally:
            self._scrape_collector.scrape = None


def _received_at(payload: bytes) -> float | None:
    try:
        value = orjson.loads(payload).get("received_at")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class _ScrapeCollector(Collector):
    """Builds the counter and gauge families afresh at every scrape."""

    def __init__(self, *, counters: Counters, node: str, version: str) -> None:
        self._counters, self._node, self._version = counters, node, version
        self._started = time.time()
        self.scrape: Scrape | None = None

    def describe(self) -> list[Metric]:
        return []  # the families depend on what happened: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("satgw_info", "This gateway: node and version.", labels=["node", "version"])
        info.add_metric([self._node, self._version], 1)
        yield info
        yield GaugeMetricFamily(
            "satgw_uptime_seconds", "Seconds since this process started.", time.time() - self._started
        )
        yield from counter_families(self._counters.snapshot())
        if self.scrape is not None:
            yield from _queue_families(self.scrape)
            yield from _link_families(self.scrape.links)
            yield from _mqtt_families(self.scrape.mqtt)
            if self.scrape.terminals is not None:
                yield from _terminal_families(self.scrape.terminals)


def counter_families(totals: Mapping[str, int]) -> list[Metric]:
    """Turn counter names such as ``sent.distress`` or ``link.geo-1.lost`` into labelled Prometheus counters."""
    families = _CounterFamilies()
    for kind, text in _BY_CLASS.items():
        family = families.get(f"satgw_{kind}", text, ["class"])
        for label in _CLASSES:  # every class from the start, so a rate() has a zero to begin from
            family.add_metric([label], totals.get(f"{kind}.{label}", 0))
    for name, value in sorted(totals.items()):
        kind, _, rest = name.partition(".")
        if not (kind in _BY_CLASS and rest in _CLASSES):
            _add_other(families, name, value)
    return families.all()


def _add_other(families: _CounterFamilies, name: str, value: int) -> None:
    kind, _, rest = name.partition(".")
    if kind == "rejected":
        families.add("satgw_rejected", "Messages refused at ingest, by reason.", ["reason"], [rest], value)
    elif kind == "receipts":
        families.add("satgw_receipts", "Receipts published to terminals, by kind.", ["kind"], [rest], value)
    elif kind == "link" and "." in rest:
        link, code = rest.rsplit(".", 1)
        _add_link(families, link, code, value)
    elif name.startswith("ingest.batch."):
        text = "Ingest batches persisted, by size bucket (le1, le10, le100, gt100)."
        families.add("satgw_ingest_batches", text, ["size"], [name.removeprefix("ingest.batch.")], value)
    elif name == "ingest.redis_retries":
        families.add(
            "satgw_redis_retries", "Retries after Redis failed, by component.", ["component"], ["ingest"], value
        )
    elif name == "ingest.redelivered":
        families.add(
            "satgw_redelivered", "Uplink messages the broker redelivered that were already queued.", [], [], value
        )
    elif name == "ground.duplicates":
        text = "Duplicate frames' messages the ground dropped, by where they were caught."
        families.add("satgw_dedup_hits", text, ["where"], ["ground"], value)
    elif kind == "ground":
        families.add("satgw_ground_events", "Ground segment events, by event.", ["event"], [rest], value)
    else:
        families.add("satgw_events", "Other gateway events, by counter name.", ["name"], [name], value)


def _add_link(families: _CounterFamilies, link: str, code: str, value: int) -> None:
    if code == "fragments":
        families.add("satgw_link_fragments", "Fragments sent, by link.", ["link"], [link], value)
        return
    families.add(
        "satgw_link_transmissions", "Transmissions, by link and outcome.", ["link", "code"], [link, code], value
    )
    if code != "sent":
        text = "Transmissions that did not go, by link and reason."
        families.add("satgw_link_failures", text, ["link", "reason"], [link, code], value)


class _CounterFamilies:
    def __init__(self) -> None:
        self._families: dict[str, CounterMetricFamily] = {}

    def get(self, name: str, text: str, labels: list[str]) -> CounterMetricFamily:
        if name not in self._families:
            self._families[name] = CounterMetricFamily(name, text, labels=labels)
        return self._families[name]

    def add(self, name: str, text: str, labels: list[str], values: list[str], value: int) -> None:
        self.get(name, text, labels).add_metric(values, value)

    def all(self) -> list[Metric]:
        return list(self._families.values())


def _queue_families(scrape: Scrape) -> Iterator[Metric]:
    up = GaugeMetricFamily("satgw_redis_up", "1 if Redis answered the scrape's queue query, else 0.")
    up.add_metric([], 0 if scrape.depths is None else 1)
    yield up
    yield GaugeMetricFamily("satgw_backlog_entries", "Entries this process holds for retry.", scrape.backlog)
    if scrape.depths is None:
        return
    depth = GaugeMetricFamily("satgw_queue_depth", "Entries waiting to be taken, by class.", labels=["class"])
    pending = GaugeMetricFamily("satgw_queue_pending", "Entries taken and not yet acked, by class.", labels=["class"])
    age = GaugeMetricFamily(
        "satgw_queue_oldest_age_seconds", "Age of the oldest queued entry, by class (0 when empty).", labels=["class"]
    )
    for d in scrape.depths:
        depth.add_metric([d.priority.label], d.depth)
        pending.add_metric([d.priority.label], d.pending)
        age.add_metric([d.priority.label], d.oldest_age_s or 0.0)
    yield from (depth, pending, age)
    if scrape.downlink is not None:
        down = GaugeMetricFamily(
            "satgw_downlink_queue_depth",
            "Messages to terminals queued or in transmission, by class.",
            labels=["class"],
        )
        down_age = GaugeMetricFamily(
            "satgw_downlink_queue_oldest_age_seconds", "Age of the oldest downlink message, by class.", labels=["class"]
        )
        for d in scrape.downlink:
            down.add_metric([d.priority.label], d.depth + d.pending)
            down_age.add_metric([d.priority.label], d.oldest_age_s or 0.0)
        yield from (down, down_age)


def _link_families(links: Sequence[LinkSample]) -> Iterator[Metric]:
    in_flight = GaugeMetricFamily("satgw_link_in_flight", "Transmissions under way, by link.", labels=["link"])
    paused = GaugeMetricFamily("satgw_link_paused", "1 if an operator paused the link.", labels=["link"])
    ready = GaugeMetricFamily(
        "satgw_link_next_send_seconds", "Seconds until a frame of the class may go, by link.", labels=["link", "class"]
    )
    capacity = GaugeMetricFamily(
        "satgw_link_capacity_frames_per_hour", "Frames an hour the link can carry at most.", labels=["link"]
    )
    used = GaugeMetricFamily(
        "satgw_link_capacity_used_ratio",
        "Share of the ceiling window used by the class and less urgent ones, by link.",
        labels=["link", "class"],
    )
    share = GaugeMetricFamily(
        "satgw_link_capacity_share_ratio", "The class's configured ceiling share, by link.", labels=["link", "class"]
    )
    view = GaugeMetricFamily(
        "satgw_link_next_pass_seconds",
        "Seconds until the link next has a satellite in view (0 while it has one; LEO: the next pass), by link.",
        labels=["link"],
    )
    for link in links:
        if link.next_view_in is not None:
            view.add_metric([link.name], link.next_view_in)
        in_flight.add_metric([link.name], link.in_flight)
        paused.add_metric([link.name], 1 if link.paused else 0)
        for label, seconds in link.ready_in.items():
            ready.add_metric([link.name, label], seconds)
        if link.capacity_per_hour is not None:
            capacity.add_metric([link.name], link.capacity_per_hour)
        for label, value in link.used.items():
            used.add_metric([link.name, label], value)
        for label, value in link.share.items():
            share.add_metric([link.name, label], value)
    yield from (in_flight, paused, ready, capacity, used, share, view)


def _mqtt_families(clients: Sequence[MqttSample]) -> Iterator[Metric]:
    connected = GaugeMetricFamily("satgw_mqtt_connected", "1 while the connection is up.", labels=["client"])
    reconnects = CounterMetricFamily("satgw_mqtt_reconnects", "Connections lost (gmqtt reconnects).", labels=["client"])
    for c in clients:
        connected.add_metric([c.client], 1 if c.connected else 0)
        reconnects.add_metric([c.client], c.reconnects)
    yield from (connected, reconnects)


def _terminal_families(summary: PresenceSummary) -> Iterator[Metric]:
    # Read from Redis: every process of a gateway exposes the same values (aggregate with max, not sum).
    yield GaugeMetricFamily(
        "satgw_terminals_online",
        "Terminals with a message accepted within [presence] online_window_s, gateway-wide.",
        summary.online,
    )
    yield GaugeMetricFamily(
        "satgw_terminals_registered", "Terminals in the registry, revoked ones included.", summary.registered
    )
    yield GaugeMetricFamily("satgw_terminals_seen", "Terminals a message was ever accepted from.", summary.seen)
