"""Argument checks shared by the queue classes, so bad wiring fails at construction, not mid-traffic."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from gateway.names import Keys

__all__ = ["check_client", "check_int", "check_keys", "check_seconds", "check_text"]


def check_client(redis: object) -> None:
    """Raise unless ``redis`` is a ``redis.asyncio.Redis`` speaking RESP2 and returning bytes."""
    if not isinstance(redis, Redis):
        raise TypeError(f"redis must be a redis.asyncio.Redis, got {type(redis).__name__}")
    options: dict[str, Any] = redis.get_connection_kwargs()  # type: ignore[no-untyped-call]
    if options.get("decode_responses"):
        raise ValueError("redis must be created with decode_responses=False: queued records are bytes")
    # RESP3 changes the shape of stream replies; one shape keeps the parsing simple.
    if str(options.get("protocol") or 2) != "2":
        raise ValueError("redis must use protocol 2 (RESP2)")


def check_keys(keys: object) -> None:
    """Raise unless ``keys`` is a :class:`gateway.names.Keys`."""
    if not isinstance(keys, Keys):
        raise TypeError(f"keys must be a gateway.names.Keys, got {type(keys).__name__}")


def check_text(name: str, value: object) -> None:
    """Raise unless ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def check_int(name: str, value: object, low: int, high: int) -> None:
    """Raise unless ``value`` is an int in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def check_seconds(name: str, value: object) -> None:
    """Raise unless ``value`` is a number of seconds in [0, 1 day)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 86_400:
        raise ValueError(f"{name} must be a number of seconds in [0, 86400), got {value!r}")
