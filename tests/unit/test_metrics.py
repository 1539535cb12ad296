"""Prometheus metrics: counter names become labelled counters, latencies land in histograms, scrape state shows."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.counters import Counters
from gateway.metrics import LinkSample, Metrics, MqttSample, Scrape, counter_families
from gateway.queue import Depth, Entry, OutboxEntry
from gateway.queue.presence import PresenceSummary
from protocols.envelope import Priority

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: bytes) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def _entry(priority: Priority, received_at: float) -> Entry:
    return Entry("1-0", priority, "T1:1", "T1", 1, b"r", received_at, None, False)


def _outbox(priority: Priority, payload: bytes) -> OutboxEntry:
    return OutboxEntry("1-0", "T1:1", "T1", 1, priority, payload, False, "geo", time.time())


def _empty_scrape() -> Scrape:
    return Scrape(depths=None, links=[], mqtt=[], backlog=0)


class TestCounterFamilies:
    def test_counters_map_to_labelled_families(self) -> None:
        """Each counter name lands in its family with the right labels; nothing is dropped."""
        totals = {
            "accepted.routine": 5,
            "rejected.bad_seal": 2,
            "link.geo.1.lost": 3,
            "link.geo.1.sent": 7,
            "link.geo.1.fragments": 4,
            "ingest.batch.le10": 6,
            "ingest.redis_retries": 1,
            "ingest.redelivered": 8,
            "ground.duplicates": 9,
            "ground.bad_frames": 1,
            "receipts.sent": 2,
            "something.new": 1,
        }
        got = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in counter_families(totals)
            for s in family.samples
        }
        assert got[("satgw_accepted_total", (("class", "routine"),))] == 5
        assert got[("satgw_accepted_total", (("class", "distress"),))] == 0
        assert got[("satgw_rejected_total", (("reason", "bad_seal"),))] == 2
        assert got[("satgw_link_transmissions_total", (("code", "lost"), ("link", "geo.1")))] == 3
        assert got[("satgw_link_transmissions_total", (("code", "sent"), ("link", "geo.1")))] == 7
        assert got[("satgw_link_failures_total", (("link", "geo.1"), ("reason", "lost")))] == 3
        assert ("satgw_link_failures_total", (("link", "geo.1"), ("reason", "sent"))) not in got
        assert got[("satgw_link_fragments_total", (("link", "geo.1"),))] == 4
        assert got[("satgw_ingest_batches_total", (("size", "le10"),))] == 6
        assert got[("satgw_redis_retries_total", (("component", "ingest"),))] == 1
        assert got[("satgw_redelivered_total", ())] == 8
        assert got[("satgw_dedup_hits_total", (("where", "ground"),))] == 9
        assert got[("satgw_ground_events_total", (("event", "bad_frames"),))] == 1
        assert got[("satgw_receipts_total", (("kind", "sent"),))] == 2
        assert got[("satgw_events_total", (("name", "something.new"),))] == 1


class TestMetrics:
    def test_empty_node_is_refused(self) -> None:
        """A Metrics without a node name is refused at once."""
        with pytest.raises(ValueError, match="node"):
            Metrics(counters=Counters(), node="", version="1")

    def test_sent_latency_is_observed_per_class(self) -> None:
        """Acked entries add their age since ingest to the class's ingest→sent histogram."""
        metrics = Metrics(counters=Counters(), node="n1", version="1")
        now = time.time()
        metrics.sent([_entry(Priority.DISTRESS, now - 3.0), _entry(Priority.ROUTINE, now - 100.0)])
        got = _samples(metrics.render(_empty_scrape()))
        assert got[("satgw_ingest_to_sent_seconds_count", (("class", "distress"),))] == 1
        assert 3.0 <= got[("satgw_ingest_to_sent_seconds_sum", (("class", "distress"),))] < 10.0
        assert got[("satgw_ingest_to_sent_seconds_bucket", (("class", "distress"), ("le", "2.0")))] == 0
        assert got[("satgw_ingest_to_sent_seconds_bucket", (("class", "distress"), ("le", "5.0")))] == 1
        assert got[("satgw_ingest_to_sent_seconds_count", (("class", "routine"),))] == 1
        assert got[("satgw_ingest_to_sent_seconds_count", (("class", "safety"),))] == 0

    def test_delivered_latency_reads_received_at_from_the_payload(self) -> None:
        """Published entries add their age since ingest (from the delivered JSON) to ingest→delivered."""
        metrics = Metrics(counters=Counters(), node="n1", version="1")
        payload = json.dumps({"received_at": time.time() - 20.0}).encode()
        metrics.delivered([_outbox(Priority.URGENCY, payload), _outbox(Priority.URGENCY, b"not json")])
        got = _samples(metrics.render(_empty_scrape()))
        assert got[("satgw_ingest_to_delivered_seconds_count", (("class", "urgency"),))] == 1
        assert 20.0 <= got[("satgw_ingest_to_delivered_seconds_sum", (("class", "urgency"),))] < 30.0

    def test_scrape_state_becomes_gauges(self) -> None:
        """Depths, links and connections handed to a render show as gauges with their labels."""
        counters = Counters()
        counters.add("sent.routine", 4)
        metrics = Metrics(counters=counters, node="n1", version="9.9")
        depths = [Depth(p, depth=int(p), pending=1, oldest_age_s=None if p == 0 else 12.5) for p in Priority]
        link = LinkSample(
            name="geo",
            in_flight=2,
            paused=True,
            ready_in={"distress": 0.0, "routine": 60.0},
            capacity_per_hour=120.0,
            used={"routine": 0.25},
            share={"routine": 0.5},
            next_view_in=95.5,
        )
        down = [Depth(p, depth=1, pending=1, oldest_age_s=4.0) for p in Priority]
        scrape = Scrape(depths=depths, links=[link], mqtt=[MqttSample("publisher", True, 3)], backlog=7, downlink=down)
        got = _samples(metrics.render(scrape))
        assert got[("satgw_info", (("node", "n1"), ("version", "9.9")))] == 1
        assert got[("satgw_sent_total", (("class", "routine"),))] == 4
        assert got[("satgw_queue_depth", (("class", "routine"),))] == 3
        assert got[("satgw_queue_pending", (("class", "safety"),))] == 1
        assert got[("satgw_queue_oldest_age_seconds", (("class", "distress"),))] == 0
        assert got[("satgw_queue_oldest_age_seconds", (("class", "urgency"),))] == 12.5
        assert got[("satgw_redis_up", ())] == 1
        assert got[("satgw_backlog_entries", ())] == 7
        assert got[("satgw_link_in_flight", (("link", "geo"),))] == 2
        assert got[("satgw_link_paused", (("link", "geo"),))] == 1
        assert got[("satgw_link_next_send_seconds", (("class", "routine"), ("link", "geo")))] == 60
        assert got[("satgw_link_capacity_frames_per_hour", (("link", "geo"),))] == 120
        assert got[("satgw_link_capacity_used_ratio", (("class", "routine"), ("link", "geo")))] == 0.25
        assert got[("satgw_link_capacity_share_ratio", (("class", "routine"), ("link", "geo")))] == 0.5
        assert got[("satgw_mqtt_reconnects_total", (("client", "publisher"),))] == 3
        assert got[("satgw_link_next_pass_seconds", (("link", "geo"),))] == 95.5
        assert got[("satgw_downlink_queue_depth", (("class", "safety"),))] == 2
        assert got[("satgw_downlink_queue_oldest_age_seconds", (("class", "distress"),))] == 4.0

    def test_redis_down_still_renders_the_rest(self) -> None:
        """Without depths (Redis failed) the scrape says redis_up 0 and still exposes the counters."""
        metrics = Metrics(counters=Counters(), node="n1", version="1")
        got = _samples(metrics.render(_empty_scrape()))
        assert got[("satgw_redis_up", ())] == 0
        assert not any(name == "satgw_queue_depth" for name, _ in got)
        assert got[("satgw_accepted_total", (("class", "routine"),))] == 0

    def test_terminal_gauges(self) -> None:
        """Terminals online, registered and seen show as gauges; without a presence read there are none."""
        metrics = Metrics(counters=Counters(), node="n1", version="1")
        terminals = PresenceSummary(registered=12, online=5, seen=9, window_s=900.0)
        scrape = Scrape(depths=[], links=[], mqtt=[], backlog=0, terminals=terminals)
        got = _samples(metrics.render(scrape))
        assert got[("satgw_terminals_online", ())] == 5
        assert got[("satgw_terminals_registered", ())] == 12
        assert got[("satgw_terminals_seen", ())] == 9
        assert ("satgw_terminals_online", ()) not in _samples(metrics.render(_empty_scrape()))

    def test_registries_are_per_gateway(self) -> None:
        """Two gateways in one process keep separate histograms (no global registry)."""
        one = Metrics(counters=Counters(), node="a", version="1")
        two = Metrics(counters=Counters(), node="b", version="1")
        one.sent([_entry(Priority.ROUTINE, time.time())])
        got = _samples(two.render(_empty_scrape()))
        assert got[("satgw_ingest_to_sent_seconds_count", (("class", "routine"),))] == 0
