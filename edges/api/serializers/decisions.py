"""Decisions: executing one on a case, and reading them with the verdict that allowed them."""

from __future__ import annotations

from rest_framework import serializers

from .common import AmountField, PlainAmountField, id_field, kind_field, text_field, username_field
from .verdicts import OnCaseOut, VerdictOut, optional_currency_field


class DecisionIn(serializers.Serializer):
    case = id_field(help_text="The case's id; you must own it and it must be open.")
    kind = kind_field()
    amount = PlainAmountField(
        help_text="Exact amount as text, e.g. \"120.50\": money in its currency's minor digits.")
    currency = optional_currency_field(help_text="For money kinds; leave empty for months, percent and counts.")
    rationale = text_field(help_text="Why: part of the record.")


class DecisionOut(OnCaseOut):
    agent = serializers.CharField(source="agent.username")
    counted_amount = AmountField(amount_attr="counted_amount", currency_attr="counted_currency")
    counted_currency = serializers.CharField(allow_blank=True)
    rate = serializers.DecimalField(max_digits=20, decimal_places=10, allow_null=True)
    rate_date = serializers.DateField(allow_null=True)
    grant = serializers.IntegerField(source="grant_id", help_text="The exact grant version that allowed it.")
    request = serializers.IntegerField(source="request_id", allow_null=True,
                                       help_text="The approved authority request, when a one-off grant allowed it.")
    rationale = serializers.CharField()
    executed_at = serializers.DateTimeField()
    verdict = VerdictOut()
    reversed_at = serializers.DateTimeField(
        allow_null=True, help_text="When a manager reversed it; the usage it consumed stays consumed.")
    reversed_by = serializers.CharField(source="reversed_by.username", allow_null=True, default=None)
    reversal_reason = serializers.CharField(allow_blank=True)


class ReverseIn(serializers.Serializer):
    reason = text_field(help_text="Why the decision is reversed: part of the record.")


class DecisionQuery(serializers.Serializer):
    case = id_field(required=False)
    kind = serializers.SlugField(max_length=40, required=False)
    agent = username_field(required=False, help_text="A username, or `me`.")
    executed_after = serializers.DateTimeField(required=False)
    executed_before = serializers.DateTimeField(required=False)
