"""Reads that need care: the inputs of an evaluation in a fixed, small number of queries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import CharField, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast

from h2h_core.models import Team

from .models import ExchangeRate, Grant, GrantStatus, UsageCounter

User = get_user_model()
RATE_PLACES = Decimal("1e-10")


def in_force_at(at: datetime) -> Q:
    """Grants active and valid at instant `at`, neither closed nor not-yet-confirmed then."""
    return (
        Q(status=GrantStatus.ACTIVE, valid_from__lte=at)
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        & (Q(superseded_at__isnull=True) | Q(superseded_at__gt=at))
        & (Q(confirmed_at__isnull=True) | Q(confirmed_at__lte=at))
    )


def grants_in_force(*, at: datetime, user=None, team: Team | None = None, role=None) -> QuerySet[Grant]:
    """Return the grants in force at `at` held directly by one subject (person, team or role)."""
    subject = Q(subject_user=user) if user is not None else Q(subject_team=team) if team is not None else Q(
        subject_role=role
    )
    return (
        Grant.objects.filter(in_force_at(at) & subject)
        .select_related("kind", "subject_user", "subject_team", "subject_role", "case")
        .order_by("kind__code", "id")
    )


def grants_applicable_to_agent(*, agent, kind_id: int | None, case_id: int | None, at: datetime) -> QuerySet[Grant]:
    """Return every grant that could speak for `agent` at `at`: personal, team, role, one-off."""
    team_ids = Team.members.through.objects.filter(user_id=agent.pk).values("team_id")
    group_ids = User.groups.through.objects.filter(user_id=agent.pk).values("group_id")
    personal = Q(subject_user_id=agent.pk) & (Q(case__isnull=True) | Q(case_id=case_id))
    qs = Grant.objects.filter(
        in_force_at(at) & (personal | Q(subject_team_id__in=team_ids) | Q(subject_role_id__in=group_ids))
    ).select_related("subject_user", "subject_team", "subject_role")
    if kind_id is not None:
        qs = qs.filter(kind_id=kind_id)
    return qs


def usage_for_keys(keys: list[str]) -> dict[str, Decimal]:
    if not keys:
        return {}
    return dict(UsageCounter.objects.filter(key__in=keys).values_list("key", "used"))


def latest_rates(*, from_currency: str, to_currencies: set[str], on: date) -> dict[str, tuple[Decimal, date]]:
    """Return {target: (rate from `from_currency`, rate date)}, the latest rate on or before `on`.

    Either direction of a stored pair serves; the inverse is used when only it exists.
    """
    if not to_currencies or not from_currency:
        return {}
    latest_on = (
        ExchangeRate.objects.filter(base=OuterRef("base"), quote=OuterRef("quote"), valid_on__lte=on)
        .order_by("-valid_on")
        .values("valid_on")[:1]
    )
    rows = (
        ExchangeRate.objects.filter(
            Q(base=from_currency, quote__in=to_currencies) | Q(base__in=to_currencies, quote=from_currency),
            valid_on__lte=on,
        )
        .annotate(latest_on=Subquery(latest_on))
        .filter(valid_on=F("latest_on"))
    )
    found: dict[str, tuple[Decimal, date, bool]] = {}
    for row in rows:
        direct = row.base == from_currency
        target = row.quote if direct else row.base
        rate = row.rate if direct else (Decimal(1) / row.rate).quantize(RATE_PLACES)
        best = found.get(target)
        if best is None or (row.valid_on, direct) > (best[1], best[2]):
            found[target] = (rate, row.valid_on, direct)
    return {target: (rate, day) for target, (rate, day, _) in found.items()}


def team_manager_usernames(*, agent) -> list[str]:
    """Return the managers (manage_team object permission) of the agent's teams, the agent excluded."""
    team_pks = Team.members.through.objects.filter(user_id=agent.pk).annotate(
        pk_text=Cast("team_id", output_field=CharField())
    ).values("pk_text")
    return list(
        User.objects.filter(
            userobjectpermission__permission__codename="manage_team",
            userobjectpermission__permission__content_type__app_label="h2h_core",
            userobjectpermission__object_pk__in=team_pks,
            is_active=True,
        )
        .exclude(pk=agent.pk)
        .order_by("username")
        .values_list("username", flat=True)
        .distinct()
    )


def requests_for_approver(user) -> QuerySet:
    """Open authority requests whose pool includes `user`."""
    from .models import AuthorityRequest, RequestStatus

    open_requests = AuthorityRequest.objects.filter(status=RequestStatus.OPEN).select_related(
        "case__customer", "requester", "kind"
    )
    # JSON containment is not portable to SQLite; ids in the pool are few, so filter on their text form.
    return open_requests.filter(
        Q(pool__contains=[user.pk]) if _json_contains_supported() else Q(pk__in=_pool_ids_sqlite(user.pk))
    )


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


def _pool_ids_sqlite(user_id: int) -> list[int]:
    from django.db import connection

    from .models import AuthorityRequest, RequestStatus

    table = AuthorityRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.id FROM {table} r, json_each(r.pool) p WHERE r.status = %s AND p.value = %s",
            [RequestStatus.OPEN, user_id],
        )
        return [row[0] for row in cursor.fetchall()]
