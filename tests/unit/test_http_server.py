"""The in-process uvicorn server: port 0 picks a free port, a busy port fails at once, stop closes the socket."""

from __future__ import annotations

import asyncio
import socket

import pytest
from starlette.types import Receive, Scope, Send

from gateway.api import HttpServer


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data


class TestHttpServer:
    async def test_port_zero_serves_on_the_port_it_reports(self) -> None:
        """Asked for port 0, the server binds a free port, reports it and answers there until stopped."""
        server = HttpServer(app=_hello, host="127.0.0.1", port=0)
        await server.start()
        try:
            assert server.port > 0
            assert (await _get(server.port)).endswith(b"\r\n\r\nhello")
        finally:
            await server.stop()
        with pytest.raises(ConnectionRefusedError):
            await _get(server.port)

    async def test_a_busy_port_fails_at_start(self) -> None:
        """Binding a port another socket listens on raises OSError from start()."""
        with socket.create_server(("127.0.0.1", 0)) as busy:
            server = HttpServer(app=_hello, host="127.0.0.1", port=busy.getsockname()[1])
            with pytest.raises(OSError, match="in use"):
                await server.start()

    def test_bad_port_is_refused(self) -> None:
        """A port outside 0..65535 is refused at construction."""
        with pytest.raises(ValueError, match="port"):
            HttpServer(app=_hello, host="127.0.0.1", port=70000)

    async def test_stop_without_start_is_harmless(self) -> None:
        """Stopping a server that never started does nothing."""
        await HttpServer(app=_hello, host="127.0.0.1", port=0).stop()
