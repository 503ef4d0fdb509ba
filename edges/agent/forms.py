"""Forms of the case workspace: they shape input for the workflow services and decide nothing."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from authority.models import AuthorityKind
from edges.web.forms import currency_choices
from h2h_core.amounts import AmountFormField
from h2h_core.models import CaseCategory, Customer


class CaseIntakeForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("name"), empty_label="Choose a customer")
    subject = forms.CharField(max_length=200)
    category = forms.ChoiceField(choices=CaseCategory.choices, label="Moment that matters")
    amount_at_stake = AmountFormField(max_digits=16, decimal_places=2, initial=0, label="Amount at stake")
    currency = forms.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES],
                                 initial=settings.H2H_BASE_CURRENCY)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)


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
