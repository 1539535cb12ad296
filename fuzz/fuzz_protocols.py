"""Coverage-guided fuzzing of the protocols decoders with atheris (libFuzzer), beyond the unit-test fuzz.

The first input byte picks a decoder; the rest is its input. A crash is any exception
other than DecodeError, or a record/frame that decodes but does not re-encode to the
same bytes (the formats are canonical), or a sealed message that opens although it
is not one of the seeds (a forgery). The CAP 1.2 parser may raise only CapError, and
an alert it accepts must build again and parse back to itself.

Usage (atheris is not a project dependency: ``.venv/bin/pip install atheris``)::

    .venv/bin/python fuzz/fuzz_protocols.py --seeds fuzz/corpus      # write the seed corpus once
    .venv/bin/python fuzz/fuzz_protocols.py fuzz/corpus -max_total_time=60
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from protocols.cap import Alert, CapError, MsgType, Reference, build_alert, parse_alert, sos_alert
    from protocols.envelope import Kind, Message, Position, Priority, decode_inner, encode_inner
    from protocols.errors import DecodeError
    from protocols.frame import Record, decode_frame, decode_record, encode_frame, encode_record
    from protocols.seal import open_sealed, peek_header, seal

KEY = bytes(range(32))
MESSAGES = [
    Message(terminal="bd-000042", seq=1, priority=Priority.ROUTINE, kind=Kind.TEXT),
    Message(
        terminal="bd-000042",
        seq=7,
        priority=Priority.ROUTINE,
        kind=Kind.TELEMETRY,
        body="hello 北斗 🛰",
        position=Position(39.9042, 116.4074),
        ttl=3600,
        ts=1754300000.5,
        receipt=True,
    ),
    Message(terminal="0242407", seq=2**40, priority=Priority.DISTRESS, kind=Kind.SOS, body='MOB "\x00"'),
]
SEALED = {seal(message, KEY) for message in MESSAGES}


def _open(data: bytes) -> None:
    try:
        open_sealed(data, KEY)
    except DecodeError:
        return
    if data not in SEALED:
        raise AssertionError(f"forged message opened: {data.hex()}")


def _inner(data: bytes) -> None:
    decode_inner(data, terminal="t", seq=1, priority=Priority.URGENCY, receipt=False)


def _record(data: bytes) -> None:
    if encode_record(decode_record(data)) != data:
        raise AssertionError(f"record is not canonical: {data.hex()}")


def _cap(data: bytes) -> None:
    alert = parse_alert(data)
    if parse_alert(build_alert(alert)) != alert:
        raise AssertionError(f"CAP alert does not survive build and parse: {data!r}")


def _frame(data: bytes) -> None:
    frame_seq, records = decode_frame(data)
    if encode_frame([encode_record(record) for record in records], frame_seq=frame_seq) != data:
        raise AssertionError(f"frame is not canonical: {data.hex()}")


TARGETS: list[Callable[[bytes], object]] = [peek_header, _open, _inner, _record, _frame, _cap]


def test_one_input(data: bytes) -> None:
    """Run the decoder chosen by the first byte on the rest; only DecodeError (CapError for CAP) may escape it."""
    if not data:
        return
    with contextlib.suppress(DecodeError, CapError):
        TARGETS[data[0] % len(TARGETS)](data[1:])


def _cap_alerts() -> list[Alert]:
    sent = datetime(2026, 8, 15, 6, 2, 37, tzinfo=UTC)
    first = sos_alert(identifier="sos-1", sender="satgw", terminal="bd-000042", sent=sent, position=(39.9, 116.4))
    cancel = sos_alert(
        identifier="sos-2",
        sender="satgw",
        terminal="bd-000042",
        sent=sent,
        msg_type=MsgType.CANCEL,
        references=[Reference("satgw", "sos-1", sent)],
        text='MOB "\r\n" <&>',
    )
    return [first, cancel]


def write_seeds(directory: Path) -> None:
    """Write one seed file per valid encoding, prefixed with its decoder's selector byte."""
    records = [encode_record(Record(message=m, received_at=1754300003.5)) for m in MESSAGES]
    seeds = [bytes([0]) + s for s in SEALED] + [bytes([1]) + s for s in SEALED]
    seeds += [bytes([2]) + encode_inner(m) for m in MESSAGES] + [bytes([3]) + r for r in records]
    seeds.append(bytes([4]) + encode_frame(records, frame_seq=42))
    seeds += [bytes([5]) + build_alert(alert) for alert in _cap_alerts()]
    directory.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds):
        (directory / f"seed-{number:02d}").write_bytes(seed)


def main() -> None:
    """Write seeds (``--seeds DIR``) or run the fuzzer with libFuzzer's arguments."""
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
