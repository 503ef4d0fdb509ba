"""The organisation's settings, kept in each process for a few seconds (h2h_core.catalog).

They change rarely and never through a request: a process sees a change within
H2H_CATALOG_SECONDS, or at once after `forget_organisation()`.
"""

from __future__ import annotations

from django.conf import settings

from .catalog import Cached, catalog_forget_all
from .models import Organisation


def _load() -> Organisation:
    organisation, _ = Organisation.objects.get_or_create(
        pk=1,
        defaults={
            "name": settings.H2H_ORGANISATION_NAME,
            "base_currency": settings.H2H_BASE_CURRENCY,
            "time_zone": settings.H2H_TIME_ZONE,
        },
    )
    return organisation


_organisation = Cached(_load)


def current_organisation() -> Organisation:
    """Return the organisation, creating it from settings on first use."""
    return _organisation.get()


def forget_organisation() -> None:
    """Drop this process's copies of the organisation and the other reference data (after a change, between
    tests)."""
    catalog_forget_all()
