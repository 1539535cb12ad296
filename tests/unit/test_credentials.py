"""The credentials file: JSON shape, validation with field-naming errors, and safe file handling."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from gateway.credentials import Credentials
from protocols.seal import encode_key, new_key


def _creds(**overrides: object) -> Credentials:
    fields: dict[str, object] = {
        "terminal": "boat-7",
        "key": bytes(range(32)),
        "mqtt_url": "mqtt://127.0.0.1:1883",
        "topic_prefix": "satgw",
    }
    fields.update(overrides)
    return Credentials(**fields)  # type: ignore[arg-type]


def _document(**overrides: object) -> str:
    document = json.loads(_creds().to_json())
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not ...})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestJson:
    def test_round_trip(self) -> None:
        """from_json(to_json(c)) gives back an equal Credentials, random key included."""
        creds = _creds(key=new_key(), mqtt_url="mqtts://broker.example:8883", topic_prefix="fleet/north")
        assert Credentials.from_json(creds.to_json()) == creds

    def test_shape(self) -> None:
        """The document has exactly the documented fields, the key as encode_key text and version 1."""
        creds = _creds()
        assert json.loads(creds.to_json()) == {
            "terminal": "boat-7",
            "key": encode_key(creds.key),
            "mqtt_url": "mqtt://127.0.0.1:1883",
            "topic_prefix": "satgw",
            "version": 1,
        }

    def test_accepts_bytes(self) -> None:
        """from_json reads UTF-8 bytes as well as text."""
        assert Credentials.from_json(_creds().to_json().encode()) == _creds()

    def test_repr_hides_key(self) -> None:
        """The key never appears in repr, so logging credentials does not leak it."""
        creds = _creds()
        assert "key" not in repr(creds)
        assert encode_key(creds.key) not in repr(creds)

    @pytest.mark.parametrize("text", ["{", "", "not json", b"\xff\xfe{"])
    def test_not_json(self, text: str | bytes) -> None:
        """Text that is not JSON is refused with a message saying so."""
        with pytest.raises(ValueError, match="not valid JSON"):
            Credentials.from_json(text)

    @pytest.mark.parametrize("text", ["[]", '"x"', "3", "null"])
    def test_not_object(self, text: str) -> None:
        """A JSON value other than an object is refused."""
        with pytest.raises(ValueError, match="JSON object"):
            Credentials.from_json(text)

    @pytest.mark.parametrize("name", ["terminal", "key", "mqtt_url", "topic_prefix"])
    def test_missing_field_named(self, name: str) -> None:
        """A missing field is refused with an error that starts with its name."""
        with pytest.raises(ValueError, match=f"^{name}: expected a string, got nothing"):
            Credentials.from_json(_document(**{name: ...}))

    @pytest.mark.parametrize("name", ["terminal", "key", "mqtt_url", "topic_prefix"])
    def test_wrong_type_named(self, name: str) -> None:
        """A field of the wrong JSON type is refused with an error naming it."""
        with pytest.raises(ValueError, match=f"^{name}: expected a string, got int"):
            Credentials.from_json(_document(**{name: 5}))

    @pytest.mark.parametrize(
        "key",
        [
            "",
            encode_key(bytes(16)),  # a valid base64url key of the wrong length
            encode_key(bytes(33)),
            "!" * 43,  # right length, not base64url
            encode_key(bytes(32))[:-1] + "=",
        ],
    )
    def test_bad_key_named(self, key: str) -> None:
        """A key that is not 32 bytes of unpadded base64url is refused as a bad key."""
        with pytest.raises(ValueError, match=r"^key: not a base64url 32-byte key"):
            Credentials.from_json(_document(key=key))

    @pytest.mark.parametrize("version", [2, 0, "1", 1.5, True, None, ...])
    def test_bad_version_named(self, version: object) -> None:
        """Any version but the integer 1, or none at all, is refused naming the version field."""
        with pytest.raises(ValueError, match=r"^version: expected 1"):
            Credentials.from_json(_document(version=version))

    def test_unknown_field_named(self) -> None:
        """A field the format does not define is refused by name, so typos do not pass silently."""
        with pytest.raises(ValueError, match=r"^mqtt_uri: unknown field"):
            Credentials.from_json(_document(mqtt_uri="mqtt://x"))

    @pytest.mark.parametrize("terminal", ["", "a" * 33, "boat 7", "böat", "a/b"])
    def test_bad_terminal_named(self, terminal: str) -> None:
        """A terminal id outside 1-32 of A-Za-z0-9_.- is refused naming the terminal field."""
        with pytest.raises(ValueError, match=r"^terminal: "):
            Credentials.from_json(_document(terminal=terminal))

    @pytest.mark.parametrize(
        "url", ["", "127.0.0.1:1883", "http://broker:80", "mqtt://", "mqtt://h:99999", "mqtt://h:0"]
    )
    def test_bad_mqtt_url_named(self, url: str) -> None:
        """A URL without an MQTT scheme, a host or a valid port is refused naming mqtt_url."""
        with pytest.raises(ValueError, match=r"^mqtt_url: "):
            Credentials.from_json(_document(mqtt_url=url))

    @pytest.mark.parametrize("url", ["mqtt://broker", "mqtts://b.example:8883", "ws://[::1]:9001/mqtt", "wss://u:p@h"])
    def test_good_mqtt_urls(self, url: str) -> None:
        """mqtt, mqtts, ws and wss URLs with a host are accepted as they are."""
        assert Credentials.from_json(_document(mqtt_url=url)).mqtt_url == url

    @pytest.mark.parametrize("prefix", ["", "a/+", "#", "/satgw", "satgw/", "a//b"])
    def test_bad_topic_prefix_named(self, prefix: str) -> None:
        """A prefix with wildcards or empty levels is refused naming topic_prefix."""
        with pytest.raises(ValueError, match=r"^topic_prefix: "):
            Credentials.from_json(_document(topic_prefix=prefix))

    def test_constructor_validates(self) -> None:
        """Building Credentials directly with a short key fails at once, naming the key."""
        with pytest.raises(ValueError, match=r"^key: "):
            _creds(key=b"short")


class TestFile:
    def test_save_load(self, tmp_path: Path) -> None:
        """A saved file loads back to equal credentials."""
        creds = _creds(key=new_key())
        creds.save(tmp_path / "c.json")
        assert Credentials.load(tmp_path / "c.json") == creds

    def test_mode_0600_whatever_the_umask(self, tmp_path: Path) -> None:
        """The file is created 0600 even under a permissive umask."""
        old = os.umask(0)
        try:
            _creds().save(tmp_path / "c.json")
        finally:
            os.umask(old)
        assert _mode(tmp_path / "c.json") == 0o600

    def test_refuses_overwrite(self, tmp_path: Path) -> None:
        """Saving over an existing file fails and leaves it untouched."""
        path = tmp_path / "c.json"
        path.write_text("precious")
        with pytest.raises(FileExistsError, match="overwrite=True"):
            _creds().save(path)
        assert path.read_text() == "precious"

    def test_overwrite_replaces_with_0600(self, tmp_path: Path) -> None:
        """With overwrite=True the file is replaced, and a world-readable old file becomes 0600."""
        path = tmp_path / "c.json"
        path.write_text("old")
        path.chmod(0o644)
        creds = _creds(key=new_key())
        creds.save(path, overwrite=True)
        assert Credentials.load(path) == creds
        assert _mode(path) == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["c.json"]

    def test_load_error_names_file_and_field(self, tmp_path: Path) -> None:
        """A bad file is refused with an error naming both the file and the field."""
        path = tmp_path / "c.json"
        path.write_text(_document(key="nope"))
        with pytest.raises(ValueError, match=r"c\.json: key: "):
            Credentials.load(path)

    def test_load_warns_when_readable_by_others(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Loading a key file that others can read logs a warning but still loads it."""
        path = tmp_path / "c.json"
        _creds().save(path)
        path.chmod(0o644)
        with caplog.at_level(logging.WARNING, logger="gateway.credentials"):
            assert Credentials.load(path) == _creds()
        assert "chmod 600" in caplog.text

    def test_load_quiet_when_private(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Loading a 0600 file logs nothing."""
        path = tmp_path / "c.json"
        _creds().save(path)
        with caplog.at_level(logging.WARNING, logger="gateway.credentials"):
            Credentials.load(path)
        assert caplog.text == ""
