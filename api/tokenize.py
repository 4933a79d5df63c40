"""Turn a card or bank account from a request into a token summary and vault ciphertext."""

from __future__ import annotations

from datetime import date

from api.cards import CardError, check_card, fingerprint
from api.errors import ApiError
from api.ids import new_id
from api.schemas import PaymentMethodIn
from api.vault import Vault
from ingest.contracts import BankAccountSummary, CardSummary, PaymentMethodSummary


def tokenize(
    method: PaymentMethodIn, *, vault: Vault, fingerprint_key: bytes, today: date, param: str
) -> tuple[PaymentMethodSummary, bytes]:
    """(summary, ciphertext) for a new ``pm_`` token; ApiError 422 naming the field at fault."""
    token_id = new_id("pm")
    if method.card is not None:
        card = method.card
        try:
            checked = check_card(card.number, card.exp_month, card.exp_year, card.cvc, today)
        except CardError as error:
            prefix = f"{param}." if param else ""
            raise ApiError(422, error.code, str(error), type="card_error",
                           param=f"{prefix}card.{error.param}") from None
        summary = PaymentMethodSummary(
            id=token_id,
            type="card",
            card=CardSummary(
                brand=checked.brand,
                funding=checked.funding,
                last4=checked.last4,
                exp_month=checked.exp_month,
                exp_year=checked.exp_year,
                fingerprint=fingerprint(checked.number, fingerprint_key),
            ),
        )
        # The CVC is checked and dropped: it is never stored.
        return summary, vault.seal(checked.number, token_id)
    account = method.bank_account
    assert account is not None
    summary = PaymentMethodSummary(
        id=token_id,
        type="bank_transfer",
        bank_account=BankAccountSummary(
            last4=account.account_number[-4:], routing_number=account.routing_number
        ),
    )
    return summary, vault.seal(account.account_number, token_id)
