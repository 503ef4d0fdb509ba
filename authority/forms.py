"""Forms: they shape input for the services and decide nothing."""

from django import forms
from django.conf import settings

from .models import AuthorityKind


def currency_choices():
    return [("", "—")] + [(code, code) for code in settings.CURRENCIES]


class DecisionForm(forms.Form):
    kind = forms.ModelChoiceField(queryset=AuthorityKind.objects.order_by("name"), to_field_name="code",
                                  empty_label=None)
    # A CharField: authority.quantities.parse_amount gives the precise error for any bad amount.
    amount = forms.CharField(max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal",
                                                                          "autocomplete": "off"}))
    currency = forms.ChoiceField(choices=currency_choices, required=False)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class RequestForm(forms.Form):
    kind = forms.ModelChoiceField(queryset=AuthorityKind.objects.all(), to_field_name="code", widget=forms.HiddenInput)
    amount = forms.CharField(max_length=40, widget=forms.HiddenInput)
    currency = forms.ChoiceField(choices=currency_choices, required=False, widget=forms.HiddenInput)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False)


class ClaimForm(forms.Form):
    pass


class ResolveForm(forms.Form):
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
