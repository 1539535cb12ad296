"""The baseline: the MQTT → Redis bridge most people would write first.

aiomqtt subscribes at QoS 1; for each message, one ``XADD`` of the raw payload is awaited, then
the message is acknowledged. It keeps the promise satgw keeps (the PUBACK goes out only once the
message is in Redis) but does none of satgw's work (no seal, no validation, no dedup), and it
runs on the same event loop (uvloop) and Redis parser (hiredis) as satgw, so the bench's ratio
measures the design: the MQTT client library and one round trip per message versus batches.

aiomqtt 2.5 acknowledges on receipt and has no manual-ack switch, so the bridge turns on paho's
manual acknowledgements on the paho client aiomqtt wraps.

Run as ``python -m bench.naive_bridge MQTT_URL REDIS_URL TOPIC_FILTER STREAM``; it serves until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from redis.asyncio import Redis

__all__ = ["bridge", "main"]


def _paho(client: aiomqtt.Client) -> Any:
    return client._client  # the wrapped paho client: the one way to acknowledge after the XADD


async def bridge(*, mqtt_url: str, redis_url: str, topic_filter: str, stream: str, client_id: str) -> None:
    """Copy every message on ``topic_filter`` into ``stream``, one XADD and one PUBACK at a time.

    The MQTT session is persistent (keyed by ``client_id``), so messages published while the
    bridge is down wait in the broker. Runs until cancelled.
    """
    address = urlsplit(mqtt_url)
    if address.scheme != "mqtt" or not address.hostname:
        raise ValueError(f"MQTT URL {mqtt_url!r} must look like mqtt://host[:port]")
    client = aiomqtt.Client(address.hostname, address.port or 1883, identifier=client_id, clean_session=False)
    paho = _paho(client)
    paho.manual_ack_set(True)
    async with Redis.from_url(redis_url) as redis, client:
        await client.subscribe(topic_filter, qos=1)
        async for message in client.messages:
            await redis.xadd(stream, {"t": message.topic.value, "d": message.payload})
            paho.ack(message.mid, message.qos)


async def _serve(args: argparse.Namespace) -> None:
    task = asyncio.create_task(
        bridge(
            mqtt_url=args.mqtt_url,
            redis_url=args.redis_url,
            topic_filter=args.topic_filter,
            stream=args.stream,
            client_id=args.client_id,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.naive_bridge``."""
    parser = argparse.ArgumentParser(prog="python -m bench.naive_bridge", description=__doc__.splitlines()[0])
    parser.add_argument("mqtt_url")
    parser.add_argument("redis_url")
    parser.add_argument("topic_filter")
    parser.add_argument("stream")
    parser.add_argument("--client-id", default="satgw-bench-naive")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
