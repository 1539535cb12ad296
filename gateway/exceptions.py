"""Every error satgw raises, in one place.

```
GatewayError
├── ConfigError                 settings or TOML that cannot work; raised at start-up
├── TerminalExists              adding a terminal id that is registered and not revoked (.terminal)
├── TerminalNotFound            revoking (or otherwise naming) a terminal that was never registered (.terminal)
├── MessageRejected             a message refused for good (.reason, .terminal, .seq)
├── TransientError              worth retrying; nothing is acknowledged meanwhile
│   ├── QueueUnavailable        Redis did not answer or refused (translated from redis.*)
│   └── BrokerUnavailable       the MQTT broker is unreachable (translated from gmqtt/OSError)
└── LinkError                   a satellite link could not carry a frame (.link, .reason)
```

Library errors are translated at the boundary (:func:`map_redis_errors`), so no
``redis.exceptions`` class leaks past :mod:`gateway.queue` and its peers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import redis.exceptions

from protocols.errors import Reason

__all__ = [
    "BrokerUnavailable",
    "ConfigError",
    "GatewayError",
    "LinkError",
    "MessageRejected",
    "QueueUnavailable",
    "TerminalExists",
    "TerminalNotFound",
    "TransientError",
    "map_redis_errors",
    "stop_if_cancelling",
]


class GatewayError(Exception):
    """The root of every satgw error."""


class ConfigError(GatewayError):
    """Settings that cannot work, found at start-up."""


class TerminalExists(GatewayError):
    """A terminal id is already registered and not revoked; revoke it first to issue a new key."""

    def __init__(self, terminal: str) -> None:
        super().__init__(f"terminal {terminal} is already registered; revoke it before adding it again")
        self.terminal = terminal


class TerminalNotFound(GatewayError):
    """No terminal with this id was ever registered."""

    def __init__(self, terminal: str) -> None:
        super().__init__(f"terminal {terminal} is not registered")
        self.terminal = terminal


class MessageRejected(GatewayError):
    """A message refused for good; the terminal gets a ``rejected`` receipt with ``reason``."""

    def __init__(self, reason: Reason, detail: str, *, terminal: str | None = None, seq: int | None = None) -> None:
        super().__init__(f"{reason.value}: {detail} (terminal={terminal}, seq={seq})")
        self.reason = reason
        self.detail = detail
        self.terminal = terminal
        self.seq = seq


class TransientError(GatewayError):
    """A failure of a service we depend on; the operation is retried, nothing is acked."""


class QueueUnavailable(TransientError):
    """Redis did not answer, or refused a command."""


class BrokerUnavailable(TransientError):
    """The MQTT broker is unreachable."""


class LinkError(GatewayError):
    """A satellite link could not carry a frame."""

    def __init__(self, link: str, reason: str) -> None:
        super().__init__(f"link {link}: {reason}")
        self.link = link
        self.reason = reason


@contextmanager
def map_redis_errors(context: str) -> Iterator[None]:
    """Translate redis-py errors raised inside the block into :class:`QueueUnavailable` with ``context``."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        stop_if_cancelling(exc)  # a cancellation that raced redis-py's read timeout is still a cancellation
        raise QueueUnavailable(f"{context}: Redis unreachable ({exc})") from exc
    except redis.exceptions.RedisError as exc:
        raise QueueUnavailable(f"{context}: Redis refused ({exc})") from exc


def stop_if_cancelling(exc: BaseException | None = None) -> None:
    """Raise ``CancelledError`` if the running task is being cancelled.

    Python 3.11's ``asyncio.timeout`` (used by redis-py) can turn a cancellation that races a
    timeout into ``TimeoutError``, which redis-py may even retry away; a loop that runs until
    cancelled calls this each round (and a retry loop on catching a :class:`TransientError`),
    or the task never stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc
