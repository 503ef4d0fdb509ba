"""Cases: opening, filtering, handing over and resolving them."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from h2h_core.models import CaseCategory, CaseStatus
from workflows.case_search import SLA_CHOICES, SORT_CHOICES

from .common import PlainAmountField, amount_text, currency_field, id_field, text_field, username_field


class CustomerRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tier = serializers.CharField()


class CaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    subject = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    status = serializers.CharField()
    customer = CustomerRef()
    team = serializers.CharField(source="team.slug", allow_null=True)
    owner = serializers.CharField(source="owner.username", allow_null=True)
    amount_at_stake = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    stakes_score = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_due = serializers.DateTimeField(allow_null=True)
    resolution_due = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    sla_breached = serializers.BooleanField()
    resolution_summary = serializers.CharField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_amount_at_stake(self, case) -> str:
        return amount_text(case.amount_at_stake.amount, str(case.amount_at_stake.currency))

    @extend_schema_field(OpenApiTypes.STR)
    def get_currency(self, case) -> str:
        return str(case.amount_at_stake.currency)


class CaseIn(serializers.Serializer):
    customer = id_field(help_text="The customer's id.")
    subject = text_field(max_length=200)
    description = text_field(max_length=10000, required=False, allow_blank=True, default="")
    category = serializers.ChoiceField(choices=CaseCategory.choices)
    amount_at_stake = PlainAmountField(max_digits=16, decimal_places=2)
    currency = currency_field()


class CaseQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    open = serializers.BooleanField(required=False,
                                    help_text="true: new, queued or owned; false: resolved or closed.")
    category = serializers.ChoiceField(choices=CaseCategory.choices, required=False)
    owner = username_field(required=False, help_text="A username, or `me`.")
    team = serializers.SlugField(max_length=80, required=False)
    customer = id_field(required=False)
    min_stakes = serializers.IntegerField(min_value=0, max_value=100, required=False)
    # The same search, SLA state, approval wait and sort as the agent's case list.
    q = serializers.CharField(max_length=200, required=False,
                              help_text="Reference, subject or customer name/e-mail (case-insensitive).")
    sla = serializers.ChoiceField(choices=SLA_CHOICES, required=False)
    waiting = serializers.BooleanField(required=False, help_text="true: has an open authority request.")
    sort = serializers.ChoiceField(choices=SORT_CHOICES, required=False)


class HandoverIn(serializers.Serializer):
    to_user = username_field(help_text="Username of the agent of the case's team who takes over.")
    note = text_field(help_text="Context for the next owner; they read it first.")


class ResolveIn(serializers.Serializer):
    summary = text_field(help_text="The resolution, for the customer and the record.")
