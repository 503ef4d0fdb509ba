"""The one lexical parser of amounts: every amount, from any edge, is plain ASCII decimal text.

An amount is written with the digits 0-9 and at most one dot that has digits on both sides:
"1250.50", "0.5", "12". Everything else is refused before anything converts it: a sign ("+10",
"-5"), an exponent ("1e3"), grouping ("1,000", "1_000", "1 000"), whitespace of any kind around or
inside it (spaces, NBSP, thin spaces, newlines), digits of other scripts ("١٠", "１０"), "NaN" and
"Infinity", a dot missing digits on one side (".5", "5."), and text longer than 40 characters.
Python's Decimal() and DRF's DecimalField accept much of that, so nothing turns text into a Decimal
before `plain_decimal` has said the text is plain.

Python callers may pass a Decimal or an int (the domain's own values); they are written out as
decimal text and must then read as plain too, so negatives, NaN and infinities fail here as well.
A float or a bool is refused: a float is binary (the amount it was written as is lost), and `True`
is not 1 of anything. Units, currencies, limits and zero are `authority.quantities.parse_amount`'s.

The edges read amounts through it: `AmountFormField` here (every form, and the model forms of the
amount columns), the API's `PlainAmountField`. The amount columns are `AmountField` and
`MoneyAmountField`, so text assigned to them and `full_clean` go through it too.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import models
from djmoney.models.fields import MoneyField

#: For schemas and documentation; `_PLAIN` is the same form, matched against the whole text.
PLAIN_DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
#: Far more than any amount the columns hold (19 digits); a longer text is refused before matching.
MAX_AMOUNT_TEXT = 40
EXAMPLE = "1250.50"


def how_to_write(label: str) -> str:
    return f"Write the {label} with the digits 0-9 and a dot, e.g. {EXAMPLE}."


def plain_decimal(value, *, label: str = "amount") -> Decimal:
    """Return the exact Decimal that plain ASCII decimal text `value` spells, or raise ValidationError.

    The error is a flat message (code "amount") that names `label` and the expected form.
    """
    if isinstance(value, bool):
        raise _refusal(f"{str(value).lower()} is not an amount. {how_to_write(label)}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _refusal(f"The {label} must be a finite number. {how_to_write(label)}")
        text = format(value, "f")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        raise _refusal(f"Give the {label} as text, not a binary floating-point number. {how_to_write(label)}")
    elif isinstance(value, str):
        text = value
    elif value is None:
        raise _refusal(f"Give the {label}. {how_to_write(label)}")
    else:
        raise _refusal(f"A {type(value).__name__} is not an amount. {how_to_write(label)}")
    if not text:
        raise _refusal(f"Give the {label}. {how_to_write(label)}")
    if len(text) > MAX_AMOUNT_TEXT:
        raise _refusal(f"The {label} is too long: at most {MAX_AMOUNT_TEXT} characters. {how_to_write(label)}")
    if not _PLAIN.fullmatch(text):
        raise _refusal(f"{text!r} is not a plain number. {how_to_write(label)}")
    return Decimal(text)


def _refusal(message: str) -> ValidationError:
    return ValidationError(message, code="amount")


def validate_plain_amount(value) -> None:
    """Refuse an amount (a Decimal, or a Money's amount) that is not a plain non-negative decimal."""
    if value is None:
        return
    plain_decimal(getattr(value, "amount", value))


class AmountFormField(forms.Field):
    """The one form field for amounts, on every page and in every model form: plain text in, a Decimal out.

    Empty is None. Nothing is trimmed, so " 10" is refused here as it is by the API. The service then
    applies the rules of the kind's unit and currency (authority.quantities.parse_amount).
    """

    widget = forms.TextInput

    def __init__(self, *, max_digits: int | None = None, decimal_places: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if max_digits is not None:
            self.validators.append(DecimalValidator(max_digits, decimal_places))

    def to_python(self, value) -> Decimal | None:
        if value in self.empty_values:
            return None
        return plain_decimal(value, label=str(self.label or "amount").lower())

    def prepare_value(self, value):
        return format(value, "f") if isinstance(value, Decimal) else value

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        if not widget.is_hidden:
            attrs.update({"inputmode": "decimal", "autocomplete": "off", "maxlength": str(MAX_AMOUNT_TEXT)})
        return attrs


class _PlainAmountInput:
    """Model field mixin: text assigned to the field passes `plain_decimal`; full_clean runs
    `validate_plain_amount`. The column is unchanged, so migrations record the parent class."""

    default_validators = [validate_plain_amount]
    parent_path: str

    def to_python(self, value):
        if isinstance(value, str):
            value = plain_decimal(value, label=str(self.verbose_name))
        return super().to_python(value)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, self.parent_path, args, kwargs


class AmountField(_PlainAmountInput, models.DecimalField):
    """A DecimalField that holds an amount (or a limit, or a usage counter)."""

    parent_path = "django.db.models.DecimalField"

    def formfield(self, **kwargs):
        defaults = {"form_class": AmountFormField, "max_digits": self.max_digits,
                    "decimal_places": self.decimal_places}
        return models.Field.formfield(self, **{**defaults, **kwargs})


class MoneyAmountField(_PlainAmountInput, MoneyField):
    """A django-money MoneyField that holds an amount."""

    parent_path = "djmoney.models.fields.MoneyField"
