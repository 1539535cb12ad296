"""Alert delivery to webhooks: durable, signed, retried with backoff, each endpoint on its own.

:meth:`WebhookDispatcher.publish` queues an alert in Redis once per configured endpoint (one atomic
script call) and returns; nothing is sent on the caller's time. Inside ``async with dispatcher:``
one named task per endpoint reads that endpoint's deliveries in order and POSTs each until it is
settled:

- 2xx: delivered (acknowledged and deleted);
- 408, 429, 5xx, a timeout or a connection error: tried again after :class:`~gateway.alerts.endpoints.Backoff`
  (``Retry-After`` honoured), up to ``max_attempts``, then moved to the dead-letter list;
- any other status (3xx, 4xx): the receiver refuses it and retrying will not help, so it goes to the
  dead-letter list at once, with the status.

An endpoint waits for its oldest delivery to settle before it sends the next, so a receiver sees
alerts in the order they were published (an Update never arrives before its Alert). A slow or dead
endpoint only holds up its own task and its own HTTP connection pool.

Delivery is at least once: an attempt is counted in Redis before its request goes out, so a
dispatcher killed mid-request (or unable to record a success) sends that alert again after a
restart. Every request carries ``Idempotency-Key`` (the CAP identifier) for receivers to drop repeats,
and a signature (:mod:`gateway.alerts.signing`).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import random as randomness
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self

import httpx
from redis.asyncio import Redis

from gateway import logs
from gateway.alerts.endpoints import WebhookEndpoint, parse_retry_after
from gateway.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from gateway.alerts.sinks import OutgoingAlert
from gateway.counters import Counters
from gateway.exceptions import TransientError, stop_if_cancelling
from gateway.names import Keys
from gateway.queue.alerts import DEDUP_S, AlertDelivery, AlertStore, DeadAlert, EndpointQueue

__all__ = ["WebhookDispatcher", "user_agent"]

_BATCH = 16
_BLOCK_S = 1.0  # well under the gateway's 5 s Redis socket timeout, or an idle wait reads as an outage
_REDIS_RETRY_S = 1.0
_SNIPPET = 200
"""How much of a refusing receiver's answer is kept with the error."""


def user_agent() -> str:
    """``satgw/<version>``, the User-Agent of every webhook request."""
    try:
        return f"satgw/{importlib.metadata.version('satgw')}"
    except importlib.metadata.PackageNotFoundError:
        return "satgw/unknown"


@dataclass(frozen=True, slots=True)
class _Result:
    """What one attempt got back."""

    status: int | None
    error: str
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in (408, 429) or self.status >= 500


class WebhookDispatcher:
    """The webhook sink: queues alerts durably and delivers them to every endpoint.

    Args:
        redis: A ``redis.asyncio.Redis`` created with ``decode_responses=False``.
        keys: The key names of this gateway.
        endpoints: The configured webhooks (unique names); none makes publishing a no-op.
        consumer: This process's consumer name (the node); a restart reusing it resumes its deliveries.
        counters: Where ``alerts.webhook.*`` counts go.
        logger: Where delivery outcomes are logged (never a secret or URL; endpoints by name).
        clock: Wall-clock time (signatures, backoff due times).
        random: A float in [0, 1) for backoff jitter.
        dedup_s: How long a published idempotency key is remembered (a repeat publish queues nothing).
        reclaim_idle_s: Take over a delivery another process left idle this long; default per endpoint
            is ``timeout_s + backoff cap + 60`` so a live process's retry is never taken from it.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        endpoints: Sequence[WebhookEndpoint],
        consumer: str,
        counters: Counters,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = randomness.random,
        dedup_s: float = DEDUP_S,
        reclaim_idle_s: float | None = None,
    ) -> None:
        if not all(isinstance(e, WebhookEndpoint) for e in endpoints):
            raise TypeError("endpoints must be WebhookEndpoint values")
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique, got {names}")
        if reclaim_idle_s is not None and not 0 < reclaim_idle_s < 86_400:
            raise ValueError(f"reclaim_idle_s must be in (0, 86400) seconds, got {reclaim_idle_s!r}")
        self._store = AlertStore(redis=redis, keys=keys, consumer=consumer, dedup_s=dedup_s)
        self._endpoints = tuple(endpoints)
        self._names = names
        self._counters = counters
        self._log = logger or logging.getLogger("satgw.alerts")
        self._clock = clock
        self._random = random
        self._reclaim_idle_s = reclaim_idle_s
        self._workers: list[_Worker] = []

    async def __aenter__(self) -> Self:
        if self._workers:
            raise RuntimeError("the webhook dispatcher is already running; it is not re-entrant")
        await self._store.setup(self._names)
        agent = user_agent()
        for endpoint in self._endpoints:
            idle = self._reclaim_idle_s or endpoint.timeout_s + endpoint.backoff.cap_s + 60
            worker = _Worker(
                endpoint=endpoint,
                queue=self._store.queue(endpoint.name),
                counters=self._counters,
                log=self._log,
                clock=self._clock,
                random=self._random,
                user_agent=agent,
                reclaim_idle_s=idle,
            )
            worker.start()
            self._workers.append(worker)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every worker: idle ones at once, one with a request in flight once it has settled it."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        grace = max((w.endpoint.timeout_s for w in workers), default=0.0) + 2 * _REDIS_RETRY_S
        tasks = [w.task for w in workers if w.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(w.close() for w in workers))

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The configured endpoint names."""
        return tuple(self._names)

    async def publish(self, alert: OutgoingAlert) -> None:
        """Queue ``alert`` for every endpoint, once, atomically; return when it is durable.

        Publishing an idempotency key already queued within ``dedup_s`` queues nothing again.

        Raises:
            QueueUnavailable: Redis did not take it (nothing was queued; call again).
        """
        if not isinstance(alert, OutgoingAlert):
            raise TypeError(f"alert must be an OutgoingAlert, got {type(alert).__name__}")
        if not self._names:
            return
        queued = await self._store.publish(
            self._names,
            key=alert.key,
            kind=alert.kind,
            content_type=alert.content_type,
            body=alert.body,
            published_at=self._clock(),
        )
        self._counters.add("alerts.webhook.published" if queued else "alerts.webhook.duplicate")
        what = "queued for" if queued else "already queued, not again, for"
        self._log.info(
            "alert %s %s %d webhook(s)", alert.key, what, len(self._names), extra=logs.fields(message_id=alert.key)
        )

    async def pending(self) -> dict[str, int]:
        """Per endpoint, how many deliveries are not settled yet; one round trip."""
        return await self._store.pending(self._names)

    async def dead(self, *, count: int = 100, endpoint: str | None = None, after: str | None = None) -> list[DeadAlert]:
        """The oldest ``count`` dead deliveries (of one endpoint, if given; after dead id ``after``), oldest first."""
        return await self._store.dead(count=count, endpoint=endpoint, after=after)

    async def find_dead(self, dead_id: str) -> DeadAlert | None:
        """One dead delivery, or None."""
        return await self._store.find_dead(dead_id)

    async def requeue_dead(self, dead_id: str) -> bool:
        """Send one dead delivery again from a fresh attempt count; False if there is none (or its endpoint is gone)."""
        moved = await self._store.requeue([dead_id], self._names) == 1
        if moved:
            self._counters.add("alerts.webhook.requeued")
            self._log.info("dead alert delivery %s requeued", dead_id)
        return moved

    async def requeue_all_dead(self, *, endpoint: str | None = None) -> int:
        """Send every dead delivery (of one endpoint, if given) again; return how many were requeued."""
        # The ids are listed first, so a requeued alert refused again at once is not requeued twice.
        ids: list[str] = []
        after = None
        while dead := await self._store.dead(count=1000, after=after):
            ids += (d.dead_id for d in dead if endpoint is None or d.endpoint == endpoint)
            after = dead[-1].dead_id
        # Those of endpoints no longer configured stay dead: nothing would read them.
        total = 0
        for start in range(0, len(ids), 1000):
            total += await self._store.requeue(ids[start : start + 1000], self._names)
        if total:
            self._counters.add("alerts.webhook.requeued", total)
            self._log.info("%d dead alert deliveries requeued", total, extra=logs.fields(count=total))
        return total

    async def drop_dead(self, dead_id: str) -> bool:
        """Delete one dead delivery for good; False if there is none."""
        return await self._store.drop_dead([dead_id]) == 1


class _Worker:
    """Delivers one endpoint's alerts, one at a time, in order."""

    def __init__(
        self,
        *,
        endpoint: WebhookEndpoint,
        queue: EndpointQueue,
        counters: Counters,
        log: logging.Logger,
        clock: Callable[[], float],
        random: Callable[[], float],
        user_agent: str,
        reclaim_idle_s: float,
    ) -> None:
        self.endpoint = endpoint
        self._queue = queue
        self._counters = counters
        self._log = log
        self._clock = clock
        self._random = random
        self._user_agent = user_agent
        self._reclaim_idle_s = reclaim_idle_s
        # A client per endpoint: a hanging receiver can only exhaust its own pool.
        self._client = httpx.AsyncClient(timeout=endpoint.timeout_s, follow_redirects=False)
        self._busy = False
        self._stopping = False
        self._fresh = True
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"satgw.alerts.webhook[{self.endpoint.name}]")

    def stop(self) -> None:
        """Ask the worker to end: at once when idle, after settling the request in flight otherwise."""
        self._stopping = True
        if self.task is not None and not self._busy:
            self.task.cancel()

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            stop_if_cancelling()
            try:
                await self._step()
            except TransientError as exc:
                self._counters.add("alerts.webhook.redis_errors")
                self._log.warning("webhook %s: %s; retrying", self.endpoint.name, exc)
                self._queue.rewind()
                self._fresh = True
                await asyncio.sleep(_REDIS_RETRY_S)
            except Exception:
                # A bug must not silence the endpoint for good; its delivery stays pending meanwhile.
                self._counters.add("alerts.webhook.errors")
                self._log.exception("webhook %s: unexpected error; retrying", self.endpoint.name)
                self._queue.rewind()
                await asyncio.sleep(_REDIS_RETRY_S)

    async def _step(self) -> None:
        if self._fresh:
            await self._queue.setup()  # again after an error: Redis may have lost the group
            self._fresh = False
        taken = await self._queue.take(count=_BATCH, block_s=_BLOCK_S, claim_idle_s=self._reclaim_idle_s)
        for delivery in taken:
            await self._deliver(delivery)
            if self._stopping:
                return

    async def _deliver(self, delivery: AlertDelivery) -> None:
        """Try ``delivery`` until it is settled (or this worker stops: it stays pending for the next one)."""
        while True:
            wait = delivery.due - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)  # only this endpoint waits
            self._busy = True
            try:
                due = await self._attempt(delivery)
            finally:
                self._busy = False
            if due is None or self._stopping:
                return
            delivery = replace(delivery, due=due)

    async def _attempt(self, delivery: AlertDelivery) -> float | None:
        """One attempt; returns when to try again, or None once the delivery is settled."""
        attempt = await self._queue.begin(delivery)
        if attempt is None:
            self._log.info("webhook %s: alert %s is now another process's to deliver", self.endpoint.name, delivery.key)
            return None
        if attempt > self.endpoint.max_attempts:
            # Only after crashes mid-request: the counted attempts already reached the limit.
            await self._bury(delivery, "max_attempts", None, delivery.last_error or "interrupted attempts", attempt - 1)
            return None
        result = await self._post(delivery, attempt)
        return await self._settle(delivery, attempt, result)

    async def _post(self, delivery: AlertDelivery, attempt: int) -> _Result:
        timestamp = int(self._clock())
        headers = {
            "Content-Type": delivery.content_type,
            "Idempotency-Key": delivery.key,
            "User-Agent": self._user_agent,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.endpoint.secret, timestamp, delivery.body),
            "X-Satgw-Alert-Kind": delivery.kind,
            "X-Satgw-Attempt": str(attempt),
        }
        try:
            # httpx's timeout is per phase (connect, each read...); this bounds the whole attempt.
            async with asyncio.timeout(self.endpoint.timeout_s):
                async with self._client.stream(
                    "POST", self.endpoint.url, content=delivery.body, headers=headers
                ) as got:
                    return await self._result(got)
        except (TimeoutError, httpx.TimeoutException):
            return _Result(None, f"timeout after {self.endpoint.timeout_s:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return _Result(None, self._describe(exc))

    async def _result(self, response: httpx.Response) -> _Result:
        snippet = await _snippet(response)
        if 200 <= response.status_code < 300:
            return _Result(response.status_code, "")
        error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
        return _Result(response.status_code, error, retry_after)

    def _describe(self, exc: BaseException) -> str:
        # Some httpx messages quote the request URL, which may carry a token.
        text = str(exc).replace(self.endpoint.url, self.endpoint.origin)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def _settle(self, delivery: AlertDelivery, attempt: int, result: _Result) -> float | None:
        if result.delivered:
            await self._queue.done(delivery)
            self._counters.add("alerts.webhook.delivered")
            self._log_outcome(logging.INFO, "delivered", delivery, attempt, result)
            return None
        if not result.retryable:
            await self._bury(delivery, "refused", result.status, result.error, attempt)
            return None
        if attempt >= self.endpoint.max_attempts:
            await self._bury(delivery, "max_attempts", result.status, result.error, attempt)
            return None
        wait = self.endpoint.backoff.delay(attempt, random=self._random, retry_after=result.retry_after)
        due = self._clock() + wait
        await self._queue.retry(delivery, due=due, error=result.error)
        self._counters.add("alerts.webhook.retried")
        self._log_outcome(logging.WARNING, f"failed, next try in {wait:.3g} s", delivery, attempt, result)
        return due

    async def _bury(self, delivery: AlertDelivery, reason: str, status: int | None, error: str, attempts: int) -> None:
        await self._queue.bury(delivery, reason=reason, status=status, error=error)
        self._counters.add("alerts.webhook.dead")
        self._log_outcome(logging.ERROR, f"dead ({reason})", delivery, attempts, _Result(status, error))

    def _log_outcome(self, level: int, what: str, delivery: AlertDelivery, attempt: int, result: _Result) -> None:
        status = "-" if result.status is None else str(result.status)
        self._log.log(
            level,
            "webhook %s: alert %s attempt %d %s (status %s)",
            self.endpoint.name,
            delivery.key,
            attempt,
            what,
            status,
            extra=logs.fields(message_id=delivery.key, attempts=attempt, detail=result.error or None),
        )


async def _snippet(response: httpx.Response) -> str:
    """The start of a response body as one printable line (the rest is never read)."""
    chunk = b""
    async for part in response.aiter_bytes():
        chunk += part
        if len(chunk) >= 4 * _SNIPPET:
            break
    text = " ".join(chunk[: 4 * _SNIPPET].decode(errors="replace").split())
    return "".join(ch for ch in text if ch.isprintable())[:_SNIPPET]
