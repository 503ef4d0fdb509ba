"""Forms: they shape input for the services and decide nothing."""

from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from authority.models import AuthorityKind, Effect, Period, ReviewFlag
from h2h_core.amounts import AmountFormField
from h2h_core.models import CaseCategory, CustomerTier, Role, Team
from h2h_core.organisation import current_organisation


def currency_choices():
    return [("", "—")] + [(code, code) for code in settings.CURRENCIES]


class DecisionForm(forms.Form):
    kind = forms.ModelChoiceField(queryset=AuthorityKind.objects.order_by("name"), to_field_name="code",
                                  empty_label=None)
    amount = AmountFormField()
    currency = forms.ChoiceField(choices=currency_choices, required=False)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class RequestForm(forms.Form):
    kind = forms.ModelChoiceField(queryset=AuthorityKind.objects.all(), to_field_name="code", widget=forms.HiddenInput)
    amount = AmountFormField(widget=forms.HiddenInput)
    currency = forms.ChoiceField(choices=currency_choices, required=False, widget=forms.HiddenInput)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


class ClaimForm(forms.Form):
    pass


class ResolveForm(forms.Form):
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)


# --- the consoles --------------------------------------------------------------------------------


class OrgDateTimeField(forms.DateTimeField):
    """A date and time typed in the organisation's time zone (the people using it think in it)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value):
        with timezone.override(current_organisation().tz):
            return super().to_python(value)

    def prepare_value(self, value):
        with timezone.override(current_organisation().tz):
            if isinstance(value, datetime) and timezone.is_aware(value):
                value = timezone.localtime(value).replace(tzinfo=None)
            return super().prepare_value(value)


class GrantForm(forms.Form):
    """The terms of a grant version; the service validates amounts against the kind and currency."""

    effect = forms.ChoiceField(choices=Effect.choices, initial=Effect.PERMIT,
                               help_text="A suspension (forbid) beats every permit.")
    per_case_limit = AmountFormField(required=False, label="Per-case limit", help_text="Empty: no per-case limit.")
    period_limit = AmountFormField(required=False, label="Period cap", help_text="Empty: no cap over the period.")
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTH)
    currency = forms.ChoiceField(choices=currency_choices, required=False,
                                 help_text="Money kinds only; leave empty for months, percent and counts.")
    scope_categories = forms.MultipleChoiceField(choices=CaseCategory.choices, required=False,
                                                 widget=forms.CheckboxSelectMultiple, label="Case categories",
                                                 help_text="None ticked: every category.")
    scope_tiers = forms.MultipleChoiceField(choices=CustomerTier.choices, required=False,
                                            widget=forms.CheckboxSelectMultiple, label="Customer tiers",
                                            help_text="None ticked: every tier.")
    valid_from = OrgDateTimeField(required=False, label="Starts", help_text="Empty: now.")
    valid_until = OrgDateTimeField(required=False, label="Ends",
                                   help_text="Set an end for a temporary raise or suspension; it expires by itself.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             help_text="Kept with the version and in the audit log.")

    def terms(self):
        from authority.services import GrantTerms

        data = self.cleaned_data
        return GrantTerms(
            effect=data["effect"],
            per_case_limit=data["per_case_limit"],
            period_limit=data["period_limit"],
            period=data["period"],
            currency=data["currency"] or "",
            scope_categories=tuple(data["scope_categories"]),
            scope_tiers=tuple(data["scope_tiers"]),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
        )

    @classmethod
    def initial_from(cls, grant) -> dict:
        return {
            "effect": grant.effect,
            "per_case_limit": _plain_number(grant.per_case_limit),
            "period_limit": _plain_number(grant.period_limit),
            "period": grant.period,
            "currency": grant.currency,
            "scope_categories": list(grant.scope_categories),
            "scope_tiers": list(grant.scope_tiers),
            "valid_until": grant.valid_until,
        }


def _plain_number(value) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text


class EndGrantForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


def manager_choices(exclude):
    return get_user_model().objects.filter(groups__name=Role.MANAGER, is_active=True).exclude(
        pk=exclude.pk).order_by("username")


class DelegationForm(forms.Form):
    delegate = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username",
                                      label="Hand my approvals to")
    starts_at = OrgDateTimeField(label="From")
    ends_at = OrgDateTimeField(label="Until")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["delegate"].queryset = manager_choices(actor)


class WhatIfForm(forms.Form):
    person = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username")
    kind = forms.ModelChoiceField(queryset=None, to_field_name="code", empty_label=None)
    amount = AmountFormField()
    currency = forms.ChoiceField(choices=currency_choices, required=False)
    case = forms.CharField(max_length=20, required=False, label="Case (reference or number)",
                           help_text="Or leave empty and choose a category.")
    category = forms.ChoiceField(choices=[("", "—")] + list(CaseCategory.choices), required=False,
                                 label="Category (without a case)")
    tier = forms.ChoiceField(choices=CustomerTier.choices, required=False, initial=CustomerTier.STANDARD,
                             label="Customer tier (without a case)")
    at = OrgDateTimeField(required=False, label="On (date and time)", help_text="Empty: now.")

    def __init__(self, *args, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = people
        self.fields["kind"].queryset = AuthorityKind.objects.order_by("name")

    def clean(self):
        data = super().clean()
        if not data.get("case") and not data.get("category"):
            raise forms.ValidationError("Give a case, or a category to ask about a case not yet opened.")
        return data


def case_number(text: str) -> int | None:
    """'H2H-000123', 'h2h-123' or '123' → 123; anything else → None."""
    text = (text or "").strip().upper().removeprefix("H2H-")
    return int(text) if text.isdigit() and len(text) < 12 else None


class DecisionFilterForm(forms.Form):
    agent = forms.CharField(max_length=150, required=False, help_text="Username")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, empty_label="any")
    kind = forms.ModelChoiceField(queryset=None, to_field_name="code", required=False, empty_label="any")
    amount_min = AmountFormField(required=False, max_digits=19, decimal_places=4, label="Amount from")
    amount_max = AmountFormField(required=False, max_digits=19, decimal_places=4, label="Amount to")
    outcome = forms.ChoiceField(required=False)
    date_from = forms.DateField(required=False, label="From day", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To day", widget=forms.DateInput(attrs={"type": "date"}))
    case = forms.CharField(max_length=20, required=False, help_text="Reference or number")
    customer = forms.CharField(max_length=160, required=False, help_text="Number or part of the name")
    grant = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        from authority.reports import OUTCOMES

        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = AuthorityKind.objects.order_by("name")
        self.fields["outcome"].choices = OUTCOMES

    def clean_case(self):
        text = self.cleaned_data["case"]
        if text and case_number(text) is None:
            raise forms.ValidationError("Give a case reference such as H2H-000123, or its number.")
        return case_number(text)

    def filters(self):
        from authority.reports import DecisionFilters

        data = self.cleaned_data
        return DecisionFilters(
            agent=data.get("agent", "").strip(),
            team=data["team"].pk if data.get("team") else None,
            kind=data["kind"].code if data.get("kind") else "",
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            outcome=data.get("outcome") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            case=data.get("case"),
            customer=(data.get("customer") or "").strip(),
            grant=data.get("grant"),
        )


class ReviewFlagForm(forms.Form):
    severity = forms.ChoiceField(choices=ReviewFlag.Severity.choices)
    finding = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)


class AuthorityAtForm(forms.Form):
    SUBJECTS = (("person", "Person"), ("team", "Team"), ("role", "Role"))

    subject = forms.ChoiceField(choices=SUBJECTS, initial="person", label="Whose authority",
                                widget=forms.RadioSelect)
    person = forms.CharField(max_length=150, required=False, help_text="Username")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    role = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    at = OrgDateTimeField(label="As of", required=False, help_text="Empty: now.")

    def clean(self):
        data = super().clean()
        subject = data.get("subject")
        if subject == "person":
            username = (data.get("person") or "").strip()
            user = get_user_model().objects.filter(username=username).first() if username else None
            if user is None:
                self.add_error("person", "No such person.")
            data["user"] = user
        elif subject in ("team", "role") and not data.get(subject):
            self.add_error(subject, f"Choose a {subject}.")
        return data


class SampleForm(forms.Form):
    size = forms.IntegerField(min_value=1, max_value=200, initial=20, label="Sample size")
    date_from = forms.DateField(required=False, label="From day", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To day", widget=forms.DateInput(attrs={"type": "date"}))
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1,
                              help_text="The same seed and filters draw the same sample again.")
