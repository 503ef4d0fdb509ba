"""Forms of the case workspace: they shape input for the workflow services and decide nothing."""

import re

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from authority.models import AuthorityKind
from edges.web.forms import currency_choices
from h2h_core.amounts import AmountFormField
from h2h_core.models import CaseCategory, Customer
from workflows.case_search import (
    FIELD_NAMES,
    OWNER_CHOICES,
    RESOLVED_CHOICES,
    SLA_CHOICES,
    SORT_CHOICES,
    STATUS_CHOICES,
    CaseQuery,
    customer_resolve,
)


class CustomerPickerField(forms.CharField):
    """A customer typed by name, e-mail or number (the picker's suggestions carry "Name (#12)").

    Works without JavaScript: the server resolves what was typed; several or no matches are a form
    error that lists the candidates, and nothing typed is lost.
    """

    def __init__(self, **kwargs):
        super().__init__(max_length=200, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, Customer):
            return f"{value.name} (#{value.pk})"
        return value

    def clean(self, value):
        text = super().clean(value)
        customer, candidates = customer_resolve(text)
        if customer is not None:
            return customer
        if not candidates:
            raise forms.ValidationError(
                f"No customer matches \u201c{text}\u201d. Check the spelling, or search by e-mail.")
        listed = "; ".join(f"{c.name} (#{c.pk}{', ' + c.email if c.email else ''})" for c in candidates[:10])
        more = " and more" if len(candidates) > 10 else ""
        raise forms.ValidationError(
            f"Several customers match \u201c{text}\u201d: {listed}{more}. "
            "Type the full name, the e-mail or the number (#12).")


class CaseIntakeForm(forms.Form):
    customer = CustomerPickerField(
        help_text="Type a name or e-mail and pick a suggestion, or type the customer's number (#12).",
        widget=forms.TextInput(attrs={"list": "customer-options", "autocomplete": "off"}),
    )
    subject = forms.CharField(max_length=200)
    category = forms.ChoiceField(choices=CaseCategory.choices, label="Moment that matters")
    amount_at_stake = AmountFormField(max_digits=16, decimal_places=2, initial=0, label="Amount at stake")
    currency = forms.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES],
                                 initial=settings.H2H_BASE_CURRENCY)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)


class CaseFilterForm(forms.Form):
    """The case list's GET form: every filter in the query string, so a view is a bookmark."""

    q = forms.CharField(required=False, max_length=200, label="Search",
                        help_text="Reference, subject or customer")
    status = forms.ChoiceField(choices=[("", "Any status"), *STATUS_CHOICES], required=False)
    category = forms.ChoiceField(choices=[("", "Any moment"), *CaseCategory.choices], required=False,
                                 label="Moment that matters")
    team = forms.ChoiceField(required=False)
    owner = forms.ChoiceField(choices=[("", "Anyone"), *OWNER_CHOICES], required=False)
    sla = forms.ChoiceField(choices=[("", "Any"), *SLA_CHOICES], required=False, label="SLA")
    waiting = forms.BooleanField(required=False, label="Waiting for approval")
    resolved = forms.ChoiceField(choices=[("", "Any time"), *RESOLVED_CHOICES], required=False)
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, label="Sort by")

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team"), ("mine", "My teams"),
                                       *((str(team.pk), team.name) for team in teams)]

    def query(self) -> CaseQuery:
        """The valid part of the input: a field that does not validate counts as "any"."""
        self.is_valid()
        data = {}
        for name in FIELD_NAMES:
            if name in self.errors:
                continue
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                data[name] = value
        return CaseQuery(**data)


class HandoverForm(forms.Form):
    to_user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="New owner",
                                     empty_label="Choose a colleague")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000,
                           label="Context note (the new owner reads it first)")

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)
        if candidates is not None:
            self.fields["to_user"].queryset = candidates


class ReopenForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Why reopen?")


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(choices=[(n, str(n)) for n in range(1, 6)], coerce=int,
                                    widget=forms.RadioSelect, label="Your rating")


_LINK_KIND = re.compile(r"[a-z][a-z0-9_]{0,49}")
_LINK_AMOUNT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,4})?")
def decision_link_initial(params) -> dict:
    """Return the decision form's initial kind, amount and currency from a link to the case page.

    Assist's suggestion and the "approved: execute now" callout link to `?kind=&amount=&currency=`.
    Plain ASCII only: anything else is ignored and the form keeps its usual defaults.
    """
    kind, amount, currency = (str(params.get(name, ""))[:60] for name in ("kind", "amount", "currency"))
    if not _LINK_KIND.fullmatch(kind):
        return {}
    initial = {"kind": kind}
    if _LINK_AMOUNT.fullmatch(amount):
        initial["amount"] = amount
    if currency in settings.CURRENCIES:
        initial["currency"] = currency
    return initial


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


class ResolveForm(forms.Form):
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)


# --- the consoles --------------------------------------------------------------------------------
