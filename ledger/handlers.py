"""Apply one consumed message inside the batch's transaction: load, decide (pure), write.

Each handler claims the message id first (a redelivered message changes nothing), locks the
payment row, calls the state machine in ``ledger.payments``, and writes the transition:
payment state, hold, journal entries, refund/dispute rows, audit rows and outbox events. The
balance changes are only accumulated here; the batch applies them once, in account order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ingest.contracts import (
    AnyCommand,
    AnyPublicEvent,
    CapturePayment,
    ClearPayment,
    CommandOutcome,
    DisputeEvent,
    DisputeObject,
    DisputePayment,
    PaymentDecided,
    PaymentEvent,
    RefundEvent,
    RefundObject,
    RefundPayment,
    VoidPayment,
)
from ingest.sandbox import SandboxCard, issuer_decline_code, sandbox_card_for
from ingest.topics import PAYMENT_EVENTS
from ledger import payments, store
from ledger.balances import BalanceChanges
from ledger.payments import CommandRejected, Payment, Transition
from payflow.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "payflow/ledger"


@dataclass
class BatchEffects:
    """What a batch produced beyond the database: events to publish and replies to send."""

    events: list[tuple[str, AnyPublicEvent]] = field(default_factory=list)
    """(catalog topic name, event) in commit order."""
    replies: list[tuple[str, str]] = field(default_factory=list)
    """(Redis channel, CommandOutcome JSON)."""
    balances: BalanceChanges = field(default_factory=BalanceChanges)


class Handlers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fingerprint_key = settings.card_fingerprint_key.get_secret_value().encode()

    async def decision(self, conn: store.Conn, message: PaymentDecided, topic: str,
                       effects: BatchEffects) -> None:
        if not await store.claim_message(conn, message.id, topic):
            return
        payment = await store.load_payment_for_update(conn, message.subject)
        if payment is None:
            log.error("decision %s for unknown payment %s", message.id, message.subject)
            return
        pricing = await store.load_pricing(conn, payment.merchant_id, payment.currency)
        issuer = issuer_decline_code(payment.card_fingerprint, self.fingerprint_key)
        transition = payments.apply_decision(payment, message.data, issuer, pricing,
                                             self._settle_date())
        if transition is None:
            return
        await self._write(conn, payment, transition, message.id, "risk-engine", effects,
                          hold_is_new=True)
        if message.data.reply_to:
            transaction = await store.load_transaction(conn, payment.id)
            outcome = CommandOutcome(correlation_id=payment.id, transaction=transaction)
            effects.replies.append((message.data.reply_to, outcome.model_dump_json()))

    async def command(self, conn: store.Conn, message: AnyCommand, topic: str,
                      effects: BatchEffects) -> None:
        if not await store.claim_message(conn, message.id, topic):
            await self._reply_already_applied(conn, message, effects)
            return
        payment = await store.load_payment_for_update(conn, message.subject)
        outcome: CommandOutcome
        if payment is None:
            outcome = CommandOutcome(correlation_id=message.id, error_code="resource_missing",
                                     error_message=f"no payment {message.subject}")
        else:
            try:
                transition = await self._transition(conn, payment, message)
            except CommandRejected as rejected:
                outcome = CommandOutcome(correlation_id=message.id, error_code=rejected.code,
                                         error_message=rejected.message)
            else:
                await self._write(conn, payment, transition, message.id, message.data.actor,
                                  effects, hold_is_new=False)
                transaction = await store.load_transaction(conn, payment.id)
                outcome = CommandOutcome(correlation_id=message.id, transaction=transaction)
        if message.data.reply_to:
            effects.replies.append((message.data.reply_to, outcome.model_dump_json()))

    async def _reply_already_applied(self, conn: store.Conn, message: AnyCommand,
                                     effects: BatchEffects) -> None:
        """A command re-sent by a retrying API (same id): answer with the state it left."""
        transaction = await store.find_transaction(conn, message.subject)
        if message.data.reply_to and transaction is not None:
            outcome = CommandOutcome(correlation_id=message.id, transaction=transaction)
            effects.replies.append((message.data.reply_to, outcome.model_dump_json()))

    async def _transition(self, conn: store.Conn, payment: Payment,
                          message: AnyCommand) -> Transition:
        settle_date = self._settle_date()
        if isinstance(message, CapturePayment | VoidPayment):
            hold = await store.load_hold(conn, payment.id)
            if hold is None or payment.status != "authorized":
                verb = "captured" if isinstance(message, CapturePayment) else "voided"
                raise CommandRejected("invalid_state",
                                      f"a {payment.status} payment cannot be {verb}")
            if isinstance(message, VoidPayment):
                return payments.void(payment, hold)
            pricing = await store.load_pricing(conn, payment.merchant_id, payment.currency)
            return payments.capture(payment, hold, message.data.amount, pricing, settle_date)
        if isinstance(message, RefundPayment):
            data = message.data
            return payments.refund(payment, data.refund_id, data.amount, data.reason,
                                   settle_date)
        if isinstance(message, DisputePayment):
            return payments.dispute(payment, message.data.dispute_id, message.data.reason,
                                    settle_date)
        assert isinstance(message, ClearPayment)
        pricing = await store.load_pricing(conn, payment.merchant_id, payment.currency)
        return payments.clear_bank_transfer(payment, pricing, settle_date)

    async def _write(self, conn: store.Conn, before: Payment, transition: Transition,
                     message_id: str, actor: str, effects: BatchEffects, *,
                     hold_is_new: bool) -> None:
        after = transition.payment
        await store.save_payment(conn, before, after, **self._schedules(before, after))
        if transition.hold is not None:
            await store.save_hold(conn, transition.hold, is_new=hold_is_new)
            effects.balances.add_hold(transition.hold, placed=hold_is_new,
                                      resolved=transition.hold.status != "pending")
        await store.insert_entries(conn, message_id, transition.entries)
        effects.balances.add_entries(transition.entries)
        events = await self._events(conn, after, transition)
        await store.insert_events(conn, PAYMENT_EVENTS.name, events)
        effects.events.extend((PAYMENT_EVENTS.name, event) for event in events)
        change: dict[str, Any] = {"from": before.status, "to": after.status,
                                  "events": list(transition.events)}
        if transition.entries:
            change["amounts"] = [sum(p.amount for p in e.postings if p.amount > 0)
                                 for e in transition.entries]
        await store.insert_audit(conn, [(actor, after.merchant_id, "payment", after.id,
                                         ",".join(transition.events) or "decided", change)])

    def _settle_date(self) -> date:
        """When funds captured (or refunded) now become available: T+N days, UTC."""
        return datetime.now(UTC).date() + timedelta(days=self.settings.settlement_delay_days)

    def _schedules(self, before: Payment, after: Payment) -> dict[str, datetime | None]:
        """Sandbox clocks: when an approved bank transfer clears, when the dispute card is
        disputed. Both fire later as commands through Kafka."""
        now = datetime.now(UTC)
        clears_at = auto_dispute_at = None
        if after.method_type == "bank_transfer" and after.fraud_score is not None and (
            before.fraud_score is None and after.status == "pending"
        ):
            clears_at = now + timedelta(seconds=self.settings.bank_transfer_clearing_seconds)
        card = sandbox_card_for(after.card_fingerprint, self.fingerprint_key)
        if card is SandboxCard.DISPUTED and after.status == "captured" and (
            before.status != "captured"
        ):
            auto_dispute_at = now + timedelta(seconds=self.settings.sandbox_dispute_seconds)
        return {"clears_at": clears_at, "auto_dispute_at": auto_dispute_at}

    async def _events(self, conn: store.Conn, payment: Payment,
                      transition: Transition) -> list[AnyPublicEvent]:
        """Write the refund or dispute row, then build the events from the committed view."""
        refund_at = dispute_at = None
        if transition.refund is not None:
            refund_at = await store.insert_refund(conn, payment, transition.refund)
        if transition.dispute is not None:
            dispute_at = await store.insert_dispute(conn, payment, transition.dispute)
        transaction = await store.load_transaction(conn, payment.id)
        common = {"source": SOURCE, "merchant_id": payment.merchant_id, "subject": payment.id}
        events: list[AnyPublicEvent] = []
        for kind in transition.events:
            if kind == "refund.created.v1":
                assert transition.refund is not None and refund_at is not None
                refund = transition.refund
                events.append(RefundEvent(**common, data=RefundObject(
                    id=refund.id, payment_id=payment.id, merchant_id=payment.merchant_id,
                    amount=refund.amount, currency=payment.currency, reason=refund.reason,
                    created_at=refund_at)))
            elif kind == "dispute.created.v1":
                assert transition.dispute is not None and dispute_at is not None
                dispute = transition.dispute
                events.append(DisputeEvent(**common, data=DisputeObject(
                    id=dispute.id, payment_id=payment.id, merchant_id=payment.merchant_id,
                    amount=dispute.amount, currency=payment.currency, reason=dispute.reason,
                    card_fingerprint=payment.card_fingerprint,
                    payment_created_at=transaction.created_at, created_at=dispute_at)))
            else:
                events.append(PaymentEvent(**common, type=kind, data=transaction))
        return events
