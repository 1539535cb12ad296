"""The sealed wire form, terminal keys, the replay window and the SPEC.md seal test vectors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocols.envelope import (
    MAX_BODY_BYTES,
    Kind,
    Message,
    Position,
    Priority,
    encode_inner,
)
from protocols.errors import DecodeError, Reason
from protocols.seal import (
    KEY_BYTES,
    MAX_WIRE_BYTES,
    Header,
    ReplayWindow,
    Verdict,
    decode_key,
    encode_key,
    new_key,
    open_sealed,
    peek_header,
    seal,
)
from tests.unit.strategies import messages

SPEC = Path(__file__).resolve().parents[2] / "protocols" / "SPEC.md"
KEY = bytes(range(KEY_BYTES))


def _message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {"terminal": "bd-000042", "seq": 7, "priority": Priority.ROUTINE, "kind": Kind.TEXT}
    return Message(**(fields | overrides))


def _reason(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


def spec_vectors() -> dict[str, str]:
    """Return the fenced blocks of SPEC.md that follow a ``<!-- vector: name -->`` comment, by name."""
    pattern = re.compile(r"<!-- vector: ([\w.-]+) -->\s*```\w*\n(.*?)\n```", re.DOTALL)
    return dict(pattern.findall(SPEC.read_text(encoding="utf-8")))


class TestKeys:
    def test_new_keys_are_random_and_sized(self) -> None:
        """new_key returns 32 bytes, different each time."""
        first, second = new_key(), new_key()
        assert len(first) == len(second) == KEY_BYTES
        assert first != second

    @given(st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES))
    def test_text_round_trip(self, key: bytes) -> None:
        """decode_key(encode_key(k)) is k, and the text is 43 URL-safe characters without padding."""
        text = encode_key(key)
        assert len(text) == 43
        assert set(text) <= set(string.ascii_letters + string.digits + "-_")
        assert decode_key(text) == key

    @pytest.mark.parametrize("text", [encode_key(bytes(31)), encode_key(bytes(33)), ""])
    def test_wrong_length_is_refused(self, text: str) -> None:
        """A key text that does not hold exactly 32 bytes raises ValueError."""
        with pytest.raises(ValueError, match="32 bytes"):
            decode_key(text)


class TestSeal:
    @settings(max_examples=150)
    @given(messages())
    def test_round_trip(self, message: Message) -> None:
        """open_sealed(seal(m, k), k) gives m back exactly, and peek_header reads its clear fields."""
        sealed = seal(message, KEY)
        header = peek_header(sealed)
        assert (header.terminal, header.seq, header.priority, header.receipt) == (
            message.terminal,
            message.seq,
            message.priority,
            message.receipt,
        )
        assert open_sealed(sealed, KEY) == message
        assert open_sealed(sealed, KEY, header) == message

    def test_header_layout(self) -> None:
        """The header is version, id length, id, 8-byte seq, priority and flags, in clear."""
        sealed = seal(_message(terminal="ab", seq=258, priority=Priority.SAFETY, receipt=True), KEY)
        assert sealed[:14] == bytes([1, 2]) + b"ab" + (258).to_bytes(8, "big") + bytes([2, 1])
        assert peek_header(sealed) == Header("ab", 258, Priority.SAFETY, True, 14)

    def test_nonce_and_aad_follow_the_spec(self) -> None:
        """The ciphertext is ChaCha20-Poly1305 under SHA-256(b"satgw-nonce" + id)[:4] + seq, with the header as AAD."""
        message = _message(terminal="boat-7", seq=2**40 + 5, body="x")
        sealed = seal(message, KEY)
        header = sealed[: peek_header(sealed).size]
        nonce = hashlib.sha256(b"satgw-nonce" + b"boat-7").digest()[:4] + message.seq.to_bytes(8, "big")
        assert sealed == header + ChaCha20Poly1305(KEY).encrypt(nonce, encode_inner(message), header)

    def test_sealing_is_deterministic(self) -> None:
        """The nonce comes from terminal and seq, so the same message and key seal to the same bytes."""
        assert seal(_message(body="x"), KEY) == seal(_message(body="x"), KEY)
        assert seal(_message(body="x"), KEY) != seal(_message(body="x", seq=8), KEY)

    def test_worst_case_body_fits_the_wire_limit(self) -> None:
        """A full body of control characters (6 bytes each once escaped) with every field still opens."""
        position = Position(-0.123456789012345, -179.99999999)
        message = _message(body="\x01" * MAX_BODY_BYTES, position=position, ttl=1, ts=1.2345678901234567e-5)
        sealed = seal(message, KEY)
        assert len(sealed) <= MAX_WIRE_BYTES
        assert open_sealed(sealed, KEY).body == message.body

    @settings(max_examples=150)
    @given(messages(), st.data())
    def test_any_single_byte_change_is_refused(self, message: Message, data: st.DataObject) -> None:
        """Changing any one byte of a sealed message never yields a message: it raises DecodeError."""
        sealed = bytearray(seal(message, KEY))
        index = data.draw(st.integers(0, len(sealed) - 1))
        sealed[index] ^= data.draw(st.integers(1, 255))
        with pytest.raises(DecodeError):
            open_sealed(bytes(sealed), KEY)

    @settings(max_examples=50)
    @given(messages(), st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES))
    def test_wrong_key_is_bad_seal(self, message: Message, other: bytes) -> None:
        """A message opened with another key is refused as bad_seal."""
        assume(other != KEY)
        assert _reason(open_sealed, seal(message, KEY), other) is Reason.BAD_SEAL

    @pytest.mark.parametrize("priority", [Priority.DISTRESS, Priority.URGENCY, Priority.SAFETY])
    def test_relabelled_priority_is_bad_seal(self, priority: Priority) -> None:
        """A routine message relabelled to a higher class in its clear header fails the seal."""
        sealed = bytearray(seal(_message(), KEY))
        header = peek_header(bytes(sealed))
        sealed[header.size - 2] = priority
        assert peek_header(bytes(sealed)).priority is priority
        assert _reason(open_sealed, bytes(sealed), KEY) is Reason.BAD_SEAL

    @pytest.mark.parametrize(("offset", "value"), [(2, ord("c")), (11, 9), (13, 1)])
    def test_other_header_edits_are_bad_seal(self, offset: int, value: int) -> None:
        """Another valid terminal id ("cb"), seq (9) or receipt flag in the header also fails the seal."""
        sealed = bytearray(seal(_message(terminal="ab"), KEY))
        sealed[offset] = value
        peek_header(bytes(sealed))  # still a well-formed header: only the seal can tell
        assert _reason(open_sealed, bytes(sealed), KEY) is Reason.BAD_SEAL


class TestPeekHeader:
    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b"", Reason.MALFORMED),
            (b"\x01", Reason.MALFORMED),
            (b"\x02\x01a" + bytes(40), Reason.UNSUPPORTED_VERSION),
            (b"\x01\x01a" + bytes(20), Reason.MALFORMED),
            (b"\x01\x00" + bytes(40), Reason.INVALID_FIELD),
            (b"\x01\x01\xff" + bytes(40), Reason.MALFORMED),
            (b"\x01\x01/" + bytes(40), Reason.INVALID_FIELD),
            (b"\x01\x01a" + bytes(8) + b"\x04\x00" + bytes(16), Reason.INVALID_FIELD),
            (b"\x01\x01a" + bytes(8) + b"\x00\x02" + bytes(16), Reason.INVALID_FIELD),
            (b"\x01" + bytes(MAX_WIRE_BYTES), Reason.OVERSIZED),
        ],
    )
    def test_refusals(self, payload: bytes, reason: Reason) -> None:
        """Short, unknown-version, bad-id, bad-class, bad-flag and oversized payloads get their reason."""
        assert _reason(peek_header, payload) is reason

    @pytest.mark.parametrize("first", [b"\x01\x01a", b"\x09", b""])
    def test_oversized_before_anything_else(self, first: bytes) -> None:
        """A payload one byte over the limit is oversized whatever its first bytes say."""
        payload = first + bytes(MAX_WIRE_BYTES + 1 - len(first))
        assert _reason(open_sealed, payload, KEY) is Reason.OVERSIZED
        assert _reason(open_sealed, payload[:-1], KEY) is not Reason.OVERSIZED

    @settings(max_examples=300)
    @given(st.binary(max_size=120))
    def test_garbage_only_raises_decode_error(self, payload: bytes) -> None:
        """Random bytes into peek_header and open_sealed raise DecodeError and nothing else."""
        with pytest.raises(DecodeError):
            open_sealed(payload, KEY)
        with contextlib.suppress(DecodeError):
            peek_header(payload)


class TestReplayWindow:
    def test_size_must_be_positive(self) -> None:
        """A window of size 0 is refused at construction."""
        with pytest.raises(ValueError, match="at least 1"):
            ReplayWindow(size=0)

    def test_boundary(self) -> None:
        """With highest H, H - size is still fresh and H - size - 1 is too old."""
        window = ReplayWindow(size=10)
        assert window.accept(100) is Verdict.FRESH
        assert window.check(90) is Verdict.FRESH
        assert window.check(89) is Verdict.TOO_OLD
        assert window.accept(90) is Verdict.FRESH
        assert window.accept(90) is Verdict.DUPLICATE

    def test_check_does_not_record(self) -> None:
        """check gives a verdict without accepting the seq."""
        window = ReplayWindow(size=4)
        assert window.check(3) is Verdict.FRESH
        assert window.accept(3) is Verdict.FRESH

    @settings(max_examples=150)
    @given(st.integers(1, 16), st.lists(st.integers(0, 80), max_size=120))
    def test_matches_the_rule(self, size: int, seqs: list[int]) -> None:
        """Over any sequence of seqs, each verdict is what the rule says, and no seq is accepted twice."""
        window, accepted, highest = ReplayWindow(size=size), set[int](), -1
        for seq in seqs:
            expected = (
                Verdict.TOO_OLD if seq < highest - size else Verdict.DUPLICATE if seq in accepted else Verdict.FRESH
            )
            assert window.accept(seq) is expected
            if expected is Verdict.FRESH:
                accepted.add(seq)
                highest = max(highest, seq)

    @settings(max_examples=100)
    @given(st.integers(1, 64), st.data())
    def test_permutation_within_window_all_fresh(self, size: int, data: st.DataObject) -> None:
        """Any order of size + 1 distinct consecutive seqs is accepted in full, then each is a duplicate."""
        start = data.draw(st.integers(0, 10**6))
        seqs = data.draw(st.permutations(range(start, start + size + 1)))
        window = ReplayWindow(size=size)
        assert [window.accept(seq) for seq in seqs] == [Verdict.FRESH] * len(seqs)
        assert {window.accept(seq) for seq in seqs} == {Verdict.DUPLICATE}

    def test_forgotten_seqs_stay_refused(self) -> None:
        """After the window prunes its memory, old seqs are too old (never fresh), recent ones duplicates."""
        window = ReplayWindow(size=8)
        for seq in range(100):
            assert window.accept(seq) is Verdict.FRESH
        assert {window.accept(seq) for seq in range(91)} == {Verdict.TOO_OLD}
        assert {window.accept(seq) for seq in range(91, 100)} == {Verdict.DUPLICATE}


class TestSpecVectors:
    def test_every_reason_is_documented(self) -> None:
        """The reasons table in SPEC.md lists exactly the values of Reason."""
        section = SPEC.read_text(encoding="utf-8").split("## 3. Reasons")[1].split("\n## ")[0]
        assert set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)) == {reason.value for reason in Reason}

    def test_key_message_and_inner_json(self) -> None:
        """The SPEC.md message encodes to the SPEC.md inner JSON."""
        vectors = spec_vectors()
        assert bytes.fromhex(vectors["seal.key"]) == KEY
        assert encode_inner(_spec_message(vectors)).decode("utf-8") == vectors["seal.inner"]

    def test_sealed_bytes(self) -> None:
        """Sealing the SPEC.md message under the SPEC.md key gives exactly the SPEC.md bytes, and they open."""
        vectors = spec_vectors()
        message, key = _spec_message(vectors), bytes.fromhex(vectors["seal.key"])
        expected = bytes.fromhex(vectors["seal.sealed"])
        assert seal(message, key).hex() == expected.hex()
        assert open_sealed(expected, key) == message


def _spec_message(vectors: dict[str, str]) -> Message:
    fields = json.loads(vectors["seal.message"])
    return Message(
        terminal=fields["terminal"],
        seq=fields["seq"],
        priority=Priority(fields["priority"]),
        kind=Kind(fields["kind"]),
        body=fields["body"],
        position=Position(fields["lat"], fields["lon"]),
        ttl=fields["ttl"],
        ts=fields["ts"],
        receipt=fields["receipt"],
    )
