"""The tools of an AI agent: take a case, check an action, decide, hand off; and who the agent is.

Inputs follow the rest of the API (amounts as exact text, a kind by code); outputs are compact and
the same for every tool, so an agent's tool-calling loop reads one shape:
{"outcome", "case", "decision", "shadow_decision", "hand_off", "reasons"}.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import serializers

from h2h_core.models import CaseCategory

from .common import AmountField, PlainAmountField, id_field, kind_field, text_field
from .verdicts import VerdictOut, optional_currency_field

#: The transcript a hand-off carries: at most this many lines, each at most TRANSCRIPT_TEXT_MAX characters.
TRANSCRIPT_MAX_LINES = 200
TRANSCRIPT_TEXT_MAX = 4000
SUMMARY_MAX = 4000

# `from` is a Python keyword, so the line's fields are declared through a mapping.
TranscriptLineIn = type("TranscriptLineIn", (serializers.Serializer,), {
    "__doc__": "One line of the conversation, as the AI agent saw it.",
    "from": serializers.ChoiceField(choices=[("customer", "customer"), ("ai", "ai")],
                                    help_text="Who said it: `customer` or `ai`."),
    "text": text_field(max_length=TRANSCRIPT_TEXT_MAX, trim_whitespace=False),
})


def confidence_field(**kwargs) -> PlainAmountField:
    """A stated confidence: text like an amount ("0.92"), from 0 to 1 with at most three decimals."""
    field = PlainAmountField(
        max_digits=4, decimal_places=3,
        help_text="How sure the AI agent is, as text from \"0\" to \"1\" (at most three decimals), e.g. "
                  "\"0.92\". Below the agent's min_confidence the case goes to a person.", **kwargs)
    field.validators += [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))]
    return field


class HandOffContextIn(serializers.Serializer):
    """What a person needs if the case is handed to them: a summary and the conversation so far."""

    summary = text_field(max_length=SUMMARY_MAX, required=False, allow_blank=True, default="",
                         help_text="What the AI agent understood and did, for the person who takes over.")
    transcript = serializers.ListField(child=TranscriptLineIn(), required=False, default=list,
                                       max_length=TRANSCRIPT_MAX_LINES,
                                       help_text="The conversation so far, oldest first.")


class TakeIn(HandOffContextIn):
    case = id_field(help_text="The case's id: a case in the AI agent's team queue.")


class AiCheckIn(serializers.Serializer):
    case = id_field(help_text="The case's id.")
    kind = kind_field()
    amount = PlainAmountField(help_text="Exact amount as text, e.g. \"25.00\".")
    currency = optional_currency_field(help_text="For money kinds; leave empty for months, percent and counts.")
    confidence = confidence_field(required=False, allow_null=True, default=None)


class DecideIn(HandOffContextIn):
    case = id_field(help_text="The case's id; the AI agent must own it.")
    kind = kind_field()
    amount = PlainAmountField(help_text="Exact amount as text, e.g. \"25.00\".")
    currency = optional_currency_field(help_text="For money kinds; leave empty for months, percent and counts.")
    rationale = text_field(help_text="Why: part of the record, beside the model and version.")
    confidence = confidence_field()


class HandOffIn(HandOffContextIn):
    case = id_field(help_text="The case's id; the AI agent must own it.")
    reason = text_field(help_text="Why a person should take over, in a sentence.")


class AiCaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None,
                                  help_text="Who owns the case now (null: it waits in its team's queue).")


class AiDecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(source="kind.code")
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField(allow_blank=True)
    grant = serializers.IntegerField(source="grant_id", allow_null=True,
                                     help_text="The exact grant version that allowed it.")
    executed_at = serializers.DateTimeField()


class AiShadowDecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(source="kind.code")
    amount = AmountField(amount_attr="amount", currency_attr="currency")
    currency = serializers.CharField(allow_blank=True)
    allowed = serializers.BooleanField(help_text="Whether the shadow grants would have allowed it.")
    created_at = serializers.DateTimeField()


class AiHandOffOut(serializers.Serializer):
    id = serializers.IntegerField()
    to_user = serializers.CharField(source="to_user.username", allow_null=True, default=None,
                                    help_text="The person who owns the case now (null: it waits in the team queue).")
    reason = serializers.CharField(help_text="outside_routing, over_authority, shadow, low_confidence, asked, …")


class OutcomeOut(serializers.Serializer):
    """What a tool did: the outcome, the case as it stands, and what was recorded."""

    outcome = serializers.ChoiceField(
        choices=["owned", "executed", "shadow", "handed_off"],
        help_text="owned: the AI agent owns the case; executed: the decision was carried out; shadow: recorded "
                  "as what the AI would have done, nothing executed, a person decides; handed_off: a person owns "
                  "the case now (or it waits in the team queue).")
    case = AiCaseOut()
    decision = AiDecisionOut(allow_null=True)
    shadow_decision = AiShadowDecisionOut(allow_null=True)
    hand_off = AiHandOffOut(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField(),
                                    help_text="Why it went to a person, or what the verdict said.")


class AiCheckOut(serializers.Serializer):
    """What deciding would do now; nothing is changed."""

    would = serializers.ChoiceField(choices=["execute", "shadow", "hand_off"])
    verdict = VerdictOut(help_text="The live verdict: allowed or not, reasons, headroom.")
    shadow_verdict = VerdictOut(allow_null=True, help_text="The verdict of the shadow grants, when there are any.")
    reasons = serializers.ListField(child=serializers.CharField())


class AiTeamOut(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class RoutingOut(serializers.Serializer):
    """Which cases the AI agent may own; everything else goes to a person."""

    categories = serializers.ListField(
        child=serializers.CharField(), source="route_categories",
        help_text="The case categories it may own (" + ", ".join(CaseCategory.values) + "); empty: it owns no case.")
    tiers = serializers.ListField(child=serializers.CharField(), source="route_tiers",
                                  help_text="Empty: every customer tier.")
    max_stakes = serializers.IntegerField()
    hand_off_negative_sentiment = serializers.BooleanField()
    min_confidence = serializers.DecimalField(max_digits=4, decimal_places=3, coerce_to_string=True)


class AuthorityRowOut(serializers.Serializer):
    """One kind: the grant that decides outside any case scope, and what is left of its period cap."""

    kind = serializers.CharField()
    unit = serializers.CharField()
    allowed = serializers.BooleanField(help_text="A live grant permits this kind and no suspension forbids it.")
    suspended = serializers.BooleanField()
    grant = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    per_case_limit = serializers.CharField(allow_null=True)
    period = serializers.CharField(allow_null=True)
    period_limit = serializers.CharField(allow_null=True)
    period_used = serializers.CharField(allow_null=True)
    period_left = serializers.CharField(allow_null=True)
    period_resets_at = serializers.DateTimeField(allow_null=True)
    scoped = serializers.BooleanField(help_text="The grant applies only to cases matching its scope.")


class ShadowGrantOut(serializers.Serializer):
    grant = serializers.IntegerField()
    kind = serializers.CharField()
    currency = serializers.CharField(allow_blank=True)
    per_case_limit = serializers.CharField(allow_null=True)
    period = serializers.CharField()
    period_limit = serializers.CharField(allow_null=True)


class AiMeOut(serializers.Serializer):
    """Who the AI agent is, which cases it may own and what it may decide: its caps, before it asks."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    model_name = serializers.CharField()
    model_version = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    team = AiTeamOut()
    suspended = serializers.BooleanField()
    routing = RoutingOut()
    authority = AuthorityRowOut(many=True, help_text="Live authority per kind (what executes).")
    shadow_grants = ShadowGrantOut(many=True, help_text="Shadow grants: decisions under them are recorded, "
                                                        "never executed, and a person decides the case.")
