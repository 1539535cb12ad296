"""Fuzzing the protocol decoders: mutated valid encodings and random bytes only ever raise DecodeError.

Each decoder gets about 2000 inputs: valid encodings of varied messages with bit flips,
byte replacements, truncations, insertions and deletions applied, plus plain random
bytes. Where a mutant still decodes, the test also checks what that means: a sealed
message must be the untouched original (no forgery), and a record or frame must be
canonical (it re-encodes to the very bytes that were decoded, or, for a UTF-8 body
that GB2312 would shorten as link frame v1 writers left it, to a strictly shorter
form that decodes to the same). v2 frames and fragments get the same treatment.
The CAP 1.2 parser, whose one error is CapError, gets mutated alerts too: one it
accepts must build and parse back to itself.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.cap import Alert, CapError, MsgType, Reference, build_alert, parse_alert, sos_alert
from protocols.envelope import (
    MAX_BODY_BYTES,
    MAX_SEQ,
    MAX_TS,
    Kind,
    Message,
    Position,
    Priority,
    decode_inner,
    encode_inner,
)
from protocols.errors import DecodeError
from protocols.fragments import decode_fragment, encode_fragment, fragment
from protocols.frame import (
    LinkFrame,
    Record,
    crc16,
    decode_frame,
    decode_record,
    encode_frame,
    encode_frame_v2,
    encode_record,
    read_frame,
)
from protocols.seal import open_sealed, peek_header, seal
from tests.unit.test_cap import EARTHQUAKE, full_alert

KEY = bytes(range(32))
PER_EXAMPLE = 10
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""200 examples of 10 inputs each: about 2000 inputs per decoder in a fraction of a second."""
T = TypeVar("T")


def _seed_messages() -> list[Message]:
    def message(**fields: Any) -> Message:
        defaults: dict[str, Any] = {"terminal": "bd-000042", "seq": 1, "priority": Priority.ROUTINE, "kind": Kind.TEXT}
        return Message(**(defaults | fields))

    return [
        message(),
        message(body="hello 北斗 🛰", position=Position(39.9042, 116.4074), ttl=3600, ts=1754300000.5, receipt=True),
        message(terminal="0242407", priority=Priority.DISTRESS, kind=Kind.SOS, body="MOB", position=Position(-90, 180)),
        message(kind=Kind.TELEMETRY, body='{"batt":3.71,"t":-4}', ttl=600, seq=MAX_SEQ, ts=MAX_TS),
        message(terminal="x" * 32, priority=Priority.SAFETY, kind=Kind.POSITION, position=Position(0.1234567, -0.5)),
        message(priority=Priority.URGENCY, body="é" * (MAX_BODY_BYTES // 2), ts=1e-3, ttl=1),
        message(body='\x00"\\\n\u2028', seq=2**32, receipt=True),
        message(body="北斗短报文 电量 71% 一切正常", seq=3),  # GB2312 on the link
    ]


MESSAGES = _seed_messages()
SEALED = [seal(message, KEY) for message in MESSAGES]
JSONS = [encode_inner(message) for message in MESSAGES]
RECORDS = [encode_record(Record(message=m, received_at=1754300003.5 + n)) for n, m in enumerate(MESSAGES)]
FRAMES = [encode_frame(RECORDS[start : start + 3], frame_seq=start) for start in range(len(RECORDS))]
FRAGMENTS = [
    part for n, record in enumerate(RECORDS) for part in fragment(record, max_fragment_payload=9 + n, message_ref=n)
]
FRAMES_V2 = [
    encode_frame_v2(records=RECORDS[:2], fragments=FRAGMENTS[:3]),
    encode_frame_v2(fragments=FRAGMENTS[5:9]),
    encode_frame_v2(records=RECORDS[3:6]),
    encode_frame_v2(records=[RECORDS[1]], compact=True),
    encode_frame_v2(fragments=[FRAGMENTS[-1]], compact=True),
]


def _nonce(terminal: str, seq: int) -> bytes:
    return hashlib.sha256(b"satgw-nonce" + terminal.encode("ascii")).digest()[:4] + seq.to_bytes(8, "big")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Return ``data`` with one to four random edits: bit flip, byte replace, truncate, insert or delete."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(out)) if out else 0
        edit = rng.choice(["flip", "replace", "truncate", "insert", "delete"])
        if edit == "flip" and out:
            out[at] ^= 1 << rng.randrange(8)
        elif edit == "replace" and out:
            out[at] = rng.randrange(256)
        elif edit == "truncate":
            del out[at:]
        elif edit == "insert":
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif edit == "delete":
            del out[at : at + rng.randint(1, 8)]
    return bytes(out)


def inputs(seeds: list[bytes], raw: bytes, seed: int) -> list[bytes]:
    """Hypothesis's own bytes ``raw``, then mutants of the seeds chosen by a generator seeded with ``seed``."""
    rng = random.Random(seed)
    return [raw] + [mutate(rng.choice(seeds), rng) for _ in range(PER_EXAMPLE - 1)]


def decodes(call: Callable[[bytes], T], data: bytes) -> T | None:
    """Return ``call(data)``, or None if it raised DecodeError; any other exception fails, naming the input."""
    try:
        return call(data)
    except DecodeError:
        return None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped for input {data.hex()}") from exc


def _with_crc(frame: bytes) -> bytes:
    """Return ``frame`` with its CRC recomputed, so the decoder looks past the header."""
    if len(frame) < 8:
        return frame
    return frame[:6] + crc16(frame[:6] + frame[8:]).to_bytes(2, "big") + frame[8:]


def _open(payload: bytes) -> Message:
    return open_sealed(payload, KEY)


def _inner(raw: bytes) -> Message:
    return decode_inner(raw, terminal="t", seq=1, priority=Priority.DISTRESS, receipt=False)


def _reseal(inner: bytes, original: bytes) -> bytes:
    """Seal ``inner`` under ``original``'s header with a genuine tag, by the nonce rule in SPEC.md."""
    header = peek_header(original)
    clear = original[: header.size]
    return clear + ChaCha20Poly1305(KEY).encrypt(_nonce(header.terminal, header.seq), inner, clear)


def _refold(frame_and_records: tuple[int, list[Record]]) -> bytes:
    frame_seq, records = frame_and_records
    return encode_frame([encode_record(record) for record in records], frame_seq=frame_seq)


def _refold_v2(frame: LinkFrame) -> bytes:
    records = [encode_record(record) for record in frame.records]
    return encode_frame_v2(
        records=records, fragments=list(map(encode_fragment, frame.fragments)), compact=frame.compact
    )


def _v2_with_crc(frame: bytes) -> bytes:
    """Return a v2 frame with its CRC recomputed (other forms unchanged), so the decoder looks past it."""
    if len(frame) < 3 or frame[0] != 0xB2:
        return frame
    return frame[:-2] + crc16(frame[:-2]).to_bytes(2, "big")


def canonical(data: bytes, again: bytes, decode: Callable[[bytes], Any], decoded: Any) -> bool:
    """True if the re-encoding ``again`` is ``data``, or shorter (a UTF-8 body put in GB2312) and equivalent."""
    return again == data or (len(again) < len(data) and decode(again) == decoded)


raws = st.binary(max_size=300)
seeds = st.integers(0, 2**64 - 1)


class TestSealedFuzz:
    @FUZZ
    @given(raws, seeds)
    def test_peek_header_and_open_sealed(self, raw: bytes, seed: int) -> None:
        """Mutated sealed messages only raise DecodeError, and none opens unless it is an untouched original."""
        for payload in inputs(SEALED, raw, seed):
            decodes(peek_header, payload)
            message = decodes(_open, payload)
            assert message is None or message == MESSAGES[SEALED.index(payload)], payload.hex()

    @FUZZ
    @given(raws, seeds)
    def test_decode_inner(self, raw: bytes, seed: int) -> None:
        """Mutated inner JSON, bare or under a genuine seal, gives a Message or DecodeError and nothing else."""
        rng = random.Random(seed)
        for inner in inputs(JSONS, raw, seed):
            decodes(_inner, inner)
            message = decodes(_open, _reseal(inner, rng.choice(SEALED)))
            assert message is None or message.terminal in {m.terminal for m in MESSAGES}


class TestFrameFuzz:
    @FUZZ
    @given(raws, seeds)
    def test_decode_record(self, raw: bytes, seed: int) -> None:
        """Mutated records raise DecodeError or decode to a record that re-encodes to the very input."""
        for data in inputs(RECORDS, raw, seed):
            record = decodes(decode_record, data)
            assert record is None or canonical(data, encode_record(record), decode_record, record), data.hex()

    @FUZZ
    @given(raws, seeds, st.booleans())
    def test_decode_frame(self, raw: bytes, seed: int, fix_crc: bool) -> None:
        """Mutated frames (half with the CRC corrected, to reach the records) raise DecodeError or are canonical."""
        for data in inputs(FRAMES, raw, seed):
            frame = _with_crc(data) if fix_crc else data
            decoded = decodes(decode_frame, frame)
            assert decoded is None or canonical(frame, _refold(decoded), decode_frame, decoded), frame.hex()

    @FUZZ
    @given(raws, seeds, st.booleans())
    def test_read_frame(self, raw: bytes, seed: int, fix_crc: bool) -> None:
        """Mutated v1 and v2 frames (half with the CRC corrected) raise DecodeError or read back canonically."""
        for data in inputs(FRAMES + FRAMES_V2, raw, seed):
            frame = (_with_crc(data) if data[:1] == b"\xb1" else _v2_with_crc(data)) if fix_crc else data
            decoded = decodes(read_frame, frame)
            if decoded is not None and decoded.version == 2:
                assert canonical(frame, _refold_v2(decoded), read_frame, decoded), frame.hex()

    @FUZZ
    @given(raws, seeds)
    def test_decode_fragment(self, raw: bytes, seed: int) -> None:
        """Mutated fragments raise DecodeError or decode to a fragment that re-encodes to the very input."""
        for data in inputs(FRAGMENTS, raw, seed):
            part = decodes(decode_fragment, data)
            assert part is None or encode_fragment(part) == data, data.hex()


def _cap_seeds() -> list[bytes]:
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
    return [EARTHQUAKE, *map(build_alert, [first, cancel, full_alert()])]


CAP_SEEDS = _cap_seeds()


def _parse_cap(data: bytes) -> Alert | None:
    """``parse_alert(data)``, or None if it raised CapError; any other exception fails, naming the input."""
    try:
        return parse_alert(data)
    except CapError:
        return None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped for input {data!r}") from exc


class TestCapFuzz:
    @FUZZ
    @given(raws, seeds)
    def test_parse_alert(self, raw: bytes, seed: int) -> None:
        """Mutated CAP alerts raise CapError or parse to an alert that builds and parses back to itself."""
        for data in inputs(CAP_SEEDS, raw, seed):
            alert = _parse_cap(data)
            assert alert is None or parse_alert(build_alert(alert)) == alert, data
