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

import orjson

from ingest.contracts import Decision, PaymentDecided
from ingest.sandbox import SandboxCard, sandbox_card_for
from models.decision import ModelOpinion, RiskPolicy, decide
from models.scoring import FraudModel
from streams.cases import RiskCase

log = logging.getLogger(__name__)
SOURCE = "payflow/streams"
RULES_ONLY = "rules-only"


@dataclass
class DecisionEngine:
    fingerprint_key: bytes
    model: FraudModel | None = None
    policies: dict[str, RiskPolicy] = field(default_factory=dict)
    default_policy: RiskPolicy = field(default_factory=RiskPolicy)

    def decide(self, cases: list[RiskCase]) -> list[PaymentDecided]:
        """One decision message per case, in order; the model scores the batch at once."""
        model = self.model
        opinions = self._opinions(model, cases)
        version = model.version if model is not None and opinions is not None else RULES_ONLY
        decided = []
        aligned: list[ModelOpinion | None] = list(opinions) if opinions else [None] * len(cases)
        for case, opinion in zip(cases, aligned, strict=True):
            facts = case.facts
            sandbox = sandbox_card_for(facts.card, self.fingerprint_key)
            blocked = sandbox is SandboxCard.ALWAYS_BLOCKED
            policy = self.policies.get(facts.merchant_id, self.default_policy)
            verdict = decide(case.features, opinion, policy, blocked_card=blocked,
                             approved_card=sandbox is not None and not blocked)
            decision = Decision(
                payment_id=facts.payment_id,
                outcome=verdict.outcome,
                fraud_score=verdict.fraud_score,
                risk_level=verdict.risk_level,
                fraud_flags=verdict.fraud_flags,
                decline_code=verdict.decline_code,
                model_version=version,
                features=case.features,
                degraded=verdict.degraded,
                reply_to=case.reply_to,
            )
            decided.append(PaymentDecided(source=SOURCE, merchant_id=facts.merchant_id,
                                          subject=facts.payment_id, data=decision))
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


def feature_log_entry(case: RiskCase, decided: PaymentDecided) -> bytes:
    """The feature-log message of one decision (risk.feature-log, keyed by payment id)."""
    decision = decided.data
    return orjson.dumps({
        "payment_id": decision.payment_id,
        "merchant_id": decided.merchant_id,
        "message_id": decided.id,
        "requested_at": case.requested_at.isoformat(),
        "model_version": decision.model_version,
        "features": decision.features,
        "fraud_score": decision.fraud_score,
        "outcome": decision.outcome,
        "degraded": decision.degraded,
    })
