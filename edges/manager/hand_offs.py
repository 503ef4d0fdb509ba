"""The manager console's hand-offs: how many cases AI agents passed to people, why, and how fast people
picked them up."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone

from authority.policy.permissions import console_teams
from authority.reports.hand_offs import hand_off_metrics
from edges.web.console import manager_console

DAY_CHOICES = (7, 30, 90)


@manager_console
def hand_offs(request):
    """Hand-offs per moment that matters and per reason, and time to pickup, for my teams.

    Filters: `team` (an id of a team I manage) and `days` (7, 30 or 90); anything else is the default,
    never a 500. Queries: the teams, then the report's three.
    """
    teams = list(console_teams(request.user))
    chosen = [t for t in teams if str(t.pk) == request.GET.get("team")] or teams
    days = request.GET.get("days", "30")
    days = int(days) if days in {str(d) for d in DAY_CHOICES} else 30
    metrics = hand_off_metrics(team_ids=[t.pk for t in chosen], since=timezone.now() - timedelta(days=days))
    return render(request, "manager/hand_offs.html", {
        "metrics": metrics, "teams": teams, "chosen": chosen if len(chosen) == 1 else [], "days": days,
        "day_choices": DAY_CHOICES,
    })
