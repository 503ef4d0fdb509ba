"""The organisation's settings, read once per process (they change rarely, and only via a service)."""

from __future__ import annotations

from django.conf import settings

from .models import Organisation

_cached: Organisation | None = None


def current_organisation() -> Organisation:
    """Return the organisation, creating it from settings on first use."""
    global _cached
    if _cached is None:
        _cached, _ = Organisation.objects.get_or_create(
            pk=1,
            defaults={
                "name": settings.H2H_ORGANISATION_NAME,
                "base_currency": settings.H2H_BASE_CURRENCY,
                "time_zone": settings.H2H_TIME_ZONE,
            },
        )
    return _cached


def forget_organisation() -> None:
    """Drop the cached copy (after an update, or between tests)."""
    global _cached
    _cached = None
