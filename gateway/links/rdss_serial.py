"""A link over a real BeiDou RDSS terminal on a serial port (NMEA-style "2.1" and BDS-3 sentences).

Lifecycle (``async with RdssTerminalLink(...) as link``): open the port, start the named
reader task, query the card (``$CCICA`` → ``$BDICI`` on BDS-2, ``$CCICR`` → ``$BDICP``
on BDS-3; ``generation="auto"`` tries BDS-2 first), derive the MTU from the card's cap in
bits, then check the beams (``$CCRMO,BSI,2,n`` → ``$BDBSI``; BDS-3 terminals send
``$BDPWI`` every second unasked).

What ``SENT`` means here: the terminal's ``$BDFKI`` says it transmitted. That is local
feedback (domain.md §1.7), not delivery: the far side is the real satellite and centre,
and the ground side of a deployment receives through them, not through this process. So
a sent frame is *not* handed to a :class:`~gateway.links.base.FrameSink`. The optional
sink instead takes the frames this terminal *receives* (``$BDTXR``/``$BDTCI``), for a
gateway whose terminal is the receiving end.

Rules the driver keeps:

* One request at a time; each waits at most ``fki_timeout_s`` on the link's clock for its
  ``$BDFKI``. No answer → ``LOST``, and the card's interval is assumed to run (it may have sent).
* Oversize frames are refused (``TOO_LARGE``) before the terminal is asked: no FKI form
  has a "too long" reason. Frames go in code mode, two hex digits a byte.
* The interval is booked from the card's service frequency and refined by each FKI's wait;
  a send the booking forbids is refused locally (``INTERVAL``) rather than wasted.
* With no usable beam in the latest report, nothing is sent (``OUTAGE``). No report at all
  is not held against the terminal: its FKI will say.
* **Distress and the emergency exemption.** domain.md §1.3 documents the exemption for
  emergency *positioning*; for messages it is not documented. So distress waits like any
  class, unless ``emergency_exemption`` is set *and* the card says it may do rescue (the
  BDS-3 ``$BDICP`` rescue flag; BDS-2 cards never say so). Then a distress frame is offered
  to the terminal despite the booking, the terminal's FKI has the last word, and a send
  made that way books 2x the interval.
* A line that does not decode, or fails its checksum, is logged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import serial_asyncio  # type: ignore[import-untyped]

from gateway.exceptions import LinkError
from gateway.links.base import Clock, Feedback, FeedbackCode, FrameSink
from gateway.links.rdss_card import (
    BDS3_RSMC_BITS,
    Card,
    Verdict,
    beams_usable,
    card_from_ici,
    card_from_icp,
    payload_from_content,
    verdict,
)
from gateway.links.timeline import Span, SpanKind, busy_spans, ordered
from protocols.envelope import Priority
from protocols.errors import DecodeError
from protocols.rdss import (
    Bds3Encoding,
    Bsi,
    Fki,
    Fki3,
    Ica,
    Ici,
    Icp,
    Icr,
    Pwi,
    Rmo,
    RmoMode,
    Sentence,
    Tci,
    Tcq,
    TextMode,
    Txa,
    Txr,
    decode_bytes,
    to_wire,
)
from protocols.rdss.text import Form

__all__ = [
    "RDSS_SERIAL_KEYS",
    "Connector",
    "MessageHandler",
    "RdssSerialProfile",
    "RdssStats",
    "RdssTerminalLink",
    "Received",
    "SerialPort",
    "StreamPair",
    "TerminalOptions",
]

_GENERATIONS = ("auto", "bds2", "bds3")
_EXEMPTION_FACTOR = 2
_PORT_LOST_WAIT_S = 60.0
"""What ready_in answers once the port is gone: there is no reconnection, so check back rarely."""
_READ_LIMIT = 16_384
"""Longest line the reader buffers: twice the longest sentence the codec accepts."""
_log = logging.getLogger("satgw.links.rdss")
T = TypeVar("T")


class Connector(Protocol):
    """Opens the byte stream to the terminal."""

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Return a reader and a writer on the terminal's port."""
        ...


@dataclass(frozen=True, slots=True)
class SerialPort:
    """A serial device opened with pyserial-asyncio (8N1, no flow control)."""

    port: str
    baudrate: int = 115_200

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the device; OSError (pyserial's SerialException is one) if it cannot be opened."""
        loop = asyncio.get_running_loop()
        pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] = await serial_asyncio.open_serial_connection(
            loop=loop, limit=_READ_LIMIT, url=self.port, baudrate=self.baudrate
        )
        return pair


@dataclass(frozen=True, slots=True)
class StreamPair:
    """Streams someone else opened (a test's pipe, a TCP serial server); handed over as they are."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Return the streams."""
        return self.reader, self.writer


@dataclass(frozen=True, slots=True)
class Received:
    """A message the terminal received (``$BDTXR`` or ``$BDTCI``)."""

    sender: str
    payload: bytes
    """The content's bytes (see :func:`gateway.links.rdss_card.payload_from_content`)."""
    form: Form
    text: str | None
    """The text, when the content is text (Chinese, mixed, or code digits)."""
    time: str
    """The send time as the terminal wrote it (``hhmm``, ``hhmmss``, or empty)."""
    kind: str
    """``TXR`` or ``TCI``."""


MessageHandler = Callable[[Received], None]
"""Called in the reader task with every received message; it must not block (queue the work instead)."""


@dataclass(frozen=True, slots=True)
class RdssStats:
    """A snapshot of the driver's counters since it was built."""

    sent: int = 0
    interval_refusals: int = 0
    outage_refusals: int = 0
    too_large: int = 0
    lost: int = 0
    fki_timeouts: int = 0
    late_fki: int = 0
    """FKIs that came when no request waited (after a timeout, or for a command sent by someone else)."""
    exemptions: int = 0
    received: int = 0
    garbled: int = 0
    """Lines that were not sentences, or sentences with a bad field."""
    bad_checksum: int = 0
    handler_errors: int = 0


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalOptions:
    """How the driver talks to the terminal; validated on construction (ValueError naming the setting)."""

    recipient: str
    """Address (BDS-2, up to 7 digits) or card number (BDS-3) that every frame is sent to: the ground's card."""
    generation: str = "auto"
    """``bds2`` ($CCTXA), ``bds3`` ($CCTCQ), or ``auto``: whichever card query the terminal answers."""
    fki_timeout_s: float = 3.0
    """How long a request waits for its $BDFKI (the documented BDS-3 flow uses 2 s)."""
    query_timeout_s: float = 2.0
    """How long the card query and the first beam report are waited for at start."""
    beam_interval_s: int = 10
    """$BDBSI output interval asked of a BDS-2 terminal; also the wait reported while no beam is usable."""
    min_beam_power: int = 1
    """Least $BDBSI beam power counted as usable (terminals report 0-4)."""
    max_frame_bytes: int | None = None
    """Lower the card's cap, bytes (say, to keep a margin); None uses the card's."""
    bds3_bits: int = BDS3_RSMC_BITS
    """Cap of a BDS-3 card, bits: what its length level means is not documented (domain.md §7)."""
    emergency_exemption: bool = False
    """Offer distress despite the interval when the card says it may do rescue (see the module docstring)."""
    frequency_point: int = 2
    """BDS-3 $CCTCQ frequency point, 1-5."""

    def __post_init__(self) -> None:
        if not isinstance(self.recipient, str) or not self.recipient.isascii() or not self.recipient.isdigit():
            raise ValueError(f"recipient must be the digits of a user address or card number, got {self.recipient!r}")
        if len(self.recipient) > 11:
            raise ValueError(f"recipient has at most 11 digits, got {len(self.recipient)}")
        if self.generation not in _GENERATIONS:
            raise ValueError(f"generation must be one of {', '.join(_GENERATIONS)}, got {self.generation!r}")
        _check_positive("fki_timeout_s", self.fki_timeout_s)
        _check_positive("query_timeout_s", self.query_timeout_s)
        _check_int("beam_interval_s", self.beam_interval_s, 1)
        _check_int("min_beam_power", self.min_beam_power, 0)
        if self.max_frame_bytes is not None:
            _check_int("max_frame_bytes", self.max_frame_bytes, 1)
        _check_int("bds3_bits", self.bds3_bits, 8)
        if not isinstance(self.emergency_exemption, bool):
            raise ValueError(f"emergency_exemption must be true or false, got {self.emergency_exemption!r}")
        _check_int("frequency_point", self.frequency_point, 1)
        if self.frequency_point > 5:
            raise ValueError(f"frequency_point must be 1 to 5, got {self.frequency_point}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RdssSerialProfile(TerminalOptions):
    """The settings of a ``type = "rdss-serial"`` link (a real terminal on a serial port), as data for config."""

    name: str
    port: str
    baudrate: int = 115_200
    deliver_received: bool = False
    """Hand the payloads this terminal receives to the gateway's ground segment (a receiving station)."""
    interval_s: float | None = None
    """The card's service interval if known beforehand, for the capacity ceilings; the card's own figure rules."""

    def __post_init__(self) -> None:
        TerminalOptions.__post_init__(self)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        if not isinstance(self.port, str) or not self.port:
            raise ValueError("port must name a serial device, e.g. /dev/ttyUSB0")
        _check_int("baudrate", self.baudrate, 1)
        if not isinstance(self.deliver_received, bool):
            raise ValueError(f"deliver_received must be true or false, got {self.deliver_received!r}")
        if self.interval_s is not None:
            _check_positive("interval_s", self.interval_s)

    def options(self) -> TerminalOptions:
        """The driver options among these settings."""
        return TerminalOptions(**{f.name: getattr(self, f.name) for f in fields(TerminalOptions)})

    def build(self, *, sink: FrameSink, clock: Clock, rng: random.Random | None = None) -> RdssTerminalLink:
        """Return the (unopened) link; ``sink`` is used only with ``deliver_received``; ``rng`` is unused."""
        return RdssTerminalLink(
            name=self.name,
            connector=SerialPort(self.port, self.baudrate),
            clock=clock,
            options=self.options(),
            sink=sink if self.deliver_received else None,
        )


RDSS_SERIAL_KEYS = frozenset(f.name for f in fields(RdssSerialProfile)) - {"name"}
"""The TOML keys a ``type = "rdss-serial"`` link table may hold besides ``type`` and ``name``."""


class RdssTerminalLink:
    """A :class:`~gateway.links.base.Link` over one real BeiDou terminal; use it as an async context manager."""

    def __init__(
        self,
        *,
        name: str,
        connector: Connector,
        clock: Clock,
        options: TerminalOptions,
        sink: FrameSink | None = None,
        on_message: MessageHandler | None = None,
    ) -> None:
        """Describe the link; nothing is opened until ``async with``.

        Args:
            name: unique link name (logs, task names, ``sink.receive(link=...)``).
            connector: opens the port (:class:`SerialPort`, or :class:`StreamPair` for given streams).
            clock: whose time the FKI and query time-outs and the interval booking run on.
            options: how to talk to the terminal.
            sink: takes the payloads of received messages, if given.
            on_message: called with every received message, if given.

        Raises:
            ValueError: an argument is of the wrong kind.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        if not callable(getattr(connector, "open", None)):
            raise ValueError("connector must have an async open() returning (reader, writer)")
        if not isinstance(options, TerminalOptions):
            raise ValueError(f"options must be TerminalOptions, got {type(options).__name__}")
        if on_message is not None and not callable(on_message):
            raise ValueError("on_message must be callable")
        self._name, self._connector, self._clock, self._options = name, connector, clock, options
        self._sink, self._on_message = sink, on_message
        self._card: Card | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting: dict[str, asyncio.Future[Sentence | None]] = {}
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._free_at = -math.inf
        self._beams_ok: bool | None = None
        self._port_lost = False
        self._stats = RdssStats()

    # -- the Link protocol -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The link's unique name."""
        return self._name

    @property
    def mtu(self) -> int:
        """The largest frame one transmission carries: the card's cap in code mode, or the configured lower one.

        Raises:
            LinkError: the link is not open, so the card is unknown.
        """
        cap = self.card.max_frame_bytes
        limit = self._options.max_frame_bytes
        return cap if limit is None else min(cap, limit)

    def ready_in(self, priority: Priority) -> float:
        """Seconds until a frame of ``priority`` may be offered: the beam wait, then the interval booking."""
        if self._port_lost or self._card is None:
            return _PORT_LOST_WAIT_S
        beam_wait = 0.0 if self._beams_ok is not False else float(self._options.beam_interval_s)
        if self._exempt(priority):
            return beam_wait
        return max(beam_wait, self._free_at - self._clock.now(), 0.0)

    def timeline(self, start: float, end: float) -> list[Span]:
        """What the terminal has told: the beams of its latest report (good or bad until the next one is due),
        a lost port, and the card's interval booking. Nothing is known of outages ahead."""
        now = self._clock.now()
        spans = busy_spans([self._free_at], start, end, now=now, label="card")
        state = self._signal_now(now)
        if state is not None and state.overlaps(start, end):
            spans.append(state)
        return ordered(spans)

    def _signal_now(self, now: float) -> Span | None:
        """The beam or port state from now until it is next reported, or None with no report yet."""
        if self._port_lost or self._card is None:
            why = "port lost" if self._port_lost else "not open"
            return Span(kind="outage", start=now, end=now + _PORT_LOST_WAIT_S, label=why)
        if self._beams_ok is None:
            return None
        kind: SpanKind = "in_view" if self._beams_ok else "outage"
        label = "beam usable" if self._beams_ok else "no usable beam"
        return Span(kind=kind, start=now, end=now + self._options.beam_interval_s, label=label)

    async def transmit(self, frame: bytes, *, priority: Priority) -> Feedback:
        """Offer ``frame`` to the terminal and return what its ``$BDFKI`` says (``SENT``: the terminal sent it).

        Raises:
            LinkError: the link is not open.
        """
        if self._writer is None:
            raise LinkError(self._name, "not open: use the link as an async context manager")
        if len(frame) > self.mtu:
            self._count(too_large=1)
            return Feedback(FeedbackCode.TOO_LARGE)
        async with self._lock:
            refusal = self._refusal(priority)
            if refusal is not None:
                return refusal
            sent_at = self._clock.now()
            exempted = self._free_at > sent_at  # offered early: only distress on a rescue card gets here
            fki = await self._request(self._send_request(frame), "FKI", self._options.fki_timeout_s)
            if not isinstance(fki, Fki | Fki3):
                return self._no_feedback(sent_at, priority)
            return self._feedback(verdict(fki), priority, exempt=exempted)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._writer is not None or self._tasks:
            raise RuntimeError(f"link {self._name} is already open")
        reader, self._writer = await self._connector.open()
        self._spawn(self._read_forever(reader), "reader")
        if self._sink is not None:
            self._spawn(self._deliver_forever(self._sink), "deliver")
        try:
            self._card = await self._query_card()
            await self._check_beams()
        except BaseException:
            await self.aclose()
            raise
        _log.info(
            "link %s: %s card %s, level %d, %d s interval, mtu %d",
            self._name,
            self._card.generation,
            self._card.address,
            self._card.level,
            self._card.interval_s,
            self.mtu,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background tasks and close the port (idempotent)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._fail_waiters()

    # -- state -------------------------------------------------------------------------------------

    @property
    def card(self) -> Card:
        """The card the terminal reported at open.

        Raises:
            LinkError: the link is not open.
        """
        if self._card is None:
            raise LinkError(self._name, "not open: the terminal's card has not been queried")
        return self._card

    @property
    def beams_ok(self) -> bool | None:
        """Whether the latest beam report shows a usable beam (None: no report yet)."""
        return self._beams_ok

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The link's running background tasks (reader, delivery)."""
        return tuple(self._tasks)

    def stats(self) -> RdssStats:
        """Return a snapshot of the counters."""
        return self._stats

    # -- transmission ------------------------------------------------------------------------------

    def _exempt(self, priority: Priority) -> bool:
        card = self._card
        return priority is Priority.DISTRESS and self._options.emergency_exemption and card is not None and card.rescue

    def _refusal(self, priority: Priority) -> Feedback | None:
        """Why the frame cannot be offered now (lost port, no beam, interval), or None if it can."""
        if self._port_lost:
            self._count(outage_refusals=1)
            return Feedback(FeedbackCode.OUTAGE, wait_s=self.ready_in(priority))
        if self._beams_ok is False:
            self._count(outage_refusals=1)
            return Feedback(FeedbackCode.OUTAGE, wait_s=self.ready_in(priority))
        if not self._exempt(priority) and self._free_at > self._clock.now():
            self._count(interval_refusals=1)
            return Feedback(FeedbackCode.INTERVAL, wait_s=self.ready_in(priority))
        return None

    def _send_request(self, frame: bytes) -> Sentence:
        content, card = frame.hex().upper(), self.card
        if card.generation == "bds3":
            return Tcq(
                target=self._options.recipient,
                frequency_point=self._options.frequency_point,
                confirm=False,
                encoding=Bds3Encoding.CODE,
                content=content,
                send_frequency_s=0,
            )
        return Txa.from_text(recipient=self._options.recipient, text=content, mode=TextMode.CODE)

    def _feedback(self, result: Verdict, priority: Priority, *, exempt: bool) -> Feedback:
        now, interval = self._clock.now(), self.card.interval_s
        if result.transmitted:
            booked = _EXEMPTION_FACTOR * interval if exempt else interval
            self._free_at = now + max(result.wait_s, booked)
            self._count(sent=1, exemptions=int(exempt))
            return Feedback(FeedbackCode.SENT, wait_s=self.ready_in(priority))
        if result.code is FeedbackCode.INTERVAL:
            # A refusal without a wait would have the relay retry at once; the card's interval is the safe guess.
            self._free_at = max(self._free_at, now + (result.wait_s or interval))
            self._count(interval_refusals=1)
            return Feedback(FeedbackCode.INTERVAL, wait_s=max(float(result.wait_s), self.ready_in(priority)))
        if result.code is FeedbackCode.OUTAGE:
            self._count(outage_refusals=1)
            wait = result.wait_s or self._options.beam_interval_s
            return Feedback(FeedbackCode.OUTAGE, wait_s=max(float(wait), self.ready_in(priority)))
        self._count(lost=1)
        return Feedback(FeedbackCode.LOST, wait_s=self.ready_in(priority))

    def _no_feedback(self, sent_at: float, priority: Priority) -> Feedback:
        """No FKI came: report LOST, and book the interval, since the terminal may have sent."""
        if not self._port_lost:
            self._count(fki_timeouts=1)
            _log.warning(
                "link %s: no $BDFKI within %g s; reporting the frame lost", self._name, self._options.fki_timeout_s
            )
        self._free_at = max(self._free_at, sent_at + self.card.interval_s)
        self._count(lost=1)
        return Feedback(FeedbackCode.LOST, wait_s=self.ready_in(priority))

    # -- requests and answers ----------------------------------------------------------------------

    async def _request(self, sentence: Sentence, answer: str, timeout_s: float) -> Sentence | None:
        """Write ``sentence`` and return the first ``answer`` sentence within ``timeout_s``, else None."""
        future: asyncio.Future[Sentence | None] = asyncio.get_running_loop().create_future()
        self._waiting[answer] = future
        try:
            if not await self._write(sentence):
                return None
            return await self._wait(future, timeout_s)
        finally:
            if self._waiting.get(answer) is future:
                del self._waiting[answer]

    async def _await_unasked(self, answer: str, timeout_s: float) -> Sentence | None:
        future: asyncio.Future[Sentence | None] = asyncio.get_running_loop().create_future()
        self._waiting[answer] = future
        try:
            return await self._wait(future, timeout_s)
        finally:
            if self._waiting.get(answer) is future:
                del self._waiting[answer]

    async def _wait(self, future: asyncio.Future[T | None], timeout_s: float) -> T | None:
        """Return the future's result, or None once ``timeout_s`` of the link's clock passed first."""
        timer = self._spawn(self._clock.sleep(timeout_s), "timeout", keep=False)
        try:
            either: set[asyncio.Future[Any]] = {future, timer}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return future.result() if future.done() else None

    async def _write(self, sentence: Sentence) -> bool:
        writer = self._writer
        if writer is None or self._port_lost:
            return False
        try:
            writer.write(to_wire(sentence))
            await writer.drain()
        except (OSError, ConnectionError) as exc:
            self._lose_port(f"write failed: {exc}")
            return False
        return True

    async def _query_card(self) -> Card:
        timeout, generation = self._options.query_timeout_s, self._options.generation
        if generation in ("auto", "bds2"):
            ici = await self._request(Ica(query_type=0, frame="00"), "ICI", timeout)
            if isinstance(ici, Ici):
                return self._card_or_error(lambda: card_from_ici(ici))
        if generation in ("auto", "bds3"):
            icp = await self._request(Icr(query_type=0, frame="00"), "ICP", timeout)
            if isinstance(icp, Icp):
                return self._card_or_error(lambda: card_from_icp(icp, bits=self._options.bds3_bits))
        asked = {"auto": "$CCICA nor $CCICR", "bds2": "$CCICA", "bds3": "$CCICR"}[generation]
        raise LinkError(self._name, f"the terminal did not answer {asked} within {timeout:g} s")

    def _card_or_error(self, make: Callable[[], Card]) -> Card:
        try:
            return make()
        except ValueError as exc:
            raise LinkError(self._name, str(exc)) from None

    async def _check_beams(self) -> None:
        timeout = self._options.query_timeout_s
        if self.card.generation == "bds2":
            rmo = Rmo(sentence="BSI", mode=RmoMode.ON, frequency_s=self._options.beam_interval_s)
            report = await self._request(rmo, "BSI", timeout)
        elif self._beams_ok is None:  # the PWI of this second may have come with the card info already
            report = await self._await_unasked("PWI", timeout)
        else:
            return
        if report is None and self._beams_ok is None:
            _log.warning("link %s: no beam report within %g s; the terminal's FKI will tell", self._name, timeout)

    # -- the reader ------------------------------------------------------------------------------

    async def _read_forever(self, reader: asyncio.StreamReader) -> None:
        in_long_line = False  # the rest of a line already counted as too long is still to come
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                await reader.readexactly(exc.consumed)  # drop what is buffered; the rest of the line follows
                if not in_long_line:
                    self._garbled("a line longer than the read buffer")
                in_long_line = True
                continue
            except asyncio.IncompleteReadError:
                self._lose_port("the port was closed (end of stream)")
                return
            except (OSError, ConnectionError) as exc:
                self._lose_port(f"read failed: {exc}")
                return
            if in_long_line:
                in_long_line = False
            elif line.strip(b" \r\n"):
                self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        try:
            sentence = decode_bytes(line)
        except DecodeError as exc:
            self._garbled(f"{exc}: {line[:80]!r}")
            return
        if not sentence.checksum_ok:
            self._count(bad_checksum=1)
            _log.warning("link %s: bad checksum, skipped: %r", self._name, line[:80])
            return
        self._dispatch(sentence)

    def _dispatch(self, sentence: Sentence) -> None:
        if isinstance(sentence, Bsi | Pwi):
            self._beams_ok = beams_usable(sentence, min_power=self._options.min_beam_power)
        if isinstance(sentence, Txr | Tci):
            self._received(sentence)
            return
        future = self._waiting.get(sentence.kind)
        if future is not None and not future.done() and self._answers(sentence):
            future.set_result(sentence)
        elif isinstance(sentence, Fki | Fki3):
            self._late_fki(sentence)

    def _answers(self, sentence: Sentence) -> bool:
        """An FKI answers only the command this driver sent; other answers need no check."""
        if isinstance(sentence, Fki | Fki3):
            return sentence.command == ("TCQ" if self.card.generation == "bds3" else "TXA")
        return True

    def _late_fki(self, fki: Fki | Fki3) -> None:
        self._count(late_fki=1)
        result = verdict(fki)
        if result.transmitted and self._card is not None:
            # A send we reported lost may have gone after all; at least keep the interval right.
            self._free_at = max(self._free_at, self._clock.now() + max(result.wait_s, self._card.interval_s))
        _log.warning("link %s: $BDFKI with no request waiting (%s): %s", self._name, fki.command, result.code.value)

    def _received(self, message: Txr | Tci) -> None:
        form = message.mode.form if isinstance(message, Txr) else message.encoding.form
        time = message.send_time if isinstance(message, Txr) else message.time
        try:
            payload = payload_from_content(form, message.content)
        except (ValueError, UnicodeEncodeError):
            self._garbled(f"{message.kind} content that carries no bytes")
            return
        self._count(received=1)
        received = Received(message.sender, payload, form, message.text, time, message.kind)
        if self._sink is not None:
            self._inbox.put_nowait(payload)
        if self._on_message is not None:
            try:
                self._on_message(received)
            except Exception:
                self._count(handler_errors=1)
                _log.exception("link %s: the message handler failed", self._name)

    async def _deliver_forever(self, sink: FrameSink) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                await sink.receive(payload, link=self._name)
            except Exception:
                self._count(handler_errors=1)
                _log.exception("link %s: the ground segment refused a received message", self._name)

    # -- helpers -----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], role: str, *, keep: bool = True) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"satgw.rdss[{self._name}].{role}")
        if keep:
            self._tasks.append(task)
        return task

    def _garbled(self, what: str) -> None:
        self._count(garbled=1)
        _log.warning("link %s: skipped a line that does not decode: %s", self._name, what)

    def _lose_port(self, why: str) -> None:
        if not self._port_lost:
            _log.error("link %s: %s; the link stays down until restarted", self._name, why)
        self._port_lost = True
        self._fail_waiters()

    def _fail_waiters(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)

    def _count(self, **increments: int) -> None:
        self._stats = replace(self._stats, **{k: getattr(self._stats, k) + n for k, n in increments.items()})
