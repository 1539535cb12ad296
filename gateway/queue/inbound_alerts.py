"""CAP alerts accepted from authorities, and whom they went to (``Keys.alert_in``).

An Update or Cancel reaches the terminals its references reached, so every accepted alert
keeps its recipients. Records expire a while after the alert does.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from gateway.exceptions import map_redis_errors
from gateway.names import Keys
from gateway.queue.checks import check_client, check_keys

__all__ = ["InboundAlerts", "InboundRecord"]


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One accepted alert: its msgType, when accepted, and the downlink messages it became."""

    sender: str
    identifier: str
    msg_type: str
    accepted_at: float
    messages: dict[str, str]
    """Terminal → id of the downlink message it was sent."""

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps({"msg_type": self.msg_type, "accepted_at": self.accepted_at, "messages": self.messages})


class InboundAlerts:
    """The accepted-alert records of one gateway."""

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        check_client(redis)
        check_keys(keys)
        self._redis, self._keys = redis, keys

    async def get(self, sender: str, identifier: str) -> InboundRecord | None:
        """The record of (sender, identifier), or None if it was never accepted (or has expired)."""
        with map_redis_errors(f"read alert {identifier} of {sender}"):
            raw = await self._redis.get(self._keys.alert_in(sender, identifier))
        if raw is None:
            return None
        data = orjson.loads(raw)
        return InboundRecord(sender, identifier, data["msg_type"], data["accepted_at"], data["messages"])

    async def save(self, record: InboundRecord, *, keep_s: float) -> None:
        """Store ``record`` for ``keep_s`` seconds."""
        key = self._keys.alert_in(record.sender, record.identifier)
        with map_redis_errors(f"save alert {record.identifier} of {record.sender}"):
            await self._redis.set(key, record.to_json(), ex=max(1, int(keep_s)))
