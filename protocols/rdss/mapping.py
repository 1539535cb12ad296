"""Sentences as plain JSON-ready dicts, and back: the form ``satgw rdss decode``/``encode`` print and read.

``{"type": "TXA", "talker": "CC", "fields": {...}, "checksum_ok": true, "text": "..."}``:
enum fields appear as lower-case names (numbers are accepted back), flags as booleans,
identifiers as digit strings. A generic sentence, or any sentence given by its raw
wire fields, has ``fields`` as a list of strings. Message sentences add ``text``; when
reading, ``text`` stands in for a missing ``content``.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

from protocols.rdss.base import Generic, Sentence
from protocols.rdss.bds3 import Fki3, Icp, Icr, Pwi, Tci, Tcq
from protocols.rdss.codec import PARSERS
from protocols.rdss.fields import build
from protocols.rdss.text import Form, content_from_text
from protocols.rdss.v21 import Bsi, Fki, Ica, Ici, Rmo, Txa, Txr

__all__ = ["from_dict", "to_dict"]

_COMMON = ("talker", "checksum_ok")
_CLASSES: dict[str, type[Any]] = {cls.KIND: cls for cls in (Txa, Txr, Ica, Ici, Rmo, Bsi, Tcq, Tci, Icr, Icp, Pwi)}
_MESSAGE_FORM: dict[type[Any], tuple[str, bool]] = {
    Txa: ("mode", False),
    Txr: ("mode", False),
    Tcq: ("encoding", True),
    Tci: ("encoding", True),
}
"""Message classes: the field that names the content's form, and whether Chinese is written as hex."""


def to_dict(sentence: Sentence) -> dict[str, Any]:
    """Return the JSON-ready form of ``sentence``."""
    out: dict[str, Any] = {"type": sentence.kind, "talker": sentence.talker}
    if isinstance(sentence, Generic):
        out["fields"] = list(sentence.fields)
    else:
        names = [field.name for field in dataclasses.fields(typing.cast(Any, sentence)) if field.name not in _COMMON]
        out["fields"] = {name: _to_json(getattr(sentence, name)) for name in names}
    out["checksum_ok"] = sentence.checksum_ok
    if type(sentence) in _MESSAGE_FORM:
        out["text"] = typing.cast(Any, sentence).text
    return out


def _to_json(value: object) -> object:
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


def from_dict(data: object) -> Sentence:
    """Return the sentence ``data`` describes (ValueError naming what is wrong); its checksum is recomputed."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with type and fields")
    kind, talker, values = data.get("type"), data.get("talker"), data.get("fields")
    if not isinstance(kind, str):
        raise ValueError("'type' must be a sentence type such as TXA")
    if isinstance(values, list):
        return _from_raw(kind, talker, values)
    if not isinstance(values, dict):
        raise ValueError("'fields' must be an object (typed) or a list of strings (raw)")
    cls = (Fki3 if "time" in values else Fki) if kind == "FKI" else _CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"unknown sentence type {kind!r}: give its fields as a list of strings")
    values = dict(values)
    if cls in _MESSAGE_FORM and "content" not in values and "text" in data:
        values["content"] = _content(cls, values, data["text"])
    kwargs = _typed_values(cls, values)
    if talker is not None:
        kwargs["talker"] = talker
    return typing.cast(Sentence, cls(**kwargs))


def _from_raw(kind: str, talker: object, values: list[Any]) -> Sentence:
    if not all(isinstance(value, str) for value in values) or not isinstance(talker, str):
        raise ValueError("raw fields must be strings, and a raw sentence needs its talker")
    fields = tuple(values)
    parser = PARSERS.get(kind)
    if parser is None:
        return build(Generic, kind, talker=talker, kind=kind, fields=fields)
    return parser(talker, fields, True)


def _content(cls: type[Any], values: dict[str, Any], text: object) -> str:
    form_field, hex_chinese = _MESSAGE_FORM[cls]
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    hint = typing.get_type_hints(cls)[form_field]
    form: Form = _from_json(values.get(form_field), hint, form_field).form
    return content_from_text(form, text, hex_chinese=hex_chinese)


def _typed_values(cls: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls) if field.name not in _COMMON]
    unknown = sorted(set(values) - set(names))
    missing = [name for name in names if name not in values]
    if unknown or missing:
        raise ValueError(f"{cls.KIND}: unknown fields {unknown}, missing fields {missing}")
    return {name: _from_json(values[name], hints[name], name) for name in names}


def _from_json(value: object, hint: Any, name: str) -> Any:
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return _enum(hint, value, name)
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(_from_json(item, typing.get_args(hint)[0], name) for item in value)
    return value


def _enum(enum_type: type[enum.IntEnum], value: object, name: str) -> enum.IntEnum:
    try:
        if isinstance(value, str):
            return enum_type[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool):
            return enum_type(value)
    except (KeyError, ValueError):
        pass
    choices = ", ".join(member.name.lower() for member in enum_type)
    raise ValueError(f"{name} must be one of {choices} (or its number), got {value!r}")
