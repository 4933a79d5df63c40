"""The Faust application object, and nothing else (topics and agents have their own modules).

Built by ``create_app`` from the settings, so that nothing connects at import time; the worker
entry point (``payflow worker``) builds it once and runs it.
"""

from __future__ import annotations

import faust

from payflow.settings import Settings


def create_app(settings: Settings) -> faust.App:
    datadir = settings.home / "streams" / f"{settings.topic_prefix}data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"{settings.topic_prefix}payflow-streams",
        # payflow:// is Faust's aiokafka transport with a 50 ms fetch wait (streams.transport).
        broker=f"payflow://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.kafka_partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        value_serializer="raw",
        key_serializer="raw",
        producer_linger=0.005,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        web_port=settings.worker_web_port,
        datadir=str(datadir),
    )
