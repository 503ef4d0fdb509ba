"""Workflow settings with their defaults: every one can be set in the Django settings."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def follow_up_period() -> timedelta:
    """How long a resolved case waits for the customer's rating before the timer closes it."""
    return timedelta(days=float(getattr(settings, "H2H_FOLLOW_UP_DAYS", 7)))


def team_approval_window() -> timedelta:
    """How long the team's managers have for a request before the fallback pool is offered it."""
    return timedelta(hours=float(getattr(settings, "H2H_APPROVAL_TEAM_HOURS", 8)))


def rating_link_max_age() -> timedelta:
    """How long a rating link stays valid (the follow-up period, and some slack for late mail)."""
    return follow_up_period() + timedelta(days=float(getattr(settings, "H2H_RATING_LINK_SLACK_DAYS", 30)))
