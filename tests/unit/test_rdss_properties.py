"""Property tests for the RDSS sentence codec: round trips per sentence type, and garbage only raises DecodeError."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.rdss import Sentence, decode_bytes, decode_sentence, encode_sentence, from_dict, to_dict, to_wire
from protocols.rdss.nmea import checksum
from tests.unit.rdss_strategies import SENTENCES, sentences
from tests.unit.test_rdss_vectors import VECTORS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_round_trip_per_type(name: str) -> None:
    """For every sentence type, decode(encode(s)) == s, and the JSON form maps back to s."""

    @FAST
    @given(SENTENCES[name])
    def check(sentence: Sentence) -> None:
        line = encode_sentence(sentence)
        assert decode_sentence(line) == sentence
        assert decode_bytes(to_wire(sentence)) == sentence
        assert from_dict(to_dict(sentence)) == sentence

    check()


@FAST
@given(sentences)
def test_encoding_is_canonical(sentence: Sentence) -> None:
    """Re-encoding a decoded line gives the same line, so a typed sentence has exactly one wire form."""
    line = encode_sentence(sentence)
    assert encode_sentence(decode_sentence(line)) == line


@FAST
@given(sentences, st.integers(0, 254))
def test_a_wrong_checksum_is_reported_not_fatal(sentence: Sentence, delta: int) -> None:
    """Any checksum but the right one decodes to the same fields with ``checksum_ok`` False."""
    line = encode_sentence(sentence)
    wrong = (int(line[-2:], 16) + 1 + delta) % 256
    damaged = decode_sentence(f"{line[:-2]}{wrong:02X}")
    assert not damaged.checksum_ok
    assert damaged.to_fields() == sentence.to_fields()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_decode_error(text: str) -> None:
    """Any text either decodes to a sentence that encodes again, or raises DecodeError."""
    try:
        sentence = decode_sentence(text)
    except DecodeError:
        return
    encode_sentence(sentence)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    """Any bytes either decode to a sentence or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        decode_bytes(data)


def _mutate(line: str, rng: random.Random) -> str:
    chars = list(line)
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(chars))
        action = rng.randrange(4)
        if action == 0:
            chars[where] = rng.choice(",*$0123456789ABYN.\r 测\x00")
        elif action == 1:
            del chars[where]
        elif action == 2:
            chars.insert(where, rng.choice(",*9A"))
        else:
            chars = chars[:where]
        if not chars:
            break
    body = "".join(chars)
    if rng.random() < 0.5 and "*" in body[1:]:
        head = body[1:].split("*")[0]
        body = f"${head}*{checksum(head) if head.isascii() else 0:02X}"
    return body


@FAST
@given(sentences | st.sampled_from([sentence for _, sentence in VECTORS]), st.randoms(use_true_random=False))
def test_mutated_sentences_raise_only_decode_error(sentence: Sentence, rng: random.Random) -> None:
    """Valid lines with characters changed, dropped, inserted or cut (checksum often fixed) only raise DecodeError."""
    for _ in range(10):
        try:
            decoded = decode_sentence(_mutate(encode_sentence(sentence), rng))
        except DecodeError:
            continue
        encode_sentence(decoded)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100_000) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
_field_names = st.sampled_from(["recipient", "comm_type", "mode", "content", "time", "query_type", "frame", "powers"])


@FAST
@given(
    st.sampled_from(["TXA", "TXR", "FKI", "ICA", "ICI", "RMO", "BSI", "TCQ", "TCI", "ICR", "ICP", "PWI", "XYZ", 5]),
    st.dictionaries(_field_names, _json, max_size=6) | st.lists(st.text(max_size=6), max_size=8) | _json,
    st.none() | st.sampled_from(["CC", "BD", "c", 7]),
    st.none() | st.text(max_size=6),
)
def test_arbitrary_json_raises_only_value_error(kind: object, fields: object, talker: object, text: object) -> None:
    """Any JSON object given to from_dict either builds a sentence that encodes or raises ValueError."""
    data = {"type": kind, "fields": fields, "talker": talker, "text": text}
    try:
        sentence = from_dict({key: value for key, value in data.items() if value is not None})
    except ValueError:
        return
    encode_sentence(sentence)
