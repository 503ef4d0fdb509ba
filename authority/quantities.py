"""Exact amounts: parsing, validation, conversion and display.

Every amount of an authority kind that enters the product passes `parse_amount`, so bad input
becomes a clear ValidationError at the edge instead of a 500 (or worse, a silently rounded refund).
Its text is read by the one lexical parser, `h2h_core.amounts.plain_decimal` (plain ASCII decimals
only); this module adds what the kind's unit and currency require.
"""

from __future__ import annotations

import math
from decimal import ROUND_UP, Decimal

import moneyed
from django.core.exceptions import ValidationError

from h2h_core.amounts import plain_decimal

from .models import AuthorityKind, Unit

# Far above any real refund, far below the column's 15 integer digits.
MAX_AMOUNT = Decimal("1000000000")
PERCENT_MAX = Decimal("100")
PERCENT_PLACES = 2
# ISO 4217 codes for precious metals, funds, test and "no currency": never the currency of a refund.
NOT_TENDER = frozenset({"XAU", "XAG", "XPT", "XPD", "XDR", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA"})


def currency_exponent(code: str) -> int:
    """Return the number of minor-unit digits of an ISO 4217 currency (EUR 2, JPY 0, KWD 3)."""
    currency = known_currency(code)
    return round(math.log10(currency.sub_unit)) if currency.sub_unit else 0


def known_currency(code: str) -> moneyed.Currency:
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValidationError(f"{code!r} is not an ISO 4217 currency code (three capital letters).", code="currency")
    try:
        currency = moneyed.get_currency(code)
    except moneyed.CurrencyDoesNotExist:
        raise ValidationError(f"{code} is not a known ISO 4217 currency.", code="currency") from None
    if code in NOT_TENDER:
        raise ValidationError(f"{code} is not a currency an amount can be paid in.", code="currency")
    return currency


def allowed_places(*, unit: str, currency: str | None) -> int:
    if unit == Unit.MONEY:
        return currency_exponent(currency or "")
    if unit == Unit.PERCENT:
        return PERCENT_PLACES
    return 0


def parse_amount(value, *, kind: AuthorityKind, currency: str | None, field: str = "amount") -> Decimal:
    """Return `value` as an exact positive Decimal valid for the kind's unit, or raise ValidationError.

    `value` is plain ASCII decimal text (or a Decimal or int from Python code): see
    h2h_core.amounts. Money needs a known currency and at most that currency's minor digits; months
    and counts are whole numbers; percentages have at most two decimals and never exceed 100.
    """
    if kind.is_money:
        if not currency:
            raise ValidationError({"currency": f"{kind.name} is money: give a currency."})
        try:
            known_currency(currency)
        except ValidationError as error:
            raise ValidationError({"currency": error.messages}) from None
    elif currency:
        raise ValidationError({"currency": f"{kind.name} is counted in {kind.get_unit_display().lower()}, not money."})
    label = field.replace("_", " ")
    try:
        amount = plain_decimal(value, label=label)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from None
    if amount <= 0:
        raise ValidationError({field: f"The {label} must be greater than zero."})
    limit = PERCENT_MAX if kind.unit == Unit.PERCENT else MAX_AMOUNT
    if amount > limit:
        raise ValidationError({field: f"The {label} must not exceed {format_plain(limit)}."})
    places = allowed_places(unit=kind.unit, currency=currency)
    if -amount.as_tuple().exponent > places and amount != amount.quantize(Decimal(1).scaleb(-places)):
        what = currency if kind.is_money else kind.get_unit_display().lower()
        raise ValidationError({field: f"{what} amounts have at most {places} decimal place(s)."})
    return amount


def convert(amount: Decimal, *, rate: Decimal, to_currency: str) -> Decimal:
    """Convert with a dated rate, rounding up to the target's minor unit.

    Rounding up is deliberate: a conversion must never make a decision look smaller than it is.
    """
    places = currency_exponent(to_currency)
    return (amount * rate).quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)


def format_plain(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return text


def format_quantity(value: Decimal | None, *, unit: str, currency: str = "") -> str:
    """Format for people: '1,200.00 EUR', '3 months', '12.5%', '2'."""
    if value is None:
        return "no limit"
    if unit == Unit.MONEY:
        places = currency_exponent(currency) if currency else 2
        return f"{value.quantize(Decimal(1).scaleb(-places)):,.{places}f} {currency}".strip()
    if unit == Unit.MONTHS:
        number = format_plain(value)
        return f"{number} month" if number == "1" else f"{number} months"
    if unit == Unit.PERCENT:
        return f"{format_plain(value.normalize())}%"
    return format_plain(value)


CONFIDENCE_PLACES = 3


def parse_confidence(value) -> Decimal:
    """Return a stated confidence: plain decimal text between 0 and 1, at most three decimal places."""
    confidence = plain_decimal(value, label="confidence")
    if not Decimal(0) <= confidence <= Decimal(1):
        raise ValidationError({"confidence": "The confidence is a number from 0 to 1, such as 0.85."})
    if -confidence.as_tuple().exponent > CONFIDENCE_PLACES and confidence != confidence.quantize(Decimal("0.001")):
        raise ValidationError({"confidence": f"Give the confidence with at most {CONFIDENCE_PLACES} decimal places."})
    return confidence.quantize(Decimal("0.001"))
