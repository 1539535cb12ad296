"""Settings, read once at start-up into frozen objects: environment (``SATGW_*``) and a TOML file.

Nothing here runs at import time; :func:`load` is called by the command line.
"""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.exceptions import ConfigError
from gateway.links.geo import GeoProfile

__all__ = ["DEFAULT_LINKS", "GatewayConfig", "Settings", "load", "load_file"]

# A lab pool: two GEO-like links of ten cards, 1750-byte frames (BDS-3 RSMC size),
# 50 ms card interval. Unrealistically generous on purpose, so a first try shows
# traffic flowing (several thousand messages/s); see README for real profiles.
DEFAULT_LINKS: tuple[GeoProfile, ...] = tuple(
    GeoProfile(name=f"lab-geo-{i}", max_frame_bytes=1750, interval_s=0.05, cards=10, loss_rate=0.01) for i in (1, 2)
)


class Settings(BaseSettings):
    """The environment: where the services are and what to call things."""

    model_config = SettingsConfigDict(env_prefix="SATGW_", frozen=True, extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "satgw"
    http: str = "127.0.0.1:8080"
    config: Path | None = None
    node: str = Field(default_factory=socket.gethostname)
    log_level: str = "INFO"
    roles: Annotated[frozenset[str], NoDecode] = frozenset({"ingest", "relay"})
    """Which parts this process runs: ``ingest`` (MQTT → queue), ``relay`` (queue → links → ground), or both."""

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            value = {part.strip() for part in value.split(",") if part.strip()}
        if isinstance(value, (set, frozenset, list, tuple)) and not set(value) <= {"ingest", "relay"}:
            raise ValueError(f"roles must be among ingest, relay; got {sorted(value)}")
        return value

    @property
    def http_address(self) -> tuple[str, int]:
        """``SATGW_HTTP`` as (host, port); port 0 picks a free one."""
        host, _, port = self.http.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"SATGW_HTTP={self.http!r} must be host:port")
        return host, int(port)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _IngestFile(_Strict):
    max_batch: int = Field(500, ge=1, le=10_000)
    receive_maximum: int = Field(1000, ge=1, le=65_535)


class _QueueFile(_Strict):
    max_deliveries: int = Field(5, ge=1)
    reclaim_idle_s: float = Field(60.0, gt=0)


class _RelayFile(_Strict):
    pack_max: int = Field(32, ge=1, le=255)
    max_in_flight: int = Field(64, ge=1)
    max_attempts: int = Field(8, ge=1)


class _LinkFile(_Strict):
    type: str = "geo"
    name: str
    max_frame_bytes: int = Field(gt=0)
    interval_s: float = Field(ge=0)
    cards: int = Field(1, ge=1)
    loss_rate: float = Field(0.0, ge=0, lt=1)
    terminal_lat: float = Field(39.9, ge=-90, le=90)
    terminal_lon: float = Field(116.4, ge=-180, le=180)
    ground_lat: float = Field(39.9, ge=-90, le=90)
    ground_lon: float = Field(116.4, ge=-180, le=180)
    sat_lon: float = Field(110.5, ge=-180, le=180)


class _File(_Strict):
    ingest: _IngestFile = _IngestFile()
    queue: _QueueFile = _QueueFile()
    relay: _RelayFile = _RelayFile()
    links: list[_LinkFile] = []


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the TOML file says (or the defaults): links and tuning."""

    links: tuple[GeoProfile, ...] = DEFAULT_LINKS
    max_batch: int = 500
    receive_maximum: int = 1000
    max_deliveries: int = 5
    reclaim_idle_s: float = 60.0
    pack_max: int = 32
    max_in_flight: int = 64
    max_attempts: int = 8


def load_file(path: Path | None) -> GatewayConfig:
    """Read the TOML config at ``path`` (or return the defaults); raise :class:`ConfigError` with the bad key."""
    if path is None:
        return GatewayConfig()
    try:
        data = _File.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"config {path}: {_first_error(exc)}") from None
    return _to_config(data)


def _to_config(data: _File) -> GatewayConfig:
    for link in data.links:
        if link.type != "geo":
            raise ConfigError(f"link {link.name}: type {link.type!r} is not supported (supported: geo)")
    names = [link.name for link in data.links]
    if len(set(names)) != len(names):
        raise ConfigError(f"link names must be unique, got {names}")
    links = tuple(_profile(link) for link in data.links) or DEFAULT_LINKS
    return GatewayConfig(
        links=links,
        **data.ingest.model_dump(),
        **data.queue.model_dump(),
        **data.relay.model_dump(),
    )


def _profile(link: _LinkFile) -> GeoProfile:
    try:
        return GeoProfile(**link.model_dump(exclude={"type"}))
    except ValueError as exc:
        raise ConfigError(f"link {link.name}: {exc}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}"


def load() -> tuple[Settings, GatewayConfig]:
    """Read the environment and the TOML file it names, once."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"environment: {_first_error(exc)}") from None
    return settings, load_file(settings.config)
