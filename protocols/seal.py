"""Terminal keys, the sealed wire form of a message, and the replay window.

Wire form (all integers big-endian)::

    0      1  version (0x01)
    1      1  L = length of the terminal id (1..32)
    2      L  terminal id, ASCII
    2+L    8  seq
    10+L   1  priority (0..3)
    11+L   1  flags (bit 0: receipt requested; other bits zero)
    12+L   n  ChaCha20-Poly1305(key, nonce, inner JSON, aad = bytes 0..12+L) incl. 16-byte tag

    nonce = SHA-256(b"satgw-nonce" + terminal id)[:4] + seq (8 bytes)

The header travels in clear so the gateway can find the key and check the topic
before decrypting; it is authenticated as associated data, so changing any of
it (a routine message relabelled as distress, say) breaks the seal.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols.envelope import MAX_BODY_BYTES, Message, Priority, decode_inner, encode_inner, validate_terminal_id
from protocols.errors import DecodeError, Reason

__all__ = [
    "KEY_BYTES",
    "MAX_WIRE_BYTES",
    "REPLAY_WINDOW",
    "VERSION",
    "Header",
    "ReplayWindow",
    "Verdict",
    "decode_key",
    "encode_key",
    "new_key",
    "open_sealed",
    "peek_header",
    "seal",
]

VERSION = 1
KEY_BYTES = 32
TAG_BYTES = 16
REPLAY_WINDOW = 4096
"""How far below the highest seq seen a late message is still accepted (once)."""

# Header (≤ 44) + tag (16) + inner JSON: the body, escaped (a control character becomes 6 bytes,
# "\u0000"), plus room for the other fields.
MAX_WIRE_BYTES = 44 + TAG_BYTES + 6 * MAX_BODY_BYTES + 256
_FLAG_RECEIPT = 0x01
_SEQ_PRIO_FLAGS = struct.Struct(">QBB")


_PRIORITIES = tuple(Priority)  # indexing beats Priority(n) on the hot path


@dataclass(frozen=True, slots=True)
class Header:
    """The clear, authenticated part of a sealed message."""

    terminal: str
    seq: int
    priority: Priority
    receipt: bool
    size: int
    """Length of the header in bytes; the ciphertext starts there."""


def new_key() -> bytes:
    """Return a fresh random terminal key."""
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """Return ``key`` as URL-safe base64 without padding, as stored in credentials."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def decode_key(text: str) -> bytes:
    """Return the key that :func:`encode_key` wrote, or raise ``ValueError``."""
    key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(key) != KEY_BYTES:
        raise ValueError(f"a terminal key is {KEY_BYTES} bytes, got {len(key)}")
    return key


def seal(message: Message, key: bytes) -> bytes:
    """Return the sealed wire form of ``message`` under the terminal's ``key``."""
    header = _encode_header(message)
    ciphertext = _cipher(key).encrypt(_nonce(message.terminal, message.seq), encode_inner(message), header)
    return header + ciphertext


def peek_header(payload: bytes) -> Header:
    """Parse the clear header of a sealed message without opening it."""
    if len(payload) > MAX_WIRE_BYTES:
        raise DecodeError(Reason.OVERSIZED, f"{len(payload)} bytes exceeds the {MAX_WIRE_BYTES}-byte limit")
    if len(payload) < 2:
        raise DecodeError(Reason.MALFORMED, "too short for a sealed message")
    if payload[0] != VERSION:
        raise DecodeError(Reason.UNSUPPORTED_VERSION, f"version {payload[0]} (this gateway reads {VERSION})")
    size = 12 + payload[1]
    if len(payload) < size + TAG_BYTES:
        raise DecodeError(Reason.MALFORMED, "too short for its header and tag")
    terminal = _terminal_id(payload[2 : 2 + payload[1]])
    seq, prio, flags = _SEQ_PRIO_FLAGS.unpack_from(payload, 2 + payload[1])
    if prio > Priority.ROUTINE or flags & ~_FLAG_RECEIPT:
        raise DecodeError(Reason.INVALID_FIELD, f"priority {prio} or flags {flags:#x} out of range")
    return Header(terminal, seq, _PRIORITIES[prio], bool(flags & _FLAG_RECEIPT), size)


def open_sealed(payload: bytes, key: bytes, header: Header | None = None) -> Message:
    """Authenticate and decode a sealed message; raise :class:`DecodeError` if it is not genuine."""
    header = header or peek_header(payload)
    try:
        inner = _cipher(key).decrypt(
            _nonce(header.terminal, header.seq), payload[header.size :], payload[: header.size]
        )
    except InvalidTag:
        raise DecodeError(Reason.BAD_SEAL, f"seal of {header.terminal} seq {header.seq} does not verify") from None
    return decode_inner(
        inner, terminal=header.terminal, seq=header.seq, priority=header.priority, receipt=header.receipt
    )


def _encode_header(message: Message) -> bytes:
    terminal = message.terminal.encode("ascii")
    flags = _FLAG_RECEIPT if message.receipt else 0
    return bytes((VERSION, len(terminal))) + terminal + _SEQ_PRIO_FLAGS.pack(message.seq, message.priority, flags)


@functools.lru_cache(maxsize=65536)
def _terminal_id(raw: bytes) -> str:
    # Terminals send again and again: validate each id once (a refused id raises and is not cached).
    try:
        return validate_terminal_id(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise DecodeError(Reason.MALFORMED, "terminal id is not ASCII") from None


def _nonce(terminal: str, seq: int) -> bytes:
    # Keys are per terminal, so seq alone makes the nonce unique; the terminal
    # prefix binds it to the sender too, as the spec asks.
    return _nonce_prefix(terminal) + seq.to_bytes(8, "big")


@functools.lru_cache(maxsize=65536)
def _nonce_prefix(terminal: str) -> bytes:
    return hashlib.sha256(b"satgw-nonce" + terminal.encode("ascii")).digest()[:4]


@functools.lru_cache(maxsize=65536)
def _cipher(key: bytes) -> ChaCha20Poly1305:
    # Building the cipher costs about as much as opening a short message; keys repeat per terminal.
    return ChaCha20Poly1305(key)


class Verdict(enum.Enum):
    """What the replay window says of a sequence number."""

    FRESH = "fresh"
    DUPLICATE = "duplicate"
    TOO_OLD = "too_old"


class ReplayWindow:
    """The reference model of the replay rule, which the gateway's Redis script implements.

    A seq more than ``size`` below the highest accepted seq is too old; otherwise it
    is a duplicate if it was accepted before, and fresh if not. Both refusals are replays.
    """

    def __init__(self, *, size: int = REPLAY_WINDOW) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._highest = -1
        self._seen: set[int] = set()

    def check(self, seq: int) -> Verdict:
        """Return the verdict on ``seq`` without recording it."""
        # Too old is judged first, so when the seen set is pruned cannot change a verdict.
        if seq < self._highest - self._size:
            return Verdict.TOO_OLD
        if seq in self._seen:
            return Verdict.DUPLICATE
        return Verdict.FRESH

    def accept(self, seq: int) -> Verdict:
        """Record ``seq`` if it is fresh, and return the verdict."""
        verdict = self.check(seq)
        if verdict is Verdict.FRESH:
            self._seen.add(seq)
            self._highest = max(self._highest, seq)
            floor = self._highest - self._size
            self._seen = {s for s in self._seen if s >= floor} if len(self._seen) > 2 * self._size else self._seen
        return verdict
