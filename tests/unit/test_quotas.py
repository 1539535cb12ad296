"""Per-terminal token-bucket quotas."""

from __future__ import annotations

import pytest

from gateway.quotas import Quota, Quotas
from protocols.envelope import Priority


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _quotas(clock: _Clock, **options: int) -> Quotas:
    return Quotas(limits={Priority.ROUTINE: Quota(count=60, period_s=3600, burst=3)}, clock=clock, **options)


def test_burst_then_refusal_names_the_quota() -> None:
    """A terminal may send its burst at once; the next message is refused with the quota's name."""
    quotas = _quotas(_Clock())
    assert [quotas.take("T1", Priority.ROUTINE) for _ in range(3)] == [None, None, None]
    assert quotas.take("T1", Priority.ROUTINE) == "routine quota 60 per 3600 s (burst 3)"


def test_tokens_come_back_at_the_quota_rate() -> None:
    """60 per hour gives one message back per minute, never more than the burst."""
    clock = _Clock()
    quotas = _quotas(clock)
    for _ in range(3):
        quotas.take("T1", Priority.ROUTINE)
    clock.t += 59
    assert quotas.take("T1", Priority.ROUTINE) is not None
    clock.t += 1.5
    assert quotas.take("T1", Priority.ROUTINE) is None
    clock.t += 10_000
    assert [quotas.take("T1", Priority.ROUTINE) for _ in range(4)][-1] is not None


def test_terminals_and_classes_are_independent_and_distress_is_exempt() -> None:
    """One terminal's exhausted quota leaves others, other classes and distress untouched."""
    quotas = _quotas(_Clock())
    for _ in range(4):
        quotas.take("T1", Priority.ROUTINE)
    assert quotas.take("T2", Priority.ROUTINE) is None
    assert quotas.take("T1", Priority.SAFETY) is None
    assert all(quotas.take("T1", Priority.DISTRESS) is None for _ in range(100))


def test_refund_gives_one_back_up_to_the_burst() -> None:
    """A refunded message (a replay) can be sent again; refunds never exceed the burst."""
    quotas = _quotas(_Clock())
    for _ in range(3):
        quotas.take("T1", Priority.ROUTINE)
    quotas.refund("T1", Priority.ROUTINE)
    assert quotas.take("T1", Priority.ROUTINE) is None
    for _ in range(10):
        quotas.refund("T2", Priority.ROUTINE)
    assert [quotas.take("T2", Priority.ROUTINE) for _ in range(4)].count(None) == 3


def test_buckets_are_bounded() -> None:
    """Past max_buckets the least recently used bucket is forgotten (and restarts full)."""
    quotas = _quotas(_Clock(), max_buckets=2)
    for _ in range(3):
        quotas.take("T1", Priority.ROUTINE)
    quotas.take("T2", Priority.ROUTINE)
    quotas.take("T3", Priority.ROUTINE)
    assert quotas.take("T1", Priority.ROUTINE) is None


def test_bad_settings_are_refused() -> None:
    """A distress quota, or a quota with a zero count, is a configuration error."""
    with pytest.raises(ValueError, match="distress is exempt"):
        Quotas(limits={Priority.DISTRESS: Quota(count=1, period_s=1, burst=1)})
    with pytest.raises(ValueError, match="count >= 1"):
        Quota(count=0, period_s=1, burst=1)
