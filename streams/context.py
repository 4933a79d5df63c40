"""Point Faust's table access at the right partition inside a micro-batch.

Faust reads and writes a table in the partition of the *current event*, and inside ``take()``
batches that is one event for the whole batch: a key from another partition reads back empty
(RocksDB) and its changelog write lands in the wrong partition. Every table access in a batch
therefore happens under ``event_context(event)`` for the event that carried that key.
(Measured trap: ../shared/notes/performance-facts.md.)
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event  # Faust's own context variable for current_event()


@contextmanager
def event_context(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
