"""The Faust application object, and nothing else (topics, tables and agents have their own
modules).

Built by ``create_app`` from the settings, so that nothing connects at import time; the worker
entry point (``payflow worker``) builds it once and runs it. Choices that matter:

- RocksDB tables under ``home/streams/<prefix><worker name>``: a restart replays only the tail
  of each changelog, and each worker on one machine has its own directory;
- no standby replicas: on two shared cores a second copy of every table costs more than the
  changelog replay it saves when a partition moves;
- ``payflow://`` is Faust's aiokafka transport with a 50 ms fetch wait (``streams.transport``);
- a 10 s broker session (Faust's default is 60 s): a crashed worker's partitions move to the
  others within seconds, rather than stalling their payments for a minute;
- no producer linger: every stage hands a whole batch's messages to the producer at once,
  which fills one produce batch per partition anyway, so lingering only delayed each send
  (measured at 100 payments/s: request to card stage p50 20 ms with 5 ms of linger, 9 ms
  without);
- keyed messages partitioned by ``ingest.partitioning`` (aiokafka's own murmur2 is twice the
  cost, and the worker keys two messages per payment);
- the garbage collector ignores what start-up built (``quiet_garbage_collector``).
"""

from __future__ import annotations

import gc
import logging

import faust

from ingest.partitioning import partitioner
from payflow.settings import Settings

QUIET_LOGGERS = ("faust", "aiokafka", "mode", "kafka", "rocksdict")
PRODUCER_BATCH_BYTES = 512 * 1024
"""Per partition. aiokafka keeps one batch per partition and one request in flight per broker:
a ``send`` that finds its partition's batch full waits until that batch leaves. With the
default 16 KiB a stage's flush (hundreds of changelog records, bundles of up to 200 KB) waited
for one broker round trip per 16 KiB, and each stage spent most of its time sending.
Under Kafka's default 1 MiB ``max.message.bytes``."""
GC_THRESHOLDS = (50_000, 20, 100)
"""Python's defaults are (700, 10, 10). Each case allocates hundreds of short-lived lists that
reference counting frees; the collector only needs to find the rare reference cycle."""


def create_app(settings: Settings) -> faust.App:
    datadir = settings.home / "streams" / f"{settings.topic_prefix}{settings.worker_name}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    for name in QUIET_LOGGERS:  # a record per message at DEBUG costs ~8 % throughput
        logging.getLogger(name).setLevel(logging.WARNING)
    return faust.App(
        f"{settings.topic_prefix}payflow-streams",
        broker=f"payflow://{settings.kafka_bootstrap}",
        store="rocksdb://",
        table_standby_replicas=0,
        topic_partitions=settings.kafka_partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        value_serializer="raw",
        key_serializer="raw",
        producer_linger=0.0,
        producer_partitioner=partitioner,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_rebalance_timeout=30.0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        web_port=settings.worker_web_port,
        datadir=str(datadir),
    )


def quiet_garbage_collector() -> None:
    """Freeze the objects built so far (Faust, pydantic, the model: ~250k of them) out of the
    garbage collector's sight, and let it run less often. Measured on the benchmark worker:
    with Python's defaults each full collection walked them all (~0.2 s of CPU, 1 in 8 s at
    load), and collections took ~14 % of the worker's CPU; with this, under 1 %. Objects
    frozen here are still freed by reference counting (a replaced model is), only never
    searched for cycles. Call once, after the app, its agents and the model are built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
