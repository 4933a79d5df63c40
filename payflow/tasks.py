"""Background work for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, Any], name: str | None = None) -> AsyncIterator[None]:
    """Run ``work`` as a task within the block; at its end, cancel the task and wait for it to
    finish (what it raised besides its cancellation is raised here)."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
