"""A real HTTP/1.1 webhook receiver for tests: a TCP server on a free port, answering as a test scripts it.

Small on purpose (``asyncio.start_server``, keep-alive, ``Content-Length`` bodies only): the
dispatcher's httpx client talks to it over a real socket, so timeouts, refusals and reconnects are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from gateway.alerts import verify

__all__ = ["HANG", "Answer", "Receiver", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the receiver got it."""

    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    at: float
    """``time.monotonic()`` when the body had arrived."""

    @property
    def key(self) -> str:
        return self.headers["idempotency-key"]

    def signed_by(self, secret: str) -> bool:
        """True if the signature headers verify with ``secret`` now."""
        return verify(
            secret,
            timestamp=self.headers["x-satgw-timestamp"],
            signature=self.headers["x-satgw-signature"],
            body=self.body,
            now=time.time(),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer: a status, extra headers and a body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


HANG = None
"""Returned by a script: read the request and never answer."""
Script = Callable[[Request, int], Answer | None]
"""(request, its index among all requests received, from 0) → the answer, or HANG."""


class Receiver:
    """An HTTP server that records every request and answers by ``script``.

    ``keys()`` are the distinct idempotency keys answered 2xx, in order, as a receiver that drops repeats keeps them.
    """

    def __init__(self, script: Script = lambda request, index: Answer()) -> None:
        self._script = script
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        self.arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks/cap"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        # Hung handlers return on the event, idle keep-alive ones on EOF once their socket is closed.
        self._closing.set()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def keys(self) -> list[str]:
        """Distinct idempotency keys of accepted requests, first-seen order (repeats dropped)."""
        return list(dict.fromkeys(r.key for r in self.accepted))

    async def wait_for(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Wait until ``check()`` holds after some request, or fail naming ``what``."""
        try:
            async with asyncio.timeout(timeout), self.arrived:
                await self.arrived.wait_for(check)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while (request := await _read(reader)) is not None:
                answer = self._script(request, len(self.requests))
                await self._record(request, answer)
                if answer is HANG:
                    await self._closing.wait()
                    return
                writer.write(_encode(answer))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _record(self, request: Request, answer: Answer | None) -> None:
        async with self.arrived:
            self.requests.append(request)
            if answer is not None and 200 <= answer.status < 300:
                self.accepted.append(request)
            self.arrived.notify_all()


async def _read(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method=method, path=path, headers=headers, body=body, at=time.monotonic())


def _encode(answer: Answer) -> bytes:
    headers = {"Content-Length": str(len(answer.body)), "Connection": "keep-alive", **answer.headers}
    lines = [f"HTTP/1.1 {answer.status} Status", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1") + answer.body
