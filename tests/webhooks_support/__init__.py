"""Test helpers for webhooks: a local HTTP receiver and the sender settings the stack runs with.

``STACK_WEBHOOKS_ENV`` gives the test stack's ``payflow webhooks`` a retry schedule of seconds
instead of hours (0.5 s, 1 s, 1 s, 2 s, ...: 8 attempts within about 13 s), so retry and restart
tests finish quickly; everything else keeps its production default.
"""

from __future__ import annotations

STACK_WEBHOOKS_ENV: dict[str, str] = {
    "PAYFLOW_WEBHOOKS_RETRY_SCHEDULE_SECONDS": "[0.5, 1, 1, 2, 2, 3, 3]",
}
