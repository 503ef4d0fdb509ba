"""Forms of the manager console: they shape input for the services and decide nothing."""


from django import forms
from django.contrib.auth import get_user_model

from authority.models import AuthorityKind, Effect, Period
from edges.web.forms import OrgDateTimeField, currency_choices
from h2h_core.amounts import AmountFormField
from h2h_core.models import CaseCategory, CustomerTier, Role


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


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
    shadow = forms.BooleanField(
        required=False, label="Shadow (log only)",
        help_text="Decisions under it are recorded as what they would have been and compared with what people "
                  "decide; nothing executes and no usage is consumed. Permits only. Moving a grant between shadow "
                  "and live always needs a second manager.")
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
            "shadow": grant.shadow,
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
