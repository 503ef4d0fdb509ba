"""The one lexical parser of amounts (h2h_core.amounts): plain ASCII decimal text, nothing else."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from authority.models import Decision
from h2h_core.amounts import (
    MAX_AMOUNT_TEXT,
    PLAIN_DECIMAL_PATTERN,
    AmountFormField,
    plain_decimal,
    validate_plain_amount,
)
from h2h_core.models import Case


@pytest.mark.parametrize(("value", "expected"), [
    ("0", "0"), ("10", "10"), ("10.50", "10.50"), ("0.5", "0.5"), ("1" * MAX_AMOUNT_TEXT, "1" * MAX_AMOUNT_TEXT),
    (Decimal("1E+3"), "1000"), (Decimal("12.30"), "12.30"), (7, "7"),
])
def test_plain_text_and_the_domains_own_numbers_are_read_exactly(value, expected):
    # given plain text, a Decimal or an int, when it is read, then the exact decimal comes back
    assert format(plain_decimal(value), "f") == expected


@pytest.mark.parametrize("value", [
    "", " ", "١٠", "１０", "1_000", "1e3", " 10", "+10", "-10", "-0", ".5", "5.", "1.2.3", "NaN", "Infinity",
    "10\n", "1" * (MAX_AMOUNT_TEXT + 1), Decimal("-1"), Decimal("-0"), Decimal("NaN"), Decimal("sNaN"),
    Decimal("Infinity"), -1, True, False, 1.5, None, b"10", [10],
])
def test_anything_else_is_refused_with_one_flat_message(value):
    with pytest.raises(ValidationError) as error:
        plain_decimal(value, label="per-case limit")
    assert not hasattr(error.value, "error_dict") and error.value.code == "amount"
    assert "per-case limit" in error.value.messages[0]


def test_the_message_names_the_field_and_the_expected_form():
    with pytest.raises(ValidationError) as error:
        plain_decimal("١٠", label="amount")
    assert error.value.messages == ["'١٠' is not a plain number. Write the amount with the digits 0-9 and a dot, "
                                    "e.g. 1250.50."]


def test_the_documented_pattern_is_the_form_the_parser_reads():
    import re

    documented = re.compile(PLAIN_DECIMAL_PATTERN, re.ASCII)
    for text in ("10", "10.50", "0.5"):
        assert documented.match(text) and plain_decimal(text)
    for text in ("+10", ".5", "5.", "1e3"):
        assert not documented.match(text)


def test_the_model_validator_refuses_negative_and_accepts_none():
    validate_plain_amount(None)
    validate_plain_amount(Decimal("0"))
    with pytest.raises(ValidationError):
        validate_plain_amount(Decimal("-0.01"))


@pytest.mark.parametrize(("model", "field", "path"), [
    (Decision, "amount", "django.db.models.DecimalField"),
    (Case, "amount_at_stake", "djmoney.models.fields.MoneyField"),
])
def test_amount_columns_stay_plain_columns_for_migrations(model, field, path):
    # the subclasses only check input: migrations keep recording the parent field
    assert model._meta.get_field(field).deconstruct()[1] == path


@pytest.mark.parametrize("text", ["١٠", "１０", "1_000", "1e3", " 10", "+10"])
def test_a_model_form_of_an_amount_column_uses_the_one_form_field(text):
    # given a model form over grant limits (as the admin would build one)
    from django import forms

    from authority.models import Grant

    class LimitsForm(forms.ModelForm):
        class Meta:
            model = Grant
            fields = ["per_case_limit", "period_limit"]

    # when a limit is not plain, then the form refuses it for its form
    form = LimitsForm(data={"per_case_limit": text, "period_limit": "900"})
    assert isinstance(form.fields["per_case_limit"], AmountFormField)
    assert not form.is_valid() and "with the digits 0-9 and a dot" in form.errors["per_case_limit"][0]
