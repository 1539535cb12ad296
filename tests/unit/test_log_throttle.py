"""gateway.logs.LogThrottle: at most N lines per key and period, the rest summarised, on an injected clock."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from gateway.logs import LogThrottle, handler


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def out() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of this test's own, writing satgw JSON lines to a buffer."""
    log = logging.getLogger(f"satgw.test.{uuid.uuid4().hex[:8]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    buffer = io.StringIO()
    log.addHandler(handler(logging.DEBUG, stream=buffer, json=True))
    yield log, buffer
    log.handlers.clear()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def throttle(log: logging.Logger, clock: Clock, per_period: int = 3) -> LogThrottle:
    return LogThrottle(logger=log, what="rejections", per_period=per_period, clock=clock)


def test_allows_n_per_key_and_period_then_holds_back(out: tuple[logging.Logger, io.StringIO]) -> None:
    """Within one second the first three of a reason pass, the rest are held; another reason has its own three."""
    log, _ = out
    clock = Clock()
    t = throttle(log, clock)
    assert [t.allow("bad_seal") for _ in range(10)] == [True] * 3 + [False] * 7
    assert [t.allow("malformed") for _ in range(4)] == [True] * 3 + [False]
    clock.now += 0.999
    assert not t.allow("bad_seal")
    clock.now += 0.001  # the period is over: a fresh allowance
    assert t.allow("bad_seal")


def test_the_next_line_after_a_period_brings_the_summary(out: tuple[logging.Logger, io.StringIO]) -> None:
    """When a key's period is over, its held-back count is logged once, as a warning with reason and count."""
    log, buffer = out
    clock = Clock()
    t = throttle(log, clock)
    for _ in range(10):
        t.allow("bad_seal")
    assert lines(buffer) == []  # the throttle never writes the allowed lines itself
    clock.now += 1.5
    assert t.allow("bad_seal")
    (summary,) = lines(buffer)
    assert summary["msg"] == "suppressed 7 rejections (reason=bad_seal) in 1 s"
    assert (summary["level"], summary["reason"], summary["count"]) == ("WARNING", "bad_seal", 7)


def test_flush_summarises_periods_that_ended_without_another_line(out: tuple[logging.Logger, io.StringIO]) -> None:
    """A flood that stops is still summarised by flush once its period is over, and only once."""
    log, buffer = out
    clock = Clock()
    t = throttle(log, clock)
    for _ in range(5):
        t.allow("malformed")
    t.flush()
    assert lines(buffer) == []  # the period is not over yet
    assert t.next_flush_in() == pytest.approx(1.0)
    clock.now += 1.0
    assert t.next_flush_in() == 0.0
    t.flush()
    t.flush()
    assert [line["count"] for line in lines(buffer)] == [2]
    assert t.next_flush_in() is None


def test_nothing_held_back_means_no_summary(out: tuple[logging.Logger, io.StringIO]) -> None:
    """Keys that stayed under the limit never produce a summary line, and need no timer."""
    log, buffer = out
    clock = Clock()
    t = throttle(log, clock)
    for _ in range(3):
        t.allow("replay")
    assert t.next_flush_in() is None
    clock.now += 5
    t.flush(everything=True)
    assert lines(buffer) == []


def test_flush_everything_summarises_open_periods(out: tuple[logging.Logger, io.StringIO]) -> None:
    """At shutdown every held-back count is logged, even mid-period."""
    log, buffer = out
    t = throttle(log, Clock(), per_period=1)
    for reason in ("bad_seal", "bad_seal", "replay", "replay", "replay"):
        t.allow(reason)
    t.flush(everything=True)
    assert {(line["reason"], line["count"]) for line in lines(buffer)} == {("bad_seal", 1), ("replay", 2)}


@pytest.mark.parametrize(
    ("options", "match"),
    [({"per_period": 0}, "per_period"), ({"period_s": 0}, "period_s"), ({"field": "colour"}, "field")],
)
def test_bad_settings_are_refused(options: dict[str, object], match: str) -> None:
    """Settings that cannot work fail at construction with a plain message."""
    with pytest.raises(ValueError, match=match):
        LogThrottle(logger=logging.getLogger("x"), what="rejections", **options)  # type: ignore[arg-type]
