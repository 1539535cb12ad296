"""The BeiDou terminal driver against the terminal emulator, over a real pseudo-terminal opened with pyserial."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import serial_asyncio  # type: ignore[import-untyped]

from gateway.exceptions import LinkError
from gateway.links import FeedbackCode, Link, SimClock
from gateway.links.rdss_card import card_from_ici, payload_from_content, verdict
from gateway.links.rdss_serial import (
    RDSS_SERIAL_KEYS,
    RdssSerialProfile,
    RdssTerminalLink,
    Received,
    SerialPort,
    StreamPair,
    TerminalOptions,
)
from gateway.sim.rdss_terminal import Act, Answer, EmulatedCard, RdssTerminalEmulator
from protocols.envelope import Priority
from protocols.rdss import Fki, Fki3, Ici, Tcq, decode_sentence, encode_sentence
from protocols.rdss.nmea import join
from protocols.rdss.text import Form

pytestmark = pytest.mark.timeout(10)

START = 1_800_000_000.0
GROUND = "0242407"
FKI_TIMEOUT_S = 0.5
ROUTINE, DISTRESS = Priority.ROUTINE, Priority.DISTRESS
BDS3 = EmulatedCard(address="15240507", generation="bds3", level=5, interval_s=60)


class Inbox:
    """A message handler that remembers what arrived and wakes a waiting test."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: Received) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def wait(self, count: int) -> list[Received]:
        while len(self.messages) < count:
            self._arrived.clear()
            await self._arrived.wait()
        return self.messages


class RecordingSink:
    """A ground segment that remembers what it was handed."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, str]] = []
        self.arrived = asyncio.Event()

    async def receive(self, frame: bytes, *, link: str) -> None:
        self.frames.append((frame, link))
        self.arrived.set()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=START)


@contextlib.asynccontextmanager
async def running(
    clock: SimClock,
    *,
    card: EmulatedCard | None = None,
    beams: tuple[int, ...] = (4,) * 10,
    **options: Any,
) -> AsyncIterator[tuple[RdssTerminalEmulator, RdssTerminalLink]]:
    """An emulated terminal and a driver opened on its pty."""
    extra = {k: options.pop(k) for k in ("on_message", "sink") if k in options}
    async with RdssTerminalEmulator(card=card, clock=clock, beams=beams) as term:
        values: dict[str, Any] = {"recipient": GROUND, "fki_timeout_s": FKI_TIMEOUT_S} | options
        settings = TerminalOptions(**values)
        link = RdssTerminalLink(name="bd", connector=SerialPort(term.port), clock=clock, options=settings, **extra)
        async with link:
            yield term, link


async def until(condition: Callable[[], bool]) -> None:
    """Let real I/O run until ``condition`` holds (the test's time-out bounds the wait)."""
    while not condition():
        await asyncio.sleep(0.001)


async def when_sleeping(clock: SimClock, count: int) -> None:
    """Let real I/O run until ``count`` tasks sleep on the simulated clock."""
    await until(lambda: clock.sleepers >= count)


# -- card query and MTU ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "encrypted", "mtu"), [(1, False, 13), (3, False, 78), (4, False, 106), (2, True, 45), (4, True, 210)]
)
async def test_card_query_sets_the_mtu_from_the_level(clock: SimClock, level: int, encrypted: bool, mtu: int) -> None:
    """$CCICA → $BDICI gives the card; the MTU is its level's cap in bits over 8 (code mode)."""
    card = EmulatedCard(level=level, encrypted=encrypted, interval_s=40)
    async with running(clock, card=card) as (term, link):
        assert link.mtu == mtu
        assert (link.card.generation, link.card.interval_s, link.card.address) == ("bds2", 40, "0166166")
        assert [s.kind for s in term.log.host] == ["ICA", "RMO"]
        assert link.beams_ok is True


async def test_a_configured_cap_only_lowers_the_mtu(clock: SimClock) -> None:
    """max_frame_bytes keeps a margin below the card's cap, never above it."""
    async with running(clock, max_frame_bytes=50) as (_, link):
        assert link.mtu == 50
    async with running(clock, max_frame_bytes=500) as (_, link):
        assert link.mtu == 78


async def test_the_trace_card_sentence_gives_a_40_s_level_3_card() -> None:
    """The real trace's $BDICI (domain.md §2.2) is a level-3, 628-bit, 40 s card."""
    card = card_from_ici(Ici.from_fields("BD", ("0166166", "02097151", "0000011", "6", "40", "3", "N", "000"), True))
    assert (card.bits, card.max_frame_bytes, card.interval_s) == (628, 78, 40)


async def test_bds3_card_is_queried_with_ccicr_and_sends_tcq(clock: SimClock) -> None:
    """A BDS-3 terminal answers $CCICR with $BDICP; frames then go as $CCTCQ in code mode."""
    async with running(clock, card=BDS3, generation="bds3") as (term, link):
        assert (link.card.generation, link.card.level, link.mtu) == ("bds3", 5, 1750)
        assert link.beams_ok is True
        feedback = await link.transmit(b"Hello", priority=ROUTINE)
        assert feedback.code is FeedbackCode.SENT
        (tcq,) = await term.wait_for("TCQ")
        assert isinstance(tcq, Tcq)
        assert tcq.to_fields() == ("0242407", "2", "1", "2", "48656C6C6F", "0")


async def test_auto_falls_back_to_bds3_when_ccica_gets_no_answer(clock: SimClock) -> None:
    """generation=auto asks $CCICA first; with no $BDICI in time it asks $CCICR."""
    async with RdssTerminalEmulator(card=BDS3, clock=clock) as term:
        link = RdssTerminalLink(
            name="bd", connector=SerialPort(term.port), clock=clock, options=TerminalOptions(recipient=GROUND)
        )
        opening = asyncio.create_task(link.__aenter__())
        await term.wait_for("ICA")
        await when_sleeping(clock, 1)
        await clock.advance(2.0)
        await opening
        try:
            assert link.card.generation == "bds3"
            assert [s.kind for s in term.log.host] == ["ICA", "ICR"]
        finally:
            await link.aclose()


async def test_a_terminal_that_never_answers_the_card_query_fails_the_open(clock: SimClock) -> None:
    """No $BDICI within the query time-out: opening raises LinkError and leaves no task behind."""
    async with RdssTerminalEmulator(card=BDS3, clock=clock) as term:
        options = TerminalOptions(recipient=GROUND, generation="bds2")
        link = RdssTerminalLink(name="bd", connector=SerialPort(term.port), clock=clock, options=options)
        opening = asyncio.create_task(link.__aenter__())
        await term.wait_for("ICA")
        await when_sleeping(clock, 1)
        await clock.advance(2.0)
        with pytest.raises(LinkError, match=r"did not answer \$CCICA"):
            await opening
        assert link.tasks == ()


async def test_transmit_before_open_is_an_error(clock: SimClock) -> None:
    """A link whose card is unknown refuses to transmit rather than guess an MTU."""
    options = TerminalOptions(recipient=GROUND)
    link = RdssTerminalLink(name="bd", connector=SerialPort("/dev/null"), clock=clock, options=options)
    with pytest.raises(LinkError, match="not open"):
        await link.transmit(b"x", priority=ROUTINE)


# -- sending and feedback -------------------------------------------------------------------------


async def test_send_with_fki_success_reports_sent_and_books_the_interval(clock: SimClock) -> None:
    """$CCTXA in code mode, $BDFKI executed → SENT; the next send waits the card's interval."""
    async with running(clock) as (term, link):
        feedback = await link.transmit(b"\x01\xab\xff", priority=ROUTINE)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.SENT, 60.0)
        (txa,) = await term.wait_for("TXA")
        assert encode_sentence(txa).startswith("$CCTXA,0242407,1,1,01ABFF*")
        assert term.log.transmitted == [b"\x01\xab\xff"]
        assert link.ready_in(ROUTINE) == 60.0
        await clock.advance(60.0)
        assert link.ready_in(ROUTINE) == 0.0
        assert (await link.transmit(b"\x02", priority=ROUTINE)).code is FeedbackCode.SENT
        assert link.stats().sent == 2


async def test_interval_refusal_reports_the_wait_the_terminal_gives(clock: SimClock) -> None:
    """FKI "frequency not reached" with 37 s left → INTERVAL, wait 37 s, and no request is wasted meanwhile."""
    async with running(clock) as (term, link):
        term.script(Answer(Act.INTERVAL, 37))
        feedback = await link.transmit(b"abc", priority=ROUTINE)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.INTERVAL, 37.0)
        assert link.ready_in(ROUTINE) == 37.0
        again = await link.transmit(b"abc", priority=ROUTINE)
        assert (again.code, again.wait_s) == (FeedbackCode.INTERVAL, 37.0)
        assert len(await term.wait_for("TXA")) == 1
        await clock.advance(37.0)
        assert (await link.transmit(b"abc", priority=ROUTINE)).code is FeedbackCode.SENT
        assert link.stats().interval_refusals == 2


async def test_the_terminals_own_interval_is_honoured_after_a_restart(clock: SimClock) -> None:
    """A fresh driver does not know the card's last send; the terminal's refusal teaches it the wait."""
    async with RdssTerminalEmulator(clock=clock) as term:
        for attempt in range(2):
            options = TerminalOptions(recipient=GROUND, fki_timeout_s=FKI_TIMEOUT_S)
            async with RdssTerminalLink(name="bd", connector=SerialPort(term.port), clock=clock, options=options) as rx:
                await clock.advance(15.0)
                feedback = await rx.transmit(b"x", priority=ROUTINE)
                expected = (FeedbackCode.SENT, 60.0) if attempt == 0 else (FeedbackCode.INTERVAL, 45.0)
                assert (feedback.code, feedback.wait_s) == expected


async def test_no_beam_from_the_terminal_reports_an_outage(clock: SimClock) -> None:
    """FKI with transmission suppressed (no signal) → OUTAGE, checked again after the beam interval."""
    async with running(clock, beam_interval_s=10) as (term, link):
        term.script(Answer(Act.NO_BEAM))
        feedback = await link.transmit(b"abc", priority=DISTRESS)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.OUTAGE, 10.0)
        assert link.stats().outage_refusals == 1


async def test_a_beam_report_without_signal_holds_frames_back(clock: SimClock) -> None:
    """With every $BDBSI beam at power 0 nothing is offered (OUTAGE); once a beam returns, frames go."""
    async with running(clock, beams=(0,) * 10, beam_interval_s=10) as (term, link):
        assert link.beams_ok is False
        assert link.ready_in(DISTRESS) == 10.0
        feedback = await link.transmit(b"sos", priority=DISTRESS)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.OUTAGE, 10.0)
        assert not [s for s in term.log.host if s.kind == "TXA"]
        await term.set_beams((0, 0, 3, 0, 0, 0, 0, 0, 0, 0))
        await until(lambda: link.beams_ok is True)
        assert (await link.transmit(b"sos", priority=DISTRESS)).code is FeedbackCode.SENT


async def test_bds3_refusal_reasons_map_to_interval_and_outage(clock: SimClock) -> None:
    """BDS-3 FKI reason 1 → INTERVAL with the remaining seconds; reason 4 (power not locked) → OUTAGE."""
    async with running(clock, card=BDS3, generation="bds3") as (term, link):
        term.script(Answer(Act.INTERVAL, 12), Answer(Act.NO_BEAM))
        first = await link.transmit(b"a", priority=ROUTINE)
        assert (first.code, first.wait_s) == (FeedbackCode.INTERVAL, 12.0)
        await clock.advance(12.0)
        second = await link.transmit(b"a", priority=ROUTINE)
        assert second.code is FeedbackCode.OUTAGE


async def test_an_oversize_frame_is_too_large_without_asking_the_terminal(clock: SimClock) -> None:
    """A frame over the card's cap → TOO_LARGE at once; the terminal never sees it."""
    async with running(clock) as (term, link):
        assert (await link.transmit(bytes(79), priority=DISTRESS)).code is FeedbackCode.TOO_LARGE
        assert (await link.transmit(bytes(78), priority=ROUTINE)).code is FeedbackCode.SENT
        assert len(await term.wait_for("TXA")) == 1
        assert link.stats().too_large == 1


async def test_a_bare_refusal_is_lost(clock: SimClock) -> None:
    """A terminal refusing without a reason (as it does a message over its real cap) → LOST."""
    async with running(clock) as (term, link):
        term.script(Answer(Act.TOO_LONG))
        feedback = await link.transmit(b"abc", priority=ROUTINE)
        assert feedback.code is FeedbackCode.LOST
        assert link.ready_in(ROUTINE) == 0.0


async def test_no_fki_within_the_timeout_is_lost_and_never_hangs(clock: SimClock) -> None:
    """A dropped $BDFKI → LOST after fki_timeout_s; the interval is booked since the terminal may have sent."""
    async with running(clock) as (term, link):
        term.script(Answer(Act.DROP_FKI))
        sending = asyncio.create_task(link.transmit(b"abc", priority=ROUTINE))
        await term.wait_for("TXA")
        await clock.advance(FKI_TIMEOUT_S)
        feedback = await sending
        assert feedback.code is FeedbackCode.LOST
        assert link.ready_in(ROUTINE) == pytest.approx(60.0 - FKI_TIMEOUT_S)
        assert (link.stats().fki_timeouts, link.stats().lost) == (1, 1)


async def test_a_late_fki_is_counted_not_taken_as_the_next_answer(clock: SimClock) -> None:
    """An FKI arriving after its request timed out is counted and ignored; the next request gets its own."""
    async with running(clock) as (term, link):
        term.script(Answer(Act.DROP_FKI), Answer(Act.INTERVAL, 5))
        sending = asyncio.create_task(link.transmit(b"abc", priority=ROUTINE))
        await term.wait_for("TXA")
        await clock.advance(FKI_TIMEOUT_S)
        assert (await sending).code is FeedbackCode.LOST
        await term.send_raw(join("BDFKI", ("TXA", "Y", "Y", "0", "0100")).encode() + b"\r\n")
        await until(lambda: link.stats().late_fki == 1)
        assert link.ready_in(ROUTINE) == 60.0
        await clock.advance(60.0)
        feedback = await link.transmit(b"abc", priority=ROUTINE)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.INTERVAL, 5.0)


# -- distress ---------------------------------------------------------------------------------


async def test_distress_waits_like_the_rest_on_a_card_without_rescue(clock: SimClock) -> None:
    """A BDS-2 card says nothing about rescue, so even with the exemption enabled distress waits its interval."""
    async with running(clock, emergency_exemption=True) as (term, link):
        assert (await link.transmit(b"a", priority=ROUTINE)).code is FeedbackCode.SENT
        assert link.ready_in(DISTRESS) == 60.0
        assert (await link.transmit(b"sos", priority=DISTRESS)).code is FeedbackCode.INTERVAL
        assert len(await term.wait_for("TXA")) == 1


async def test_distress_uses_the_exemption_on_a_rescue_card_and_then_waits_twice(clock: SimClock) -> None:
    """A BDS-3 rescue card with the exemption on offers distress at once; the card then waits 2x its interval."""
    card = EmulatedCard(address="15240507", generation="bds3", level=5, interval_s=60, rescue=True)
    async with running(clock, card=card, generation="bds3", emergency_exemption=True) as (term, link):
        assert (await link.transmit(b"a", priority=ROUTINE)).code is FeedbackCode.SENT
        assert link.ready_in(DISTRESS) == 0.0
        term.script(Answer(Act.SEND))
        sos = await link.transmit(b"sos", priority=DISTRESS)
        assert (sos.code, sos.wait_s) == (FeedbackCode.SENT, 0.0)
        assert link.ready_in(ROUTINE) == 120.0
        assert link.stats().exemptions == 1


async def test_without_the_setting_a_rescue_card_gets_no_exemption(clock: SimClock) -> None:
    """emergency_exemption is off by default: distress waits even on a rescue card."""
    card = EmulatedCard(address="15240507", generation="bds3", level=5, interval_s=60, rescue=True)
    async with running(clock, card=card, generation="bds3") as (_, link):
        await link.transmit(b"a", priority=ROUTINE)
        assert link.ready_in(DISTRESS) == 60.0


# -- receiving and the reader ---------------------------------------------------------------------


async def test_a_received_txr_reaches_the_callback_with_its_bytes(clock: SimClock) -> None:
    """$BDTXR in code mode gives the payload bytes; in mixed mode the GBK bytes and the text."""
    inbox = Inbox()
    async with running(clock, on_message=inbox) as (term, _):
        await term.inject(sender="0242407", payload=b"\x00\x01\xfe\xff")
        await term.inject(sender="0242407", text="北斗 ok")
        first, second = await inbox.wait(2)
        assert (first.sender, first.payload, first.kind) == ("0242407", b"\x00\x01\xfe\xff", "TXR")
        assert (second.payload, second.text) == ("北斗 ok".encode("gbk"), "北斗 ok")


async def test_a_received_tci_reaches_the_callback(clock: SimClock) -> None:
    """A BDS-3 terminal's $BDTCI is decoded the same way."""
    inbox = Inbox()
    async with running(clock, card=BDS3, generation="bds3", on_message=inbox) as (term, _):
        await term.inject(sender="4207733", payload=b"frame")
        (message,) = await inbox.wait(1)
        assert (message.sender, message.payload, message.kind) == ("4207733", b"frame", "TCI")


async def test_a_frame_sent_to_the_own_card_comes_back(clock: SimClock) -> None:
    """Loopback as in the real trace: a frame sent to the card's own address is received as $BDTXR."""
    inbox = Inbox()
    async with running(clock, recipient="0166166", on_message=inbox) as (_, link):
        assert (await link.transmit(b"\x10\x20", priority=ROUTINE)).code is FeedbackCode.SENT
        (message,) = await inbox.wait(1)
        assert (message.sender, message.payload) == ("0166166", b"\x10\x20")


async def test_garbage_from_the_port_is_counted_and_skipped(clock: SimClock) -> None:
    """Junk, a bad checksum, a known sentence with bad fields and an over-long line are counted; reading goes on."""
    inbox = Inbox()
    async with running(clock, on_message=inbox) as (term, link):
        await term.send_raw(b"\xff\xfe\x00 line noise\r\n")
        await term.send_raw(b"$BDTXR,1,0242407,1,,0102*00\r\n")
        await term.send_raw(join("BDFKI", ("TXA", "maybe", "Y", "0", "0040")).encode() + b"\r\n")
        await term.send_raw(b"A" * 20_000 + b"\r\n")
        await term.inject(sender="0242407", payload=b"\x42")
        (message,) = await inbox.wait(1)
        assert message.payload == b"\x42"
        stats = link.stats()
        assert (stats.garbled, stats.bad_checksum, stats.received) == (3, 1, 1)
        assert all(not task.done() for task in link.tasks)


async def test_a_failing_handler_is_counted_and_reading_goes_on(clock: SimClock) -> None:
    """An exception in on_message is logged and counted; later messages still arrive."""
    seen: list[bytes] = []

    def handler(message: Received) -> None:
        seen.append(message.payload)
        if len(seen) == 1:
            raise RuntimeError("boom")

    async with running(clock, on_message=handler) as (term, link):
        await term.inject(sender="0242407", payload=b"\x01")
        await term.inject(sender="0242407", payload=b"\x02")
        await until(lambda: len(seen) == 2)
        assert link.stats().handler_errors == 1


async def test_received_payloads_go_to_the_sink_when_one_is_given(clock: SimClock) -> None:
    """With a sink (a receiving station), received payloads are handed to the ground under the link's name."""
    sink = RecordingSink()
    async with running(clock, sink=sink) as (term, link):
        await term.inject(sender="0242407", payload=b"frame")
        await asyncio.wait_for(sink.arrived.wait(), 2)
        assert sink.frames == [(b"frame", "bd")]
        assert sorted(t.get_name() for t in link.tasks) == ["satgw.rdss[bd].deliver", "satgw.rdss[bd].reader"]


async def test_a_lost_port_turns_into_outages(clock: SimClock) -> None:
    """When the terminal goes away the reader stops cleanly; transmit answers OUTAGE and never hangs."""
    async with running(clock) as (term, link):
        await term.__aexit__(None, None, None)
        await until(lambda: link.tasks[0].done())
        feedback = await link.transmit(b"abc", priority=ROUTINE)
        assert feedback.code is FeedbackCode.OUTAGE
        assert link.ready_in(ROUTINE) == 60.0


async def test_any_stream_pair_can_stand_for_the_port(clock: SimClock) -> None:
    """StreamPair hands the driver streams opened elsewhere; it works as over its own port."""
    async with RdssTerminalEmulator(clock=clock) as term:
        reader, writer = await serial_asyncio.open_serial_connection(url=term.port, baudrate=9600)
        options = TerminalOptions(recipient=GROUND)
        async with RdssTerminalLink(
            name="bd", connector=StreamPair(reader, writer), clock=clock, options=options
        ) as rx:
            assert rx.mtu == 78
            assert (await rx.transmit(b"x", priority=ROUTINE)).code is FeedbackCode.SENT


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"recipient": "02424O7"}, "recipient"),
        ({"recipient": "123456789012"}, "recipient"),
        ({"generation": "bds4"}, "generation"),
        ({"fki_timeout_s": 0}, "fki_timeout_s"),
        ({"query_timeout_s": float("nan")}, "query_timeout_s"),
        ({"beam_interval_s": 0}, "beam_interval_s"),
        ({"max_frame_bytes": 0}, "max_frame_bytes"),
        ({"bds3_bits": 4}, "bds3_bits"),
        ({"emergency_exemption": "yes"}, "emergency_exemption"),
        ({"frequency_point": 6}, "frequency_point"),
    ],
)
def test_options_are_validated_at_once(change: dict[str, Any], message: str) -> None:
    """Every option is checked on construction, and the error names it."""
    with pytest.raises(ValueError, match=message):
        TerminalOptions(**({"recipient": GROUND} | change))


def test_the_profile_validates_and_builds_an_unopened_link(clock: SimClock) -> None:
    """The TOML profile checks the port settings and builds a link that hands the sink only received frames."""
    with pytest.raises(ValueError, match="port"):
        RdssSerialProfile(name="bd", port="", recipient=GROUND)
    with pytest.raises(ValueError, match="baudrate"):
        RdssSerialProfile(name="bd", port="/dev/ttyUSB0", recipient=GROUND, baudrate=0)
    profile = RdssSerialProfile(name="bd", port="/dev/ttyUSB0", recipient=GROUND, fki_timeout_s=2.0)
    link = profile.build(sink=RecordingSink(), clock=clock)
    as_link: Link = link
    assert as_link.name == "bd"
    assert (link.name, profile.options().fki_timeout_s) == ("bd", 2.0)
    assert link._sink is None
    assert profile.build(sink=RecordingSink(), clock=clock) is not link
    receiving = RdssSerialProfile(name="rx", port="/dev/ttyUSB1", recipient=GROUND, deliver_received=True)
    assert receiving.build(sink=RecordingSink(), clock=clock)._sink is not None
    assert {"port", "baudrate", "recipient", "fki_timeout_s", "generation"} <= RDSS_SERIAL_KEYS
    assert "name" not in RDSS_SERIAL_KEYS


@pytest.mark.parametrize(
    ("line", "code", "wait"),
    [
        ("$BDFKI,TXA,Y,Y,0,0040*17", FeedbackCode.SENT, 40),
        ("$BDFKI,TXA,N,Y,0,0000*04", FeedbackCode.LOST, 0),
        (join("BDFKI", ("TXA", "N", "N", "0", "0037")), FeedbackCode.INTERVAL, 37),
        (join("BDFKI", ("TXA", "N", "Y", "3", "0000")), FeedbackCode.OUTAGE, 0),
        (join("BDFKI", ("TXA", "N", "Y", "2", "0000")), FeedbackCode.OUTAGE, 0),
        ("$BDFKI,082920,TCQ,Y,0,0*70", FeedbackCode.SENT, 0),
        (join("BDFKI", ("082920", "TCQ", "N", "1", "25")), FeedbackCode.INTERVAL, 25),
        (join("BDFKI", ("082920", "TCQ", "N", "2", "0")), FeedbackCode.OUTAGE, 0),
        (join("BDFKI", ("082920", "TCQ", "N", "4", "0")), FeedbackCode.OUTAGE, 0),
        (join("BDFKI", ("082920", "TCQ", "N", "6", "0")), FeedbackCode.LOST, 0),
    ],
)
def test_fki_maps_to_feedback(line: str, code: FeedbackCode, wait: int) -> None:
    """Both FKI forms map to the link's codes: sent, interval with its wait, suppression as outage, else lost."""
    fki = decode_sentence(line)
    assert isinstance(fki, Fki | Fki3)
    result = verdict(fki)
    assert (result.code, result.wait_s) == (code, wait)


def test_received_content_becomes_bytes() -> None:
    """Code content is hex (odd digits padded), mixed drops its A4 marker, 2.1 Chinese gives GB2312 bytes."""
    assert payload_from_content(Form.CODE, "3132333") == b"\x31\x32\x33\x30"
    assert payload_from_content(Form.MIXED, "A4B1B1B6B7") == "北斗".encode("gb2312")
    assert payload_from_content(Form.CHINESE, "北斗") == "北斗".encode("gb2312")
    assert payload_from_content(Form.CHINESE, "B1B1B6B7") == "北斗".encode("gb2312")


async def test_an_interval_refusal_without_a_wait_books_the_cards_interval(clock: SimClock) -> None:
    """ "Frequency not reached" with no wait given → INTERVAL for the card's interval, not an immediate retry."""
    async with running(clock) as (term, link):
        term.script(Answer(Act.INTERVAL, 0))
        feedback = await link.transmit(b"abc", priority=ROUTINE)
        assert (feedback.code, feedback.wait_s) == (FeedbackCode.INTERVAL, 60.0)
