"""Forms of the auditor console: filters and review flags; they decide nothing."""


from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from authority.models import AuthorityKind, ReviewFlag
from edges.web.forms import OrgDateTimeField, case_number
from h2h_core.amounts import AmountFormField
from h2h_core.models import Team


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


class VerificationRequestForm(forms.Form):
    SCOPES = (
        ("incremental", "The entries since the last verified checkpoint (quick)"),
        ("full", "The whole chain, from the first entry"),
    )

    scope = forms.ChoiceField(choices=SCOPES, initial="incremental", label="Verify", widget=forms.RadioSelect)

    def full(self) -> bool:
        return self.cleaned_data["scope"] == "full"
