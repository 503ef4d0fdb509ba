"""Fields every resource shares (amounts as exact text, ids, bounded text, kinds) and the one error shape."""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import DecimalValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from authority.catalog import kind_for_code
from authority.models import AuthorityKind
from authority.quantities import currency_exponent
from h2h_core.amounts import MAX_AMOUNT_TEXT, PLAIN_DECIMAL_PATTERN, plain_decimal

#: Database ids are 64-bit; anything larger cannot name a row.
MAX_ID = 2**63 - 1
TEXT_MAX = 4000
USERNAME_MAX = 150


def amount_text(value: Decimal | None, currency: str = "") -> str | None:
    """Render an exact amount as text: money with its currency's minor digits, other units without trailing zeros."""
    if value is None:
        return None
    if currency:
        places = currency_exponent(currency)
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    normalized = value.normalize()
    return format(normalized.quantize(Decimal(1)) if normalized == normalized.to_integral_value() else normalized, "f")


@extend_schema_field({"type": "string", "pattern": PLAIN_DECIMAL_PATTERN, "example": "200.00", "nullable": True})
class AmountField(serializers.Field):
    """Read-only: the amount in `amount_attr`, formatted for the currency in `currency_attr`."""

    def __init__(self, *, amount_attr: str, currency_attr: str, **kwargs):
        self.amount_attr, self.currency_attr = amount_attr, currency_attr
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value):
        return amount_text(getattr(value, self.amount_attr), getattr(value, self.currency_attr) or "")


@extend_schema_field({"type": "string", "pattern": PLAIN_DECIMAL_PATTERN, "maxLength": MAX_AMOUNT_TEXT,
                      "example": "120.50"})
class PlainAmountField(serializers.Field):
    """Every amount or limit in: a JSON string of plain ASCII decimal text ("120.50"), read by the one parser
    (h2h_core.amounts.plain_decimal) into an exact Decimal.

    A JSON number is refused, integers included: JSON parsers read numbers as binary floats (10.1 is then not
    exactly 10.1, and 1e3, 1000.0 and 1000 look alike), so an amount is always text, in one form. `true` is
    not 1. The service then applies the rules of the kind's unit and currency (authority.quantities).
    """

    default_error_messages = {
        "not_text": 'Send the {label} as a JSON string of digits and a dot, e.g. "1250.50", not {given}.',
    }

    def __init__(self, *, max_digits: int | None = None, decimal_places: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if max_digits is not None:
            self.validators.append(DecimalValidator(max_digits, decimal_places))

    @property
    def label_text(self) -> str:
        return (self.field_name or "amount").replace("_", " ")

    def to_internal_value(self, data) -> Decimal:
        if not isinstance(data, str):
            given = ("true or false" if isinstance(data, bool) else "a JSON number" if isinstance(data, int | float)
                     else "a JSON array" if isinstance(data, list) else "a JSON object")
            self.fail("not_text", label=self.label_text, given=given)
        try:
            return plain_decimal(data, label=self.label_text)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def to_representation(self, value) -> str:
        return format(value, "f")


def id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def text_field(*, max_length: int = TEXT_MAX, **kwargs) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, **kwargs)


def username_field(**kwargs) -> serializers.CharField:
    return text_field(max_length=USERNAME_MAX, **kwargs)


def currency_field(**kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=list(settings.CURRENCIES), **kwargs)


_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,40}")


class KindField(serializers.SlugRelatedField):
    """An authority kind by code; anything that is not a slug is refused before the database sees it
    (PostgreSQL rejects NUL characters in text with an error, which must never become a 500)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _SLUG.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:40])
        kind = kind_for_code(data)  # the process's copy of the kinds, not a query per request
        if kind is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return kind


def kind_field() -> serializers.SlugRelatedField:
    return KindField(slug_field="code", queryset=AuthorityKind.objects.all(),
                     help_text="An authority kind code: refund, goodwill_credit, fee_waiver, …")


class ErrorSerializer(serializers.Serializer):
    """The one error shape."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, authority_denied.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(help_text="Field errors, the refusing verdict's reasons and headroom, …")
