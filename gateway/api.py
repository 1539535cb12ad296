"""The HTTP API of ``satgw run``: an ASGI app (FastAPI) served in-process by uvicorn.

Routes: ``GET /healthz`` (the process serves), ``GET /readyz`` (Redis and the broker
answer; 503 if not), ``GET /metrics`` (Prometheus text), ``GET /`` (the dashboard: a page
that polls the JSON routes, its assets under ``/static/``) and under ``/api/v1``: status,
dead letters (list, inspect, requeue, purge), terminals (list;
send a message down: :mod:`gateway.api_downlink`), links (list, pause, resume).
``/openapi.json`` documents every route. Every error is JSON ``{"error": ...}``: 404 for
unknown routes and ids, 422 for bad parameters, 503 while Redis fails, 500 otherwise,
never with a stack trace (that goes to the log). The app runs on the gateway's event loop
and does only short awaits, so it never stalls ingest or the relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api_alerts import EmergencyRoutes, add_emergency_routes
from gateway.api_dashboard import DashboardSources, add_dashboard_routes
from gateway.api_downlink import add_downlink_routes
from gateway.api_models import (
    DeadLetterDetail,
    DeadLetterOut,
    DistressOut,
    ErrorOut,
    HealthOut,
    LinkOut,
    PurgedOut,
    ReadyOut,
    RequeuedOut,
    StatusOut,
)
from gateway.api_terminals import add_terminal_routes
from gateway.api_trace import add_trace_routes
from gateway.downlink import Downlink
from gateway.exceptions import TransientError
from gateway.operations import Direction, Operations
from gateway.queue.streams import MAX_COUNT
from gateway.queue.trace import TraceReader

__all__ = ["HttpServer", "create_app"]

_DEAD_ID = r"^\d{1,20}-\d{1,20}$"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such id"}}
# Everything the page loads comes from here: no CDN, no inline script.
_PAGE_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 3.0


def create_app(
    ops: Operations,
    *,
    logger: logging.Logger | None = None,
    downlink: Downlink | None = None,
    dashboard: DashboardSources | None = None,
    trace: TraceReader | None = None,
    emergency: EmergencyRoutes | None = None,
) -> FastAPI:
    """The ASGI app over ``ops``; with ``downlink``, the route that queues messages down to terminals too;
    with ``dashboard``, the history and link timeline routes; with ``emergency``, incidents and CAP in."""
    log = logger or logging.getLogger("satgw.api")
    app = FastAPI(
        title="satgw",
        version=ops.version,
        description="Operator API of a satellite short-message gateway.",
        responses={422: {"model": ErrorOut, "description": "bad parameters"}},
        docs_url=None,  # Swagger UI and ReDoc load their assets from a CDN; the schema is enough
        redoc_url=None,
    )
    _add_errors(app, log)
    _add_health(app, ops)
    _add_dead(app, ops)
    _add_links(app, ops)
    _add_dashboard(app)
    if downlink is not None:
        add_downlink_routes(app, downlink)
    if dashboard is not None:
        add_dashboard_routes(app, ops=ops, sources=dashboard)
    if trace is not None:
        add_trace_routes(app, trace)  # GET /api/v1/messages/{id}: gateway/api_trace.py
    if emergency is not None:
        add_emergency_routes(app, emergency)

    add_terminal_routes(app, ops)
    app.add_middleware(_CatchAll, logger=log)
    return app


def _add_health(app: FastAPI, ops: Operations) -> None:
    @app.get("/healthz", response_model=HealthOut, tags=["health"])
    async def healthz() -> HealthOut:
        """200 while the process serves."""
        return HealthOut()

    @app.get("/readyz", response_model=ReadyOut, tags=["health"], responses={503: {"model": ReadyOut}})
    async def readyz() -> JSONResponse:
        """200 if Redis and the broker answer, else 503 with the same checks."""
        checks = await ops.ready()
        ok = checks.redis and checks.mqtt
        return JSONResponse(checks.model_dump(), status_code=200 if ok else 503)

    @app.get("/api/v1/status", response_model=StatusOut, tags=["status"])
    async def status() -> StatusOut:
        """Queues per class, links, counters and version."""
        return await ops.status()

    @app.get("/api/v1/distress", response_model=list[DistressOut], tags=["status"])
    async def distress(
        limit: int = Query(100, ge=1, le=MAX_COUNT, description="at most this many, oldest first"),
    ) -> list[DistressOut]:
        """Distress messages still queued: waiting, or taken by a relay and not yet acked."""
        return await ops.distress(limit)

    @app.get(
        "/metrics",
        response_class=Response,
        tags=["metrics"],
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition"}},
    )
    async def metrics() -> Response:
        """Prometheus metrics; queue depths are read from Redis at each scrape."""
        return Response(await ops.metrics_text(), media_type=CONTENT_TYPE_LATEST)


def _add_dead(app: FastAPI, ops: Operations) -> None:
    dead_id = Path(pattern=_DEAD_ID, description="the dead letter's id, as listed")
    way = Query("up", description="up: terminals' messages (default); down: messages to terminals")

    @app.get("/api/v1/dead", response_model=list[DeadLetterOut], tags=["dead letters"])
    async def dead_list(
        limit: int = Query(100, ge=1, le=MAX_COUNT, description="at most this many, oldest first"),
        direction: Direction = way,
    ) -> list[DeadLetterOut]:
        """The oldest dead letters."""
        return await ops.dead_letters(limit, direction=direction)

    @app.get("/api/v1/dead/{dead_id}", response_model=DeadLetterDetail, tags=["dead letters"], responses=_NOT_FOUND)
    async def dead_one(dead_id: str = dead_id, direction: Direction = way) -> DeadLetterDetail:
        """One dead letter with its raw fields and decoded message."""
        found = await ops.dead_letter(dead_id, direction=direction)
        if found is None:
            raise HTTPException(404, f"no dead letter {dead_id}")
        return found

    @app.post("/api/v1/dead/{dead_id}/requeue", response_model=RequeuedOut, tags=["dead letters"], responses=_NOT_FOUND)
    async def dead_requeue(dead_id: str = dead_id, direction: Direction = way) -> RequeuedOut:
        """Put a dead letter back at the tail of its class queue."""
        if not await ops.requeue_dead(dead_id, direction=direction):
            raise HTTPException(404, f"no dead letter {dead_id}")
        return RequeuedOut(requeued=dead_id)

    @app.delete("/api/v1/dead", response_model=PurgedOut, tags=["dead letters"])
    async def dead_purge(direction: Direction = way) -> PurgedOut:
        """Drop every dead letter."""
        return PurgedOut(purged=await ops.purge_dead(direction=direction))


def _add_links(app: FastAPI, ops: Operations) -> None:
    @app.get("/api/v1/links", response_model=list[LinkOut], tags=["links"])
    async def links() -> list[LinkOut]:
        """Every link: state, in flight, next send allowed per class, transmissions, capacity."""
        return ops.link_list()

    @app.post("/api/v1/links/{name}/pause", response_model=LinkOut, tags=["links"], responses=_NOT_FOUND)
    async def pause(name: str) -> LinkOut:
        """Stop the link's relay taking anything new, distress included; transmissions under way finish."""
        return _or_404(ops.pause(name), name)

    @app.post("/api/v1/links/{name}/resume", response_model=LinkOut, tags=["links"], responses=_NOT_FOUND)
    async def resume(name: str) -> LinkOut:
        """Let a paused link's relay take entries again."""
        return _or_404(ops.resume(name), name)


def _add_dashboard(app: FastAPI) -> None:
    # Read once at start: the assets are a few kilobytes and never change while the process runs.
    static = importlib.resources.files("gateway") / "static"
    page = (static / "index.html").read_bytes()
    assets = {
        f.name: (f.read_bytes(), _ASSET_TYPES[suffix])
        for f in static.iterdir()
        if (suffix := "." + f.name.rpartition(".")[2]) in _ASSET_TYPES
    }
    policy = {"content-security-policy": _PAGE_POLICY, "cache-control": "no-cache"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        """The dashboard page."""
        return HTMLResponse(page, headers=policy)

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        """One of the dashboard's scripts or style sheets."""
        if name not in assets:
            raise HTTPException(404, f"no asset {name}")
        body, media_type = assets[name]
        return Response(body, media_type=media_type, headers=policy)


def _or_404(link: LinkOut | None, name: str) -> LinkOut:
    if link is None:
        raise HTTPException(404, f"no link {name}")
    return link


def _add_errors(app: FastAPI, log: logging.Logger) -> None:
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        error = f"no route {request.url.path}" if exc.status_code == 404 and exc.detail == "Not Found" else exc.detail
        return JSONResponse({"error": error}, status_code=exc.status_code, headers=exc.headers)

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = [
            {"loc": ".".join(str(part) for part in e.get("loc", ())), "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": "storage unavailable, try again"}, status_code=503)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(TransientError, unavailable)


class _CatchAll:
    """Turns any other exception into a 500 JSON answer (logged with its traceback, never sent)."""

    def __init__(self, app: ASGIApp, *, logger: logging.Logger) -> None:
        self._app, self._log = app, logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except Exception:
            self._log.exception("API request %s failed", scope.get("path"))
            if started or scope["type"] != "http":
                return
            response = JSONResponse({"error": "internal error"}, status_code=500)
            await response(scope, receive, send)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the gateway."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """Serves an ASGI app on (host, port) as a task of the running event loop.

    The socket is bound by :meth:`start`, so port 0 picks a free port, :attr:`port`
    tells which, and a port in use fails at once with ``OSError``.
    """

    def __init__(self, *, app: ASGIApp, host: str, port: int, logger: logging.Logger | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self._app, self._host, self._port = app, host, port
        self._log = logger or logging.getLogger("satgw.api")
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful when asked for port 0)."""
        return self._port

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The serving task, once started (the gateway watches it like its other tasks)."""
        return self._task

    async def start(self, *, name: str = "satgw.http") -> None:
        """Bind, start serving and return once the server accepts connections."""
        family = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.create_server((self._host, self._port), family=family)
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(self._app, lifespan="off", log_config=None, access_log=False, server_header=False)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=name)
        async with asyncio.timeout(_START_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    sock.close()
                    raise OSError(f"HTTP server on {self._host}:{self._port} did not start")
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let answers under way finish (briefly), then close."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _STOP_TIMEOUT_S)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
