"""An emulated BeiDou RDSS terminal on a pseudo-terminal, for testing the serial driver without hardware.

``async with RdssTerminalEmulator(card=EmulatedCard(...)) as term`` opens a pty pair
(``os.openpty()``); the driver opens ``term.port`` (the slave, e.g. ``/dev/pts/5``) as it
would a real serial device, and the emulator speaks the sentences of ``protocols/rdss`` on
the master side:

* card query: ``$CCICA`` → ``$BDICI`` (a BDS-2 card) or ``$CCICR`` → ``$BDICP`` (BDS-3);
  a card of one generation ignores the other's query, as a real terminal would;
* beams: ``$CCRMO,BSI,2,n`` → ``$BDBSI`` at once and every ``n`` s; a BDS-3 card sends
  ``$BDPWI`` after its ``$BDICP``, whenever the beams change, and every second;
* send: ``$CCTXA`` / ``$CCTCQ`` → ``$BDFKI``. Scripted answers (:meth:`script`) come
  first; otherwise the card behaves: no beam → suppressed / power not locked, longer than
  the card's cap → a bare refusal, interval not over → "frequency not reached" with the
  remaining seconds, else sent (and looped back as ``$BDTXR`` when sent to itself);
* inbound messages (:meth:`inject`) and raw bytes (:meth:`send_raw`, for garbage).

Timers (intervals, periodic reports) run on the given clock, so tests can use a SimClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import os
import time
import tty
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from gateway.links.base import Clock
from gateway.links.clock import RealClock
from gateway.links.rdss_card import BDS3_RSMC_BITS, bds2_bits
from protocols.errors import DecodeError
from protocols.rdss import (
    Bds3Encoding,
    Bsi,
    Fki,
    Fki3,
    FkiReason,
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
    decode_bytes,
    to_wire,
)
from protocols.rdss.text import message_bits

__all__ = ["Act", "Answer", "EmulatedCard", "RdssTerminalEmulator"]


class Act(enum.Enum):
    """What the terminal does with one send request."""

    SEND = "send"
    INTERVAL = "interval"
    """Refuse: the service interval has not passed (with the remaining seconds)."""
    NO_BEAM = "no_beam"
    """Refuse: no signal (BDS-2: transmission suppressed; BDS-3: power not locked)."""
    TOO_LONG = "too_long"
    """Refuse without a reason, as a terminal does with a message over the card's cap."""
    DROP_FKI = "drop_fki"
    """Answer nothing at all."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A scripted answer to the next send request."""

    act: Act
    wait_s: int = 0
    """The wait the FKI reports (for SEND: 0 means the card's interval on BDS-2, as real terminals write it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedCard:
    """The card in the emulated terminal."""

    address: str = "0166166"
    generation: str = "bds2"
    level: int = 3
    interval_s: int = 60
    encrypted: bool = False
    rescue: bool = False
    bds3_bits: int = BDS3_RSMC_BITS

    def __post_init__(self) -> None:
        if self.generation not in ("bds2", "bds3"):
            raise ValueError(f"generation must be bds2 or bds3, got {self.generation!r}")
        if self.generation == "bds2":
            bds2_bits(self.level, encrypted=self.encrypted)

    @property
    def bits(self) -> int:
        """The card's message cap on the air."""
        return bds2_bits(self.level, encrypted=self.encrypted) if self.generation == "bds2" else self.bds3_bits

    def info(self) -> Ici | Icp:
        """The card-information sentence of this card."""
        if self.generation == "bds2":
            return Ici(
                address=self.address,
                serial="02097151",
                broadcast_id="0000011",
                user_feature=6,
                frequency_s=self.interval_s,
                level=self.level,
                encrypted=self.encrypted,
                subordinates="000",
            )
        flags = ("YN"[not self.encrypted], "1", "YN"[not self.rescue], "1", "0", "0", "3", "1")
        tail = (str(self.interval_s), str(self.level % 5), "1", "1", "2", "2", "500", "100", "10", "10")
        wire = (self.address, "2032472", "1", "3", "0", *flags, *tail)
        return Icp.from_fields("BD", wire, True)


@dataclass
class _Log:
    """What the emulator saw and did."""

    host: list[Sentence] = field(default_factory=list)
    """Every sentence the host sent, in order."""
    transmitted: list[bytes] = field(default_factory=list)
    """The content of every message the terminal transmitted (code mode: the bytes; else the wire text)."""
    garbage: int = 0


class RdssTerminalEmulator:
    """A BeiDou terminal on the master side of a pty; see the module docstring."""

    def __init__(
        self, *, card: EmulatedCard | None = None, clock: Clock | None = None, beams: tuple[int, ...] = (4,) * 10
    ) -> None:
        """Describe the terminal; the pty is opened by ``async with``.

        Args:
            card: the card it holds (default: a BDS-2 level-3 card with a 60 s interval).
            clock: whose time intervals and periodic reports run on (default: real time).
            beams: the power of each beam (0-4); all zero means no signal.

        Raises:
            ValueError: an impossible card or beam list.
        """
        if not isinstance(beams, tuple) or not all(isinstance(p, int) and 0 <= p <= 4 for p in beams):
            raise ValueError(f"beams must be a tuple of powers 0-4, got {beams!r}")
        self.card = card or EmulatedCard()
        self._clock = clock or RealClock()
        self._beams = beams
        self._script: list[Answer] = []
        self._next_send = -math.inf
        self._bsi_every: int | None = None
        self._fds: tuple[int, int] | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen = asyncio.Condition()
        self.log = _Log()

    @property
    def port(self) -> str:
        """The path of the pty's slave side: what the driver opens."""
        if self._fds is None:
            raise RuntimeError("the emulator is not running")
        return os.ttyname(self._fds[1])

    # -- control -------------------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next send requests, in order (before the card's own behaviour)."""
        self._script.extend(answers)

    async def set_beams(self, beams: tuple[int, ...]) -> None:
        """Change the beam powers and report them as the terminal would."""
        self._beams = beams
        if self.card.generation == "bds3":
            await self._emit(self._pwi())
        elif self._bsi_every is not None:
            await self._emit(self._bsi())

    async def inject(self, *, sender: str, payload: bytes = b"", text: str | None = None) -> None:
        """Have the terminal receive a message: ``payload`` in code mode, or ``text`` in mixed mode."""
        bds3 = self.card.generation == "bds3"
        if text is not None:
            content, mode, encoding = Txa.from_text(recipient=sender, text=text).content, TextMode.MIXED, 3
        else:
            content, mode, encoding = payload.hex().upper(), TextMode.CODE, 2
        if bds3:
            await self._emit(
                Tci(
                    sender=sender,
                    recipient=self.card.address,
                    frequency_point=2,
                    time=self._hhmmss(),
                    encoding=Bds3Encoding(encoding),
                    reserved="0",
                    content=content,
                )
            )
        else:
            await self._emit(Txr(info_type=1, sender=sender, mode=mode, send_time=self._hhmmss()[:4], content=content))

    async def send_raw(self, data: bytes) -> None:
        """Write bytes to the host as they are (garbage, half lines, bad checksums)."""
        await self._write(data)

    async def wait_for(self, kind: str, count: int = 1) -> list[Sentence]:
        """Wait until the host has sent ``count`` sentences of ``kind``; return all of that kind so far."""
        async with self._seen:
            await self._seen.wait_for(lambda: len(self._of(kind)) >= count)
            return self._of(kind)

    def _of(self, kind: str) -> list[Sentence]:
        return [s for s in self.log.host if s.kind == kind]

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        master, slave = os.openpty()
        self._fds = (master, slave)
        tty.setraw(slave)  # no echo, no line editing: the host sees only what the terminal writes
        os.set_blocking(master, False)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        # The transport closes the descriptor it reads, so it gets its own; writes go to ``master``.
        self._transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(master), "rb", 0)
        )
        self._spawn(self._serve(reader), "serve")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    # -- the terminal --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            try:
                sentence = decode_bytes(line)
            except DecodeError:
                self.log.garbage += 1
                continue
            await self._answer(sentence)
            async with self._seen:
                self.log.host.append(sentence)
                self._seen.notify_all()

    async def _answer(self, sentence: Sentence) -> None:
        bds3 = self.card.generation == "bds3"
        if isinstance(sentence, Ica) and not bds3:
            await self._emit(self.card.info())
        elif isinstance(sentence, Icr) and bds3:
            await self._emit(self.card.info())
            await self._emit(self._pwi())
            self._spawn(self._every(1, self._pwi), "pwi")
        elif isinstance(sentence, Rmo) and sentence.sentence == "BSI" and not bds3:
            await self._bsi_output(sentence)
        elif (isinstance(sentence, Txa) and not bds3) or (isinstance(sentence, Tcq) and bds3):
            await self._send(sentence)

    async def _bsi_output(self, rmo: Rmo) -> None:
        if rmo.mode is not RmoMode.ON:
            self._bsi_every = None
            self._spawn(_idle(), "bsi")
            return
        self._bsi_every = rmo.frequency_s or 1
        await self._emit(self._bsi())
        self._spawn(self._every(self._bsi_every, self._bsi), "bsi")

    async def _send(self, request: Txa | Tcq) -> None:
        answer = self._script.pop(0) if self._script else self._behave(request)
        if answer.act is Act.DROP_FKI:
            return
        if answer.act is Act.SEND:
            self._next_send = self._clock.now() + self.card.interval_s
            self.log.transmitted.append(_content_bytes(request))
        await self._emit(self._fki(answer))
        target = request.recipient if isinstance(request, Txa) else request.target
        if answer.act is Act.SEND and target == self.card.address:
            await self.inject(sender=self.card.address, payload=_content_bytes(request))

    def _behave(self, request: Txa | Tcq) -> Answer:
        now = self._clock.now()
        if not any(self._beams):
            return Answer(Act.NO_BEAM)
        form = request.mode.form if isinstance(request, Txa) else request.encoding.form
        if message_bits(form, request.text or "") > self.card.bits:
            return Answer(Act.TOO_LONG)
        if now < self._next_send:
            return Answer(Act.INTERVAL, math.ceil(self._next_send - now))
        return Answer(Act.SEND)

    def _fki(self, answer: Answer) -> Fki | Fki3:
        act, wait = answer.act, answer.wait_s
        if self.card.generation == "bds3":
            reasons = {Act.INTERVAL: FkiReason.FREQUENCY_NOT_REACHED, Act.NO_BEAM: FkiReason.POWER_NOT_LOCKED}
            reason = reasons.get(act, FkiReason.NONE)
            return Fki3(time=self._hhmmss(), command="TCQ", ok=act is Act.SEND, reason=reason, remaining_s=wait)
        if act is Act.SEND:
            return Fki(
                command="TXA",
                executed=True,
                frequency_ok=True,
                suppression=Suppression.LIFTED,
                wait_s=wait or self.card.interval_s,
            )
        suppression = Suppression.SYSTEM if act is Act.NO_BEAM else Suppression.LIFTED
        return Fki(
            command="TXA", executed=False, frequency_ok=act is not Act.INTERVAL, suppression=suppression, wait_s=wait
        )

    def _bsi(self) -> Bsi:
        best = max(range(len(self._beams)), key=self._beams.__getitem__, default=0) + 1
        return Bsi(response_beam=best, timing_beam=best, powers=self._beams)

    def _pwi(self) -> Pwi:
        if not any(self._beams):
            return Pwi(time="000000.00", bds2=(), bds3=())
        beams = tuple((n, 40 + p, 33, 0) for n, p in enumerate(self._beams, 1) if p)
        return Pwi(time=self._hhmmss() + ".00", bds2=(), bds3=beams)

    async def _every(self, seconds: int, report: Any) -> None:
        while True:
            await self._clock.sleep(seconds)
            await self._emit(report())

    def _hhmmss(self) -> str:
        return time.strftime("%H%M%S", time.gmtime(self._clock.now()))

    async def _emit(self, sentence: Sentence) -> None:
        await self._write(to_wire(sentence))

    async def _write(self, data: bytes) -> None:
        if self._fds is None:
            raise RuntimeError("the emulator is not running")
        master, view = self._fds[0], memoryview(data)
        while view:
            try:
                view = view[os.write(master, view) :]
            except BlockingIOError:  # the pty buffer is full until the host reads
                await self._writable(master)

    async def _writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def _spawn(self, coro: Coroutine[Any, Any, None], role: str) -> None:
        old = self._tasks.pop(role, None)
        if old is not None:
            old.cancel()
        self._tasks[role] = asyncio.create_task(coro, name=f"satgw.rdss-emulator.{role}")


async def _idle() -> None:
    """A task that does nothing: what replaces a periodic report switched off."""


def _content_bytes(request: Txa | Tcq) -> bytes:
    content = request.content
    if content.isascii() and len(content) % 2 == 0:
        with contextlib.suppress(ValueError):
            return bytes.fromhex(content)
    return content.encode("gb18030")
