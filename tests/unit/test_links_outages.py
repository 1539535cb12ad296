"""Outages: scheduled windows and seeded random ones, as links see them."""

from __future__ import annotations

import math

import pytest

from gateway.links.outages import NO_OUTAGES, OutagePlan, Outages, Window

HOUR = 3600.0


def windows_seen(outages: Outages, until: float, step: float) -> list[tuple[float, float]]:
    """The distinct outage ends met when probing every ``step`` seconds, as (first time seen down, end)."""
    seen: dict[float, float] = {}
    t = 0.0
    while t < until:
        end = outages.until(t)
        if end is not None:
            seen.setdefault(end, t)
        t += step
    return sorted((start, end) for end, start in seen.items())


class TestPlan:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"rate_per_h": -1.0}, "outage_rate_per_h"),
            ({"rate_per_h": math.inf}, "outage_rate_per_h"),
            ({"mean_s": 0.0}, "outage_mean_s"),
            ({"windows": ((1.0, 2.0),)}, "Window"),
        ],
    )
    def test_rejects_settings_that_cannot_work(self, kwargs: dict[str, object], message: str) -> None:
        """A negative or infinite rate, a zero mean or a window that is not a Window raises ValueError naming it."""
        with pytest.raises(ValueError, match=message):
            OutagePlan(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (5.0, 4.0), (math.nan, 1.0)])
    def test_window_must_end_after_it_starts(self, start: float, end: float) -> None:
        """Empty, reversed or non-finite windows are refused."""
        with pytest.raises(ValueError, match="outage window"):
            Window(start, end)

    def test_default_plan_is_empty(self) -> None:
        """The default plan never blocks; one with a window or a rate does."""
        assert NO_OUTAGES.empty
        assert not OutagePlan(windows=(Window(0, 1),)).empty
        assert not OutagePlan(rate_per_h=1.0).empty


class TestScheduled:
    def test_window_covers_start_but_not_end(self) -> None:
        """A window blocks from its start (inclusive) to its end (exclusive) and nowhere else."""
        outages = Outages(OutagePlan(windows=(Window(100.0, 200.0),)), origin=0.0)
        assert outages.until(99.999) is None
        assert outages.until(100.0) == 200.0
        assert outages.until(199.999) == 200.0
        assert outages.until(200.0) is None

    def test_overlapping_windows_chain_to_the_last_end(self) -> None:
        """Windows that overlap or touch count as one outage lasting until the last of them ends."""
        plan = OutagePlan(windows=(Window(150.0, 300.0), Window(100.0, 200.0), Window(300.0, 310.0)))
        outages = Outages(plan, origin=0.0)
        assert outages.until(120.0) == 310.0

    def test_first_start_finds_an_outage_beginning_inside_an_interval(self) -> None:
        """first_start reports a window starting within (start, end], else None."""
        outages = Outages(OutagePlan(windows=(Window(100.0, 200.0),)), origin=0.0)
        assert outages.first_start(99.5, 100.0) == 100.0
        assert outages.first_start(100.0, 150.0) is None
        assert outages.first_start(0.0, 99.0) is None


class TestRandom:
    def test_same_seed_gives_the_same_outages_whatever_the_probing(self) -> None:
        """Two schedules with one seed agree at every probe, even when one is probed far more often."""
        plan = OutagePlan(rate_per_h=2.0, mean_s=300.0, seed=11)
        dense, sparse = Outages(plan, origin=0.0), Outages(plan, origin=0.0)
        compared = 0
        for k in range(0, 48 * 3600, 5):
            seen = dense.until(float(k))
            if k % 600 == 0:
                assert sparse.until(float(k)) == seen
                compared += seen is not None
        assert compared > 0

    def test_different_seeds_give_different_outages(self) -> None:
        """Another seed draws another schedule."""
        first = windows_seen(Outages(OutagePlan(rate_per_h=2.0, seed=1), origin=0.0), 10 * HOUR, 10.0)
        second = windows_seen(Outages(OutagePlan(rate_per_h=2.0, seed=2), origin=0.0), 10 * HOUR, 10.0)
        assert first
        assert first != second

    def test_rate_and_mean_duration_hold_over_a_long_run(self) -> None:
        """Over 2000 simulated hours at 1/h with 120 s mean, the count and the down time match within 4 sigma."""
        hours, rate, mean = 2000, 1.0, 120.0
        outages = Outages(OutagePlan(rate_per_h=rate, mean_s=mean, seed=2026), origin=0.0)
        down = 0.0
        count = 0
        t = 0.0
        while t < hours * HOUR:
            start = outages.first_start(t, t + 60.0)
            if start is None:
                t += 60.0
                continue
            count += 1
            end = outages.until(start)
            assert end is not None
            down += end - start
            t = end
        expected = hours * rate
        assert abs(count - expected) < 4 * math.sqrt(expected)
        # Chained outages merge, so the mean merged length is a little above the mean duration.
        assert mean * 0.9 < down / count < mean * 1.25

    def test_nothing_starts_before_the_origin(self) -> None:
        """Random outages are drawn from the origin on, so times before it are never down."""
        outages = Outages(OutagePlan(rate_per_h=60.0, seed=5), origin=1000.0)
        assert outages.until(999.0) is None
        assert outages.first_start(0.0, 999.0) is None

    def test_origin_must_be_finite(self) -> None:
        """A non-finite origin is refused."""
        with pytest.raises(ValueError, match="origin"):
            Outages(NO_OUTAGES, origin=math.inf)
