"""Per-class capacity ceilings with aging."""

from __future__ import annotations

import pytest

from gateway.ceilings import Ceilings, Shares
from protocols.envelope import Priority

R, S, U, D = Priority.ROUTINE, Priority.SAFETY, Priority.URGENCY, Priority.DISTRESS


def _ceilings(**shares: float) -> Ceilings:
    settings = Shares(shares={Priority[k.upper()]: v for k, v in shares.items()}, window_s=100, aging_s=30)
    return Ceilings(shares=settings, capacity_per_hour=360)  # 10 frames per 100-s window


def test_routine_stops_at_its_share_and_leaves_headroom() -> None:
    """With routine capped at half, five routine frames in the window close routine; safety and above still go."""
    ceilings = _ceilings(routine=0.5)
    for t in range(5):
        assert ceilings.ceiling(float(t)) is R
        ceilings.record(float(t), [R])
    assert ceilings.ceiling(5.0) is S


def test_shares_are_cumulative_over_less_urgent_classes() -> None:
    """Safety's ceiling counts routine's use too: safety + routine at 80 % closes both."""
    ceilings = _ceilings(routine=0.5, safety=0.8)
    for t in range(4):
        ceilings.record(float(t), [R])
    for t in range(4, 8):
        ceilings.record(float(t), [S])
    assert ceilings.ceiling(8.0) is U


def test_the_window_slides() -> None:
    """Frames older than the window stop counting, and the class opens again."""
    ceilings = _ceilings(routine=0.5)
    for t in range(5):
        ceilings.record(float(t), [R])
    assert ceilings.ceiling(50.0) is S
    assert ceilings.ceiling(100.5) is R


def test_aging_lets_one_frame_through() -> None:
    """A class held back for aging_s gets one frame, then waits again."""
    ceilings = _ceilings(routine=0.1)
    ceilings.record(0.0, [R])
    assert ceilings.ceiling(1.0) is S
    assert ceilings.ceiling(31.0) is R
    ceilings.record(31.0, [R])
    assert ceilings.ceiling(32.0) is S


def test_a_packed_frame_is_shared_between_its_classes() -> None:
    """A frame of one distress and one routine record counts half a frame to routine."""
    ceilings = _ceilings(routine=0.5)
    ceilings.record(0.0, [D, R])
    assert ceilings.usage(R) == pytest.approx(0.05)
    assert ceilings.usage(D) == pytest.approx(0.1)


def test_settings_are_validated() -> None:
    """Distress takes no ceiling; shares lie in (0, 1]; capacity is positive."""
    with pytest.raises(ValueError, match="distress has no ceiling"):
        Shares(shares={D: 0.5})
    with pytest.raises(ValueError, match="routine share"):
        Shares(shares={R: 1.5})
    with pytest.raises(ValueError, match="capacity_per_hour"):
        Ceilings(shares=Shares(), capacity_per_hour=0)
