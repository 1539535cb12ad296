"""A small HTTP endpoint for health and status, served by the same process as ``satgw run``.

``GET /healthz`` answers once the gateway is serving; ``GET /readyz`` checks Redis
and the broker; ``GET /api/v1/status`` reports queue depths and counters as JSON.
It runs on the event loop but does no blocking work, so it never stalls ingest.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["StatusServer"]

StatusSource = Callable[[], Awaitable[dict[str, Any]]]
ReadySource = Callable[[], Awaitable[dict[str, bool]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class StatusServer:
    """Serves ``/healthz``, ``/readyz`` and ``/api/v1/status`` on (host, port)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        status: StatusSource,
        ready: ReadySource,
        logger: logging.Logger | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._status, self._ready = status, ready
        self._log = logger or logging.getLogger("satgw.api")
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful when asked for port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            method, path = ([*request.decode("latin-1").split(" "), "", ""])[:2]
            status, body = await self._route(method, path)
            await self._respond(writer, status, body)
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if method != "GET":
            return 405, {"error": f"{method} is not allowed"}
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/readyz":
            checks = await self._ready()
            return (200 if all(checks.values()) else 503), checks
        if path == "/api/v1/status":
            return 200, await self._status()
        return 404, {"error": f"no route {path}"}

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, indent=1).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
