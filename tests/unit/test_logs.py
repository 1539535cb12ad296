"""gateway.logs: JSON lines off a TTY, text on one, context fields from extra, no secret in the output."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway import logs
from gateway.queue import Entry
from protocols.envelope import Priority

SECRET = "s3cr3t-Pa55"
KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="


class Tty(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of this test's own that does not propagate to the root."""
    log = logging.getLogger(f"satgw.test.{uuid.uuid4().hex[:8]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()


def attach(log: logging.Logger, *, level: int = logging.INFO, json: bool | None = True) -> io.StringIO:
    """Give ``log`` the satgw handler writing to a fresh buffer; return the buffer."""
    return attach_handler(log, level=level, json=json)[0]


def attach_handler(log: logging.Logger, *, level: int, json: bool | None = True) -> tuple[io.StringIO, logging.Handler]:
    """Give ``log`` the satgw handler writing to a fresh buffer; return the buffer and the handler."""
    out = io.StringIO()
    handler = logs.handler(level, stream=out, json=json)
    log.addHandler(handler)
    return out, handler


def records(out: io.StringIO) -> list[dict[str, object]]:
    """Every line written, parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in out.getvalue().splitlines()]


class TestJson:
    def test_one_object_per_record_with_the_base_fields(self, logger: logging.Logger) -> None:
        """Each record is one line holding ts (ISO-8601 UTC), level, logger and the rendered msg."""
        out = attach(logger)
        logger.warning("relay %s waits for Redis: %s", "geo-1", "timeout")
        logger.info("second")
        first, second = records(out)
        assert first.keys() == {"ts", "level", "logger", "msg"}
        assert (first["level"], first["logger"], first["msg"]) == (
            "WARNING",
            logger.name,
            "relay geo-1 waits for Redis: timeout",
        )
        assert isinstance(first["ts"], str)
        assert first["ts"].endswith("Z")
        stamp = datetime.fromisoformat(first["ts"].replace("Z", "+00:00"))
        assert stamp.utcoffset() is not None
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
        assert second["msg"] == "second"

    def test_context_fields_come_from_extra(self, logger: logging.Logger) -> None:
        """terminal, seq, message_id, class, link and reason passed with extra= become fields of their own."""
        out = attach(logger)
        extra = {"terminal": "T1", "seq": 7, "message_id": "T1:7", "class": "distress", "link": "geo-1"}
        logger.warning("dead-lettered", extra=extra | {"reason": "too_large", "attempts": 3})
        (doc,) = records(out)
        assert doc == doc | extra | {"reason": "too_large", "attempts": 3}
        assert isinstance(doc["seq"], int)

    def test_extras_outside_the_fields_stay_out(self, logger: logging.Logger) -> None:
        """An extra that is not a known context field is not written, so an unforeseen one cannot leak."""
        out = attach(logger)
        logger.info("hello", extra={"payload": "raw bytes here"})
        (doc,) = records(out)
        assert "payload" not in doc
        assert "raw bytes here" not in out.getvalue()

    def test_exception_stays_on_one_line(self, logger: logging.Logger) -> None:
        """A traceback is carried in the exc field of the same one-line object."""
        out = attach(logger)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("transmission failed", extra={"link": "geo-1"})
        (doc,) = records(out)
        assert doc["msg"] == "transmission failed"
        assert isinstance(doc["exc"], str)
        assert "RuntimeError: boom" in doc["exc"]
        assert len(out.getvalue().splitlines()) == 1


class TestText:
    def test_text_keeps_the_human_form_and_appends_context(self, logger: logging.Logger) -> None:
        """The text form is 'time LEVEL logger: message' followed by the context fields as name=value."""
        out = attach(logger, json=False)
        logger.info("rejected %s", "bad_seal", extra={"terminal": "T9", "seq": 4, "class": "routine"})
        line = out.getvalue().rstrip("\n")
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
        assert re.fullmatch(rf"{stamp} INFO {logger.name}: rejected bad_seal terminal=T9 seq=4 class=routine", line)


class TestRedaction:
    @pytest.mark.parametrize("json_out", [True, False], ids=["json", "text"])
    def test_url_password_is_masked(self, logger: logging.Logger, json_out: bool) -> None:
        """A credentials URL in a message or its arguments keeps user and host but never the password."""
        out = attach(logger, json=json_out)
        logger.warning("cannot reach mqtt://gw:%s@broker:1883", SECRET)
        logger.warning("cannot reach %s", f"redis://:{SECRET}@127.0.0.1:6379/0")
        text = out.getvalue()
        assert SECRET not in text
        assert "mqtt://gw:***@broker:1883" in text
        assert "redis://:***@127.0.0.1:6379/0" in text

    @pytest.mark.parametrize("name", ["key", "secret", "password", "token", "api_key", "terminal_key"])
    def test_secret_named_extra_never_appears(self, logger: logging.Logger, name: str) -> None:
        """An extra named like key material is replaced on the record, so no formatter can print it."""
        out = attach(logger)
        seen: list[logging.LogRecord] = []

        def keep(record: logging.LogRecord) -> bool:
            seen.append(record)
            return True

        logger.addFilter(keep)
        logger.info("provisioned", extra={name: KEY, "terminal": "T1"})
        assert KEY not in out.getvalue()
        assert getattr(seen[0], name) == logs.REDACTED
        assert records(out)[0]["terminal"] == "T1"

    @pytest.mark.parametrize("json_out", [True, False], ids=["json", "text"])
    def test_key_assignments_in_messages_are_masked(self, logger: logging.Logger, json_out: bool) -> None:
        """key=..., token=... and "key": "..." forms inside a message lose their values."""
        out = attach(logger, json=json_out)
        logger.info("record key=%s for T1", KEY)
        logger.info("loaded %s", json.dumps({"terminal": "T1", "key": KEY}))
        logger.info("GET /x?token=%s&page=2", SECRET)
        text = out.getvalue()
        assert KEY not in text
        assert SECRET not in text
        assert "key=***" in text
        assert "page=2" in text

    def test_traceback_is_masked(self, logger: logging.Logger) -> None:
        """An exception whose text holds a credentials URL is logged without the password."""
        out = attach(logger)
        try:
            raise OSError(f"connect to mqtt://gw:{SECRET}@broker:1883 refused")
        except OSError:
            logger.exception("broker unreachable")
        assert SECRET not in out.getvalue()
        assert "mqtt://gw:***@broker:1883" in records(out)[0]["exc"]  # type: ignore[operator]

    @pytest.mark.parametrize(
        "text",
        ["http://host:80/path", "terminal T1 seq 5 accepted", "public key: unchanged", "mqtt://user@broker"],
    )
    def test_ordinary_text_is_untouched(self, text: str) -> None:
        """Text with no password or key assignment comes out exactly as it went in."""
        assert logs.redact(text) == text

    @pytest.mark.parametrize(
        ("text", "masked"),
        [("mqtt://u:p@ss@h:1", "mqtt://u:***@h:1"), ("mqtt://u:pa/ss@h", "mqtt://u:***@h")],
    )
    def test_password_with_at_or_slash_goes_whole(self, text: str, masked: str) -> None:
        """A password holding '@' or '/' is masked up to the last '@', as URL parsers split it."""
        assert logs.redact(text) == masked


class TestGmqtt:
    def test_gmqtt_info_is_hidden_above_debug(self, logger: logging.Logger) -> None:
        """At INFO, gmqtt's '[CONNECTION MADE]' and a SUBACK logged through our own logger are not written."""
        out, handler = attach_handler(logger, level=logging.INFO)
        gmqtt_log = logging.getLogger("gmqtt.mqtt.protocol")
        handler.handle(
            gmqtt_log.makeRecord(gmqtt_log.name, logging.INFO, "protocol.py", 62, "[CONNECTION MADE]", (), None)
        )
        path = "/venv/site-packages/gmqtt/mqtt/handler.py"
        suback = logger.makeRecord(logger.name, logging.INFO, path, 623, "SUBACK mid: %s", (1,), None)
        handler.handle(suback)
        logger.info("ours stays")
        assert [r["msg"] for r in records(out)] == ["ours stays"]

    def test_gmqtt_info_shows_as_debug_at_debug(self, logger: logging.Logger) -> None:
        """At DEBUG, gmqtt's INFO lines are written with level DEBUG; its warnings stay warnings."""
        out, handler = attach_handler(logger, level=logging.DEBUG)
        gmqtt_log = logging.getLogger("gmqtt.client")
        for level, text in ((logging.INFO, "[CONNECTION MADE]"), (logging.WARNING, "lost heartbeat")):
            handler.handle(gmqtt_log.makeRecord(gmqtt_log.name, level, "client.py", 1, text, (), None))
        assert [(r["level"], r["msg"]) for r in records(out)] == [
            ("DEBUG", "[CONNECTION MADE]"),
            ("WARNING", "lost heartbeat"),
        ]


class TestChoice:
    def test_not_a_tty_means_json(self) -> None:
        """Without an override a plain stream gets JSON and a terminal gets text."""
        assert logs.wants_json(io.StringIO()) is True
        assert logs.wants_json(Tty()) is False

    @pytest.mark.parametrize("override", [True, False])
    def test_override_wins(self, override: bool) -> None:
        """An explicit choice holds whether or not the stream is a terminal."""
        assert logs.wants_json(io.StringIO(), override) is override
        assert logs.wants_json(Tty(), override) is override

    def test_closed_stream_counts_as_not_a_tty(self) -> None:
        """A stream whose isatty fails (closed) gets JSON rather than an error."""
        closed = io.StringIO()
        closed.close()
        assert logs.wants_json(closed) is True

    def test_handler_on_a_tty_writes_text(self, logger: logging.Logger) -> None:
        """The handler picks text for a terminal stream when nothing overrides it."""
        tty = Tty()
        logger.addHandler(logs.handler(logging.INFO, stream=tty))
        logger.info("hello", extra={"terminal": "T1"})
        assert tty.getvalue().rstrip().endswith(f"INFO {logger.name}: hello terminal=T1")

    @pytest.mark.parametrize(
        ("value", "parsed"), [(None, None), ("", None), ("json", True), ("TEXT", False), (" json ", True)]
    )
    def test_parse_format(self, value: str | None, parsed: bool | None) -> None:
        """SATGW_LOG_FORMAT reads json or text in any case; unset or empty leaves the choice to the TTY."""
        assert logs.parse_format(value) is parsed

    def test_parse_format_refuses_other_values(self) -> None:
        """Any other SATGW_LOG_FORMAT is an error that names the variable and the value."""
        with pytest.raises(ValueError, match="SATGW_LOG_FORMAT must be json or text, got 'yaml'"):
            logs.parse_format("yaml")


class TestConfigure:
    @pytest.fixture
    def root(self) -> Iterator[logging.Logger]:
        """The root logger, with its handlers and level put back afterwards."""
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        yield root
        for h in root.handlers:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)

    def test_configure_installs_one_handler_and_the_level(self, root: logging.Logger) -> None:
        """Calling configure twice leaves one satgw handler on the root, at the last level, writing JSON."""
        first = io.StringIO()
        logs.configure("DEBUG", stream=first)
        out = io.StringIO()
        installed = logs.configure("WARNING", stream=out)
        assert [h for h in root.handlers if h.name == installed.name] == [installed]
        assert root.level == logging.WARNING
        name = f"satgw.test.{uuid.uuid4().hex[:8]}"
        logging.getLogger(name).info("dropped")
        logging.getLogger(name).warning("kept", extra={"seq": 1})
        assert [(r["msg"], r["seq"]) for r in records(out)] == [("kept", 1)]
        assert first.getvalue() == ""

    def test_without_a_stream_it_follows_stderr(self, root: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
        """With no stream given, records go to whatever sys.stderr is when they are logged."""
        logs.configure(logging.INFO, json=True)
        logging.getLogger(f"satgw.test.{uuid.uuid4().hex[:8]}").info("to stderr")
        assert json.loads(capsys.readouterr().err)["msg"] == "to stderr"

    def test_unknown_level_is_refused(self, root: logging.Logger) -> None:
        """A level name logging does not know is a ValueError naming it."""
        with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
            logs.configure("LOUD", stream=io.StringIO())


class TestFields:
    def test_fields_of_an_entry(self, logger: logging.Logger) -> None:
        """fields_of a queue entry gives terminal, seq, message id and class label, which reach the JSON line."""
        entry = Entry("1-0", Priority.DISTRESS, "T5:9", "T5", 9, b"r", 0.0, None, False)
        extra = logs.fields_of(entry, link="geo-1", attempts=2)
        assert extra == {
            "terminal": "T5",
            "seq": 9,
            "message_id": "T5:9",
            "class": "distress",
            "link": "geo-1",
            "attempts": 2,
        }
        out = attach(logger)
        logger.info("sent", extra=extra)
        assert records(out)[0] == records(out)[0] | extra

    def test_fields_leave_out_none(self) -> None:
        """Unknown parts (no header, so no seq or class) are left out rather than written as null."""
        assert logs.fields(terminal="T1", seq=None, priority=None, reason="malformed", topic=None) == {
            "terminal": "T1",
            "reason": "malformed",
        }

    def test_unknown_field_is_refused(self) -> None:
        """A name outside FIELDS is a ValueError, since the formatter would silently drop it."""
        with pytest.raises(ValueError, match="not log fields: colour"):
            logs.fields(terminal="T1", colour="red")
