"""The credentials file a terminal is provisioned with: its id, its key, and where to publish.

``satgw terminal add`` writes one; simulated terminals and real devices read it. The
file holds a secret key, so it is created with mode 0600 and never silently replaced.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from protocols.envelope import TERMINAL_ID_PATTERN
from protocols.seal import KEY_BYTES, decode_key, encode_key

__all__ = ["FORMAT_VERSION", "MQTT_SCHEMES", "Credentials"]

FORMAT_VERSION = 1
MQTT_SCHEMES = frozenset({"mqtt", "mqtts", "ws", "wss"})
_FIELDS = ("terminal", "key", "mqtt_url", "topic_prefix", "version")
_KEY_CHARS = -(-KEY_BYTES * 4 // 3)  # unpadded base64 length
_KEY_TEXT = re.compile(rf"[A-Za-z0-9_-]{{{_KEY_CHARS}}}")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """What one terminal needs to talk to the gateway; validated when built."""

    terminal: str
    key: bytes = field(repr=False)
    mqtt_url: str
    topic_prefix: str

    def __post_init__(self) -> None:
        if not isinstance(self.terminal, str) or not TERMINAL_ID_PATTERN.fullmatch(self.terminal):
            raise ValueError(f"terminal: {self.terminal!r} is not 1-32 of A-Za-z0-9_.-")
        if not isinstance(self.key, bytes) or len(self.key) != KEY_BYTES:
            raise ValueError(f"key: a terminal key is {KEY_BYTES} bytes")
        _check_mqtt_url(self.mqtt_url)
        _check_topic_prefix(self.topic_prefix)

    def to_json(self) -> str:
        """Return the credentials as the JSON document :meth:`from_json` reads."""
        document = {
            "terminal": self.terminal,
            "key": encode_key(self.key),
            "mqtt_url": self.mqtt_url,
            "topic_prefix": self.topic_prefix,
            "version": FORMAT_VERSION,
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Credentials:
        """Parse credentials written by :meth:`to_json`.

        Raises:
            ValueError: the text is not JSON, or a field is missing, unknown or invalid;
                the message names the field.
        """
        document = _parse_object(text)
        version = document.get("version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise ValueError(f"version: expected {FORMAT_VERSION}, got {version!r}")
        return cls(
            terminal=_string(document, "terminal"),
            key=_key(document),
            mqtt_url=_string(document, "mqtt_url"),
            topic_prefix=_string(document, "topic_prefix"),
        )

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the credentials to ``path`` with mode 0600.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is false.
        """
        target = Path(path)
        data = self.to_json().encode()
        if overwrite:
            _replace(target, data)
            return
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it") from None
        _write_all(fd, data, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read credentials that :meth:`save` wrote.

        Raises:
            ValueError: the file is not valid credentials; the message names the file and the field.
        """
        target = Path(path)
        text = target.read_bytes()
        if target.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            _log.warning("%s holds a secret key but is readable by others; chmod 600 it", target)
        try:
            return cls.from_json(text)
        except ValueError as exc:
            raise ValueError(f"{target}: {exc}") from exc


def _parse_object(text: str | bytes) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"credentials are not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"credentials must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected {', '.join(_FIELDS)})")
    return document


def _string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {'nothing' if value is None else type(value).__name__}")
    return value


def _key(document: dict[str, Any]) -> bytes:
    text = _string(document, "key")
    if not _KEY_TEXT.fullmatch(text):
        raise ValueError(f"key: not a base64url {KEY_BYTES}-byte key (expected {_KEY_CHARS} of A-Za-z0-9_-)")
    try:
        return decode_key(text)
    except ValueError as exc:  # binascii.Error is a ValueError too
        raise ValueError(f"key: not a base64url {KEY_BYTES}-byte key ({exc})") from None


def _check_mqtt_url(url: object) -> None:
    if not isinstance(url, str):
        raise ValueError(f"mqtt_url: expected a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"mqtt_url: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in MQTT_SCHEMES or not parts.hostname:
        raise ValueError(f"mqtt_url: {url!r} needs a scheme of {sorted(MQTT_SCHEMES)} and a host")
    if port == 0:
        raise ValueError(f"mqtt_url: {url!r} has port 0")


def _check_topic_prefix(prefix: object) -> None:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("topic_prefix: expected a non-empty string")
    if any(c in prefix for c in "+#\0") or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError(f"topic_prefix: {prefix!r} must be plain topic levels (no wildcards, no empty levels)")


def _write_all(fd: int, data: bytes, target: Path) -> None:
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _replace(target: Path, data: bytes) -> None:
    # A fresh 0600 file renamed over the old one: the old file's (maybe wider) mode is
    # not inherited, and a reader never sees a half-written key.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    _write_all(fd, data, tmp)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
