"""Card checks at tokenization: Luhn, brand, expiry, CVC, and a keyed fingerprint."""

from __future__ import annotations

from datetime import date

import pytest

from api.cards import CardError, brand_of, check_card, fingerprint, luhn_valid

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3566002020360505", "jcb"),
    ],
)
def test_well_known_test_numbers_pass_luhn_and_get_their_brand(number: str, brand: str) -> None:
    assert luhn_valid(number)
    assert brand_of(number)[0] == brand


def test_a_mistyped_number_fails_luhn_and_names_the_number_field() -> None:
    with pytest.raises(CardError) as raised:
        check_card("4242424242424241", 12, 2030, "123", TODAY)
    assert raised.value.param == "number"


def test_an_expired_card_is_refused_but_this_month_is_fine() -> None:
    with pytest.raises(CardError) as raised:
        check_card("4242424242424242", 10, 2026, "123", TODAY)
    assert raised.value.code == "expired_card"
    assert check_card("4242424242424242", 11, 2026, "123", TODAY).last4 == "4242"


def test_amex_takes_a_four_digit_cvc_and_others_three() -> None:
    assert check_card("378282246310005", 1, 2030, "1234", TODAY).brand == "amex"
    with pytest.raises(CardError) as raised:
        check_card("4242424242424242", 1, 2030, "1234", TODAY)
    assert raised.value.param == "cvc"


def test_spaces_in_the_number_are_ignored() -> None:
    assert check_card("4242 4242 4242 4242", 1, 2030, "123", TODAY).number == "4242424242424242"


def test_fingerprints_follow_the_card_and_depend_on_the_key() -> None:
    one = fingerprint("4242424242424242", b"key-a")
    assert one == fingerprint("4242424242424242", b"key-a")
    assert one != fingerprint("4242424242424242", b"key-b")
    assert one != fingerprint("5555555555554444", b"key-a")
    assert "4242" not in one
