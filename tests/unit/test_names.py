"""Key and topic names: the uplink keys keep their names, the downlink keys live under ``{prefix}:down``."""

from __future__ import annotations

import json

import pytest

from gateway.ground import delivery_json, downlink_json
from gateway.names import Keys, Topics
from protocols.envelope import Kind, Message, Position, Priority
from protocols.record import Record


class TestKeys:
    def test_uplink_key_names_are_unchanged(self) -> None:
        """Every uplink key keeps the name existing data is stored under."""
        keys = Keys("p")
        assert keys.stream(Priority.DISTRESS) == "{p}:q:distress"
        assert keys.seen("T1") == "{p}:seen:T1"
        assert keys.ground_seen("T1") == "{p}:gseen:T1"
        assert (keys.outbox, keys.dead, keys.stats, keys.terminals) == (
            "{p}:outbox",
            "{p}:dead",
            "{p}:stats",
            "{p}:terminals",
        )
        assert keys.released("n") == "{p}:released:n"
        assert (keys.fragment("l", 3), keys.fragment_refs("l")) == ("{p}:frag:l:3", "{p}:fragref:l")
        assert keys.trace("T1:1") == "{p}:trace:T1:1"
        assert keys.pattern == "{p}:*"
        assert not keys.is_downlink

    def test_downlink_keys_share_the_hash_tag_under_their_own_namespace(self) -> None:
        """The downlink's keys are the uplink's shape under ``{prefix}:down``, in the same Cluster slot."""
        down = Keys("p").downlink
        assert down.is_downlink
        assert down.streams() == [f"{{p}}:down:q:{c}" for c in ("distress", "urgency", "safety", "routine")]
        assert (down.seen("T1"), down.ground_seen("T1")) == ("{p}:down:seen:T1", "{p}:down:gseen:T1")
        assert (down.outbox, down.dead, down.stats) == ("{p}:down:outbox", "{p}:down:dead", "{p}:down:stats")
        assert down.released("n") == "{p}:down:released:n"
        assert down.fragment("l", 3) == "{p}:down:frag:l:3"
        assert down.next_seq("T1") == "{p}:down:seq:T1"
        assert down.pattern == "{p}:down:*"

    def test_one_registry_serves_both_directions(self) -> None:
        """The terminal registry is one hash, whichever namespace names it."""
        assert Keys("p").downlink.terminals == Keys("p").terminals == "{p}:terminals"

    def test_the_downlink_of_the_downlink_is_itself(self) -> None:
        """Asking the downlink keys for their downlink gives the same keys, never a deeper namespace."""
        down = Keys("p").downlink
        assert down.downlink == down

    def test_the_uplink_pattern_covers_the_downlink_keys(self) -> None:
        """Deleting by the uplink pattern (tests, the demo) removes the downlink keys too."""
        pattern = Keys("p").pattern.removesuffix("*")
        assert Keys("p").downlink.stream(Priority.ROUTINE).startswith(pattern)

    def test_an_unknown_namespace_is_refused(self) -> None:
        """Only the uplink and downlink namespaces exist."""
        with pytest.raises(ValueError, match="space"):
            Keys("p", "sideways")


class TestDocuments:
    def _record(self) -> Record:
        message = Message(
            terminal="T1",
            seq=7,
            priority=Priority.DISTRESS,
            kind=Kind.TEXT,
            body="SOS received",
            position=Position(1.5, 2.5),
            ts=100.0,
        )
        return Record(message=message, received_at=101.0)

    def test_a_downlink_document_names_itself_and_its_fields(self) -> None:
        """The down topic's message document says ``down: message`` and carries id, seq, class, body and times."""
        got = json.loads(downlink_json(self._record(), link="geo-1", delivered_at=102.0))
        assert got == {
            "down": "message",
            "id": "T1:7",
            "terminal": "T1",
            "seq": 7,
            "priority": "distress",
            "kind": "text",
            "body": "SOS received",
            "position": {"lat": 1.5, "lon": 2.5},
            "ttl": None,
            "queued_at": 101.0,
            "at": 102.0,
            "link": "geo-1",
        }

    def test_a_downlink_document_is_never_taken_for_a_receipt_or_a_delivery(self) -> None:
        """It carries no ``receipt`` field, and the uplink's delivery document carries no ``down`` field."""
        down = json.loads(downlink_json(self._record(), link="l", delivered_at=102.0))
        up = json.loads(delivery_json(self._record(), link="l", delivered_at=102.0))
        assert "receipt" not in down
        assert "down" not in up

    def test_the_down_topic_is_the_receipts_topic(self) -> None:
        """Downlink messages and receipts share the terminal's one down topic."""
        assert Topics("p").down("T1") == "p/down/T1"
