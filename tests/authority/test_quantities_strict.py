"""Amounts are plain ASCII numbers in a currency an amount can be paid in."""

import pytest
from django.core.exceptions import ValidationError

from authority.quantities import known_currency, parse_amount
from tests.factories import kind


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["1_000", "١٢٣", "１２", "1,000", "0x10", " 1 2 "])
def test_amounts_that_are_not_plain_numbers_are_refused(text):
    with pytest.raises(ValidationError):
        parse_amount(text, kind=kind("refund"), currency="EUR")


@pytest.mark.parametrize("code", ["XAU", "XTS", "XDR", "XXX"])
def test_metals_funds_and_test_codes_are_not_currencies_of_an_amount(code):
    with pytest.raises(ValidationError):
        known_currency(code)


@pytest.mark.parametrize("code", ["XOF", "XAF", "EUR", "JPY"])
def test_real_currencies_with_x_codes_are_accepted(code):
    assert known_currency(code).code == code


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["12", "12.50", "+3", ".5", "1e2"])
def test_plain_numbers_are_accepted(text):
    assert parse_amount(text, kind=kind("refund"), currency="EUR") > 0
