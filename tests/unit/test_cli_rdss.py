"""``satgw rdss decode|encode``: JSON per sentence, errors per line, exit status at the end.

These tests build the parser themselves with ``register`` and run the chosen command
function with asyncio.run, as ``satgw`` would; the last one goes through
``gateway.cli.main`` once cli.py registers the module.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from typing import Any

import pytest

from gateway import cli
from gateway.cli_rdss import register
from protocols.rdss import TextMode, Txa, to_wire

TRACE = [
    "$CCICA,0,00*7B",
    "$BDICI,0166166,02097151,0000011,6,40,3,N,000*33",
    "$CCTXA,0166166,1,1,3132333433333335*7F",
    "$BDFKI,TXA,Y,Y,0,0040*17",
    "$CCTXA,0242407,1,2,A4B9E3D6DDBAA3C1C4BFC6BCBCD3D0CFDEB9ABCBBE*0F",
]


class _Stdin:
    """Stands in for sys.stdin: the commands read its binary buffer."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: bytes = b"") -> int:
    parser = argparse.ArgumentParser(prog="satgw")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    result: int = asyncio.run(args.command(args))
    return result


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_decode_arguments(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each argument prints one JSON object with type, talker, fields and checksum verdict; exit 0."""
    assert _run(["rdss", "decode", *TRACE], monkeypatch) == 0
    out = _json_lines(capsys.readouterr().out)
    assert [item["type"] for item in out] == ["ICA", "ICI", "TXA", "FKI", "TXA"]
    assert out[1]["fields"]["frequency_s"] == 40
    assert out[3] == {
        "type": "FKI",
        "talker": "BD",
        "fields": {"command": "TXA", "executed": True, "frequency_ok": True, "suppression": "lifted", "wait_s": 40},
        "checksum_ok": True,
    }
    assert out[4]["text"] == "广州海聊科技有限公司"


def test_decode_stdin_reports_bad_lines_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From stdin, blank lines are skipped, a bad line prints an error object, later lines still decode; exit 1."""
    log = b"$CCICA,0,00*7B\r\n\r\n   \nnoise from the port\n$BDFKI,TXA,N,Y,0,0000*05\n$CCRMO,BSI,2,10*17\n"
    assert _run(["rdss", "decode"], monkeypatch, stdin=log) == 1
    out = _json_lines(capsys.readouterr().out)
    assert len(out) == 4
    assert out[1]["line"] == "noise from the port"
    assert out[1]["error"].startswith("malformed")
    assert out[2]["checksum_ok"] is False
    assert out[3]["type"] == "RMO"


def test_decode_gb2312_capture(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A raw serial capture with GB2312 Chinese-mode text decodes, checksum included."""
    wire = to_wire(Txa.from_text(recipient="0242407", text="北斗", mode=TextMode.CHINESE))
    assert _run(["rdss", "decode"], monkeypatch, stdin=wire + b"\xff\xfe\n") == 1
    out = _json_lines(capsys.readouterr().out)
    assert out[0]["text"] == "北斗"
    assert out[0]["checksum_ok"] is True
    assert "error" in out[1]


def test_encode_round_trips_decode(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Feeding decode's output to encode gives back the original sentences exactly."""
    _run(["rdss", "decode", *TRACE], monkeypatch)
    decoded = capsys.readouterr().out
    assert _run(["rdss", "encode"], monkeypatch, stdin=decoded.encode()) == 0
    assert capsys.readouterr().out.splitlines() == TRACE


def test_encode_errors_go_to_stderr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad object is reported on stderr by its input number, the others are encoded, and the exit is 1."""
    good = json.dumps({"type": "ICR", "talker": "CC", "fields": {"query_type": 0, "frame": "00"}})
    assert _run(["rdss", "encode", "{not json", good, '{"type": "TXA", "fields": {}}'], monkeypatch) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["$CCICR,0,00*68"]
    errors = captured.err.splitlines()
    assert errors[0].startswith("satgw rdss encode: input 1:")
    assert errors[1].startswith("satgw rdss encode: input 3:")
    assert "missing fields" in errors[1]


def test_satgw_main_runs_rdss(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``gateway.cli.main``, ``satgw rdss decode`` prints the JSON form and exits 0."""
    try:
        cli._parser().parse_args(["rdss", "decode"])
    except SystemExit:
        pytest.skip("gateway/cli.py does not register gateway.cli_rdss yet")
    assert cli.main(["rdss", "decode", TRACE[0]]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["type"] == "ICA"
