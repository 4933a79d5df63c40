"""The streaming benchmark's peer: payflow's features and decisions as a Quix Streams app.

Runs only in the benchmark's own venv (``bench.quix`` creates it; quixstreams and its
confluent-kafka are never payflow dependencies), with the repository on ``PYTHONPATH``, so it
calls payflow's own pure code: ``ingest.contracts.decode_request`` and ``models.facts``, the
feature steps of ``models.features``, and ``streams.engine.DecisionEngine`` with the champion
model (exported to a file by the parent: this venv has no PostgreSQL client).

The dataflow is the worker's (``streams.stages``): requests are re-keyed by card, IP address
(else device), customer and merchant, each through a topic of its own (``to_topic`` with the
new key, then a dataframe on that topic: Quix allows only one ``group_by`` per dataframe, so a
chain of four is built as the worker's is), each entity's record held in Quix's RocksDB state
with its changelog topic; complete cases
go to a sink that decides them in batches of the worker's batch size (one ``predict_proba``
call each, as the worker scores) and produces each decision and its feature-log entry. Reads
the pre-filled topic from the beginning under a fresh group; the clock and the process CPU
time start at the first request and stop when ``--expected`` decisions are acknowledged; the
figures are printed as one JSON line and the app stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from confluent_kafka import Producer
from quixstreams import Application, State
from quixstreams.models import TopicConfig
from quixstreams.sinks.base.sink import BaseSink

from ingest.contracts import UndecodableMessage, decode_request
from models.facts import payment_facts
from models.features import (
    ABSENT_CUSTOMER,
    ABSENT_ORIGIN,
    Step,
    card_features,
    customer_features,
    merchant_features,
    origin_features,
    payment_features,
)
from models.scoring import FraudModel, load_estimator
from streams.cases import RiskCase
from streams.cases import _item as case_item  # the worker's parser of one stage item
from streams.engine import DecisionEngine

RECORD = "record"


class Clock:
    """When the first request was read and the process CPU time then; set once."""

    started: float | None = None
    cpu_started = 0.0

    def start(self) -> None:
        if self.started is None:
            self.started, self.cpu_started = time.perf_counter(), time.process_time()


STAGES: tuple[tuple[str, Step], ...] = (
    ("card", card_features), ("origin", origin_features), ("customer", customer_features),
    ("merchant_id", merchant_features))
"""(the ``PaymentFacts`` attribute that keys the entity, its feature step), in the worker's
order."""


def case_of(value: list[Any]) -> RiskCase:
    """A case as it travels between stages: the JSON list of ``RiskCase.to_list``, parsed by
    the worker's own function for a bundle's item."""
    case = case_item(value)
    assert isinstance(case, RiskCase)
    return case


def keyed(case: RiskCase, entity: str) -> list[Any]:
    """``[key for the next stage, case]``: each stage computes the next key once, as the
    worker's stages do when they bundle a case for the next topic. A payment without that
    entity is keyed by its id and skips the entity's state."""
    found = getattr(case.facts, entity) if entity else None
    return [str(found) if found is not None else case.facts.payment_id, case.to_list()]


def entity_stage(index: int) -> Any:
    """The stateful function of stage ``index``: the record under the message's key, one
    feature step, the record written back; the case keyed for the next stage."""
    entity, step = STAGES[index]
    following = STAGES[index + 1][0] if index + 1 < len(STAGES) else ""
    absent = {"origin": ABSENT_ORIGIN, "customer": ABSENT_CUSTOMER}.get(entity, {})

    def run(value: list[Any], state: State) -> list[Any]:
        case = case_of(value[1])
        if getattr(case.facts, entity) is None:
            case.features.update(absent)
        else:
            features, record = step(state.get(RECORD), case.facts)
            state.set(RECORD, record)
            case.features.update(features)
        return keyed(case, following)

    return run


class DecisionSink(BaseSink):
    """Decides complete cases in batches and produces the decisions and feature-log entries;
    ``flush`` (each checkpoint) decides the rest and waits for Kafka's acknowledgements."""

    def __init__(self, app: Application, engine: DecisionEngine, args: argparse.Namespace,
                 clock: Clock) -> None:
        super().__init__()
        self.app, self.engine, self.args, self.clock = app, engine, args, clock
        self.pending: list[RiskCase] = []
        self.decided = 0
        self.producer = Producer({"bootstrap.servers": args.broker, "linger.ms": 5,
                                  "acks": "all", "enable.idempotence": True})

    def add(self, value: Any, key: Any, timestamp: int, headers: Any, topic: str,
            partition: int, offset: int) -> None:
        self.pending.append(case_of(value[1]))
        if len(self.pending) >= self.args.batch_size:
            self._decide()

    def flush(self) -> None:
        self._decide()
        assert self.producer.flush(30) == 0, "decisions not acknowledged within 30 s"
        if self.decided >= self.args.expected:
            self._finish()

    def _decide(self) -> None:
        cases, self.pending = self.pending, []
        for decided in self.engine.decide(cases):
            self.producer.produce(self.args.decisions, decided.encode(), decided.key())
            self.producer.produce(self.args.feature_log, decided.log_entry(), decided.key())
        self.producer.poll(0)
        self.decided += len(cases)

    def _finish(self) -> None:
        assert self.clock.started is not None
        seconds = time.perf_counter() - self.clock.started
        cpu = time.process_time() - self.clock.cpu_started
        print(json.dumps({"decisions": self.decided, "expected": self.args.expected,
                          "seconds": round(seconds, 3),
                          "decisions_per_second": round(self.decided / seconds, 1),
                          "cpu_us_per_decision": round(cpu / self.decided * 1e6, 1),
                          "model_version": self.engine.model.version
                          if self.engine.model else "rules-only"}), flush=True)
        self.app.stop()


def build(args: argparse.Namespace) -> Application:
    app = Application(broker_address=args.broker, consumer_group=args.group,
                      auto_offset_reset="earliest", state_dir=args.state_dir,
                      commit_interval=1.0, loglevel="WARNING",
                      processing_guarantee="at-least-once")
    engine = DecisionEngine(args.fingerprint_key.encode())
    if args.model:
        with open(args.model, "rb") as artifact:
            names = tuple(json.loads(args.model_features))
            engine.model = FraudModel(args.model_version, load_estimator(artifact.read()),
                                      names)
    clock = Clock()
    requests = app.topic(args.input, key_deserializer="bytes", value_deserializer="bytes")

    def start_case(raw: bytes) -> list[Any] | None:
        clock.start()
        try:
            message = decode_request(raw)
        except UndecodableMessage:
            return None
        facts = payment_facts(message)
        case = RiskCase(facts, message.data.reply_to, payment_features(facts))
        return keyed(case, STAGES[0][0])

    sdf = app.dataframe(requests).apply(start_case).filter(lambda value: value is not None)
    for index, (entity, _) in enumerate(STAGES):
        # Quix allows one group_by per dataframe: each repartition is an explicit topic, as
        # the worker's stages are (a nested group_by raises GroupByNestingLimit).
        stage_topic = app.topic(f"{args.stage_prefix}{entity.removesuffix('_id')}",
                                key_serializer="str", key_deserializer="str",
                                config=TopicConfig(num_partitions=args.partitions,
                                                   replication_factor=1))
        sdf.to_topic(stage_topic, key=lambda value: value[0])
        sdf = app.dataframe(stage_topic).apply(entity_stage(index), stateful=True)
    sdf.sink(DecisionSink(app, engine, args, clock))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("broker", "group", "input", "stage-prefix", "decisions", "feature-log",
                 "state-dir", "fingerprint-key"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--model", default="")
    parser.add_argument("--model-version", default="")
    parser.add_argument("--model-features", default="[]")
    args = parser.parse_args()
    assert 0 < args.expected <= 2_000_000 and 0 < args.batch_size <= 10_000
    build(args).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
