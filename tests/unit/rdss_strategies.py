"""Hypothesis strategies for the RDSS sentence tests: texts per encoding and every sentence type."""

from __future__ import annotations

import dataclasses
import string

from hypothesis import strategies as st

from protocols.rdss import (
    Bds3Encoding,
    Bsi,
    CommType,
    Fki,
    Fki3,
    FkiReason,
    Generic,
    Ica,
    Ici,
    Icp,
    Icr,
    Pwi,
    Rmo,
    RmoMode,
    Sentence,
    Suppression,
    Tci,
    Tcq,
    TextMode,
    Txa,
    Txr,
)
from protocols.rdss.text import Form, content_from_text


def _gb2312_characters() -> list[str]:
    chars = []
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                chars.append(bytes((first, second)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def _gbk_encodable(char: str) -> bool:
    try:
        char.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


GB2312_DOUBLE = _gb2312_characters()
# Mixed messages are GBK on the air; Python's GB2312 has one character GBK maps elsewhere (U+30FB at A1A4).
GBK_DOUBLE = [c for c in GB2312_DOUBLE if _gbk_encodable(c)]
chinese_texts = st.lists(st.sampled_from(GB2312_DOUBLE), max_size=40).map("".join)
code_texts = st.text("0123456789ABCDEF", max_size=60)
gb_texts = st.lists(st.sampled_from(GBK_DOUBLE) | st.characters(max_codepoint=127), max_size=40).map("".join)
ids = st.text(string.digits, min_size=1, max_size=11)
talkers = st.sampled_from(["CC", "BD", "GN", "B2"])
commands = st.text(string.ascii_uppercase + string.digits, min_size=3, max_size=4)


def _hhmmss(hour: int, minute: int, second: int) -> str:
    return f"{hour:02d}{minute:02d}{second:02d}"


times = st.builds(_hhmmss, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
hhmm = st.builds(lambda h, m: f"{h:02d}{m:02d}", st.integers(0, 23), st.integers(0, 59))


@st.composite
def contents(draw: st.DrawFn, form: Form, hex_chinese: bool) -> str:
    """Content for ``form``: text written as the field carries it (opaque: arbitrary hex)."""
    if form is Form.CHINESE:
        return content_from_text(form, draw(chinese_texts), hex_chinese=hex_chinese)
    if form is Form.MIXED:
        return content_from_text(form, draw(gb_texts), hex_chinese=hex_chinese)
    return draw(code_texts)


@st.composite
def txas(draw: st.DrawFn) -> Txa:
    """Any TXA request."""
    mode = draw(st.sampled_from(TextMode))
    return Txa(
        recipient=draw(ids),
        comm_type=draw(st.sampled_from(CommType)),
        mode=mode,
        content=draw(contents(mode.form, False)),
        talker=draw(talkers),
    )


@st.composite
def txrs(draw: st.DrawFn) -> Txr:
    """Any TXR message."""
    mode = draw(st.sampled_from(TextMode))
    return Txr(
        info_type=draw(st.integers(0, 9)),
        sender=draw(ids),
        mode=mode,
        send_time=draw(st.just("") | hhmm),
        content=draw(contents(mode.form, False)),
    )


@st.composite
def tcqs(draw: st.DrawFn) -> Tcq:
    """Any TCQ request."""
    encoding = draw(st.sampled_from(Bds3Encoding))
    return Tcq(
        target=draw(ids),
        frequency_point=draw(st.integers(1, 5)),
        confirm=draw(st.booleans()),
        encoding=encoding,
        content=draw(contents(encoding.form, True)),
        send_frequency_s=draw(st.integers(0, 99_999)),
    )


@st.composite
def tcis(draw: st.DrawFn) -> Tci:
    """Any TCI message."""
    encoding = draw(st.sampled_from(Bds3Encoding))
    return Tci(
        sender=draw(ids),
        recipient=draw(ids),
        frequency_point=draw(st.integers(0, 9)),
        time=draw(times),
        encoding=encoding,
        reserved=draw(st.text(string.digits, max_size=2)),
        content=draw(contents(encoding.form, draw(st.booleans()))),
    )


small = st.integers(0, 99_999)
beams = st.integers(0, 99)
values = st.integers(0, 999)
fkis = st.builds(
    Fki,
    command=commands,
    executed=st.booleans(),
    frequency_ok=st.booleans(),
    suppression=st.sampled_from(Suppression),
    wait_s=st.integers(0, 5999),
)
icas = st.builds(Ica, query_type=st.integers(0, 9), frame=st.text(string.digits, min_size=1, max_size=3))
icis = st.builds(
    Ici,
    address=ids,
    serial=ids,
    broadcast_id=ids,
    user_feature=st.integers(0, 99),
    frequency_s=small,
    level=st.integers(0, 9),
    encrypted=st.booleans(),
    subordinates=st.text(string.digits, min_size=1, max_size=4),
)
rmos = st.builds(
    Rmo,
    sentence=st.just("") | st.text(string.ascii_uppercase, min_size=3, max_size=3),
    mode=st.sampled_from(RmoMode),
    frequency_s=st.none() | small,
)
bsis = st.builds(
    Bsi, response_beam=beams, timing_beam=beams, powers=st.lists(beams, max_size=21).map(tuple), talker=talkers
)
fki3s = st.builds(
    Fki3, time=times, command=commands, ok=st.booleans(), reason=st.sampled_from(FkiReason), remaining_s=small
)
icrs = st.builds(Icr, query_type=st.integers(0, 9), frame=st.text(string.digits, min_size=1, max_size=3))
_ICP_SPECIAL = {"card_id": ids, "broadcast_id": ids, "secrecy": st.booleans(), "rescue": st.booleans()}
_ICP_NAMES = [field.name for field in dataclasses.fields(Icp)]
_ICP_NUMBERS = {name: small for name in _ICP_NAMES if name not in (*_ICP_SPECIAL, "talker", "checksum_ok")}
icps = st.builds(Icp, **_ICP_SPECIAL, **_ICP_NUMBERS)
pwis = st.builds(
    Pwi,
    time=st.builds(lambda t, cs: f"{t}.{cs:02d}", times, st.integers(0, 99)),
    bds2=st.lists(st.tuples(beams, values, values), max_size=6).map(tuple),
    bds3=st.lists(st.tuples(beams, values, values, values), max_size=6).map(tuple),
)
field_texts = st.text(st.characters(exclude_characters=",*$", exclude_categories=("Cc", "Cs")), max_size=12)
generics = st.builds(
    Generic,
    talker=talkers,
    kind=st.text(string.ascii_uppercase + string.digits, min_size=3, max_size=8).filter(
        lambda kind: kind not in ("TXA", "TXR", "FKI", "ICA", "ICI", "RMO", "BSI", "TCQ", "TCI", "ICR", "ICP", "PWI")
    ),
    fields=st.lists(field_texts, max_size=8).map(tuple),
)

SENTENCES: dict[str, st.SearchStrategy[Sentence]] = {
    "TXA": txas(),
    "TXR": txrs(),
    "FKI": fkis,
    "ICA": icas,
    "ICI": icis,
    "RMO": rmos,
    "BSI": bsis,
    "TCQ": tcqs(),
    "FKI3": fki3s,
    "TCI": tcis(),
    "ICR": icrs,
    "ICP": icps,
    "PWI": pwis,
    "generic": generics,
}
sentences: st.SearchStrategy[Sentence] = st.one_of(*SENTENCES.values())
