"""The relay's backlog: held entries come back most urgent first, each once."""

from __future__ import annotations

from gateway.queue import Entry
from gateway.relay import Backlog
from protocols.envelope import Priority


def _entry(stream_id: str, priority: Priority, seq: int = 1) -> Entry:
    return Entry(
        stream_id=stream_id,
        priority=priority,
        message_id=f"T1:{seq}",
        terminal="T1",
        seq=seq,
        record=b"r",
        received_at=0.0,
        expires_at=None,
        receipt=False,
    )


class TestBacklog:
    def test_same_stream_id_in_two_classes_is_held_twice(self) -> None:
        """Stream ids repeat across class streams, so both entries are held, not one."""
        backlog = Backlog()
        backlog.push(_entry("1-0", Priority.ROUTINE, 1))
        backlog.push(_entry("1-0", Priority.SAFETY, 2))
        assert len(backlog) == 2

    def test_the_same_entry_is_held_once(self) -> None:
        """Pushing an entry already held (a reclaim racing a retry) keeps one copy."""
        backlog = Backlog()
        backlog.push(_entry("1-0", Priority.ROUTINE))
        backlog.push(_entry("1-0", Priority.ROUTINE))
        assert len(backlog) == 1

    def test_pop_returns_most_urgent_then_oldest(self) -> None:
        """Entries come back by class, then in the order they were held."""
        backlog = Backlog()
        backlog.push(_entry("1-0", Priority.ROUTINE, 1))
        backlog.push(_entry("2-0", Priority.URGENCY, 2))
        backlog.push(_entry("3-0", Priority.ROUTINE, 3))
        seqs = [held.entry.seq for held in iter(lambda: backlog.pop(0.0, max_priority=3), None)]
        assert seqs == [2, 1, 3]

    def test_not_before_and_ceiling_are_respected(self) -> None:
        """An entry waiting for its retry time, or above the ceiling, is not returned."""
        backlog = Backlog()
        backlog.push(_entry("1-0", Priority.ROUTINE, 1), not_before=10.0)
        backlog.push(_entry("2-0", Priority.SAFETY, 2))
        assert backlog.pop(5.0, max_priority=Priority.URGENCY) is None
        assert backlog.head_priority(5.0) == Priority.SAFETY
        assert backlog.next_ready_at() == 0.0
        held = backlog.pop(5.0, max_priority=Priority.ROUTINE)
        assert held is not None
        assert held.entry.seq == 2
        assert backlog.pop(5.0, max_priority=Priority.ROUTINE) is None
        later = backlog.pop(10.0, max_priority=Priority.ROUTINE)
        assert later is not None
        assert later.entry.seq == 1
