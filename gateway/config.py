"""Settings, read once at start-up into frozen objects: environment (``SATGW_*``) and a TOML file.

Nothing here runs at import time; :func:`load` is called by the command line.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.alerts.endpoints import Backoff, WebhookEndpoint
from gateway.ceilings import Shares
from gateway.exceptions import ConfigError
from gateway.links.factory import LinkConfig
from gateway.links.geo import GeoProfile
from gateway.links.leo import LeoProfile
from gateway.links.outages import OutagePlan, Window
from gateway.links.profiles import CATALOGUE, DEFAULT_PROFILE, configure, lookup
from gateway.links.rdss_serial import RDSS_SERIAL_KEYS, RdssSerialProfile
from gateway.quotas import Quota
from protocols.envelope import Priority

__all__ = ["DEFAULT_LINKS", "GatewayConfig", "Settings", "load", "load_file"]

# A lab pool: two GEO-like links of ten cards, 1750-byte frames (BDS-3 RSMC size),
# 50 ms card interval. Unrealistically generous on purpose, so a first try shows
# traffic flowing (several thousand messages/s); gateway/links/profiles.py has the real profiles.
DEFAULT_LINKS: tuple[LinkConfig, ...] = tuple(configure(DEFAULT_PROFILE, name=f"lab-geo-{i}") for i in (1, 2))


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
    max_batch: int = Field(1000, ge=1, le=10_000)
    receive_maximum: int = Field(1000, ge=1, le=65_535)


class _QueueFile(_Strict):
    max_deliveries: int = Field(5, ge=1)
    reclaim_idle_s: float = Field(60.0, gt=0)
    trace_ttl_s: int = Field(86_400, ge=0, le=366 * 86_400)


class _RelayFile(_Strict):
    pack_max: int = Field(32, ge=1, le=255)
    max_in_flight: int = Field(64, ge=1)
    max_attempts: int = Field(8, ge=1)


class _HistoryFile(_Strict):
    """``[history]``: the dashboard's in-memory samples (gateway/history.py)."""

    every_s: float = Field(5.0, ge=0.1, le=300)
    window_s: float = Field(900.0, ge=60, le=86_400)

    @model_validator(mode="after")
    def _bounded(self) -> _HistoryFile:
        if self.window_s / self.every_s > _MAX_SAMPLES:
            raise ValueError(f"window_s / every_s must be at most {_MAX_SAMPLES} samples")
        return self


_MAX_SAMPLES = 20_000


class _PresenceFile(_Strict):
    """``[presence]``: terminals' last seen, position and counters (gateway/presence.py)."""

    online_window_s: float = Field(900.0, gt=0)
    flush_interval_s: float = Field(1.0, ge=0.05, le=60)


class _OutageFile(_Strict):
    start: float | datetime
    """Unix seconds, or a TOML date-time with an offset."""
    end: float | datetime


class _LinkFile(_Strict):
    """One ``[[links]]`` table: a catalogue ``profile`` with overrides, or (without one) a custom GEO card pool."""

    type: str | None = None
    name: str = Field(min_length=1)
    profile: str | None = None
    max_frame_bytes: int | None = Field(None, gt=0)
    interval_s: float | None = Field(None, ge=0)
    cards: int | None = Field(None, ge=1)
    loss_rate: float | None = Field(None, ge=0, lt=1)
    terminal_lat: float | None = Field(None, ge=-90, le=90)
    terminal_lon: float | None = Field(None, ge=-180, le=180)
    ground_lat: float | None = Field(None, ge=-90, le=90)
    ground_lon: float | None = Field(None, ge=-180, le=180)
    sat_lon: float | None = Field(None, ge=-180, le=180)
    elevation_deg: float | None = Field(None, gt=0, le=90)
    outages: list[_OutageFile] | None = None
    outage_rate_per_h: float | None = Field(None, ge=0)
    outage_mean_s: float | None = Field(None, gt=0)
    seed: int | None = None
    # type = "leo" only:
    tle: str | None = None
    gateway_lat: float | None = Field(None, ge=-90, le=90)
    gateway_lon: float | None = Field(None, ge=-180, le=180)
    gateway_alt_m: float | None = None
    min_elevation_deg: float | None = Field(None, ge=0, lt=90)
    pass_capacity_frames: int | None = Field(None, ge=1)
    pass_capacity_bytes: int | None = Field(None, ge=1)
    mtu: int | None = Field(None, ge=1)
    # type = "rdss-serial" only (a real BeiDou terminal; max_frame_bytes and interval_s apply too):
    port: str | None = Field(None, min_length=1)
    baudrate: int | None = Field(None, gt=0)
    recipient: str | None = Field(None, pattern=r"^[0-9]{1,11}$")
    generation: Literal["auto", "bds2", "bds3"] | None = None
    fki_timeout_s: float | None = Field(None, gt=0)
    query_timeout_s: float | None = Field(None, gt=0)
    beam_interval_s: int | None = Field(None, ge=1)
    min_beam_power: int | None = Field(None, ge=0)
    bds3_bits: int | None = Field(None, ge=8)
    emergency_exemption: bool | None = None
    frequency_point: int | None = Field(None, ge=1, le=5)
    deliver_received: bool | None = None
    # Any link: whether it also carries the downlink (a second channel of the same profile); never in the profile.
    downlink: bool = Field(True, exclude=True)

    def rdss_serial(self) -> RdssSerialProfile:
        """The settings of a ``type = "rdss-serial"`` table: a real BeiDou terminal on a serial port."""
        given = self.model_dump(exclude_none=True, exclude={"type", "name"})
        if stray := sorted(set(given) - RDSS_SERIAL_KEYS):
            takes = ", ".join(sorted(RDSS_SERIAL_KEYS))
            raise ValueError(f"{', '.join(stray)}: not a setting of an rdss-serial link (it takes {takes})")
        if self.port is None or self.recipient is None:
            raise ValueError("an rdss-serial link needs port and recipient")
        return RdssSerialProfile(name=self.name, **given)

    def leo(self) -> LeoProfile:
        """The settings of a ``type = "leo"`` table."""
        given = self.model_dump(exclude_none=True, exclude={"type", "name", *_OUTAGE_KEYS})
        if stray := sorted(set(given) - _LEO_KEYS):
            takes = ", ".join(sorted(_LEO_KEYS | set(_OUTAGE_KEYS)))
            raise ValueError(f"{', '.join(stray)}: not a setting of a LEO link (it takes {takes})")
        if self.tle is None or self.gateway_lat is None or self.gateway_lon is None:
            raise ValueError("a LEO link needs tle, gateway_lat and gateway_lon")
        if any(getattr(self, key) is not None for key in _OUTAGE_KEYS):
            given["outages"] = self._outage_plan()
        return LeoProfile(name=self.name, **given)

    def overrides(self) -> dict[str, Any]:
        """The settings this table gives, as link settings (outage keys folded into one plan)."""
        given = self.model_dump(exclude_none=True, exclude={"type", "name", "profile", *_OUTAGE_KEYS})
        if stray := sorted(set(given) & (_LEO_KEYS - {"loss_rate", "seed"})):
            raise ValueError(f'{", ".join(stray)}: only a LEO link (type = "leo") takes that')
        if stray := sorted(set(given) & (RDSS_SERIAL_KEYS - {"max_frame_bytes", "interval_s"})):
            raise ValueError(f'{", ".join(stray)}: only a real terminal link (type = "rdss-serial") takes that')
        if any(getattr(self, key) is not None for key in _OUTAGE_KEYS):
            given["outages"] = self._outage_plan()
        return given

    def _outage_plan(self) -> OutagePlan:
        windows = []
        for i, window in enumerate(self.outages or ()):
            try:
                windows.append(Window(_seconds(window.start), _seconds(window.end)))
            except ValueError as exc:
                raise ValueError(f"outages[{i}]: {exc}") from None
        plan: dict[str, Any] = {"rate_per_h": self.outage_rate_per_h, "mean_s": self.outage_mean_s}
        return OutagePlan(windows=tuple(windows), seed=self.seed, **{k: v for k, v in plan.items() if v is not None})


_OUTAGE_KEYS = ("outages", "outage_rate_per_h", "outage_mean_s")
_LEO_KEYS = frozenset(
    {"tle", "gateway_lat", "gateway_lon", "gateway_alt_m", "min_elevation_deg", "pass_capacity_frames"}
    | {"pass_capacity_bytes", "mtu", "loss_rate", "seed"}
)


def _seconds(value: float | datetime) -> float:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"date-time {value.isoformat()} needs a UTC offset (e.g. Z)")
        return value.timestamp()
    return float(value)


class _QuotaFile(_Strict):
    count: int = Field(ge=1)
    period_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class _QuotasFile(_Strict):
    """``[quotas]``: per terminal, per class; distress never has one."""

    urgency: _QuotaFile | None = None
    safety: _QuotaFile | None = None
    routine: _QuotaFile | None = None

    def limits(self) -> dict[Priority, Quota]:
        given = {Priority[name.upper()]: getattr(self, name) for name in ("urgency", "safety", "routine")}
        return {p: Quota(**q.model_dump()) for p, q in given.items() if q is not None}


class _CeilingsFile(_Strict):
    """``[ceilings]``: the share of each link's capacity a class and the less urgent ones may use."""

    urgency: float | None = Field(None, gt=0, le=1)
    safety: float | None = Field(None, gt=0, le=1)
    routine: float | None = Field(None, gt=0, le=1)
    window_s: float = Field(3600.0, gt=0)
    aging_s: float = Field(600.0, gt=0)

    def shares(self) -> Shares:
        given = {Priority[name.upper()]: getattr(self, name) for name in ("urgency", "safety", "routine")}
        shares = {p: share for p, share in given.items() if share is not None}
        return Shares(shares=shares, window_s=self.window_s, aging_s=self.aging_s)


class _WebhookFile(_Strict):
    """One ``[[alerts.webhooks]]`` table: a receiver of CAP alerts (gateway/alerts/webhooks.py)."""

    name: str = Field(min_length=1)
    url: str
    secret: SecretStr | None = None
    secret_env: str | None = Field(None, min_length=1)
    """The name of an environment variable holding the secret, to keep it out of the file."""
    timeout_s: float = 10.0
    max_attempts: int = 20
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0

    def endpoint(self) -> WebhookEndpoint:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("secret: give exactly one of secret and secret_env")
        secret = self.secret.get_secret_value() if self.secret is not None else _env_secret(self.secret_env or "")
        backoff = Backoff(base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)
        given = self.model_dump(include={"name", "url", "timeout_s", "max_attempts"})
        return WebhookEndpoint(secret=secret, backoff=backoff, **given)


def _env_secret(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"secret_env: environment variable {name} is not set or empty")
    return value


class _AlertsFile(_Strict):
    """``[alerts]``: where CAP alerts go besides the MQTT topic."""

    sender: str | None = Field(None, pattern=r"^[^\s,<&]{1,128}$")
    position_every_s: float = Field(60.0, ge=0, le=86_400)
    webhooks: list[_WebhookFile] = []

    def endpoints(self) -> tuple[WebhookEndpoint, ...]:
        names = [hook.name for hook in self.webhooks]
        if len(set(names)) != len(names):
            raise ConfigError(f"alerts.webhooks: names must be unique, got {names}")
        out = []
        for hook in self.webhooks:
            try:
                out.append(hook.endpoint())
            except ValueError as exc:
                raise ConfigError(f"alerts.webhooks {hook.name}: {exc}") from None
        return tuple(out)


class _File(_Strict):
    ingest: _IngestFile = _IngestFile()
    queue: _QueueFile = _QueueFile()
    relay: _RelayFile = _RelayFile()
    history: _HistoryFile = _HistoryFile()
    presence: _PresenceFile = _PresenceFile()
    quotas: _QuotasFile = _QuotasFile()
    ceilings: _CeilingsFile = _CeilingsFile()
    alerts: _AlertsFile = _AlertsFile()
    links: list[_LinkFile] = []


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the TOML file says (or the defaults): links and tuning."""

    links: tuple[LinkConfig, ...] = DEFAULT_LINKS
    max_batch: int = 1000
    receive_maximum: int = 1000
    max_deliveries: int = 5
    reclaim_idle_s: float = 60.0
    trace_ttl_s: int = 86_400
    """Seconds a message's trace is kept after its first hop; 0 traces nothing (gateway/queue/trace.py)."""
    pack_max: int = 32
    max_in_flight: int = 64
    max_attempts: int = 8
    history_every_s: float = 5.0
    """Seconds between the dashboard's history samples."""
    history_window_s: float = 900.0
    """Seconds of history samples kept in memory."""
    online_window_s: float = 900.0
    """A terminal is online if a message of it was accepted within this many seconds."""
    presence_flush_s: float = 1.0
    """Seconds between flushes of terminal presence (last seen, position, counters) to Redis."""
    quotas: Mapping[Priority, Quota] = field(default_factory=dict)
    """Per-terminal quotas by class; empty means none."""
    shares: Shares = field(default_factory=Shares)
    """Capacity ceilings per class; no shares means none."""
    downlink_off: frozenset[str] = frozenset()
    """Names of the links that carry no downlink (``downlink = false``)."""
    webhooks: tuple[WebhookEndpoint, ...] = ()
    """Where CAP alerts are POSTed (``[[alerts.webhooks]]``); none by default."""
    alert_sender: str | None = None
    """The CAP ``sender`` of the gateway's SOS alerts (``[alerts] sender``); default ``satgw.<node>``."""
    alert_position_every_s: float = 60.0
    """A terminal in distress's position reports get a CAP Update at most this often (``[alerts] position_every_s``)."""


def load_file(path: Path | None) -> GatewayConfig:
    """Read the TOML config at ``path`` (or return the defaults); raise :class:`ConfigError` with the bad key."""
    if path is None:
        return GatewayConfig()
    try:
        raw = tomllib.loads(path.read_text())
        data = _File.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"config {path}: {_first_error(exc, raw)}") from None
    return _to_config(data)


def _to_config(data: _File) -> GatewayConfig:
    names = [link.name for link in data.links]
    if len(set(names)) != len(names):
        raise ConfigError(f"link names must be unique, got {names}")
    links = tuple(_link(link) for link in data.links) or DEFAULT_LINKS
    return GatewayConfig(
        links=links,
        quotas=data.quotas.limits(),
        shares=data.ceilings.shares(),
        webhooks=data.alerts.endpoints(),
        alert_sender=data.alerts.sender,
        alert_position_every_s=data.alerts.position_every_s,
        downlink_off=frozenset(link.name for link in data.links if not link.downlink),
        **data.ingest.model_dump(),
        **data.queue.model_dump(),
        **data.relay.model_dump(),
        history_every_s=data.history.every_s,
        history_window_s=data.history.window_s,
        online_window_s=data.presence.online_window_s,
        presence_flush_s=data.presence.flush_interval_s,
    )


def _link(link: _LinkFile) -> LinkConfig:
    try:
        if link.type == "leo":
            return link.leo()
        if link.type == "rdss-serial":
            return link.rdss_serial()
        if link.profile is None:
            return _custom(link)
        kind = lookup(link.profile).kind
        if link.type is not None and link.type != kind:
            raise ValueError(f"type: {link.type!r} does not match profile {link.profile!r}, which is {kind!r}")
        return configure(link.profile, name=link.name, overrides=link.overrides())
    except ValueError as exc:
        raise ConfigError(f"link {link.name}: {exc}") from None


def _custom(link: _LinkFile) -> GeoProfile:
    """A link without a profile: a GEO card pool described in full, as before profiles existed."""
    if link.type not in (None, "geo"):
        known = ", ".join(CATALOGUE)
        raise ValueError(
            f"type {link.type!r} is not supported without a profile (supported: geo, leo; profiles: {known})"
        )
    for key in ("max_frame_bytes", "interval_s"):
        if getattr(link, key) is None:
            raise ValueError(f"{key} is required when no profile is named")
    overrides = link.overrides()
    if "elevation_deg" in overrides:
        raise ValueError("elevation_deg: only MEO and SBD profiles have it; a custom link is a GEO pool")
    return GeoProfile(name=link.name, **overrides)


def _first_error(exc: ValidationError, raw: dict[str, Any] | None = None) -> str:
    error = exc.errors()[0]
    loc = list(error["loc"])
    if raw is not None and len(loc) >= 2 and loc[0] == "links" and isinstance(loc[1], int):
        name = _link_name(raw, loc[1])
        where = ".".join(str(p) for p in loc[2:])
        return f"link {name}: {where}: {error['msg']}"
    if raw is not None and len(loc) >= 3 and loc[:2] == ["alerts", "webhooks"] and isinstance(loc[2], int):
        name = _link_name(raw.get("alerts"), loc[2], table="webhooks")
        return f"alerts.webhooks {name}: {'.'.join(str(p) for p in loc[3:])}: {error['msg']}"
    return f"{'.'.join(str(p) for p in loc)}: {error['msg']}"


def _link_name(raw: Any, index: int, table: str = "links") -> str:
    """The ``name`` of the ``index``-th ``[[links]]`` (or other ``table``) table, or its position when it has none."""
    try:
        name = raw[table][index]["name"]
    except (KeyError, IndexError, TypeError):
        name = None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def load() -> tuple[Settings, GatewayConfig]:
    """Read the environment and the TOML file it names, once."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"environment: {_first_error(exc)}") from None
    return settings, load_file(settings.config)
