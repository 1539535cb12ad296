"""What a real BeiDou terminal tells the driver, as values: its card, its beams, its transmit feedback.

Pure helpers for :mod:`gateway.links.rdss_serial` (and the terminal emulator): no I/O.

* **Card**: ``$BDICI`` (BDS-2) or ``$BDICP`` (BDS-3) becomes a :class:`Card` with the
  message cap in bits. BDS-2 caps come from the level and encryption table of domain.md
  §1.2. What the BDS-3 ``length_level`` means in bits is an open gap (domain.md §7), so a
  BDS-3 card's cap is a setting (14 000 bits, RSMC, by default).
* **Payload**: frames are binary, so they travel in *code* mode, two hex digits per byte:
  8 bits on the air per byte, no ``A4`` marker (mixed mode would cost 8 bits more).
* **Feedback**: ``$BDFKI`` (both forms) becomes a :class:`Verdict`, the link's
  :class:`~gateway.links.base.FeedbackCode` plus the terminal's wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.links.base import FeedbackCode
from protocols.rdss import Bsi, Fki, Fki3, FkiReason, Ici, Icp, Pwi, Suppression
from protocols.rdss.text import Form

__all__ = [
    "BDS2_BITS",
    "BDS3_RSMC_BITS",
    "EXPRESS_BITS",
    "Card",
    "Verdict",
    "beams_usable",
    "bds2_bits",
    "card_from_icp",
    "card_from_ici",
    "payload_from_content",
    "verdict",
]

BDS2_BITS = {False: (110, 408, 628, 848), True: (140, 360, 580, 1680)}
"""Bits per message by encryption, then level 1-4 (domain.md §1.2, [CAPTBL])."""
EXPRESS_BITS = 188
BDS3_RSMC_BITS = 14_000
_NO_TIME = "000000.00"


@dataclass(frozen=True, slots=True)
class Card:
    """The terminal's card as the driver uses it."""

    address: str
    """The card's own user address (BDS-2) or card ID (BDS-3)."""
    generation: str
    """``bds2`` (sends ``$CCTXA``) or ``bds3`` (sends ``$CCTCQ``)."""
    level: int
    interval_s: int
    """The service frequency: least seconds between two sends."""
    bits: int
    """The message cap on the air, bits."""
    encrypted: bool = False
    rescue: bool = False
    """The card says it may do rescue (BDS-3 ``$BDICP`` only; BDS-2 cards have no such field)."""

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame that fits in code mode (8 bits a byte), whole bytes."""
        return self.bits // 8


def bds2_bits(level: int, *, encrypted: bool) -> int:
    """Return the message cap of a BDS-2 card of ``level`` 1-4.

    Raises:
        ValueError: the level is not 1-4.
    """
    if not 1 <= level <= 4:
        raise ValueError(f"a BDS-2 card has communication level 1 to 4, the terminal says {level}")
    return BDS2_BITS[encrypted][level - 1]


def card_from_ici(ici: Ici) -> Card:
    """Return the card a BDS-2 ``$BDICI`` describes (ValueError for a level outside 1-4)."""
    bits = bds2_bits(ici.level, encrypted=ici.encrypted)
    return Card(ici.address, "bds2", ici.level, ici.frequency_s, bits, encrypted=ici.encrypted)


def card_from_icp(icp: Icp, *, bits: int) -> Card:
    """Return the card a BDS-3 ``$BDICP`` describes; its cap in bits is given (see the module docstring)."""
    level = icp.length_level or 5
    return Card(icp.card_id, "bds3", level, icp.frequency_s, bits, encrypted=icp.secrecy, rescue=icp.rescue)


def beams_usable(report: Bsi | Pwi, *, min_power: int) -> bool:
    """True if a beam report shows a beam to transmit on.

    BSI: some beam at ``min_power`` or more. PWI: a valid time and at least one BDS-3
    beam, the condition of the documented BDS-3 send flow (domain.md §2.3).
    """
    if isinstance(report, Bsi):
        return any(power >= min_power for power in report.powers)
    return report.time != _NO_TIME and bool(report.bds3)


def payload_from_content(form: Form, content: str) -> bytes:
    """Return the bytes a received content field carries.

    Code and opaque content is hex (an odd digit count is padded with a zero nibble, as
    on the air); mixed content drops its ``A4`` marker; Chinese content gives the GB2312
    bytes of its characters.
    """
    if form is Form.CHINESE and not content.isascii():
        return content.encode("gb2312")
    data = bytes.fromhex(content + "0" * (len(content) % 2))
    return data[1:] if form is Form.MIXED else data


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one ``$BDFKI`` means for the link."""

    code: FeedbackCode
    wait_s: int
    """The terminal's wait, seconds (0 when it gives none)."""
    transmitted: bool

    @property
    def interval_started(self) -> bool:
        """True when the card's interval runs from now: it transmitted, or said it must wait."""
        return self.transmitted or self.code is FeedbackCode.INTERVAL


_BDS3_CODES = {
    FkiReason.FREQUENCY_NOT_REACHED: FeedbackCode.INTERVAL,
    FkiReason.TRANSMIT_SUPPRESSED: FeedbackCode.OUTAGE,
    FkiReason.RADIO_SILENCE: FeedbackCode.OUTAGE,
    FkiReason.POWER_NOT_LOCKED: FeedbackCode.OUTAGE,
}


def verdict(fki: Fki | Fki3) -> Verdict:
    """Map transmit feedback to a link verdict.

    BDS-2: executed → SENT; any transmit suppression (system, low power, radio silence) →
    OUTAGE; the frequency indication ``N`` or a wait without suppression → INTERVAL;
    a bare refusal → LOST. BDS-3: success → SENT; reason 1 → INTERVAL; 2-4 (suppressed,
    radio silence, power not locked) → OUTAGE; anything else (no IC module, no
    permission, no reason) → LOST. Neither form has a "too long" reason: the driver
    refuses oversize frames before asking the terminal.
    """
    if isinstance(fki, Fki3):
        if fki.ok:
            return Verdict(FeedbackCode.SENT, fki.remaining_s, True)
        return Verdict(_BDS3_CODES.get(fki.reason, FeedbackCode.LOST), fki.remaining_s, False)
    if fki.executed:
        return Verdict(FeedbackCode.SENT, fki.wait_s, True)
    if fki.suppression is not Suppression.LIFTED:
        return Verdict(FeedbackCode.OUTAGE, fki.wait_s, False)
    if not fki.frequency_ok or fki.wait_s > 0:
        return Verdict(FeedbackCode.INTERVAL, fki.wait_s, False)
    return Verdict(FeedbackCode.LOST, 0, False)
