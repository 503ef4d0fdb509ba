"""Bad input becomes a ValidationError at the edge, never a 500 or a silently rounded amount."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authority import policy
from authority.models import AuthorityKind, Unit
from authority.quantities import convert, currency_exponent, format_quantity, parse_amount
from tests.factories import GrantFactory, kind, loaded_case

REFUND = AuthorityKind(code="refund", name="Refund", unit=Unit.MONEY)
EXTENSION = AuthorityKind(code="contract_extension", name="Contract extension", unit=Unit.MONTHS)
DISCOUNT = AuthorityKind(code="discount", name="Discount", unit=Unit.PERCENT)
KINDS = {"refund": REFUND, "contract_extension": EXTENSION, "discount": DISCOUNT}

BAD_AMOUNTS = [
    pytest.param("refund", "-10", "EUR", id="negative"),
    pytest.param("refund", Decimal("-0.01"), "EUR", id="negative-decimal"),
    pytest.param("refund", "0", "EUR", id="zero"),
    pytest.param("refund", "0.00", "EUR", id="zero-with-decimals"),
    pytest.param("refund", Decimal("-0"), "EUR", id="negative-zero"),
    pytest.param("refund", "NaN", "EUR", id="nan-text"),
    pytest.param("refund", float("nan"), "EUR", id="nan-float"),
    pytest.param("refund", "sNaN", "EUR", id="signalling-nan-text"),
    pytest.param("refund", Decimal("sNaN"), "EUR", id="signalling-nan-decimal"),
    pytest.param("refund", "Infinity", "EUR", id="infinity"),
    pytest.param("refund", "-Infinity", "EUR", id="minus-infinity"),
    pytest.param("refund", float("inf"), "EUR", id="infinity-float"),
    pytest.param("refund", "1" + "0" * 30, "EUR", id="absurdly-large"),
    pytest.param("refund", 10**30, "EUR", id="absurdly-large-int"),
    pytest.param("refund", "1000000000.01", "EUR", id="just-over-the-maximum"),
    pytest.param("refund", "1e99999999999999999999", "EUR", id="exponent-beyond-decimal-range"),
    pytest.param("refund", "10.001", "EUR", id="three-decimals-in-eur"),
    pytest.param("refund", "1e-3", "EUR", id="exponent"),
    pytest.param("refund", "1e3", "EUR", id="exponent-within-limits"),
    pytest.param("refund", "+10", "EUR", id="plus-sign"),
    pytest.param("refund", " 120.5 ", "EUR", id="surrounding-spaces"),
    pytest.param("refund", "\u00a010", "EUR", id="no-break-space"),
    pytest.param("refund", "١٠", "EUR", id="arabic-indic-digits"),
    pytest.param("refund", "１０", "EUR", id="fullwidth-digits"),
    pytest.param("refund", "1_000", "EUR", id="underscore"),
    pytest.param("refund", ".5", "EUR", id="no-leading-digit"),
    pytest.param("refund", "5.", "EUR", id="no-trailing-digit"),
    pytest.param("refund", "-0", "EUR", id="minus-zero-text"),
    pytest.param("refund", 0.1, "EUR", id="float"),
    pytest.param("refund", "1" * 41, "EUR", id="too-long"),
    pytest.param("refund", "1.5", "JPY", id="decimals-in-jpy"),
    pytest.param("refund", "0.0001", "KWD", id="four-decimals-in-kwd"),
    pytest.param("contract_extension", "1.5", None, id="fractional-months"),
    pytest.param("contract_extension", "-1", None, id="negative-months"),
    pytest.param("discount", "100.01", None, id="percent-over-100"),
    pytest.param("discount", "150", None, id="percent-far-over-100"),
    pytest.param("discount", "12.345", None, id="percent-with-three-decimals"),
    pytest.param("refund", "10", "EUX", id="unknown-currency"),
    pytest.param("refund", "10", "eur", id="lower-case-currency"),
    pytest.param("refund", "10", "", id="empty-currency"),
    pytest.param("refund", "10", None, id="missing-currency"),
    pytest.param("refund", "10", "EURO", id="four-letter-currency"),
    pytest.param("refund", "10", "XXX", id="no-currency-code"),
    pytest.param("refund", "10", 978, id="numeric-currency"),
    pytest.param("contract_extension", "2", "EUR", id="currency-for-months"),
    pytest.param("discount", "5", "EUR", id="currency-for-percent"),
    pytest.param("refund", "ten", "EUR", id="words"),
    pytest.param("refund", "12,50", "EUR", id="decimal-comma"),
    pytest.param("refund", "1 000", "EUR", id="inner-space"),
    pytest.param("refund", "0x10", "EUR", id="hexadecimal"),
    pytest.param("refund", "12 EUR", "EUR", id="number-with-currency"),
    pytest.param("refund", "", "EUR", id="empty-string"),
    pytest.param("refund", "   ", "EUR", id="blank-string"),
    pytest.param("refund", True, "EUR", id="true"),
    pytest.param("refund", False, "EUR", id="false"),
    pytest.param("refund", None, "EUR", id="none"),
    pytest.param("refund", [10], "EUR", id="list"),
    pytest.param("refund", {"amount": 10}, "EUR", id="dict"),
    pytest.param("refund", b"10", "EUR", id="bytes"),
]


@pytest.mark.parametrize(("kind_code", "value", "currency"), BAD_AMOUNTS)
def test_parse_amount_rejects_bad_input_with_a_validation_error(kind_code, value, currency):
    # given a bad amount or currency, when it is parsed, then a ValidationError (and nothing else) says why
    with pytest.raises(ValidationError) as error:
        parse_amount(value, kind=KINDS[kind_code], currency=currency)
    assert error.value.messages


@pytest.mark.parametrize(
    ("kind_code", "value", "currency", "expected"),
    [
        pytest.param("refund", "120.50", "EUR", Decimal("120.50"), id="eur-cents"),
        pytest.param("refund", 120, "EUR", Decimal("120"), id="int"),
        pytest.param("refund", Decimal("1E+3"), "EUR", Decimal("1000"), id="decimal-from-python"),
        pytest.param("refund", "0.5", "EUR", Decimal("0.5"), id="below-one"),
        pytest.param("refund", "10.000", "EUR", Decimal("10"), id="trailing-zeros"),
        pytest.param("refund", "1500", "JPY", Decimal("1500"), id="whole-yen"),
        pytest.param("refund", "0.125", "KWD", Decimal("0.125"), id="kwd-fils"),
        pytest.param("refund", "1000000000", "EUR", Decimal("1000000000"), id="the-maximum"),
        pytest.param("contract_extension", "3", None, Decimal("3"), id="whole-months"),
        pytest.param("contract_extension", "3", "", Decimal("3"), id="months-with-empty-currency"),
        pytest.param("discount", "12.5", None, Decimal("12.5"), id="percent"),
        pytest.param("discount", "100", None, Decimal("100"), id="percent-100"),
    ],
)
def test_parse_amount_accepts_exact_valid_amounts(kind_code, value, currency, expected):
    # given a valid amount, when it is parsed, then the exact value comes back
    assert parse_amount(value, kind=KINDS[kind_code], currency=currency) == expected


@given(
    kind_obj=st.sampled_from(list(KINDS.values())),
    value=st.one_of(
        st.text(max_size=30),
        st.from_regex(r"\A[-+]?\d{0,12}(\.\d{0,5})?([eE][-+]?\d{1,25})?\Z"),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.floats(),
        st.integers(),
        st.none(),
        st.booleans(),
    ),
    currency=st.one_of(st.none(), st.sampled_from(["EUR", "JPY", "KWD", "", "eur", "EUX"]), st.text(max_size=4)),
)
@settings(max_examples=300, deadline=None)
def test_parse_amount_returns_a_valid_amount_or_raises_a_validation_error(kind_obj, value, currency):
    # given anything at all, when it is parsed
    try:
        amount = parse_amount(value, kind=kind_obj, currency=currency)
    except ValidationError:
        return
    # then what comes back is a finite positive decimal the unit can carry
    assert isinstance(amount, Decimal) and amount.is_finite() and amount > 0
    places = currency_exponent(currency) if kind_obj.unit == Unit.MONEY else 2 if kind_obj.unit == Unit.PERCENT else 0
    assert amount == amount.quantize(Decimal(1).scaleb(-places))


# --- Through evaluate ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def case(alice, case_owned_by_alice):
    # alice may decide every kind generously, so only the input can make evaluate fail
    for code, currency in [("refund", "EUR"), ("contract_extension", ""), ("discount", "")]:
        GrantFactory(subject_user=alice, kind=kind(code), currency=currency, per_case_limit=None, period_limit=None)
    return loaded_case(case_owned_by_alice)


@pytest.mark.django_db
@pytest.mark.parametrize(("kind_code", "value", "currency"), BAD_AMOUNTS)
def test_evaluate_rejects_bad_amounts_with_a_validation_error(alice, case, kind_code, value, currency):
    # given a bad amount or currency, when alice asks about it, then a ValidationError says why
    with pytest.raises(ValidationError):
        policy.evaluate(agent=alice, kind=kind(kind_code), amount=value, currency=currency, case=case,
                        at=datetime(2026, 5, 14, tzinfo=UTC))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "at",
    [
        pytest.param(datetime(1900, 1, 1, tzinfo=UTC), id="year-1900"),
        pytest.param(datetime(2300, 1, 1, tzinfo=UTC), id="year-2300"),
        pytest.param(datetime(1, 1, 1, tzinfo=UTC), id="year-1"),
        pytest.param(datetime(9999, 12, 31, 23, 59, tzinfo=UTC), id="year-9999"),
        pytest.param(datetime(2026, 5, 14, 10, 0), id="naive-datetime"),
        pytest.param(date(2026, 5, 14), id="a-date-not-an-instant"),
        pytest.param("2026-05-14T10:00:00Z", id="text"),
        pytest.param(1778752800, id="epoch-seconds"),
    ],
)
def test_evaluate_rejects_instants_it_cannot_place(alice, case, at):
    # given an instant out of range, without a time zone or not an instant at all
    # when alice asks about a valid amount at it, then a ValidationError says why
    with pytest.raises(ValidationError) as error:
        policy.evaluate(agent=alice, kind=kind("refund"), amount="10", currency="EUR", case=case, at=at)
    assert "at" in error.value.message_dict


@pytest.mark.django_db
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    value=st.one_of(st.text(max_size=12), st.decimals(allow_nan=True, allow_infinity=True), st.floats(),
                    st.none(), st.booleans()),
    currency=st.one_of(st.none(), st.sampled_from(["EUR", "JPY", "", "eur", "EUX"])),
)
def test_evaluate_answers_or_raises_a_validation_error_for_any_input(alice, case, value, currency):
    # given anything as amount and currency, when alice asks, then she gets a verdict or a ValidationError
    try:
        verdict = policy.evaluate(agent=alice, kind=kind("refund"), amount=value, currency=currency, case=case,
                                  at=datetime(2026, 5, 14, tzinfo=UTC))
    except ValidationError:
        return
    assert verdict.amount > 0


# --- Conversion and display ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "places"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3)],
)
def test_currency_exponent_is_the_iso_4217_minor_unit(code, places):
    # given a currency, when its minor unit is asked, then ISO 4217 answers
    assert currency_exponent(code) == places


@pytest.mark.parametrize(
    ("amount", "rate", "currency", "expected"),
    [
        pytest.param("10.01", "160.555", "JPY", "1608", id="jpy-up-to-whole-yen"),
        pytest.param("10.00", "160", "JPY", "1600", id="jpy-exact-stays"),
        pytest.param("1.00", "0.3333", "KWD", "0.334", id="kwd-up-to-fils"),
        pytest.param("10.00", "1.08371", "USD", "10.84", id="usd-up-to-cents"),
        pytest.param("0.01", "0.0001", "USD", "0.01", id="tiny-never-rounds-to-zero"),
    ],
)
def test_conversion_rounds_up_to_the_target_minor_unit(amount, rate, currency, expected):
    # given an amount and a rate, when converted, then the result is rounded up, never down
    result = convert(Decimal(amount), rate=Decimal(rate), to_currency=currency)
    assert result == Decimal(expected) and str(result) == expected


@pytest.mark.parametrize(
    ("value", "unit", "currency", "text"),
    [
        pytest.param(Decimal("100"), Unit.MONEY, "EUR", "100.00 EUR", id="eur"),
        pytest.param(Decimal("1200.5"), Unit.MONEY, "EUR", "1,200.50 EUR", id="eur-thousands"),
        pytest.param(Decimal("1608"), Unit.MONEY, "JPY", "1,608 JPY", id="jpy"),
        pytest.param(Decimal("1"), Unit.MONTHS, "", "1 month", id="one-month"),
        pytest.param(Decimal("3"), Unit.MONTHS, "", "3 months", id="months"),
        pytest.param(Decimal("12.50"), Unit.PERCENT, "", "12.5%", id="percent"),
        pytest.param(None, Unit.MONEY, "EUR", "no limit", id="no-limit"),
    ],
)
def test_quantities_read_naturally(value, unit, currency, text):
    # given a quantity, when formatted for people, then it reads naturally
    assert format_quantity(value, unit=unit, currency=currency) == text
