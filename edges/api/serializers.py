"""API serializers: they check the shape of input and render output; every rule lives in a service.

Input serializers end in `In`, query-string filters in `Query`; the rest render rows.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import DecimalValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from authority.models import AuthorityKind, Effect, Period, RequestStatus
from authority.quantities import currency_exponent
from h2h_core.amounts import MAX_AMOUNT_TEXT, PLAIN_DECIMAL_PATTERN, plain_decimal
from h2h_core.models import CaseCategory, CaseStatus, CustomerTier
from h2h_core.models.audit import Outcome

#: Database ids are 64-bit; anything larger cannot name a row.
MAX_ID = 2**63 - 1
TEXT_MAX = 4000


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


def currency_field(**kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=list(settings.CURRENCIES), **kwargs)


class KindField(serializers.SlugRelatedField):
    """An authority kind by code; anything that is not a slug is refused before the database sees it
    (PostgreSQL rejects NUL characters in text with an error, which must never become a 500)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _SLUG.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:40])
        return super().to_internal_value(data)


_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,40}")


def kind_field() -> serializers.SlugRelatedField:
    return KindField(slug_field="code", queryset=AuthorityKind.objects.all(),
                     help_text="An authority kind code: refund, goodwill_credit, fee_waiver, …")


# --- errors -----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one error shape."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, authority_denied.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.DictField(help_text="Field errors, the refusing verdict's reasons and headroom, …")


# --- auth -------------------------------------------------------------------------------------


class TokenIn(serializers.Serializer):
    username = text_field(max_length=150)
    password = text_field(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    managed_team_ids = serializers.ListField(child=serializers.IntegerField())


# --- kinds ------------------------------------------------------------------------------------


class KindOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField()
    confirmation_threshold = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)


# --- cases ------------------------------------------------------------------------------------


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
    owner = text_field(max_length=150, required=False, help_text="A username, or `me`.")
    team = serializers.SlugField(max_length=80, required=False)
    customer = id_field(required=False)
    min_stakes = serializers.IntegerField(min_value=0, max_value=100, required=False)


class HandoverIn(serializers.Serializer):
    to_user = text_field(max_length=150, help_text="Username of the agent of the case's team who takes over.")
    note = text_field(help_text="Context for the next owner; they read it first.")


class ResolveIn(serializers.Serializer):
    summary = text_field(help_text="The resolution, for the customer and the record.")


# --- verdicts and decisions -------------------------------------------------------------------


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
    approvers = serializers.ListField(child=serializers.CharField())


class DecisionIn(serializers.Serializer):
    case = id_field(help_text="The case's id; you must own it and it must be open.")
    kind = kind_field()
    amount = PlainAmountField(
        help_text="Exact amount as text, e.g. \"120.50\": money in its currency's minor digits.")
    currency = currency_field(required=False, allow_blank=True, default="",
                              help_text="For money kinds; leave empty for months, percent and counts.")
    rationale = text_field(help_text="Why: part of the record.")


class CheckIn(serializers.Serializer):
    case = id_field(help_text="The case's id.")
    kind = kind_field()
    amount = PlainAmountField()
    currency = currency_field(required=False, allow_blank=True, default="")


class DecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    case_reference = serializers.CharField(source="case.reference")
    agent = serializers.CharField(source="agent.username")
    kind = serializers.CharField(source="kind.code")
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField(allow_blank=True)
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


class DecisionQuery(serializers.Serializer):
    case = id_field(required=False)
    kind = serializers.SlugField(max_length=40, required=False)
    agent = text_field(max_length=150, required=False, help_text="A username, or `me`.")
    executed_after = serializers.DateTimeField(required=False)
    executed_before = serializers.DateTimeField(required=False)


# --- authority requests -----------------------------------------------------------------------


class RequestIn(serializers.Serializer):
    case = id_field(help_text="The case's id; you must own it.")
    kind = kind_field()
    amount = PlainAmountField()
    currency = currency_field(required=False, allow_blank=True, default="")
    justification = text_field(help_text="Why the customer needs this; the approver reads it.")


class RequestOut(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    case_reference = serializers.CharField(source="case.reference")
    requester = serializers.CharField(source="requester.username")
    kind = serializers.CharField(source="kind.code")
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField(allow_blank=True)
    justification = serializers.CharField()
    status = serializers.CharField()
    pool = serializers.ListField(child=serializers.IntegerField(), help_text="User ids who may decide it.")
    pool_is_fallback = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField(allow_blank=True)
    one_off_grant = serializers.IntegerField(source="one_off_grant_id", allow_null=True)
    verdict = VerdictOut(help_text="The requester's verdict when asking: how far over the limit.")


class RequestQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False)
    case = id_field(required=False)
    awaiting_me = serializers.BooleanField(required=False,
                                           help_text="true: only open requests I may approve.")
    mine = serializers.BooleanField(required=False,
                                    help_text="true: only requests I opened.")


class NoteIn(serializers.Serializer):
    note = text_field(required=False, allow_blank=True, default="")


class RejectIn(serializers.Serializer):
    note = text_field(help_text="The reason the agent will read.")


# --- grants -----------------------------------------------------------------------------------


class GrantTermsIn(serializers.Serializer):
    effect = serializers.ChoiceField(choices=Effect.choices, default=Effect.PERMIT)
    per_case_limit = PlainAmountField(required=False, allow_null=True, default=None)
    period_limit = PlainAmountField(required=False, allow_null=True, default=None)
    period = serializers.ChoiceField(choices=Period.choices, default=Period.NONE)
    currency = currency_field(required=False, allow_blank=True, default="")
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
    reason = text_field(help_text="Why this authority is given or changed.")


class GrantIn(GrantTermsIn):
    kind = kind_field()
    subject_user = text_field(max_length=150, required=False, help_text="A username; or give a team or a role.")
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
    subject_user = text_field(max_length=150, required=False)
    subject_team = serializers.SlugField(max_length=80, required=False)
    subject_role = text_field(max_length=150, required=False)
    lineage = id_field(required=False, help_text="Every version of one grant.")


# --- audit ------------------------------------------------------------------------------------


class AuditEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_username = serializers.CharField(allow_blank=True)
    actor_roles = serializers.ListField(child=serializers.CharField())
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    ip = serializers.CharField(allow_null=True)
    request_id = serializers.CharField(allow_blank=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditQuery(serializers.Serializer):
    action = text_field(max_length=64, required=False)
    actor = text_field(max_length=150, required=False, help_text="The actor's username.")
    object_type = text_field(max_length=64, required=False)
    object_id = text_field(max_length=64, required=False)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)
    occurred_after = serializers.DateTimeField(required=False)
    occurred_before = serializers.DateTimeField(required=False)


class CheckpointOut(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()
    signed_at = serializers.DateTimeField()
    key_fingerprint = serializers.CharField()
    signature_valid = serializers.BooleanField()
    matches_chain = serializers.BooleanField()
    current_key = serializers.BooleanField(allow_null=True)
    message = serializers.CharField()


class ChainReportOut(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    count = serializers.IntegerField(help_text="Entries verified intact.")
    total = serializers.IntegerField(help_text="Entries in the log.")
    first_bad_seq = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    last_seq = serializers.IntegerField()
    last_hash = serializers.CharField()
    last_time = serializers.DateTimeField(allow_null=True)
    checkpoints = CheckpointOut(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    verified_at = serializers.DateTimeField()
