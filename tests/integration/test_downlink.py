"""The downlink over the real broker and Redis: API or code → downlink queue → link → ground → ``{prefix}/down/{t}``."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.exceptions import MessageRejected
from gateway.links.geo import GeoProfile
from gateway.names import Keys
from gateway.service import Gateway
from gateway.terminals import Registry
from protocols.envelope import MAX_BODY_BYTES, Kind, Position, Priority
from protocols.errors import Reason
from tests.harness import FAST_LINK, config_with, eventually, listening, provision, running_gateway

pytestmark = pytest.mark.integration


async def post(port: int, path: str, body: object) -> tuple[int, Any]:
    """(status, JSON answer) of a POST with a JSON body (urllib in a thread, so the gateway keeps serving)."""

    def call() -> tuple[int, Any]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST")
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(call)


class TestDelivery:
    async def test_a_message_posted_down_arrives_once_with_its_fields(self, settings: Settings) -> None:
        """A message POSTed for a terminal reaches its down topic once, with class, kind, body, seq and id."""
        terminal = await provision(settings, "D000001")
        async with running_gateway(settings, config_with()) as gw, listening(settings, terminal) as inbox:
            path = "/api/v1/terminals/D000001/messages"
            status, answer = await post(
                gw.http.port, path, {"body": "SOS received, help is coming", "class": "distress"}
            )
            assert status == 202, answer
            assert answer == {"id": "D000001:1", "terminal": "D000001", "seq": 1, "priority": "distress"}
            # A second message is the in-order marker: once it is in, a repeat of the first would be too.
            marker = await gw.downlink.send(terminal="D000001", body="marker", priority=Priority.DISTRESS)
            await eventually(lambda: marker in inbox.ids(), what="the marker")
        assert inbox.ids() == ["D000001:1", "D000001:2"]
        got = inbox.messages[0]
        assert (got["down"], got["terminal"], got["seq"], got["priority"], got["kind"]) == (
            "message",
            "D000001",
            1,
            "distress",
            "text",
        )
        assert got["body"] == "SOS received, help is coming"
        assert got["queued_at"] <= got["at"]
        assert got["link"] == "fast"
        assert inbox.receipts == []  # the terminal gets the message itself, no receipts about it

    async def test_position_and_ttl_travel_down(self, settings: Settings) -> None:
        """A routine message with a position and a TTL arrives with both."""
        terminal = await provision(settings, "D000002")
        async with running_gateway(settings, config_with()) as gw, listening(settings, terminal) as inbox:
            sent = await gw.downlink.send(
                terminal="D000002",
                body="waypoint",
                priority=Priority.ROUTINE,
                kind=Kind.POSITION,
                ttl=600,
                position=Position(39.9, 116.4),
            )
            await eventually(lambda: sent in inbox.ids(), what="the message")
        got = inbox.messages[0]
        assert (got["kind"], got["ttl"], got["position"]) == ("position", 600, {"lat": 39.9, "lon": 116.4})

    async def test_an_oversized_body_goes_as_fragments_and_arrives_whole(self, settings: Settings) -> None:
        """A 1 KiB body over a 200-byte link arrives whole, in one message."""
        small = GeoProfile(name="small", max_frame_bytes=200, interval_s=0.0, cards=4, loss_rate=0.0)
        terminal = await provision(settings, "D000003")
        body = "北" * (MAX_BODY_BYTES // 3)
        async with running_gateway(settings, config_with(small)) as gw, listening(settings, terminal) as inbox:
            sent = await gw.downlink.send(terminal="D000003", body=body, priority=Priority.SAFETY)
            await eventually(lambda: sent in inbox.ids(), what="the reassembled message")
            assert gw.counters.get("down.link.small.fragments") > 1
        assert inbox.messages[0]["body"] == body

    async def test_the_uplink_counters_do_not_count_the_downlink(self, settings: Settings) -> None:
        """Downlink traffic is counted under ``down.``, so the uplink's sent and delivered counts stay untouched."""
        terminal = await provision(settings, "D000004")
        async with running_gateway(settings, config_with()) as gw, listening(settings, terminal) as inbox:
            sent = await gw.downlink.send(terminal="D000004", body="hello", priority=Priority.URGENCY)
            await eventually(lambda: sent in inbox.ids(), what="the message")
            counts = gw.counters.snapshot()
        assert counts["down.accepted.urgency"] == counts["down.sent.urgency"] == counts["down.delivered.urgency"] == 1
        assert not any(counts.get(f"{kind}.urgency") for kind in ("accepted", "sent", "delivered"))


class TestPriority:
    async def test_distress_overtakes_a_routine_backlog(self, settings: Settings) -> None:
        """With a slow one-card link and 40 routine downlink messages queued, a distress one goes within a few slots."""
        slow = GeoProfile(name="slow", max_frame_bytes=1750, interval_s=0.1, cards=1, loss_rate=0.0)
        terminal = await provision(settings, "D000005")
        config = config_with(slow, pack_max=1)
        async with running_gateway(settings, config) as gw, listening(settings, terminal) as inbox:
            for i in range(40):
                await gw.downlink.send(terminal="D000005", body=f"routine {i}", priority=Priority.ROUTINE)
            await eventually(lambda: len(inbox.messages) >= 2, what="the backlog to start draining")
            await gw.downlink.send(terminal="D000005", body="ack", priority=Priority.DISTRESS)
            await eventually(lambda: any(m["priority"] == "distress" for m in inbox.messages), what="the distress")
            position = next(i for i, m in enumerate(inbox.messages) if m["priority"] == "distress")
            left = 40 - (len(inbox.messages) - 1)
        # Frames already in flight when it was queued may land first; nothing queued after it may.
        assert position <= 4, f"distress arrived {position}th; routine messages overtook it"
        assert left > 20, "the backlog had drained: the test proved nothing"


class TestDurability:
    async def test_a_queued_message_survives_a_restart_and_goes_once(self, settings: Settings) -> None:
        """A message queued by a gateway that carries nothing is sent by the next one, once."""
        terminal = await provision(settings, "D000006")
        ingest_only = settings.model_copy(update={"roles": frozenset({"ingest"})})
        async with running_gateway(ingest_only, config_with()) as gw:
            status, answer = await post(gw.http.port, "/api/v1/terminals/D000006/messages", {"body": "kept"})
            assert status == 202, answer
            assert gw.down_relays == []
        async with listening(settings, terminal) as inbox:
            async with running_gateway(settings, config_with()) as gw:
                marker = await gw.downlink.send(terminal="D000006", body="marker", priority=Priority.ROUTINE)
                await eventually(lambda: marker in inbox.ids(), what="the marker")
        assert inbox.ids() == [answer["id"], marker]
        assert inbox.messages[0]["body"] == "kept"

    async def test_an_entry_taken_before_a_crash_is_sent_after_restart(self, settings: Settings) -> None:
        """An entry this node's relay took and never acked goes at the next start, without waiting for reclaim."""
        terminal = await provision(settings, "D000008")
        config = config_with(reclaim_idle_s=600.0)  # reclaim would wait ten minutes: only recovery can send it
        async with running_gateway(settings.model_copy(update={"roles": frozenset({"ingest"})}), config) as gw:
            sent = await gw.downlink.send(terminal="D000008", body="taken", priority=Priority.URGENCY)
            taken = await gw.downlink.queue.take(count=1)  # as a relay of this node would, before dying
            assert [e.message_id for e in taken] == [sent]
        async with listening(settings, terminal) as inbox:
            async with running_gateway(settings, config) as gw:
                await eventually(lambda: sent in inbox.ids(), what="the recovered entry")
                marker = await gw.downlink.send(terminal="D000008", body="marker", priority=Priority.URGENCY)
                await eventually(lambda: marker in inbox.ids(), what="the marker")
        assert inbox.ids() == [sent, marker]

    async def test_the_downlink_keys_live_under_their_own_namespace(self, settings: Settings, redis: Redis) -> None:
        """Queued downlink messages are in ``{prefix}:down:q:<class>``; the uplink streams stay empty."""
        await provision(settings, "D000007")
        keys = Keys(settings.topic_prefix)
        async with running_gateway(settings.model_copy(update={"roles": frozenset({"ingest"})}), config_with()) as gw:
            await gw.downlink.send(terminal="D000007", body="held", priority=Priority.SAFETY)
        assert await redis.xlen(keys.downlink.stream(Priority.SAFETY)) == 1
        assert await redis.xlen(keys.stream(Priority.SAFETY)) == 0
        assert int(await redis.get(keys.downlink.next_seq("D000007")) or 0) == 1


class TestRefusals:
    @pytest.fixture
    async def gateway(self, settings: Settings) -> AsyncIterator[Gateway]:
        """A serving gateway with a registered terminal D1 and a revoked one D2."""
        await provision(settings, "D1")
        await provision(settings, "D2")
        async with Redis.from_url(settings.redis_url) as redis:
            await Registry(redis=redis, keys=Keys(settings.topic_prefix)).revoke("D2")
        async with running_gateway(settings, config_with()) as gw:
            yield gw

    @pytest.mark.parametrize(
        ("terminal", "body", "status", "reason"),
        [
            ("D9", {"body": "x"}, 404, "unknown_terminal"),
            ("D2", {"body": "x"}, 409, "revoked_terminal"),
            ("D1", {"body": "x" * (MAX_BODY_BYTES + 1)}, 422, "oversized"),
            ("D1", {"body": "x", "class": "routine", "kind": "sos"}, 422, "invalid_field"),
            ("D1", {"body": "x", "class": "distress", "ttl": 60}, 422, "invalid_field"),
            ("D1", {"body": "x", "ttl": 10**9}, 422, "invalid_field"),
        ],
    )
    async def test_a_refused_message_answers_its_reason(
        self, gateway: Gateway, terminal: str, body: dict[str, Any], status: int, reason: str
    ) -> None:
        """Unknown, revoked, oversized and invalid messages get 404, 409 and 422 with the specific reason."""
        got, answer = await post(gateway.http.port, f"/api/v1/terminals/{terminal}/messages", body)
        assert (got, answer["reason"]) == (status, reason), answer
        assert answer["error"]
        counts = gateway.downlink.counters.snapshot()
        assert counts == {f"rejected.{reason}": 1}, counts

    @pytest.mark.parametrize(
        "body",
        [{}, {"body": 5}, {"body": "x", "class": "urgent"}, {"body": "x", "extra": 1}, {"body": "x", "kind": "fax"}],
    )
    async def test_a_request_that_does_not_parse_is_422(self, gateway: Gateway, body: dict[str, Any]) -> None:
        """A missing body, a wrong type, an unknown class, kind or field is 422 with what was wrong."""
        status, answer = await post(gateway.http.port, "/api/v1/terminals/D1/messages", body)
        assert status == 422
        assert answer["error"] == "invalid request"
        assert answer["detail"]

    async def test_a_malformed_terminal_id_is_422(self, gateway: Gateway) -> None:
        """A terminal id outside the id pattern is refused before anything is looked up."""
        status, answer = await post(gateway.http.port, "/api/v1/terminals/bad%20id/messages", {"body": "x"})
        assert status == 422, answer

    async def test_send_many_queues_every_usable_terminal_at_once(self, gateway: Gateway) -> None:
        """send_many queues one message per registered terminal in one enqueue and leaves the others out."""
        sent = await gateway.downlink.send_many(
            terminals=["D1", "NOPE", "D1", "D2", "bad id"], body="gale warning", priority=Priority.SAFETY
        )
        assert sent == {"D1": "D1:1"}
        counts = gateway.downlink.counters.snapshot()
        assert counts == {
            "accepted.safety": 1,
            "rejected.unknown_terminal": 1,
            "rejected.revoked_terminal": 1,
            "rejected.invalid_field": 1,
        }, counts
        with pytest.raises(MessageRejected):
            await gateway.downlink.send_many(terminals=["D1"], body="x" * 2000, priority=Priority.SAFETY)
        assert gateway.downlink.counters.get("accepted.safety") == 1  # the refused body queued nothing

    async def test_refusals_use_up_no_seq(self, gateway: Gateway) -> None:
        """A refused message takes no seq: the next accepted one still gets seq 1."""
        with pytest.raises(MessageRejected) as refused:
            await gateway.downlink.send(terminal="D1", body="x" * 2000, priority=Priority.ROUTINE)
        assert refused.value.reason is Reason.OVERSIZED
        assert await gateway.downlink.send(terminal="D1", body="ok", priority=Priority.ROUTINE) == "D1:1"


class TestLinks:
    async def test_a_link_may_carry_no_downlink(self, settings: Settings) -> None:
        """A link named in ``downlink_off`` gets no downlink relay; the others each get one."""
        other = GeoProfile(name="other", max_frame_bytes=1750, interval_s=0.0, cards=1, loss_rate=0.0)
        config = config_with(FAST_LINK, other, downlink_off=frozenset({"fast"}))
        async with running_gateway(settings, config) as gw:
            assert [r.name for r in gw.relays] == ["fast", "other"]
            assert [r.name for r in gw.down_relays] == ["other"]
