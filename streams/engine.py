"""The decision engine of a worker: the champion model, merchants' thresholds, and the batch
decision that turns complete cases into decisions and feature-log entries.

The model and thresholds are replaced whole by ``streams.registry_watch`` when the registry
changes; a batch reads each once, so it is scored by one model. If the model is missing or its
prediction fails, every decision of the batch is made by the rules alone and marked degraded:
the stream keeps serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from ingest.contracts import encode_decided, new_message_ids, utc_now
from ingest.sandbox import SandboxCard, sandbox_card_for
from models.decision import ModelOpinion, RiskPolicy, Verdict, decide
from models.scoring import FraudModel
from streams.cases import RiskCase

log = logging.getLogger(__name__)
SOURCE = "payflow/streams"
RULES_ONLY = "rules-only"


@dataclass(frozen=True, slots=True)
class Decided:
    """One decision of the engine: a ``payment.decided.v1`` message (``encode``) and its
    feature-log entry (``log_entry``), written without building the pydantic models
    (``ingest.contracts.encode_decided``)."""

    case: RiskCase
    verdict: Verdict
    model_version: str
    message_id: str
    time: datetime

    @property
    def payment_id(self) -> str:
        return self.case.facts.payment_id

    def key(self) -> bytes:
        return self.payment_id.encode()

    def encode(self) -> bytes:
        v, case = self.verdict, self.case
        return encode_decided(
            message_id=self.message_id, time=self.time, source=SOURCE,
            merchant_id=case.facts.merchant_id, payment_id=self.payment_id,
            outcome=v.outcome, fraud_score=v.fraud_score, risk_level=v.risk_level,
            fraud_flags=v.fraud_flags, decline_code=v.decline_code,
            model_version=self.model_version, features=case.features, degraded=v.degraded,
            reply_to=case.reply_to)

    def log_entry(self) -> bytes:
        """The feature-log message of this decision (risk.feature-log, keyed by payment id)."""
        case, verdict = self.case, self.verdict
        return orjson.dumps({
            "payment_id": self.payment_id,
            "merchant_id": case.facts.merchant_id,
            "message_id": self.message_id,
            "requested_at": case.requested_at,
            "model_version": self.model_version,
            "features": case.features,
            "fraud_score": verdict.fraud_score,
            "outcome": verdict.outcome,
            "degraded": verdict.degraded,
        })


@dataclass
class DecisionEngine:
    fingerprint_key: bytes
    model: FraudModel | None = None
    policies: dict[str, RiskPolicy] = field(default_factory=dict)
    default_policy: RiskPolicy = field(default_factory=RiskPolicy)

    def decide(self, cases: list[RiskCase]) -> list[Decided]:
        """One decision per case, in order; the model scores the batch at once, which is
        decided at one time."""
        model = self.model
        opinions = self._opinions(model, cases)
        version = model.version if model is not None and opinions is not None else RULES_ONLY
        decided = []
        aligned: list[ModelOpinion | None] = list(opinions) if opinions else [None] * len(cases)
        now = utc_now()
        for case, opinion, message_id in zip(cases, aligned, new_message_ids(len(cases)),
                                             strict=True):
            facts = case.facts
            sandbox = sandbox_card_for(facts.card, self.fingerprint_key)
            blocked = sandbox is SandboxCard.ALWAYS_BLOCKED
            policy = self.policies.get(facts.merchant_id, self.default_policy)
            verdict = decide(case.features, opinion, policy, blocked_card=blocked,
                             approved_card=sandbox is not None and not blocked)
            decided.append(Decided(case, verdict, version, message_id, now))
        return decided

    @staticmethod
    def _opinions(model: FraudModel | None, cases: list[RiskCase]) -> list[ModelOpinion] | None:
        if model is None or not cases:
            return None
        try:
            return model.opinions([case.features for case in cases])
        except Exception:  # a failing model must not stop payments: rules decide instead
            log.exception("model %s failed on a batch of %d; deciding by rules only",
                          model.version, len(cases))
            return None
