"""Amounts are plain ASCII decimals in a currency an amount can be paid in.

The one lexical form is digits 0-9 with at most one dot that has digits on both sides. Python's
Decimal() reads far more ("١٠", "１０", "1_000", "1e3", " 10", "+10"), which let a 10 EUR decision be
executed from Arabic-Indic digits; these tests hold parse_amount and the model columns to the one form.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authority.models import AuthorityKind, Decision, Grant, Unit, UsageCounter
from authority.quantities import known_currency, parse_amount
from h2h_core.models import Case, Customer

REFUND = AuthorityKind(code="refund", name="Refund", unit=Unit.MONEY)
EXTENSION = AuthorityKind(code="contract_extension", name="Contract extension", unit=Unit.MONTHS)
DISCOUNT = AuthorityKind(code="discount", name="Discount", unit=Unit.PERCENT)
DIGITS = frozenset("0123456789")


def is_plain(text: str) -> bool:
    """The one lexical form, written without a regular expression: an independent oracle."""
    whole, dot, fraction = text.partition(".")
    return bool(whole) and set(whole) <= DIGITS and (not dot or (bool(fraction) and set(fraction) <= DIGITS))


@pytest.mark.parametrize("text", [
    "1_000", "١٢٣", "١٠", "１２", "১০", "𝟏𝟎", "1,000", "0x10", " 1 2 ", " 10", "10 ", "\u00a010", "1\u2009000",
    "10\n", "+3", "+10", "-0", ".5", "5.", "1e2", "1e3", "1E3", "NaN", "nan", "Infinity", "inf", "1" * 41,
])
def test_amounts_that_are_not_plain_numbers_are_refused(text):
    # given text that is not plain ASCII decimal, when it is parsed as a refund, then it is refused naming the form
    with pytest.raises(ValidationError) as error:
        parse_amount(text, kind=REFUND, currency="EUR")
    assert "with the digits 0-9 and a dot" in " ".join(error.value.message_dict["amount"])


@pytest.mark.parametrize("value", [True, False, 10.0, 0.1, float("nan"), None, b"10", [10], {"amount": "10"}])
def test_values_that_are_not_text_decimals_or_integers_are_refused(value):
    # a float is binary (the amount it was written as is lost), and True is not 1
    with pytest.raises(ValidationError):
        parse_amount(value, kind=REFUND, currency="EUR")


@pytest.mark.parametrize(("text", "expected"), [
    ("12", Decimal("12")), ("12.50", Decimal("12.50")), ("0.5", Decimal("0.5")), ("007", Decimal("7")),
    ("1000000000", Decimal("1000000000")),
])
def test_plain_numbers_are_accepted(text, expected):
    amount = parse_amount(text, kind=REFUND, currency="EUR")
    assert amount == expected and amount.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize("code", ["XAU", "XTS", "XDR", "XXX"])
def test_metals_funds_and_test_codes_are_not_currencies_of_an_amount(code):
    with pytest.raises(ValidationError):
        known_currency(code)


@pytest.mark.parametrize("code", ["XOF", "XAF", "EUR", "JPY"])
def test_real_currencies_with_x_codes_are_accepted(code):
    assert known_currency(code).code == code


# --- Property: one form in, the exact number out ---------------------------------------------------

# Characters that look like or sit next to numbers: other scripts' digits, every kind of space, signs,
# separators, exponent letters, and the dot itself.
LOOKALIKES = st.one_of(
    st.characters(categories=["Nd"]),
    st.characters(categories=["Zs", "Cc", "Cf"]),
    st.sampled_from(list("+-_,.'eEjJxX") + ["\u00a0", "\u2009", "\u202f", "\u066b", "\u066c", "\uff0e"]),
)
plain_texts = st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,6})?\Z", fullmatch=True)


@st.composite
def near_misses(draw) -> str:
    """A plain decimal with characters inserted, replaced or dropped."""
    text = list(draw(plain_texts))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "replace", "drop"]))
        if action == "insert" or not text:
            text.insert(where, draw(LOOKALIKES))
        elif action == "replace":
            text[min(where, len(text) - 1)] = draw(LOOKALIKES)
        else:
            del text[min(where, len(text) - 1)]
    return "".join(text)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=24), near_misses()))
@example(text="١٠")
@example(text="１０")
@example(text="1_000")
@example(text="1e3")
@example(text=" 10")
@example(text="+10")
@example(text="10.")
@example(text=".5")
def test_any_text_that_is_not_plain_ascii_decimal_is_refused(text):
    # given any text at all that is not digits 0-9 with at most one dot between digits
    if is_plain(text):
        return
    # when it is parsed as a refund, a discount or an extension, then it is refused
    for kind, currency in ((REFUND, "EUR"), (DISCOUNT, None), (EXTENSION, None)):
        with pytest.raises(ValidationError):
            parse_amount(text, kind=kind, currency=currency)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), unit=st.sampled_from([("EUR", 2), ("JPY", 0), ("KWD", 3), ("percent", 2), ("months", 0)]))
def test_every_plain_decimal_within_limits_round_trips_exactly(data, unit):
    # given a plain decimal without superfluous zeros, within the unit's limit and minor digits
    code, places = unit
    fraction = rf"(\.[0-9]{{1,{places}}})?" if places else ""
    whole = r"(0|[1-9][0-9]{0,1})" if code == "percent" else r"(0|[1-9][0-9]{0,8})"
    text = data.draw(st.from_regex(rf"\A{whole}{fraction}\Z", fullmatch=True).filter(lambda t: Decimal(t) > 0))
    kind = DISCOUNT if code == "percent" else EXTENSION if code == "months" else REFUND
    currency = code if kind is REFUND else None
    # when it is parsed, then exactly that number comes back, written the same way
    amount = parse_amount(text, kind=kind, currency=currency)
    assert amount == Decimal(text) and format(amount, "f") == text


# --- The model layer: full_clean refuses too ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["١٠", "１０", "1_000", "1e3", " 10", "+10", "-5", "NaN"])
@pytest.mark.parametrize(("model", "field"), [
    (Decision, "amount"), (Decision, "counted_amount"), (Grant, "per_case_limit"), (Grant, "period_limit"),
    (UsageCounter, "used"), (AuthorityKind, "confirmation_threshold"),
])
def test_full_clean_refuses_an_amount_column_given_text_that_is_not_plain(model, field, text):
    # given a row whose amount column holds text that is not plain ASCII decimal
    row = model(**{field: text})
    # when it is validated, then that column is refused
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert field in error.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["١٠", "１０", "1_000", "1e3", " 10", "+10"])
def test_a_money_column_refuses_text_that_is_not_plain(text):
    # given a customer that is valid but for an annual value that is not plain ASCII decimal text
    # when it is validated (django-money converts on assignment, so the refusal may come as the value is set)
    with pytest.raises(ValidationError) as error:
        Customer(name="Acme", customer_since=date(2020, 1, 1), annual_value=text).full_clean()
    # then the annual value is refused for its form
    assert "Write the annual value with the digits 0-9 and a dot" in str(error.value)


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "field"), [(Case, "amount_at_stake"), (Customer, "annual_value")])
def test_full_clean_refuses_a_negative_money_amount(model, field):
    from djmoney.money import Money

    with pytest.raises(ValidationError) as error:
        model(**{field: Money("-5", "EUR")}).full_clean()
    assert field in error.value.message_dict
