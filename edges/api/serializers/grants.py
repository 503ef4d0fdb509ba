"""Grants: versioned authority, changed by writing a new version (maker-checker above a threshold)."""

from __future__ import annotations

from rest_framework import serializers

from authority.models import Effect, Period
from h2h_core.models import CaseCategory, CustomerTier

from .common import AmountField, PlainAmountField, id_field, kind_field, text_field, username_field
from .verdicts import optional_currency_field


class GrantTermsIn(serializers.Serializer):
    effect = serializers.ChoiceField(choices=Effect.choices, default=Effect.PERMIT)
    per_case_limit = PlainAmountField(required=False, allow_null=True, default=None)
    period_limit = PlainAmountField(required=False, allow_null=True, default=None)
    period = serializers.ChoiceField(choices=Period.choices, default=Period.NONE)
    currency = optional_currency_field()
    # Plain strings, checked by the service: an enum here would repeat the case category enum under a second
    # name, which drf-spectacular reports as a warning (and `check --deploy` fails on warnings).
    scope_categories = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, default=list,
        max_length=len(CaseCategory.choices),
        help_text="Case categories the grant is limited to (empty: all): " + ", ".join(CaseCategory.values) + ".")
    scope_tiers = serializers.ListField(child=serializers.ChoiceField(choices=CustomerTier.choices),
                                        required=False, default=list, max_length=len(CustomerTier.choices))
    valid_from = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="Default: now. With a time zone.")
    valid_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    shadow = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="Shadow (log only): decisions under the grant are recorded as what they would have been, never "
                  "executed, and consume no usage. Permits only. A new grant is live unless true; a change keeps the "
                  "grant's mode unless given. Moving between shadow and live always waits for a second manager.")
    reason = text_field(help_text="Why this authority is given or changed.")


class GrantIn(GrantTermsIn):
    kind = kind_field()
    subject_user = username_field(required=False, help_text="A username; or give a team or a role.")
    subject_team = serializers.SlugField(max_length=80, required=False, help_text="A team slug.")
    subject_role = text_field(max_length=150, required=False, help_text="A role: Agent, Senior agent, Manager, …")


class ReasonIn(serializers.Serializer):
    reason = text_field()


class GrantStateOut(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["pending", "rejected", "voided", "scheduled", "active", "expired", "superseded", "ended"],
        help_text="What this version is now (the same state every page shows).")
    at = serializers.DateTimeField(
        allow_null=True, help_text="When: rejected, voided, expired, superseded or ended at; for a scheduled "
                                   "version its start; for an active one the end of its validity, if any.")
    version = serializers.IntegerField(allow_null=True, help_text="The version that superseded it (or will).")
    until = serializers.DateTimeField(allow_null=True, help_text="When a confirmed later version takes over.")


class GrantOut(serializers.Serializer):
    id = serializers.IntegerField()
    lineage = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField()
    status = serializers.CharField(help_text="The lifecycle status of this version: pending, active, rejected "
                                             "or voided. `state` says whether it is in force now.")
    state = GrantStateOut(read_only=True)
    supersedes = serializers.IntegerField(source="supersedes_id", allow_null=True)
    subject = serializers.CharField(source="subject_label")
    level = serializers.CharField()
    subject_user = serializers.CharField(source="subject_user.username", allow_null=True)
    subject_team = serializers.CharField(source="subject_team.slug", allow_null=True)
    subject_role = serializers.CharField(source="subject_role.name", allow_null=True)
    case = serializers.IntegerField(source="case_id", allow_null=True, help_text="Set on one-off grants.")
    kind = serializers.CharField(source="kind.code")
    effect = serializers.CharField()
    shadow = serializers.BooleanField(help_text="Shadow (log only): evaluated and recorded, never executed.")
    per_case_limit = AmountField(amount_attr="per_case_limit", currency_attr="currency")
    period_limit = AmountField(amount_attr="period_limit", currency_attr="currency")
    period = serializers.CharField()
    currency = serializers.CharField(allow_blank=True)
    scope_categories = serializers.ListField(child=serializers.CharField())
    scope_tiers = serializers.ListField(child=serializers.CharField())
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)
    granted_by = serializers.CharField(source="granted_by.username", allow_null=True)
    confirmed_by = serializers.CharField(source="confirmed_by.username", allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    superseded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()


class GrantQuery(serializers.Serializer):
    at = serializers.DateTimeField(required=False, help_text="Only the grants in force at this instant.")
    kind = serializers.SlugField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=[("pending", "Pending confirmation"), ("active", "Active"),
                                              ("rejected", "Rejected"), ("voided", "Voided (the grant was ended)")],
                                     required=False)
    subject_user = username_field(required=False)
    subject_team = serializers.SlugField(max_length=80, required=False)
    subject_role = text_field(max_length=150, required=False)
    lineage = id_field(required=False, help_text="Every version of one grant.")
