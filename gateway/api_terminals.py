"""The terminal routes of the HTTP API: the list with presence, and one terminal."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Query
from starlette.exceptions import HTTPException

from gateway.api_models import ErrorOut, TerminalOut
from gateway.operations import Operations, TerminalOrder
from protocols.envelope import TERMINAL_ID_PATTERN

__all__ = ["MAX_TERMINALS", "add_terminal_routes"]

MAX_TERMINALS = 100_000
"""The largest ``limit`` of a terminal list."""

_ORDER = Query("terminal", description="by id, or most recently seen first (never seen last)")
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such terminal"}}


def add_terminal_routes(app: FastAPI, ops: Operations) -> None:
    """Add ``GET /api/v1/terminals`` and ``GET /api/v1/terminals/{terminal}`` to ``app``."""

    @app.get("/api/v1/terminals", response_model=list[TerminalOut], tags=["terminals"])
    async def terminals(
        online: bool | None = Query(None, description="only online (true) or only offline (false) terminals"),
        limit: int | None = Query(None, ge=1, le=MAX_TERMINALS, description="at most this many"),
        order: TerminalOrder = _ORDER,
    ) -> list[TerminalOut]:
        """Registered terminals, revoked ones too (never a key): last seen, last position, counters, online."""
        return await ops.terminals(online=online, limit=limit, order=order)

    @app.get("/api/v1/terminals/{terminal}", response_model=TerminalOut, tags=["terminals"], responses=_NOT_FOUND)
    async def terminal(
        terminal: str = Path(pattern=TERMINAL_ID_PATTERN.pattern, description="the terminal's id"),
    ) -> TerminalOut:
        """One registered terminal: last seen, last position, counters, online."""
        found = await ops.terminal(terminal)
        if found is None:
            raise HTTPException(404, f"no terminal {terminal}")
        return found
