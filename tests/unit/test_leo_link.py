"""LeoLink (the LEO store-and-forward link model) on simulated time: pass windows, capacity, delay and loss."""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from gateway.links import Feedback, FeedbackCode, Link, SimClock
from gateway.links.geometry import LIGHT_SPEED_KM_S
from gateway.links.leo import LeoLink, LeoProfile, LeoStats
from gateway.links.orbits import Pass, find_passes, slant_range_km
from gateway.links.outages import OutagePlan, Window
from protocols.envelope import Priority
from tests.unit.link_helpers import RecordingSink

DAY_START = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
DAY = 86_400.0
BEIJING = (39.9042, 116.4074)
ROUTINE = Priority.ROUTINE
DISTRESS = Priority.DISTRESS


class AlwaysLoses(random.Random):
    """A random source whose every draw is 0.0, so any loss_rate > 0 loses the frame."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def clock() -> SimClock:
    return SimClock(start=DAY_START)


@pytest.fixture
def sink(clock: SimClock) -> RecordingSink:
    return RecordingSink(clock)


@pytest.fixture
def both_tle(tmp_path: Path) -> str:
    """Both shipped sets in one file, so that Swarm-like and Iridium-like passes overlap."""
    folder = resources.files("gateway.links") / "tle"
    path = tmp_path / "both.tle"
    path.write_text("".join((folder / f"{n}.tle").read_text() for n in ("swarm-like", "iridium-like")))
    return str(path)


def profile(**overrides: Any) -> LeoProfile:
    """A Swarm-like link at Beijing: 10° mask, 192-byte frames, ten frames per pass, no loss."""
    base: dict[str, Any] = {
        "name": "leo1",
        "tle": "swarm-like",
        "gateway_lat": BEIJING[0],
        "gateway_lon": BEIJING[1],
        "gateway_alt_m": 50.0,
        "pass_capacity_frames": 10,
    }
    return LeoProfile(**(base | overrides))


def make(clock: SimClock, sink: RecordingSink, rng: random.Random | None = None, **overrides: Any) -> LeoLink:
    return profile(**overrides).build(sink=sink, clock=clock, rng=rng)


def passes(p: LeoProfile, start: float, hours: float = 24.0) -> list[Pass]:
    """The profile's passes computed directly, independent of the link's incremental bookkeeping."""
    return find_passes(p.satellites(), p.site(), start, start + hours * 3600.0, min_elevation_deg=p.min_elevation_deg)


class TestProfile:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"name": ""}, "name"),
            ({"mtu": 0}, "mtu"),
            ({"pass_capacity_frames": None}, "set pass_capacity_bytes or pass_capacity_frames"),
            ({"pass_capacity_frames": 0}, "pass_capacity_frames"),
            ({"pass_capacity_bytes": 100}, r"pass_capacity_bytes \(100\) is below the mtu \(192\)"),
            ({"pass_capacity_bytes": True}, "pass_capacity_bytes"),
            ({"min_elevation_deg": 90.0}, "min_elevation_deg"),
            ({"loss_rate": 1.0}, "loss_rate"),
            ({"seed": "7"}, "seed"),
            ({"gateway_lat": 91.0}, "gateway position: latitude"),
            ({"tle": "no-such-set"}, "TLE file no-such-set not found"),
        ],
    )
    def test_rejects_settings_that_cannot_work(self, overrides: dict[str, Any], message: str) -> None:
        """Each impossible setting raises ValueError with a message naming it."""
        with pytest.raises(ValueError, match=message):
            profile(**overrides)

    def test_duplicate_satellite_names_are_refused(self, tmp_path: Path) -> None:
        """A TLE source naming two satellites alike is refused: passes are kept per satellite name."""
        text = (resources.files("gateway.links") / "tle" / "swarm-like.tle").read_text()
        path = tmp_path / "twice.tle"
        path.write_text(text + text)
        with pytest.raises(ValueError, match="satellite names must be unique"):
            profile(tle=str(path))

    def test_profile_builds_a_link_and_is_immutable(self, clock: SimClock, sink: RecordingSink) -> None:
        """LeoProfile.build gives a Link with the profile's name and MTU; the profile is frozen data."""
        p = profile(mtu=100, pass_capacity_bytes=1000)
        link: Link = p.build(sink=sink, clock=clock)
        assert isinstance(link, LeoLink)
        assert (link.name, link.mtu, link.profile) == ("leo1", 100, p)
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.mtu = 3  # type: ignore[misc]


class TestPassWindows:
    async def test_nothing_goes_outside_a_pass(self, clock: SimClock, sink: RecordingSink) -> None:
        """Before the first rise every class gets NO_PASS with the exact seconds to that rise, at once."""
        link = make(clock, sink)
        first = passes(link.profile, DAY_START)[0]
        assert first.rise > DAY_START
        for priority in (ROUTINE, DISTRESS):
            assert link.ready_in(priority) == pytest.approx(first.rise - DAY_START, abs=1e-6)
            feedback = await link.transmit(b"x", priority=priority)
            assert feedback == Feedback(FeedbackCode.NO_PASS, wait_s=first.rise - DAY_START)
        assert clock.now() == DAY_START
        assert sink.frames == []
        assert link.stats() == LeoStats(no_pass=2)

    async def test_waiting_ready_in_opens_the_pass(self, clock: SimClock, sink: RecordingSink) -> None:
        """After sleeping ready_in the link sends; the delay is the slant range over c, about 6 ms at a 10° rise."""
        link = make(clock, sink)
        await clock.advance(link.ready_in(ROUTINE))
        assert link.ready_in(ROUTINE) == 0.0
        p = link.profile
        sat = next(s for s in p.satellites() if s.name == link.upcoming()[0].satellite)
        expected = slant_range_km(sat, p.site(), clock.now()) / LIGHT_SPEED_KM_S
        sent_at = clock.now()
        feedback = await clock.drive(link.transmit(b"hello", priority=ROUTINE))
        assert feedback == Feedback(FeedbackCode.SENT, wait_s=0.0, delay_s=expected)
        assert 5.5e-3 < feedback.delay_s < 6.5e-3
        [(frame, name, arrived)] = sink.frames
        assert (frame, name) == (b"hello", "leo1")
        assert arrived == pytest.approx(sent_at + expected)

    async def test_delay_is_shorter_at_culmination(self, clock: SimClock, sink: RecordingSink) -> None:
        """A frame sent at a high pass's culmination flies for less time than one sent at rise."""
        link = make(clock, sink)
        high = next(q for q in passes(link.profile, DAY_START) if q.max_elevation_deg > 60)
        await clock.run_until(high.rise)
        at_rise = await clock.drive(link.transmit(b"a", priority=ROUTINE))
        await clock.run_until(high.culmination)
        at_peak = await clock.drive(link.transmit(b"b", priority=ROUTINE))
        assert 1.8e-3 < at_peak.delay_s < 2.4e-3 < 5.5e-3 < at_rise.delay_s

    async def test_pass_closes_at_set(self, clock: SimClock, sink: RecordingSink) -> None:
        """Just before set a frame goes; at set it is refused with the wait to the next rise."""
        link = make(clock, sink)
        first, second = passes(link.profile, DAY_START)[:2]
        await clock.run_until(first.set - 0.01)
        assert (await clock.drive(link.transmit(b"a", priority=ROUTINE))).sent
        await clock.run_until(first.set)
        feedback = await clock.drive(link.transmit(b"b", priority=ROUTINE))
        assert feedback.code is FeedbackCode.NO_PASS
        assert feedback.wait_s == pytest.approx(second.rise - first.set, abs=1e-6)

    async def test_a_jump_of_days_finds_the_passes_there(self, clock: SimClock, sink: RecordingSink) -> None:
        """After the clock jumps three days, ready_in and the open pass agree with a fresh computation there."""
        link = make(clock, sink)
        link.ready_in(ROUTINE)
        later = DAY_START + 3 * DAY + 1234.0
        await clock.run_until(later)
        fresh = passes(link.profile, later, hours=12.0)
        if fresh[0].contains(later):
            assert link.ready_in(ROUTINE) == 0.0
        else:
            assert link.ready_in(ROUTINE) == pytest.approx(fresh[0].rise - later, abs=1e-6)
        assert [q.satellite for q in link.upcoming()[:1]] == [fresh[0].satellite]

    async def test_no_pass_within_two_days_answers_ask_again_then(self, clock: SimClock, sink: RecordingSink) -> None:
        """With a mask no satellite clears, the link waits the 48 h it searched, not forever."""
        link = make(clock, sink, min_elevation_deg=89.99)
        assert link.ready_in(ROUTINE) == 48 * 3600.0
        assert (await link.transmit(b"x", priority=DISTRESS)).wait_s == 48 * 3600.0


class TestCapacity:
    async def test_frames_per_pass_are_a_budget(self, clock: SimClock, sink: RecordingSink) -> None:
        """With three frames per pass, the fourth in the same pass waits for the next pass's rise."""
        link = make(clock, sink, pass_capacity_frames=3)
        first, second = passes(link.profile, DAY_START)[:2]
        await clock.run_until(first.rise + 10.0)
        sent = [await clock.drive(link.transmit(b"f", priority=ROUTINE)) for _ in range(3)]
        assert [f.code for f in sent] == [FeedbackCode.SENT] * 3
        assert sent[-1].wait_s == pytest.approx(second.rise - clock.now(), abs=1e-6)
        refused = await clock.drive(link.transmit(b"f", priority=DISTRESS))
        assert refused.code is FeedbackCode.NO_PASS
        assert refused.wait_s == pytest.approx(second.rise - clock.now(), abs=1e-6)
        await clock.run_until(second.rise)
        assert (await clock.drive(link.transmit(b"f", priority=ROUTINE))).sent
        assert link.stats() == LeoStats(sent=4, no_pass=1, bytes_sent=4, passes_used=2)

    async def test_bytes_per_pass_are_a_budget(self, clock: SimClock, sink: RecordingSink) -> None:
        """With 500 bytes per pass, after 384 a 117-byte frame waits but a 116-byte one still goes."""
        link = make(clock, sink, pass_capacity_frames=None, pass_capacity_bytes=500)
        first = passes(link.profile, DAY_START)[0]
        await clock.run_until(first.rise)
        for _ in range(2):
            assert (await clock.drive(link.transmit(bytes(192), priority=ROUTINE))).sent
        assert link.ready_in(ROUTINE) == 0.0
        assert (await clock.drive(link.transmit(bytes(117), priority=ROUTINE))).code is FeedbackCode.NO_PASS
        assert (await clock.drive(link.transmit(bytes(116), priority=ROUTINE))).sent
        assert link.ready_in(ROUTINE) > 0.0
        assert link.stats().bytes_sent == 500

    async def test_the_satellite_setting_first_is_used_first(
        self, clock: SimClock, sink: RecordingSink, both_tle: str
    ) -> None:
        """With two satellites in view, frames go to the one that sets first until it is spent, then the other."""
        link = make(clock, sink, tle=both_tle, pass_capacity_frames=2)
        day = passes(link.profile, DAY_START)
        a, b = next((a, b) for a, b in itertools.pairwise(day) if b.rise < a.set and b.set < a.set)
        await clock.run_until(b.rise + 1.0)
        p = link.profile
        sats = {s.name: s for s in p.satellites()}
        delays = [(await clock.drive(link.transmit(b"f", priority=ROUTINE))).delay_s for _ in range(4)]
        to_b = slant_range_km(sats[b.satellite], p.site(), b.rise + 1.0) / LIGHT_SPEED_KM_S
        to_a = slant_range_km(sats[a.satellite], p.site(), b.rise + 1.0) / LIGHT_SPEED_KM_S
        assert delays == pytest.approx([to_b, to_b, to_a, to_a], abs=1e-5)
        assert (await clock.drive(link.transmit(b"f", priority=ROUTINE))).code is FeedbackCode.NO_PASS
        assert link.stats().passes_used == 2

    async def test_oversize_frame_is_refused_without_using_capacity(self, clock: SimClock, sink: RecordingSink) -> None:
        """A frame over the MTU is TOO_LARGE at once, even in a pass, and the pass keeps its capacity."""
        link = make(clock, sink, pass_capacity_frames=1)
        await clock.run_until(passes(link.profile, DAY_START)[0].rise)
        assert await link.transmit(bytes(193), priority=DISTRESS) == Feedback(FeedbackCode.TOO_LARGE)
        assert (await clock.drive(link.transmit(bytes(192), priority=ROUTINE))).sent
        assert link.stats() == LeoStats(sent=1, too_large=1, bytes_sent=192, passes_used=1)


class TestLoss:
    async def test_lost_frame_uses_capacity_and_never_arrives(self, clock: SimClock, sink: RecordingSink) -> None:
        """A lost frame answers LOST after its flight, reaches no sink, and counts against the pass."""
        link = make(clock, sink, AlwaysLoses(), loss_rate=0.5, pass_capacity_frames=1)
        await clock.run_until(passes(link.profile, DAY_START)[0].rise)
        feedback = await clock.drive(link.transmit(b"x", priority=ROUTINE))
        assert feedback.code is FeedbackCode.LOST
        assert feedback.wait_s > 0.0
        assert clock.now() > passes(link.profile, DAY_START)[0].rise
        assert sink.frames == []
        assert link.stats() == LeoStats(lost=1, passes_used=1)

    async def test_seeded_loss_is_repeatable_and_near_the_rate(self, sink: RecordingSink) -> None:
        """Two links with the same seed lose the same frames; about 30 % of 300 frames are lost."""
        outcomes = []
        for _ in range(2):
            clock = SimClock(start=DAY_START)
            link = make(clock, RecordingSink(clock), loss_rate=0.3, seed=11, pass_capacity_frames=300)
            await clock.run_until(passes(link.profile, DAY_START)[0].rise)
            outcomes.append([(await clock.drive(link.transmit(b"x", priority=ROUTINE))).code for _ in range(300)])
        assert outcomes[0] == outcomes[1]
        assert 60 <= outcomes[0].count(FeedbackCode.LOST) <= 120


class TestADay:
    async def test_a_day_of_passes_runs_fast_and_in_windows_only(self, clock: SimClock, sink: RecordingSink) -> None:
        """A sender that always waits as told fills every pass of a day exactly, in passes only, in well under 1 s."""
        link = make(clock, sink, pass_capacity_frames=5)
        day = passes(link.profile, DAY_START)
        began = time.perf_counter()

        async def sender() -> None:
            while clock.now() < DAY_START + DAY:
                feedback = await link.transmit(b"t", priority=ROUTINE)
                await clock.sleep(feedback.wait_s)

        await clock.drive(sender())
        assert time.perf_counter() - began < 1.0
        whole = [q for q in day if q.rise < DAY_START + DAY]
        assert len(sink.frames) == 5 * len(whole)
        for q in whole:
            assert sum(q.rise <= t <= q.set + 0.01 for _, _, t in sink.frames) == 5
        assert link.stats().passes_used == len(whole)


async def test_an_outage_during_a_pass_refuses_every_class_until_it_ends(clock: SimClock, sink: RecordingSink) -> None:
    """A scheduled outage over a pass refuses even distress with OUTAGE and the wait to its end; then frames go."""
    pass_ = find_passes(profile().satellites(), profile().site(), DAY_START, DAY_START + DAY)[0]
    mid = (pass_.rise + pass_.set) / 2
    plan = OutagePlan(windows=(Window(pass_.rise - 60, mid),))
    link = make(clock, sink, outages=plan)
    await clock.run_until(pass_.rise + 1)
    assert link.ready_in(DISTRESS) == pytest.approx(mid - clock.now())
    refused = await link.transmit(b"sos", priority=DISTRESS)
    assert (refused.code, refused.wait_s) == (FeedbackCode.OUTAGE, pytest.approx(mid - clock.now()))
    await clock.run_until(mid + 1)
    sent = await clock.drive(link.transmit(b"sos", priority=DISTRESS))
    assert sent.sent
    assert link.stats().outage_refusals == 1
