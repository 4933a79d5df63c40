"""The decision agent: payment requests in, decisions out, in micro-batches.

At-least-once: a batch's decisions are acknowledged by Kafka before the agent asks for the next
batch (which is when Faust may commit the batch's offsets). A redelivered request yields a
second decision message for the same payment; the ledger applies the first and ignores the rest,
because it moves a payment out of ``pending`` only once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from ingest.contracts import PaymentDecided, UndecodableMessage, decode_request
from ingest.topics import DEAD_LETTERS, PAYMENT_DECISIONS, PAYMENT_REQUESTS
from payflow.settings import Settings
from streams.scoring import placeholder_decision

log = logging.getLogger(__name__)
SOURCE = "payflow/streams"


def register_agents(app: faust.App, settings: Settings) -> None:
    """Declare the worker's topics and agents on ``app``."""
    prefix = settings.topic_prefix
    requests_topic = PAYMENT_REQUESTS.name_for(prefix)
    requests = app.topic(
        requests_topic, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw",
    )
    decisions_topic = PAYMENT_DECISIONS.name_for(prefix)
    dead_letter_topic = DEAD_LETTERS.name_for(prefix)

    @app.agent(requests, name="decide")
    async def decide(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(
            settings.stream_batch_size, within=settings.stream_batch_wait_seconds
        ):
            pending: list[Any] = []
            for raw in batch:
                try:
                    requested = decode_request(raw)
                except UndecodableMessage as error:
                    log.warning("dead-lettering an undecodable request: %s", error)
                    headers = {"reason": str(error).encode(), "topic": requests_topic.encode()}
                    pending.append(
                        await app.producer.send(dead_letter_topic, None, raw, None, None, headers)
                    )
                    continue
                decided = PaymentDecided(
                    source=SOURCE,
                    merchant_id=requested.merchant_id,
                    subject=requested.subject,
                    data=placeholder_decision(requested.data),
                )
                pending.append(
                    await app.producer.send(
                        decisions_topic, decided.key(), decided.encode(), None, None, None
                    )
                )
            await asyncio.gather(*pending)
