"""The catalogue of link profiles: real systems' limits as data, turned into link settings with per-link overrides.

Numbers come from ../shared/research/domain.md (section in each entry's summary). Bit caps
become whole bytes rounded down, since a frame cannot use part of a byte: 848 bits carry
106 bytes, 110 bits only 13. Where domain.md has no figure the entry says so:

* BDS-3 RSMC and GSMC service intervals: the official per-card values are an open gap
  (domain.md §7); the typical civil 60 s of §1.3 is used.
* Iridium SBD session loss: no figure in domain.md; 2 % is an assumption. Session time is
  fitted to the 9522B figures (≈5 s for 70 B, ≈20 s for 1960 B, §3) and used for 9602/9603
  too; their 40 s data cycle is RockBLOCK's (§3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.links.geo import GeoProfile
from gateway.links.sbd import SbdProfile

__all__ = ["CATALOGUE", "DEFAULT_PROFILE", "CardSpec", "SbdSpec", "Spec", "configure", "lookup"]

DEFAULT_PROFILE = "lab-geo"
_CIVIL_INTERVAL_S = 60.0
_EXPRESS_BITS = 188
# Fitted to domain.md §3: 5 s at 70 B and 20 s at 1960 B.
_SESSION_S_PER_BYTE = 15.0 / 1890.0
_SESSION_BASE_S = 5.0 - 70 * _SESSION_S_PER_BYTE

_COMMON = frozenset({"interval_s", "loss_rate", "outages", "seed", "max_frame_bytes"})
_PLACES = frozenset({"terminal_lat", "terminal_lon", "ground_lat", "ground_lon"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CardSpec:
    """A BeiDou card profile: a message cap in bits, a service interval, a loss rate and a GEO or MEO path."""

    summary: str
    bits: int
    express_bits: int = 0
    """Cap of an express (distress) message, bits; 0 if the system has none."""
    interval_s: float = _CIVIL_INTERVAL_S
    loss_rate: float
    orbit: str = "geo"
    cards: int = 1

    @property
    def kind(self) -> str:
        """The link type this profile builds: ``geo`` or ``meo``."""
        return self.orbit

    @property
    def max_frame_bytes(self) -> int:
        """The cap in whole bytes."""
        return self.bits // 8

    @property
    def overridable(self) -> frozenset[str]:
        """The settings a link may override."""
        extra = {"cards", "elevation_deg"} if self.orbit == "meo" else {"cards", "sat_lon", *_PLACES}
        return _COMMON | extra

    def configure(self, *, profile: str, name: str, overrides: Mapping[str, Any]) -> GeoProfile:
        """Return the settings of link ``name`` with ``overrides`` applied (see :func:`configure`)."""
        values: dict[str, Any] = {
            "max_frame_bytes": self.max_frame_bytes,
            "interval_s": self.interval_s,
            "loss_rate": self.loss_rate,
            "cards": self.cards,
            "orbit": self.orbit,
            "express_bytes": self.express_bits // 8,
        }
        return GeoProfile(name=name, profile=profile, **(values | dict(overrides)))


@dataclass(frozen=True, slots=True, kw_only=True)
class SbdSpec:
    """An Iridium SBD modem class: MO/MT caps, session timing, data cycle and loss."""

    summary: str
    mo_bytes: int
    mt_bytes: int
    interval_s: float
    loss_rate: float
    session_base_s: float = _SESSION_BASE_S
    session_s_per_byte: float = _SESSION_S_PER_BYTE

    @property
    def kind(self) -> str:
        """The link type this profile builds."""
        return "sbd"

    @property
    def max_frame_bytes(self) -> int:
        """The MO cap in bytes."""
        return self.mo_bytes

    @property
    def overridable(self) -> frozenset[str]:
        """The settings a link may override."""
        return _COMMON | {"elevation_deg"}

    def configure(self, *, profile: str, name: str, overrides: Mapping[str, Any]) -> SbdProfile:
        """Return the settings of link ``name`` with ``overrides`` applied (see :func:`configure`)."""
        values: dict[str, Any] = {
            "max_frame_bytes": self.mo_bytes,
            "mt_bytes": self.mt_bytes,
            "interval_s": self.interval_s,
            "loss_rate": self.loss_rate,
            "session_base_s": self.session_base_s,
            "session_s_per_byte": self.session_s_per_byte,
        }
        return SbdProfile(name=name, profile=profile, **(values | dict(overrides)))


Spec = CardSpec | SbdSpec


def _rdss(level: int, bits: int, *, encrypted: bool) -> CardSpec:
    kind = "encrypted" if encrypted else "non-encrypted"
    return CardSpec(
        summary=f"BDS-2 RDSS {kind} card, level {level}: {bits}-bit messages, express {_EXPRESS_BITS} bits, "
        "civil 60 s interval, 95.5 % success (domain.md §1.1-1.3)",
        bits=bits,
        express_bits=_EXPRESS_BITS,
        loss_rate=0.045,
    )


CATALOGUE: Mapping[str, Spec] = {
    DEFAULT_PROFILE: CardSpec(
        summary="lab pool: ten cards at RSMC size with a 50 ms interval, unrealistically generous on purpose",
        bits=14_000,
        interval_s=0.05,
        loss_rate=0.01,
        cards=10,
    ),
    **{f"bds2-rdss-l{n}": _rdss(n, bits, encrypted=False) for n, bits in enumerate((110, 408, 628, 848), 1)},
    **{f"bds2-rdss-l{n}-enc": _rdss(n, bits, encrypted=True) for n, bits in enumerate((140, 360, 580, 1680), 1)},
    "bds3-rsmc": CardSpec(
        summary="BDS-3 regional short message via the GEOs: 14 000 bits, > 99.6 % success (domain.md §1.1)",
        bits=14_000,
        loss_rate=0.004,
    ),
    "bds3-gsmc": CardSpec(
        summary="BDS-3 global short message via the MEOs: 560 bits, > 96.46 % success (domain.md §1.1)",
        bits=560,
        loss_rate=0.0354,
        orbit="meo",
    ),
    **{
        f"iridium-sbd-{model}": SbdSpec(
            summary=f"Iridium {model} (RockBLOCK class): 340 B MO, 270 B MT, ~40 s data cycle (domain.md §3)",
            mo_bytes=340,
            mt_bytes=270,
            interval_s=40.0,
            loss_rate=0.02,
        )
        for model in ("9602", "9603")
    },
    "iridium-sbd-9522": SbdSpec(
        summary="Iridium 9522B class: 1960 B MO, 1890 B MT, sessions of 5-20 s (domain.md §3)",
        mo_bytes=1960,
        mt_bytes=1890,
        interval_s=0.0,
        loss_rate=0.02,
    ),
}


def lookup(profile: str) -> Spec:
    """Return the catalogue entry named ``profile``.

    Raises:
        ValueError: no such profile; the message lists the known ones.
    """
    try:
        return CATALOGUE[profile]
    except KeyError:
        raise ValueError(f"profile {profile!r} is unknown (known: {', '.join(CATALOGUE)})") from None


def configure(profile: str, *, name: str, overrides: Mapping[str, Any] | None = None) -> GeoProfile | SbdProfile:
    """Return the settings of link ``name`` built from catalogue ``profile`` with ``overrides`` applied.

    ``max_frame_bytes`` may only lower the profile's cap (say, to keep a margin); the other
    overrides replace the profile's values.

    Raises:
        ValueError: unknown profile, an override the profile does not have, or a value that
            cannot work; the message starts with the setting's name.
    """
    spec = lookup(profile)
    overrides = dict(overrides or {})
    for key in overrides:
        if key not in spec.overridable:
            raise ValueError(
                f"{key}: profile {profile!r} has no such setting (it has: {', '.join(sorted(spec.overridable))})"
            )
    cap = overrides.get("max_frame_bytes")
    if isinstance(cap, int) and cap > spec.max_frame_bytes:
        raise ValueError(f"max_frame_bytes: {cap} is above the {profile!r} cap of {spec.max_frame_bytes} bytes")
    return spec.configure(profile=profile, name=name, overrides=overrides)
