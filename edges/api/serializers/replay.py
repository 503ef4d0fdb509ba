"""The policy replay of a pending grant change: what it would have decided differently."""

from __future__ import annotations

from types import SimpleNamespace

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from authority.reports.replay import DEFAULT_DAYS, MAX_DAYS

from .common import AmountField


class ReplayQuery(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, required=False, default=DEFAULT_DAYS,
                                    help_text="How many days of history to replay, up to now.")


class ReplayTotalOut(serializers.Serializer):
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField()


class ReplayRowOut(serializers.Serializer):
    case_id = serializers.IntegerField()
    case_reference = serializers.CharField()
    agent = serializers.CharField()
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField()
    at = serializers.DateTimeField()
    status = serializers.CharField(help_text="A request's status; blank for refusals and decisions.")
    reason = serializers.CharField(help_text="The first reason of the answer under the proposed terms.")


class ReplayEffectOut(serializers.Serializer):
    count = serializers.IntegerField()
    totals = serializers.SerializerMethodField()
    examples = ReplayRowOut(many=True)

    @extend_schema_field(ReplayTotalOut(many=True))
    def get_totals(self, effect) -> list[dict]:
        rows = [SimpleNamespace(amount=amount, currency=currency) for currency, amount in sorted(effect.totals.items())]
        return ReplayTotalOut(rows, many=True).data


class ReplayOut(serializers.Serializer):
    grant = serializers.IntegerField(source="pending.pk")
    replaces = serializers.IntegerField(source="replaced.pk", allow_null=True, default=None)
    kind = serializers.CharField(source="kind.code")
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    agents = serializers.IntegerField(help_text="The agents the grant speaks for (never a team's AI agents).")
    examined = serializers.IntegerField(help_text="Historical rows replayed.")
    limit = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="True when older rows beyond `limit` were left out.")
    summary = serializers.CharField()
    allowed_refusals = ReplayEffectOut()
    avoided_requests = ReplayEffectOut()
    refused_decisions = ReplayEffectOut()
