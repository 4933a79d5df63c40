"""Publishing two versions of an event type side by side, for a migration window.

A breaking change to a public event is a new version (``payment.captured.v2``). Consumers move
to it at their own pace, so for a while the producer emits every such event twice: the old
version, then the new one. ``with_new_versions(event, windows)`` gives the events to write for
one event; the producer writes all of them to its outbox in the same transaction as the state
change (the ledger: ``for e in with_new_versions(event, WINDOWS): writes.events.append(...)``),
so both versions have the same key and the same place in the payment's order.

The new version's id is derived from the old one's (a UUID5), not drawn at random: an outbox
row published twice, or an event rebuilt by a replay, gets the same pair of ids, so consumers
can deduplicate either version on ``id``. Each consumer reads one version of a name and
ignores the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.contracts import Message

_DERIVED_IDS = uuid.UUID("6f1d3c2e-9b7a-4c55-8e0f-2a4b6c8d0e1f")
"""Namespace of the ids of events derived for a migration window (fixed forever)."""


@dataclass(frozen=True, slots=True)
class MigrationWindow:
    """While open, every ``old_type`` event is also published as ``new_type``."""

    old_type: str
    new_type: str
    upgrade: Callable[[Message], Message]
    """Builds the new version from the old event (its id is replaced by a derived one)."""


def derived_id(event_id: str, new_type: str) -> str:
    """The id of ``new_type``'s copy of the event ``event_id``: the same on every call."""
    return uuid.uuid5(_DERIVED_IDS, f"{event_id}/{new_type}").hex


def with_new_versions(event: Message, windows: Iterable[MigrationWindow]) -> list[Message]:
    """``event`` followed by its new version for each window open on its type."""
    emitted = [event]
    for window in windows:
        if window.old_type != event.type:
            continue
        upgraded = window.upgrade(event)
        assert upgraded.type == window.new_type, (upgraded.type, window.new_type)
        assert (upgraded.subject, upgraded.merchant_id) == (event.subject, event.merchant_id), \
            "both versions must have the same key and merchant"
        emitted.append(upgraded.model_copy(
            update={"id": derived_id(event.id, window.new_type), "time": event.time}))
    return emitted
