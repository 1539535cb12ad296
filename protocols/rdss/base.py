"""What every decoded sentence offers, and the generic sentence for types this package does not know."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Protocol

from protocols.rdss.fields import check_common, check_text

__all__ = ["Generic", "Sentence", "Typed"]

_KIND = re.compile(r"[A-Z0-9]{3,8}")


class Sentence(Protocol):
    """A decoded sentence: its talker (CC host, BD terminal), type, checksum verdict and wire fields."""

    @property
    def talker(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def checksum_ok(self) -> bool: ...

    def to_fields(self) -> tuple[str, ...]:
        """Return the fields after the address, as written on the wire."""
        ...


class Typed:
    """Mix-in for the typed sentences: ``kind`` comes from the class's ``KIND``."""

    __slots__ = ()
    KIND: ClassVar[str]

    @property
    def kind(self) -> str:
        """The three-letter sentence type, e.g. ``TXA``."""
        return self.KIND


@dataclass(frozen=True, slots=True, kw_only=True)
class Generic:
    """A well-formed sentence of a type this package does not type: its raw fields, kept as they were."""

    talker: str
    kind: str
    fields: tuple[str, ...]
    checksum_ok: bool = True

    def __post_init__(self) -> None:
        check_common(self.talker, self.checksum_ok)
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise ValueError(f"kind must be 3 to 8 capitals or digits, got {self.kind!r}")
        if not isinstance(self.fields, tuple):
            raise ValueError("fields must be a tuple of strings")
        for index, field in enumerate(self.fields):
            check_text(field, f"field {index + 1}")

    def to_fields(self) -> tuple[str, ...]:
        """Return the raw fields."""
        return self.fields
