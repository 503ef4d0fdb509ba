"""The dry-run check and its verdict, and what decisions and requests share: an amount of a kind on a case."""

from __future__ import annotations

from rest_framework import serializers

from .bound import represented
from .common import AmountField, PlainAmountField, currency_field, id_field, kind_field


class KindOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    confirmation_threshold = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)


def optional_currency_field(**kwargs) -> serializers.ChoiceField:
    """A currency for money kinds; empty for months, percent and counts."""
    return currency_field(required=False, allow_blank=True, default="", **kwargs)


class CheckIn(serializers.Serializer):
    case = id_field(help_text="The case's id.")
    kind = kind_field()
    amount = PlainAmountField()
    currency = optional_currency_field()


class GrantRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    lineage = serializers.IntegerField()
    version = serializers.IntegerField()
    level = serializers.CharField()
    effect = serializers.CharField()
    subject = serializers.CharField()


class VerdictOut(serializers.Serializer):
    """The answer to "may I decide K of amount X on case C now?" (decimals as exact text)."""

    allowed = serializers.BooleanField()
    kind = serializers.CharField()
    unit = serializers.CharField()
    amount = serializers.CharField()
    currency = serializers.CharField(allow_blank=True)
    evaluated_at = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    deciding_grants = GrantRefOut(many=True)
    level = serializers.CharField(allow_null=True)
    suspended = serializers.BooleanField()
    via_one_off = serializers.IntegerField(allow_null=True)
    counted_amount = serializers.CharField(allow_null=True)
    counted_currency = serializers.CharField(allow_blank=True)
    rate = serializers.CharField(allow_null=True)
    rate_date = serializers.CharField(allow_null=True)
    per_case_limit = serializers.CharField(allow_null=True)
    per_case_used = serializers.CharField(allow_null=True)
    per_case_headroom = serializers.CharField(allow_null=True)
    period = serializers.CharField()
    period_limit = serializers.CharField(allow_null=True)
    period_used = serializers.CharField(allow_null=True)
    period_headroom = serializers.CharField(allow_null=True)
    period_resets_at = serializers.CharField(allow_null=True)
    approvers = serializers.ListField(child=serializers.CharField(),
                                      help_text="Who may lift a refusal by approving a request: the one pool.")
    # Defaults: verdicts stored with decisions and requests before these existed lack them.
    approvers_are_fallback = serializers.BooleanField(
        read_only=True, default=False,
        help_text="true: nobody in the team's pool covers it, so the approvers are the fallback pool.")
    no_approver = serializers.CharField(
        read_only=True, default="",
        help_text="Why nobody can approve a request for it, and what to do instead; empty otherwise.")


def verdict_data(verdict) -> dict:
    """Return what `VerdictOut(verdict.as_dict()).data` returns, through one VerdictOut kept per process."""
    return represented(VerdictOut, verdict.as_dict())


class OnCaseOut(serializers.Serializer):
    """What a decision and a request both are: an amount of a kind on a case."""

    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    case_reference = serializers.CharField(source="case.reference")
    kind = serializers.CharField(source="kind.code")
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField(allow_blank=True)
