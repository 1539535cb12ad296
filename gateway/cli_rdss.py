"""``satgw rdss decode|encode``: BeiDou terminal sentences to JSON and back, for serial logs.

Each input line is handled on its own: a line that does not decode is reported
and the rest still are, and the exit status is 1 at the end if any line failed.
Stdin is read as bytes, one line at a time, as UTF-8 or else GB18030 (terminals
write GB2312 on the serial line, so raw captures are GB-encoded).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

from protocols.errors import DecodeError, Reason
from protocols.rdss import decode_sentence, encode_sentence, from_dict, to_dict

__all__ = ["decode_lines", "encode_lines", "register"]


def register(sub: Any) -> None:
    """Add ``rdss decode`` and ``rdss encode`` to the ``satgw`` subparsers ``sub``."""
    rdss = sub.add_parser("rdss", help="decode/encode BeiDou terminal sentences (RDSS 2.1 and BDS-3)")
    actions = rdss.add_subparsers(required=True, metavar="ACTION")
    decode = actions.add_parser("decode", help="print one JSON object per sentence")
    decode.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences; none: read stdin, one a line")
    decode.set_defaults(command=_decode)
    encode = actions.add_parser("encode", help="print one sentence per JSON object (as 'rdss decode' prints them)")
    encode.add_argument("objects", nargs="*", metavar="JSON", help="JSON objects; none: read stdin, one a line")
    encode.set_defaults(command=_encode)


async def _decode(args: argparse.Namespace) -> int:
    return decode_lines(_inputs(args.sentences, sys.stdin.buffer), sys.stdout)


async def _encode(args: argparse.Namespace) -> int:
    return encode_lines(_inputs(args.objects, sys.stdin.buffer), sys.stdout, sys.stderr)


def decode_lines(lines: Iterable[str | bytes], out: TextIO) -> int:
    """Print the JSON form of each sentence in ``lines`` to ``out``; return 1 if any line failed, else 0."""
    status = 0
    for line in lines:
        try:
            result = to_dict(decode_sentence(_text(line)))
        except DecodeError as exc:
            status = 1
            result = {"error": str(exc), "line": _shown(line)}
        print(json.dumps(result, ensure_ascii=False), file=out)
    return status


def encode_lines(lines: Iterable[str | bytes], out: TextIO, err: TextIO) -> int:
    """Print the sentence for each JSON object in ``lines`` to ``out``; errors go to ``err``; 1 if any failed."""
    status = 0
    for number, line in enumerate(lines, 1):
        try:
            print(encode_sentence(from_dict(json.loads(_text(line)))), file=out)
        except ValueError as exc:  # json.JSONDecodeError and DecodeError are ValueErrors too
            status = 1
            print(f"satgw rdss encode: input {number}: {exc}", file=err)
    return status


def _inputs(arguments: list[str], stdin: BinaryIO) -> Iterator[str | bytes]:
    """The non-blank arguments, or with none, the non-blank lines of stdin."""
    source: Iterable[str | bytes] = arguments if arguments else stdin
    for item in source:
        if item.strip():
            yield item.rstrip(b"\r\n") if isinstance(item, bytes) else item.rstrip("\r\n")


def _text(line: str | bytes) -> str:
    if isinstance(line, str):
        return line
    for encoding in ("utf-8", "gb18030"):
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DecodeError(Reason.MALFORMED, "a line that is neither UTF-8 nor GB18030 text")


def _shown(line: str | bytes) -> str:
    return line if isinstance(line, str) else line.decode("utf-8", "backslashreplace")
