"""When each replayed message may be sent, so that the stream worker sees history in order.

The worker computes a payment's features from four entities (card, network origin, customer,
merchant), each in a stage of its own fed by a differently keyed topic, so two payments sharing
an entity but sent close together can overtake each other on the way to that stage. Live
traffic accepts this; a replay that must reproduce the offline features exactly cannot.

A ``ReplaySchedule`` therefore releases an item only once the earlier items it must follow have
*finished* (a payment is decided, a label has reached the merchant stage). What an item must
follow is given per entity it touches, as an *access*: ``(entity, None)`` is exclusive — it
follows every earlier item of that entity, and every later one follows it — while
``(entity, group)`` is shared with the neighbouring items of the same group: a run of
consecutive accesses with one group forms a *segment* whose items may run in any order among
themselves, after the previous segment has finished (a merchant's payments of one day, say,
when no feature of a payment counts its merchant's same-day payments). Items touching disjoint
entities flow concurrently; at most ``window`` items are open (admitted, not finished) at once.
With a ``speed`` an item is also held until its event time, scaled (60: an hour per minute).

Pure bookkeeping: no clock (the caller says how much time has elapsed), no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ingest.replay import ReplayItem

Access = tuple[str, str | None]
"""(entity, group): ``None`` for exclusive access, else items of the same group may commute."""
Accesses = Callable[[ReplayItem], Iterable[Access]]


@dataclass(eq=False)
class _Segment:
    """Consecutive accesses of one entity that may run in any order among themselves."""

    entity: str
    group: str | None
    previous: _Segment | None
    """The segment that must finish first (None once it has)."""
    open: int = 0
    waiters: list[str] = field(default_factory=list)
    """Items of later segments that wait for this one to finish."""
    superseded: bool = False
    """A later segment started: no item joins this one any more."""
    following: _Segment | None = None

    @property
    def finished(self) -> bool:
        return self.superseded and self.open == 0


@dataclass(eq=False)
class _Open:
    item: ReplayItem
    segments: list[_Segment] = field(default_factory=list)
    waiting: int = 0
    """Unfinished segments this item waits for."""
    sent: bool = False


class ReplaySchedule:
    """Which items may be sent now (see the module docstring).

    An item is *open* from admission to ``finish``; *ready* once no segment it waits for is
    unfinished; *due* once ready and, with a ``speed``, its scaled event time has come.
    """

    def __init__(self, items: Iterable[ReplayItem], accesses: Accesses, *,
                 window: int = 10_000, speed: float | None = None) -> None:
        assert window > 0 and (speed is None or speed > 0), (window, speed)
        self._items, self._accesses = iter(items), accesses
        self._window, self._speed = window, speed
        self._open: dict[str, _Open] = {}
        self._current: dict[str, _Segment] = {}
        self._ready: list[tuple[float, int, ReplayItem]] = []
        self._sequence = 0
        self._first_time: float | None = None
        self._exhausted = False
        self.sent = 0
        self.finished = 0

    @property
    def done(self) -> bool:
        """Every item was admitted, sent and finished."""
        return self._exhausted and not self._open

    @property
    def in_flight(self) -> int:
        return self.sent - self.finished

    def due(self, elapsed_seconds: float) -> list[ReplayItem]:
        """Items to send now, ``elapsed_seconds`` after the replay began; they count as sent."""
        self._admit()
        out = []
        while self._ready and self._ready[0][0] <= elapsed_seconds:
            item = heapq.heappop(self._ready)[2]
            self._open[item.id].sent = True
            out.append(item)
        self.sent += len(out)
        return out

    def next_due_seconds(self) -> float | None:
        """When (elapsed seconds) the earliest ready item falls due; None if none is ready."""
        self._admit()
        return self._ready[0][0] if self._ready else None

    def finish(self, item_id: str) -> None:
        """The item took effect. Ids not sent, or no longer open, are ignored (a redelivered
        decision)."""
        node = self._open.get(item_id)
        if node is None or not node.sent:
            return
        del self._open[item_id]
        self.finished += 1
        for segment in node.segments:
            segment.open -= 1
            assert segment.open >= 0, segment.entity
            if segment.finished:
                self._release(segment)
            elif segment.open == 0 and self._current.get(segment.entity) is segment:
                del self._current[segment.entity]  # idle entity: forget it (bounded memory)

    def _admit(self) -> None:
        while not self._exhausted and len(self._open) < self._window:
            item = next(self._items, None)
            if item is None:
                self._exhausted = True
                return
            assert item.id not in self._open, f"item {item.id} twice"
            if self._first_time is None:
                self._first_time = item.time_seconds
            node = _Open(item)
            self._open[item.id] = node
            for entity, group in dict.fromkeys(self._accesses(item)):
                self._join(node, entity, group)
            if node.waiting == 0:
                self._make_ready(item)

    def _join(self, node: _Open, entity: str, group: str | None) -> None:
        current = self._current.get(entity)
        if current is None or group is None or current.group != group:
            if current is not None:
                current.superseded = True
            previous = current if current is not None and not current.finished else None
            current = _Segment(entity, group, previous)
            if previous is not None:
                previous.following = current
            self._current[entity] = current
        current.open += 1
        node.segments.append(current)
        if current.previous is not None and not current.previous.finished:
            current.previous.waiters.append(node.item.id)
            node.waiting += 1

    def _release(self, segment: _Segment) -> None:
        if segment.following is not None:
            segment.following.previous = None  # let finished segments be collected
        for waiter_id in segment.waiters:
            waiter = self._open[waiter_id]
            waiter.waiting -= 1
            if waiter.waiting == 0:
                self._make_ready(waiter.item)
        segment.waiters.clear()

    def _make_ready(self, item: ReplayItem) -> None:
        assert self._first_time is not None
        at = 0.0 if self._speed is None else (item.time_seconds - self._first_time) / self._speed
        self._sequence += 1
        heapq.heappush(self._ready, (at, self._sequence, item))
