"""Form pieces every edge shares: currencies, instants in the organisation's time zone, case numbers."""

from datetime import datetime

from django import forms
from django.conf import settings
from django.utils import timezone

from h2h_core.organisation import current_organisation


def currency_choices():
    return [("", "—")] + [(code, code) for code in settings.CURRENCIES]


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


def case_number(text: str) -> int | None:
    """'H2H-000123', 'h2h-123' or '123' → 123; anything else → None."""
    text = (text or "").strip().upper().removeprefix("H2H-")
    return int(text) if text.isdigit() and len(text) < 12 else None
