"""The organisation, its teams and its roles."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups with these names."""

    AGENT = "Agent"
    SENIOR_AGENT = "Senior agent"
    MANAGER = "Manager"
    AUDITOR = "Auditor"
    # A service identity run by software: it decides through the API within its own grants.
    AI_AGENT = "AI agent"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class Organisation(models.Model):
    """The single organisation this installation serves."""

    name = models.CharField(max_length=120)
    base_currency = models.CharField(max_length=3)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Team(models.Model):
    """A support team: agents are members; managers hold the `manage_team` object permission."""

    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_team", "Manage the team and approve its authority requests")]

    def __str__(self) -> str:
        return self.name
