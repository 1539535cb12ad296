"""``satgw run``: wires ingest, queue, relays, links and ground into one serving process.

Start-up order matters for "nothing lost": the outbound connection, ground and
relays come first, the inbound connections last (with their routes set before
CONNACK, as a persistent session delivers queued messages at once). Shutdown
runs the other way: stop taking uplink, persist what is buffered, let the links
finish what is in flight, publish what the ground holds, then disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import time
from types import TracebackType
from typing import Any, Self

from redis.asyncio import Redis

from gateway.api import HttpServer, create_app
from gateway.api_dashboard import DashboardSources
from gateway.ceilings import Ceilings
from gateway.config import GatewayConfig, Settings
from gateway.counters import Counters
from gateway.downlink import Downlink, DownlinkRelays
from gateway.emergency import Emergency, text_room
from gateway.exceptions import BrokerUnavailable, GatewayError, QueueUnavailable, TransientError, stop_if_cancelling
from gateway.ground import Ground
from gateway.history import History, Sampler
from gateway.ingest import Lane
from gateway.links.base import Clock
from gateway.links.clock import RealClock
from gateway.links.factory import LinkConfig, build_link, capacity_per_hour
from gateway.metrics import Metrics
from gateway.mqtt import ExactlyOncePublisher, MqttClient
from gateway.names import Keys, Topics
from gateway.operations import LinkHandle, Operations
from gateway.presence import Presence
from gateway.queue import Outbox, Queue, Stats
from gateway.queue.fragments import FragmentStore
from gateway.queue.presence import PresenceStore
from gateway.queue.release import ReleaseLog
from gateway.queue.trace import Trace
from gateway.quotas import Quotas
from gateway.receipts import Receipt
from gateway.relay import Backlog, Relay, reclaim_forever
from gateway.terminals import KeyCache, Registry

__all__ = ["Gateway", "MqttReceipts", "version"]

_DRAIN_TIMEOUT_S = 10.0
_CANCEL_TIMEOUT_S = 5.0
_STATS_EVERY_S = 1.0


def version() -> str:
    """The installed satgw version."""
    try:
        return importlib.metadata.version("satgw")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class MqttReceipts:
    """Publishes receipts to ``{prefix}/down/{terminal}`` at QoS 1 without waiting."""

    def __init__(self, *, client: MqttClient, topics: Topics, counters: Counters) -> None:
        self._client, self._topics, self._counters = client, topics, counters

    def send(self, receipt: Receipt) -> None:
        """Publish ``receipt``; a failure is counted, never raised."""
        try:
            self._client.publish(self._topics.down(receipt.terminal), receipt.to_json(), qos=1)
            self._counters.add(f"receipts.{receipt.kind.value}")
        except (RuntimeError, OSError, BrokerUnavailable):
            self._counters.add("receipts.failed")


class Gateway:
    """The whole gateway as an async context manager; :meth:`serve` runs until asked to stop.

    Args:
        settings: the environment.
        config: links and tuning.
        clock: the links' clock; real time unless a test injects one.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        config: GatewayConfig,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.settings, self.config = settings, config
        self.keys, self.topics = Keys(settings.topic_prefix), Topics(settings.topic_prefix)
        self.counters = Counters()
        self.metrics = Metrics(counters=self.counters, node=settings.node, version=version())
        self.backlog = Backlog()
        """Entries this process holds for retry (shared by its relays)."""
        self._clock: Clock = clock or RealClock()
        self._log = logger or logging.getLogger("satgw")
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._entered = False
        self.started_at = time.time()

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Gateway is not re-entrant")
        self._entered = True
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._shutdown()

    async def _start(self) -> None:
        s, node = self.settings, self.settings.node
        self.redis = Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=10)
        self._stack.push_async_callback(self.redis.aclose)
        self.trace = Trace(redis=self.redis, keys=self.keys, ttl_s=self.config.trace_ttl_s)
        self.queue = Queue(
            redis=self.redis,
            keys=self.keys,
            consumer=node,
            max_deliveries=self.config.max_deliveries,
            trace=self.trace,
        )
        self.outbox = Outbox(redis=self.redis, keys=self.keys, consumer=node, trace=self.trace)
        self.stats = Stats(redis=self.redis, keys=self.keys)
        self.presence_store = PresenceStore(redis=self.redis, keys=self.keys)
        self.presence = Presence(
            sink=self.presence_store, counters=self.counters, interval_s=self.config.presence_flush_s
        )
        self.downlink = Downlink(
            redis=self.redis,
            keys=self.keys,
            registry=Registry(redis=self.redis, keys=self.keys),
            consumer=node,
            counters=self.counters,
            max_deliveries=self.config.max_deliveries,
        )
        await self._setup_storage()
        self.publisher = await self._connect(MqttClient(url=s.mqtt_url, client_id=f"satgw-{node}-pub"))
        self.receipts = MqttReceipts(client=self.publisher, topics=self.topics, counters=self.counters)
        releases = ReleaseLog(redis=self.redis, keys=self.keys, node=node, trace=self.trace)
        self.fragments = FragmentStore(redis=self.redis, keys=self.keys)
        self.ground = Ground(
            outbox=self.outbox,
            releases=releases,
            topics=self.topics,
            receipts=self.receipts,
            counters=self.counters,
            fragments=self.fragments,
            metrics=self.metrics,
            presence=self.presence,
        )
        self.relays: list[Relay] = []
        self.down_relays: list[Relay] = []
        self.links: list[LinkHandle] = []
        self.lanes: list[Lane] = []
        self.inbound: list[MqttClient] = []
        if "relay" in s.roles:
            await self._start_relays()
            self._spawn(self.ground.publish_forever(self._ground_publisher), "ground.publisher")
            self._spawn(reclaim_forever(self.queue, self.backlog, idle_s=self.config.reclaim_idle_s), "queue.reclaim")
            await self._start_downlink()
        self._spawn(self._flush_stats_forever(), "stats")
        self._spawn(self.presence.flush_forever(), "presence")  # any role: an idle flush costs nothing
        self._start_history()
        await self._start_emergency()
        if "ingest" in s.roles:
            await self._start_ingest()
        await self._start_http()

    async def _setup_storage(self) -> None:
        try:
            await self.queue.setup()
            await self.outbox.setup()
            await self.downlink.setup()
        except QueueUnavailable as exc:
            raise GatewayError(f"cannot start: {exc} (is Redis running at {self.settings.redis_url}?)") from exc
        for entry in await self.queue.recover_own():
            self.backlog.push(entry)

    def _ground_publisher(self, clean_start: bool) -> ExactlyOncePublisher:
        client_id = f"satgw-{self.settings.node}-ground"
        return ExactlyOncePublisher(url=self.settings.mqtt_url, client_id=client_id, clean_start=clean_start)

    async def _start_relays(self) -> None:
        for profile in self.config.links:
            link = build_link(profile, sink=self.ground, clock=self._clock)
            if isinstance(link, contextlib.AbstractAsyncContextManager):
                link = await self._stack.enter_async_context(link)  # a real terminal: open the port, query the card
            relay = Relay(
                link=link,
                queue=self.queue,
                backlog=self.backlog,
                receipts=self.receipts,
                counters=self.counters,
                clock=self._clock,
                pack_max=self.config.pack_max,
                max_in_flight=self.config.max_in_flight,
                max_attempts=self.config.max_attempts,
                ceilings=(ceilings := self._ceilings(profile)),
                fragments=self.fragments,
                metrics=self.metrics,
                trace=self.trace,
            )
            self.relays.append(relay)
            shares = self.config.shares if ceilings is not None else None
            self.links.append(LinkHandle(relay, link, ceilings, shares, capacity_per_hour(profile)))
            self._spawn(relay.run(), f"relay[{link.name}]")

    async def _start_downlink(self) -> None:
        relays = DownlinkRelays(
            redis=self.redis,
            downlink=self.downlink,
            settings=self.settings,
            config=self.config,
            topics=self.topics,
            clock=self._clock,
            ceilings=self._ceilings,
        )
        await relays.start(self._spawn)
        self.down_relays = relays.relays

    def _ceilings(self, profile: LinkConfig) -> Ceilings | None:
        capacity = capacity_per_hour(profile)
        if not self.config.shares.shares or capacity is None:
            return None
        return Ceilings(shares=self.config.shares, capacity_per_hour=capacity)

    async def _start_ingest(self) -> None:
        s, node = self.settings, self.settings.node
        keys = KeyCache(registry=Registry(redis=self.redis, keys=self.keys))
        common: dict[str, Any] = {
            "queue": self.queue,
            "keys": keys,
            "topics": self.topics,
            "receipts": self.receipts,
            "counters": self.counters,
            "quotas": Quotas(limits=self.config.quotas) if self.config.quotas else None,
            "presence": self.presence,
            "in_distress": self.emergency.in_distress,
            "trace": self.trace,
        }
        self.lanes = [
            Lane(name="sos", distress=True, max_batch=self.config.max_batch, **common),
            Lane(name="up", distress=False, max_batch=self.config.max_batch, **common),
        ]
        for lane, topic_filter in zip(self.lanes, (self.topics.sos_filter, self.topics.uplink_filter), strict=True):
            self._spawn(lane.run(), f"ingest[{lane.name}]")
            client = MqttClient(
                url=s.mqtt_url,
                client_id=f"satgw-{node}-{lane.name}",
                persistent=True,
                receive_maximum=self.config.receive_maximum,
            )
            client.route(topic_filter, lane.handle)
            lane.attach(client)
            await self._connect(client)
            await client.subscribe(topic_filter, qos=1)  # serving means subscribed
            self.inbound.append(client)

    async def _start_emergency(self) -> None:
        s = self.settings
        mtu = min((handle.link.mtu for handle in self.links), default=None)  # None: this node runs no links
        emergency = Emergency(
            redis=self.redis,
            keys=self.keys,
            topics=self.topics,
            node=s.node,
            mqtt_url=s.mqtt_url,
            publisher=self.publisher,
            downlink=self.downlink,
            positions=self.presence_store,
            webhooks=self.config.webhooks,
            sender=self.config.alert_sender,
            position_every_s=self.config.alert_position_every_s,
            text_bytes=text_room(mtu),
            counters=self.counters,
        )
        self.emergency = await self._stack.enter_async_context(emergency)
        if "relay" in s.roles:
            self._spawn(self.emergency.run_incidents(), "incidents")
        if "ingest" in s.roles:
            self._spawn(self.emergency.watch_distress(), "incidents.watch")
            await self.emergency.listen_in()

    async def _start_http(self) -> None:
        host, port = self.settings.http_address
        self.operations = Operations(
            node=self.settings.node,
            version=version(),
            started_at=self.started_at,
            queue=self.queue,
            registry=Registry(redis=self.redis, keys=self.keys),
            counters=self.counters,
            metrics=self.metrics,
            links=self.links,
            backlog=lambda: len(self.backlog),
            mqtt=self._mqtt_clients,
            ready_check=self.ready,
            presence=self.presence_store,
            online_window_s=self.config.online_window_s,
            downlink_queue=self.downlink.queue,
        )
        dashboard = DashboardSources(history=self.history, clock=self._clock)
        app = create_app(
            self.operations,
            downlink=self.downlink,
            dashboard=dashboard,
            trace=self.trace,
            emergency=self.emergency.routes,
        )
        self.http = HttpServer(app=app, host=host, port=port)
        try:
            await self.http.start(name=f"satgw[{self.settings.node}].http")
        except OSError as exc:
            raise GatewayError(f"cannot start: HTTP on {host}:{port}: {exc}") from exc
        self._stack.push_async_callback(self.http.stop)

    def _start_history(self) -> None:
        """Sample the queues and counters for the dashboard's charts (in memory, this process only)."""
        self.history = History(every_s=self.config.history_every_s, window_s=self.config.history_window_s)
        sampler = Sampler(history=self.history, depths=self.queue.depths, counters=self.counters, logger=self._log)
        self._spawn(sampler.run(), "history")

    def _mqtt_clients(self) -> dict[str, MqttClient]:
        inbound = {f"ingest-{lane.name}": c for lane, c in zip(self.lanes, self.inbound, strict=False)}
        return {"publisher": self.publisher, **inbound}

    async def _connect(self, client: MqttClient) -> MqttClient:
        try:
            return await self._stack.enter_async_context(client)
        except BrokerUnavailable as exc:
            raise GatewayError(f"cannot start: {exc} (is the broker running at {self.settings.mqtt_url}?)") from exc

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"satgw[{self.settings.node}].{name}"))

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set or a task fails."""
        waiter = asyncio.create_task(stop.wait(), name="satgw.stop")
        http = [self.http.task] if self.http.task is not None else []
        done, _ = await asyncio.wait([waiter, *self._tasks, *http], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                raise GatewayError(f"task {task.get_name()} failed") from task.exception()

    async def _shutdown(self) -> None:
        for client in self.inbound:
            await client.__aexit__(None, None, None)  # the broker keeps our session and what we did not ack
        await self._wait_lanes_empty()
        relays = [*self.relays, *self.down_relays]
        for relay in relays:
            relay.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.drain() for r in relays)), _DRAIN_TIMEOUT_S)
        await asyncio.sleep(0.2)  # let the ground publisher take what the last frames delivered
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=_CANCEL_TIMEOUT_S)
        for task in stuck:  # a library that swallowed the cancellation must not keep the process up
            self._log.warning("task %s did not stop within %.0f s; leaving it", task.get_name(), _CANCEL_TIMEOUT_S)
        await self.presence.flush()  # what the last batches did; a kill -9 loses at most one interval
        await self._flush_stats()
        await self._stack.aclose()

    async def _wait_lanes_empty(self) -> None:
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while any(lane.backlog for lane in self.lanes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _flush_stats_forever(self) -> None:
        while True:
            stop_if_cancelling()
            await asyncio.sleep(_STATS_EVERY_S)
            await self._flush_stats()

    async def _flush_stats(self) -> None:
        counts = self.counters.take_unflushed()
        if not counts:
            return
        try:
            await self.stats.incr(counts)
        except TransientError:
            self.counters.restore_unflushed(counts)

    async def status(self) -> dict[str, Any]:
        """Queue depths per class, links (with state), this process's counters and the version."""
        return (await self.operations.status()).model_dump()

    async def ready(self) -> dict[str, bool]:
        """Whether Redis and the broker answer."""
        try:
            redis_ok = bool(await self.redis.ping())
        except Exception:
            redis_ok = False
        return {"redis": redis_ok, "mqtt": all(c.connected for c in [self.publisher, *self.inbound])}
