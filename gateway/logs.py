"""Log output of every ``satgw`` command: JSON lines for machines, the familiar text for people; no secret passes.

:func:`configure` is called once, by ``gateway.cli.main``. Off a terminal each record is one JSON object on one
line (``ts``, ``level``, ``logger``, ``msg``, and the context fields in :data:`FIELDS` that the call passed with
``extra=``), so a log shipper never has to parse prose. On a terminal the text form is kept, with the context
fields appended as ``name=value``.

Two filters sit on the handler: :class:`Redactor` masks URL passwords and ``key=...``-style secrets in
messages and tracebacks and replaces any ``extra`` whose name says key, secret, password or token; and
gmqtt's per-connection INFO chatter ("[CONNECTION MADE]", "SUBACK") is demoted to DEBUG.

:class:`LogThrottle` keeps a flood (of forged messages, say) from flooding the log: at most N lines per key
(a rejection reason) per second, and one summary line per key for what it held back.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol, TextIO

from protocols.envelope import Priority

__all__ = [
    "FIELDS",
    "REDACTED",
    "LogThrottle",
    "Redactor",
    "configure",
    "handler",
    "parse_format",
    "redact",
    "wants_json",
    "fields",
    "fields_of",
]

FIELDS: Final = ("terminal", "seq", "message_id", "class", "link", "reason", "detail", "topic", "attempts", "count")
"""Context a log call may pass with ``extra=``; the only extras that reach the output (so an unknown one cannot
leak). ``class`` is the priority label ("distress" ...), ``link`` a link name."""

REDACTED: Final = "***"

_HANDLER_NAME: Final = "satgw"
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# scheme://user:password@ (user may be empty, as in redis://:password@host). The password runs to the last "@"
# before whitespace: URL parsers split the netloc at its last "@", so "p@ss" or "pa/ss" must go whole.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):\S*@")
_SECRET_WORD = r"[\w-]*(?:key|secret|passw(?:or)?d|token)[\w-]*"
# key=value, token=..., ?api_key=...&: the value runs to whitespace or a separator
_ASSIGNED = re.compile(rf"(?i)\b(?P<name>{_SECRET_WORD})=(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&)\]}}]+)")
# "key": "value" and 'key': b'value' (JSON, dict reprs)
_QUOTED = re.compile(rf"(?i)(?P<name>(?P<q>[\"']){_SECRET_WORD}(?P=q)\s*:\s*)b?(?P<v>[\"'])(?:(?!(?P=v)).)*(?P=v)")
_SECRET_NAME = re.compile(rf"(?i)^{_SECRET_WORD}$")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_GMQTT_PATH: Final = f"{os.sep}gmqtt{os.sep}"


class AboutMessage(Protocol):
    """Anything naming one queued message: a queue ``Entry``, an ``OutboxEntry``."""

    @property
    def terminal(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def message_id(self) -> str: ...

    @property
    def priority(self) -> Priority: ...


def fields(
    *,
    terminal: str | None = None,
    seq: int | None = None,
    message_id: str | None = None,
    priority: Priority | None = None,
    **more: object,
) -> dict[str, object]:
    """``extra=`` for a log call: the message's context with its class as a label, None values left out.

    ``more`` takes the other :data:`FIELDS` (``link``, ``reason``, ``detail``, ``topic``, ``attempts``, ``count``).

    Raises:
        ValueError: a name in ``more`` is not one of :data:`FIELDS`, so it would never be written.
    """
    unknown = sorted(more.keys() - set(FIELDS))
    if unknown:
        raise ValueError(f"not log fields: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    label = priority.label if priority is not None else None
    given = {"terminal": terminal, "seq": seq, "message_id": message_id, "class": label, **more}
    return {name: value for name, value in given.items() if value is not None}


def fields_of(message: AboutMessage, **more: object) -> dict[str, object]:
    """:func:`fields` of a queued message (terminal, seq, message id, class) plus ``more``."""
    return fields(
        terminal=message.terminal, seq=message.seq, message_id=message.message_id, priority=message.priority, **more
    )


def redact(text: str) -> str:
    """Return ``text`` with URL passwords and ``key=...`` / ``"token": "..."`` values replaced by ``***``."""
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<head>:{REDACTED}@", text)
    text = _ASSIGNED.sub(rf"\g<name>={REDACTED}", text)
    return _QUOTED.sub(rf'\g<name>"{REDACTED}"', text)


def parse_format(value: str | None) -> bool | None:
    """Read ``SATGW_LOG_FORMAT``: True for json, False for text, None (choose by TTY) when unset or empty.

    Raises:
        ValueError: any other value.
    """
    if value is None or not value.strip():
        return None
    choice = value.strip().lower()
    if choice not in ("json", "text"):
        raise ValueError(f"SATGW_LOG_FORMAT must be json or text, got {value!r}")
    return choice == "json"


def wants_json(stream: TextIO, override: bool | None = None) -> bool:
    """True if records written to ``stream`` should be JSON: ``override`` if given, else when it is not a TTY."""
    if override is not None:
        return override
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream: nobody is reading it live
        return True


def configure(level: int | str, *, stream: TextIO | None = None, json: bool | None = None) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr at each write when None); call once.

    ``json`` forces the format (see :func:`parse_format`); None picks JSON unless ``stream`` is a TTY. A second
    call replaces the handler of the first; handlers others put on the root logger stay.
    """
    numeric = _level(level)
    out = handler(numeric, stream=stream, json=json)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(out)
    root.setLevel(numeric)
    return out


def handler(level: int | str, *, stream: TextIO | None = None, json: bool | None = None) -> logging.Handler:
    """The handler :func:`configure` installs, with its formatter and filters, for any logger."""
    numeric = _level(level)
    out: logging.StreamHandler[TextIO] = _StreamHandler(stream)
    out.name = _HANDLER_NAME
    out.setFormatter(JsonFormatter() if wants_json(out.stream, json) else TextFormatter())
    out.addFilter(_QuietGmqtt(numeric))
    out.addFilter(Redactor())
    return out


class Redactor(logging.Filter):
    """Keeps key material out of the output: masks messages and tracebacks, replaces secret-named extras.

    It rewrites the record itself (message rendered, args dropped), so whatever formats it afterwards sees
    only the masked text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name in [n for n in vars(record) if n not in _RECORD_ATTRS]:
            if _SECRET_NAME.match(name):
                setattr(record, name, REDACTED)
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ISO-8601 UTC), level, logger, msg, the :data:`FIELDS` present, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_context(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return jsonlib.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """The human form, ``time LEVEL logger: message``, with the context fields appended as ``name=value``."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        return line + "".join(f" {name}={value}" for name, value in _context(record).items())


def _context(record: logging.LogRecord) -> dict[str, object]:
    """The :data:`FIELDS` the record carries, strings masked like messages."""
    found: dict[str, object] = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None:
            continue
        found[name] = value if isinstance(value, bool | int | float) else redact(str(value))
    return found


class _QuietGmqtt(logging.Filter):
    """gmqtt logs every connect and SUBACK at INFO (some through our own logger): make those DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self._show_debug = level <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _from_gmqtt(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self._show_debug


def _from_gmqtt(record: logging.LogRecord) -> bool:
    return record.name == "gmqtt" or record.name.startswith("gmqtt.") or _GMQTT_PATH in record.pathname


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, without a stream of its own, writes to whatever ``sys.stderr`` is at each record.

    So tests that swap stderr, and code that calls :func:`configure` before they do, never write to a closed file.
    """

    def __init__(self, stream: TextIO | None) -> None:
        logging.Handler.__init__(self)
        self._own = stream

    @property
    def stream(self) -> TextIO:
        return self._own if self._own is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._own = value


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    return numeric


@dataclass(slots=True)
class _Window:
    start: float
    lines: int = 0
    held: int = 0


class LogThrottle:
    """At most ``per_period`` lines per key in each period; the rest are counted and summarised in one line.

    The caller asks :meth:`allow` before each line (so a held-back line costs no formatting). A key's period
    starts with its first line; when the next line comes after it ends, or :meth:`flush` runs, a line
    ``suppressed K <what> (<field>=<key>) in S s`` is logged at ``summary_level``. Keys should be few
    (reasons, not terminal ids): one small record each while they are active.

    Args:
        logger: where summary lines go.
        what: what the lines are about, plural ("rejections").
        field: the log field the key fills (one of :data:`FIELDS`).
        per_period: lines allowed per key and period.
        period_s: the period.
        clock: monotonic seconds.
        summary_level: the level of summary lines.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger,
        what: str,
        field: str = "reason",
        per_period: int = 10,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        summary_level: int = logging.WARNING,
    ) -> None:
        if field not in FIELDS:
            raise ValueError(f"field must be one of {', '.join(FIELDS)}, got {field!r}")
        if per_period < 1:
            raise ValueError(f"per_period must be at least 1, got {per_period}")
        if not period_s > 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        self._log, self._what, self._field = logger, what, field
        self._per_period, self._period_s, self._clock = per_period, period_s, clock
        self._level = summary_level
        self._windows: dict[str, _Window] = {}

    def allow(self, key: str) -> bool:
        """True if a line for ``key`` may be logged now; False if it is held back (and counted)."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self._period_s:
            if window is not None:
                self._summarize(key, window)
            window = self._windows[key] = _Window(now)
        if window.lines < self._per_period:
            window.lines += 1
            return True
        window.held += 1
        return False

    def flush(self, *, everything: bool = False) -> None:
        """Summarise the periods that have ended (all of them if ``everything``, e.g. at shutdown)."""
        if not self._windows:
            return
        now = self._clock()
        for key, window in list(self._windows.items()):
            if everything or now - window.start >= self._period_s:
                self._summarize(key, window)
                del self._windows[key]

    def next_flush_in(self) -> float | None:
        """Seconds until a held-back count is due for its summary; None if nothing is held back."""
        ends = [w.start + self._period_s for w in self._windows.values() if w.held]
        return None if not ends else max(0.0, min(ends) - self._clock())

    def _summarize(self, key: str, window: _Window) -> None:
        if not window.held:
            return
        self._log.log(
            self._level,
            "suppressed %d %s (%s=%s) in %.3g s",
            window.held,
            self._what,
            self._field,
            key,
            self._period_s,
            extra={self._field: key, "count": window.held},
        )
