"""Apply a consumed batch inside one transaction: claim, lock, decide (pure), write once.

1. Claim every message id in ``processed_messages`` (one statement): a redelivered message is
   not applied again — a command is answered with the payment's current state.
2. Lock every payment the batch touches, in id order (one statement), with its hold and refunds.
3. Run the pure state machine (``ledger.payments``) message by message, in order, in memory.
4. Write everything the batch produced with a few set-based statements (``store.write_batch``):
   payment states (conditional on the versions read), holds, journal entries and postings,
   refunds, disputes, fraud labels, outbox events, audit rows and netted balances.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ingest.contracts import (
    AnyPublicEvent,
    CapturePayment,
    ClearPayment,
    CommandOutcome,
    DisputeEvent,
    DisputeObject,
    DisputePayment,
    Message,
    PaymentDecided,
    PaymentEvent,
    RefundEvent,
    RefundObject,
    RefundPayment,
    Transaction,
    VoidPayment,
)
from ingest.sandbox import SandboxCard, issuer_decline_code, sandbox_card_for
from ingest.topics import PAYMENT_EVENTS
from ledger import payments, store
from ledger.batch import BatchWrites, LoadedPayment, OutboxEvent
from ledger.fees import Pricing
from ledger.payments import CommandRejected, Transition
from payflow.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "payflow/ledger"
PRICING_CACHE_SECONDS = 60.0
Outcome = Callable[[], CommandOutcome]
"""How to answer a message, evaluated only when an API instance waits for the answer."""


@dataclass
class BatchEffects:
    """What a committed batch produced beyond the database."""

    events: list[OutboxEvent] = field(default_factory=list)
    """In commit order."""
    replies: list[tuple[str, str]] = field(default_factory=list)
    """(Redis channel, CommandOutcome JSON)."""


class Handlers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fingerprint_key = settings.card_fingerprint_key.get_secret_value().encode()
        self._pricing: dict[tuple[str, str], tuple[float, Pricing]] = {}

    async def apply(self, conn: store.Conn, messages: list[tuple[str, Message]]
                    ) -> BatchEffects:
        """Apply (topic, decoded message) pairs in order; write once; return the effects."""
        claimed = await store.claim_messages(conn, [(m.id, topic) for topic, m in messages])
        loaded = await store.lock_payments(conn, sorted({m.subject for _, m in messages}))
        await self._load_pricing(conn, loaded.values())
        writes, effects = BatchWrites(), BatchEffects()
        now = datetime.now(UTC)
        for _, message in messages:
            payment = loaded.get(message.subject)
            if payment is not None and payment.payment.merchant_id != message.merchant_id:
                # Another merchant's payment is as unknown here as in the API (defence in
                # depth: the API checks first, and a 404 there never reaches Kafka).
                log.error("%s %s from merchant %s names payment %s of another merchant",
                          message.type, message.id, message.merchant_id, message.subject)
                payment = None
            if payment is None:
                log.error("%s %s for unknown payment %s", message.type, message.id,
                          message.subject)
                self._reply(effects, message, CommandOutcome(
                    correlation_id=message.id, error_code="resource_missing",
                    error_message=f"no payment {message.subject}"))
                continue
            outcome = self._apply_one(message, message.id in claimed, payment, writes, now)
            self._reply(effects, message, outcome)
        await store.write_batch(conn, writes)
        effects.events = writes.events
        return effects

    def _apply_one(self, message: Message, claimed: bool, loaded: LoadedPayment,
                   writes: BatchWrites, now: datetime) -> Outcome:
        """Apply one message; return how to answer it (built only if someone waits)."""
        correlation = message.subject if isinstance(message, PaymentDecided) else message.id
        if not claimed:  # redelivered: answer with the state it left
            return lambda: CommandOutcome(correlation_id=correlation,
                                          transaction=loaded.snapshot())
        try:
            transition = self._transition(message, loaded)
        except CommandRejected as rejected:
            refusal = CommandOutcome(correlation_id=correlation, error_code=rejected.code,
                                     error_message=rejected.message)
            return lambda: refusal
        if transition is not None:
            before = loaded.payment
            writes.record(loaded, transition, message.id, now)
            self._schedule(loaded, before.status, now)
            snapshot = self._collect_events(loaded, transition, writes, now)
            actor = ("risk-engine" if isinstance(message, PaymentDecided)
                     else getattr(message, "data").actor)  # noqa: B009 - commands have data
            writes.audit.append((actor, before.merchant_id, "payment", before.id,
                                 ",".join(transition.events) or "decided",
                                 {"from": before.status, "to": transition.payment.status,
                                  "message": message.type}))
            # The state right after this message (not the batch's end), built for its events.
            return lambda: CommandOutcome(correlation_id=correlation, transaction=snapshot)
        unchanged = loaded.snapshot
        return lambda: CommandOutcome(correlation_id=correlation, transaction=unchanged())

    def _transition(self, message: Message, loaded: LoadedPayment) -> Transition | None:
        payment, settle_date = loaded.payment, self._settle_date()
        pricing = self._pricing_of(payment.merchant_id, payment.currency)
        if isinstance(message, PaymentDecided):
            issuer = issuer_decline_code(payment.card_fingerprint, self.fingerprint_key)
            return payments.apply_decision(payment, message.data, issuer, pricing, settle_date)
        if isinstance(message, CapturePayment | VoidPayment):
            if loaded.hold is None or payment.status != "authorized":
                verb = "captured" if isinstance(message, CapturePayment) else "voided"
                raise CommandRejected("invalid_state",
                                      f"a {payment.status} payment cannot be {verb}")
            if isinstance(message, VoidPayment):
                return payments.void(payment, loaded.hold)
            return payments.capture(payment, loaded.hold, message.data.amount, pricing,
                                    settle_date)
        if isinstance(message, RefundPayment):
            data = message.data
            return payments.refund(payment, data.refund_id, data.amount, data.reason,
                                   settle_date)
        if isinstance(message, DisputePayment):
            return payments.dispute(payment, message.data.dispute_id, message.data.reason,
                                    settle_date)
        assert isinstance(message, ClearPayment), message.type
        return payments.clear_bank_transfer(payment, pricing, settle_date)

    def _collect_events(self, loaded: LoadedPayment, transition: Transition,
                        writes: BatchWrites, now: datetime) -> Transaction:
        """Queue the transition's events; return the transaction they carry."""
        payment = loaded.payment
        snapshot = loaded.snapshot()
        common: dict[str, Any] = {"source": SOURCE, "merchant_id": payment.merchant_id,
                                  "subject": payment.id}
        for kind in transition.events:
            event: AnyPublicEvent
            if kind == "refund.created.v1":
                refund = transition.refund
                assert refund is not None
                event = RefundEvent(**common, data=RefundObject(
                    id=refund.id, payment_id=payment.id, merchant_id=payment.merchant_id,
                    amount=refund.amount, currency=payment.currency, reason=refund.reason,
                    created_at=now))
            elif kind == "dispute.created.v1":
                dispute = transition.dispute
                assert dispute is not None
                event = DisputeEvent(**common, data=DisputeObject(
                    id=dispute.id, payment_id=payment.id, merchant_id=payment.merchant_id,
                    amount=dispute.amount, currency=payment.currency, reason=dispute.reason,
                    card_fingerprint=payment.card_fingerprint,
                    payment_created_at=snapshot.created_at, created_at=now))
            else:
                event = PaymentEvent(**common, type=kind, data=snapshot)
            writes.events.append(OutboxEvent.of(PAYMENT_EVENTS.name, event))
        return snapshot

    def _schedule(self, loaded: LoadedPayment, status_before: str, now: datetime) -> None:
        """Sandbox clocks: when an approved bank transfer clears, when the dispute card is
        disputed. Both fire later as commands through Kafka (see the consumer's sweep)."""
        p = loaded.payment
        if p.method_type == "bank_transfer" and p.status == "pending" and p.fraud_score is not None:
            seconds = self.settings.bank_transfer_clearing_seconds
            loaded.clears_at = loaded.clears_at or now + timedelta(seconds=seconds)
        card = sandbox_card_for(p.card_fingerprint, self.fingerprint_key)
        if card is SandboxCard.DISPUTED and p.status == "captured" and status_before != "captured":
            loaded.auto_dispute_at = now + timedelta(
                seconds=self.settings.sandbox_dispute_seconds)

    def _settle_date(self) -> date:
        """When funds captured (or refunded) now become available: T+N days, UTC."""
        return datetime.now(UTC).date() + timedelta(days=self.settings.settlement_delay_days)

    async def _load_pricing(self, conn: store.Conn, loaded: Any) -> None:
        now = time.monotonic()
        wanted = {(p.payment.merchant_id, p.payment.currency) for p in loaded}
        stale = [pair for pair in wanted if pair not in self._pricing
                 or now - self._pricing[pair][0] > PRICING_CACHE_SECONDS]
        if stale:
            for pair, pricing in (await store.load_pricings(conn, stale)).items():
                self._pricing[pair] = (now, pricing)

    def _pricing_of(self, merchant_id: str, currency: str) -> Pricing:
        return self._pricing[(merchant_id, currency)][1]

    @staticmethod
    def _reply(effects: BatchEffects, message: Message,
               outcome: CommandOutcome | Outcome) -> None:
        data = getattr(message, "data", None)
        reply_to = getattr(data, "reply_to", None)
        if reply_to:
            answer = outcome if isinstance(outcome, CommandOutcome) else outcome()
            effects.replies.append((reply_to, answer.model_dump_json()))


__all__ = ["BatchEffects", "Handlers"]
