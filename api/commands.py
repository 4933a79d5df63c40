"""Capture, void, refund and dispute: send the command through Kafka, wait for the ledger.

The ledger is the one judge of whether the payment's state allows a command (it serializes a
payment's commands by partition and guards them with a conditional update), so the API checks
nothing here but existence: it sends the command, waits for the outcome up to the time budget,
and maps a refusal to 409 with the ledger's code. If the budget runs out, the answer is 202
with the transaction as committed so far; the command is still applied, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka.errors import KafkaError

from api import repository
from api.errors import ApiError, not_found
from api.services import Services
from ingest.contracts import AnyCommand, CommandOutcome, Transaction
from ingest.topics import PAYMENT_COMMANDS

log = logging.getLogger(__name__)
SOURCE = "payflow/api"
CommandFactory = Callable[[str], AnyCommand]
"""Builds the command message given the reply channel."""


async def run_command(
    services: Services, merchant_id: str, payment_id: str, build: CommandFactory
) -> tuple[int, Transaction]:
    started = time.monotonic()
    async with services.autocommit() as conn:
        current = await repository.get_transaction(conn, merchant_id, payment_id)
    if current is None:
        raise not_found("payment", payment_id)
    command = build(services.replies.channel)
    topic = PAYMENT_COMMANDS.name_for(services.settings.topic_prefix)
    budget = services.settings.decision_budget_seconds
    if not services.kafka_breaker.allows(time.monotonic()):
        raise _unavailable()  # a send failed a moment ago (api.breaker)
    with services.replies.expecting(command.id) as reply:
        try:
            # Bounded by the budget: the producer's own limits are not (see api.payments).
            async with asyncio.timeout(max(budget - (time.monotonic() - started), 0.25)):
                await services.producer.send_and_wait(topic, command.encode(),
                                                      key=command.key())
        except (KafkaError, TimeoutError) as error:
            services.kafka_breaker.failed(time.monotonic())
            log.warning("command %s not sent: %r", command.id, error)
            raise _unavailable() from error
        outcome = await reply.wait_until(started + budget)
    if outcome is None:
        async with services.autocommit() as conn:
            latest = await repository.get_transaction(conn, merchant_id, payment_id)
        return 202, latest or current
    return 200, _accepted(outcome)


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable",
                    "The payment could not be changed right now; retry shortly.",
                    type="api_error", headers={"Retry-After": "2"})


def _accepted(outcome: CommandOutcome) -> Transaction:
    if outcome.error_code is not None:
        status = 404 if outcome.error_code == "resource_missing" else 409
        raise ApiError(status, outcome.error_code, outcome.error_message or outcome.error_code)
    assert outcome.transaction is not None
    return outcome.transaction
