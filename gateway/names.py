"""Redis key names and MQTT topic names, derived from one prefix each.

Keys carry a hash tag (``{prefix}``) so that every queue key of one gateway
lands in the same Redis Cluster slot and Lua scripts may touch several of them.

One gateway has two namespaces of the same shape: the uplink keys (``{prefix}:q:…``,
``{prefix}:outbox``, …) and the downlink keys (``{prefix}:down:q:…``, ``{prefix}:down:outbox``,
…) of :attr:`Keys.downlink`. The queue, outbox and release classes take a :class:`Keys`, so
the same code serves both directions. The terminal registry is one for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.envelope import Priority

__all__ = ["Keys", "Topics"]

_DOWN = "down"
_SPACES = frozenset({"", _DOWN})


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key satgw uses, under one prefix."""

    prefix: str = "satgw"
    space: str = ""
    """The namespace under the prefix: empty for the uplink, ``down`` for the downlink."""

    def __post_init__(self) -> None:
        if self.space not in _SPACES:
            raise ValueError(f"space must be one of {sorted(_SPACES)}, got {self.space!r}")

    def _k(self, *parts: str) -> str:
        return ":".join(("{" + self.prefix + "}", *([self.space] if self.space else []), *parts))

    @property
    def downlink(self) -> Keys:
        """The keys of the downlink path (gateway → terminals): same shape and hash tag, under ``{prefix}:down``."""
        return Keys(self.prefix, _DOWN)

    @property
    def is_downlink(self) -> bool:
        """True for the downlink namespace."""
        return self.space == _DOWN

    def stream(self, priority: Priority) -> str:
        """The queue stream of one priority class."""
        return self._k("q", priority.label)

    def streams(self) -> list[str]:
        """All queue streams, highest class first."""
        return [self.stream(p) for p in Priority]

    @property
    def group(self) -> str:
        """The consumer group every relay reads through."""
        return "relay"

    def seen(self, terminal: str) -> str:
        """The replay window of a terminal's accepted seqs (highest seq + bitmap; see docs/internals.md)."""
        return self._k("seen", terminal)

    def ground_seen(self, terminal: str) -> str:
        """The replay window of seqs the ground segment has delivered for a terminal."""
        return self._k("gseen", terminal)

    def next_seq(self, terminal: str) -> str:
        """Counter of the seqs the gateway gives its own messages to a terminal (used on the downlink)."""
        return self._k("seq", terminal)

    @property
    def terminals(self) -> str:
        """Hash: terminal id → JSON record (key, created, revoked); one registry for both directions."""
        return "{" + self.prefix + "}:terminals"

    @property
    def dead(self) -> str:
        """The dead-letter stream."""
        return self._k("dead")

    @property
    def outbox(self) -> str:
        """Stream of ground deliveries waiting to be published over MQTT."""
        return self._k("outbox")

    @property
    def outbox_group(self) -> str:
        """The consumer group of the ground publisher."""
        return "ground"

    def released(self, node: str) -> str:
        """Hash: QoS 2 packet id → delivery, for deliveries committed but maybe not yet released by the broker."""
        return self._k("released", node)

    @property
    def stats(self) -> str:
        """Hash of cumulative counters shared by every gateway process."""
        return self._k("stats")

    def fragment(self, link: str, message_ref: int) -> str:
        """A partial fragmented message at the ground (hash: ``n`` → total, index → chunk)."""
        return self._k("frag", link, str(message_ref))

    def fragment_refs(self, link: str) -> str:
        """A link's message-ref counter for fragmented messages."""
        return self._k("fragref", link)

    def trace(self, message_id: str) -> str:
        """The list of hops one message went through."""
        return self._k("trace", message_id)

    def incident(self, incident_id: str) -> str:
        """One SOS incident (JSON, ``gateway.incidents.Incident``)."""
        return self._k("incident", incident_id)

    @property
    def incidents(self) -> str:
        """Sorted set: incident id → opened at, for listing."""
        return self._k("incidents")

    @property
    def incidents_active(self) -> str:
        """Hash: terminal → id of its open or acknowledged incident."""
        return self._k("incidents", "active")

    def presence(self, part: str) -> str:
        """Terminal presence (gateway/queue/presence.py): ``seen``, ``pos``, ``geo``, ``polar``, ``counts``."""
        return self._k("presence", part)

    def alert_in(self, sender: str, identifier: str) -> str:
        """An accepted CAP alert from an authority: whom it went to (JSON)."""
        return self._k("capin", sender, identifier)

    @property
    def incident_events(self) -> str:
        """Stream of distress deliveries and operator actions, consumed by the incident worker."""
        return self._k("incidents", "events")

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this namespace (the uplink's: every key under the prefix)."""
        return self._k("*")


@dataclass(frozen=True, slots=True)
class Topics:
    """Every MQTT topic satgw uses, under one prefix."""

    prefix: str = "satgw"
    share_group: str = "satgw"

    def up(self, terminal: str) -> str:
        """Where a terminal publishes ordinary traffic."""
        return f"{self.prefix}/up/{terminal}"

    def up_sos(self, terminal: str) -> str:
        """Where a terminal publishes distress, on a subscription of its own."""
        return f"{self.prefix}/up/{terminal}/sos"

    def down(self, terminal: str) -> str:
        """Receipts and downlink messages for a terminal (the documents of :mod:`gateway.downlink`)."""
        return f"{self.prefix}/down/{terminal}"

    def delivered(self, terminal: str) -> str:
        """Where the ground segment publishes a delivered message."""
        return f"{self.prefix}/delivered/{terminal}"

    @property
    def alerts_cap(self) -> str:
        """Where every CAP alert the gateway produces (SOS incidents) is published."""
        return f"{self.prefix}/alerts/cap"

    @property
    def alerts_in(self) -> str:
        """Where authorities publish CAP alerts for terminals."""
        return f"{self.prefix}/alerts/in"

    @property
    def alerts_in_results(self) -> str:
        """Where the gateway answers each alert published on :attr:`alerts_in` (JSON)."""
        return f"{self.prefix}/alerts/in/results"

    @property
    def uplink_filter(self) -> str:
        """The shared subscription for ordinary uplink traffic."""
        return f"$share/{self.share_group}/{self.prefix}/up/+"

    @property
    def sos_filter(self) -> str:
        """The shared subscription for distress uplink traffic."""
        return f"$share/{self.share_group}/{self.prefix}/up/+/sos"

    def parse_up(self, topic: str) -> tuple[str, bool] | None:
        """Return (terminal, is_sos) for an uplink topic, or None if it is not one."""
        parts = topic.split("/")
        head = self.prefix.split("/")
        n = len(head)
        if parts[:n] != head or len(parts) < n + 2 or parts[n] != "up":
            return None
        rest = parts[n + 1 :]
        if len(rest) == 1:
            return rest[0], False
        if len(rest) == 2 and rest[1] == "sos":
            return rest[0], True
        return None
