"""Reads that need care: the inputs of an evaluation in a fixed, small number of queries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from h2h_core.access import case_visible_read, case_visible_to
from h2h_core.models import Case, Role, Team
from h2h_core.prepared import Bound, PreparedQuery, read_together

from .models import Effect, ExchangeRate, Grant, GrantStatus, UsageCounter

User = get_user_model()
RATE_PLACES = Decimal("1e-10")
PREPARED_KEYS = 8


def in_force_at(at: datetime) -> Q:
    """Grants active and valid at instant `at`, neither closed nor not-yet-confirmed then.

    A later version takes over only from the instant its predecessor was closed: its `valid_from`
    may lie earlier (a change keeps the original start, or is stamped before the old version is
    closed), and two versions of one grant must never be in force together.
    """
    return (
        Q(status=GrantStatus.ACTIVE, valid_from__lte=at)
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        & (Q(superseded_at__isnull=True) | Q(superseded_at__gt=at))
        & (Q(confirmed_at__isnull=True) | Q(confirmed_at__lte=at))
        & (Q(supersedes__isnull=True) | Q(supersedes__superseded_at__lte=at))
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


def teams_whose_grants_speak_for(memberships: QuerySet) -> QuerySet:
    """Keep the team memberships whose team grants speak for the member: people's, never an AI agent's.

    Team grants are written for the people of a team. An AI agent is a member for its queue and its
    hand-offs, but its authority comes only from its own grants and the AI agent role's, so a team's
    human-sized limits never reach it by membership.
    """
    return memberships.exclude(user__groups__name=Role.AI_AGENT)


def grants_applicable_to_agent(*, agent, kind_id: int | None, case_id: int | None, at: datetime,
                               shadow: bool = False) -> QuerySet[Grant]:
    """Return every grant that could speak for `agent` at `at`: personal, team, role, one-off.

    Shadow grants speak only when `shadow` is asked for ("what would it have decided?"), beside the
    live ones; a live decision never sees them.
    """
    return _grants_applicable(agent_id=agent.pk, kind_id=kind_id, case_id=case_id, at=at, shadow=shadow)


def _grants_applicable(*, agent_id: int, kind_id: int | None, case_id: int | None, at: datetime,
                       shadow: bool) -> QuerySet[Grant]:
    team_ids = teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id=agent_id)).values("team_id")
    group_ids = User.groups.through.objects.filter(user_id=agent_id).values("group_id")
    personal = Q(subject_user_id=agent_id) & (Q(case__isnull=True) | Q(case_id=case_id))
    qs = Grant.objects.filter(
        in_force_at(at) & (personal | Q(subject_team_id__in=team_ids) | Q(subject_role_id__in=group_ids))
    ).select_related("subject_user", "subject_team", "subject_role", "bound_owner")
    if not shadow:
        qs = qs.filter(shadow=False)
    if kind_id is not None:
        qs = qs.filter(kind_id=kind_id)
    return qs


def _question_grants(shadow: bool, *, agent_id: int, kind_id: int, case_id: int, at: datetime) -> QuerySet[Grant]:
    # Ordered by id alone: every grant here is of one kind, so that is the order Grant's own ordering
    # (kind code, id) gives, without joining the kinds.
    return _grants_applicable(agent_id=agent_id, kind_id=kind_id, case_id=case_id, at=at, shadow=shadow).order_by("id")


_QUESTION_GRANTS = PreparedQuery(_question_grants, ints=("agent_id", "kind_id", "case_id"), instants=("at",))


def grants_for_question(*, agent_id: int, kind_id: int, case_id: int | None, at: datetime,
                        shadow: bool = False) -> list[Grant]:
    """The grants of grants_applicable_to_agent for one kind on one case, in id order, from SQL compiled once.

    The same query as the queryset's, without building and compiling it again on every evaluation
    (most of an authority check's CPU before). No case (None) changes the SQL: that is built afresh.
    """
    if case_id is None:
        return list(_question_grants(shadow, agent_id=agent_id, kind_id=kind_id, case_id=None, at=at))
    return _QUESTION_GRANTS.all(shape=shadow, agent_id=agent_id, kind_id=kind_id, case_id=case_id, at=at)


def question_grants_and_usage(*, agent_id: int, kind_id: int, case_id: int | None, at: datetime,
                              counters: list[str], shadow: bool = False) -> tuple[list[Grant], dict[str, Decimal]]:
    """`grants_for_question` and `usage_for_keys(counters)`, in one statement where both are prepared
    (h2h_core.prepared.read_together), else in turn."""
    usage = _usage_read(counters)
    if case_id is None or usage is None:
        return (grants_for_question(agent_id=agent_id, kind_id=kind_id, case_id=case_id, at=at, shadow=shadow),
                usage_for_keys(counters))
    grants = _QUESTION_GRANTS.bound(shape=shadow, agent_id=agent_id, kind_id=kind_id, case_id=case_id, at=at)
    found, used = read_together(grants, usage)
    return _in_id_order(found), _used(used)


def visible_case_and_question_inputs(*, user, case_id: int, kind_id: int, at: datetime, counters: list[str],
                                     related: tuple[str, ...] = ()) -> tuple[Case | None, list[Grant],
                                                                             dict[str, Decimal]]:
    """`case_visible_to(user, case_id)` and, for a case they may see, `question_grants_and_usage` for
    `user` on it.

    One statement where the visibility read is prepared (h2h_core.prepared.read_together), else the
    visibility read and then the other two. A case the user may not see comes with nothing else.
    """
    visible = case_visible_read(user, case_id, related=related)
    usage = _usage_read(counters)
    if visible is None or usage is None:
        case = case_visible_to(user, case_id, related=related)
        if case is None:
            return None, [], {}
        return case, *question_grants_and_usage(agent_id=user.pk, kind_id=kind_id, case_id=case_id, at=at,
                                                counters=counters)
    grants = _QUESTION_GRANTS.bound(shape=False, agent_id=user.pk, kind_id=kind_id, case_id=case_id, at=at)
    cases, found, used = read_together(visible, grants, usage)
    if not cases:
        return None, [], {}
    return cases[0], _in_id_order(found), _used(used)


def _in_id_order(grants: list[Grant]) -> list[Grant]:
    return sorted(grants, key=lambda grant: grant.pk)  # the order grants_for_question gives


def has_shadow_authority(*, agent, kind_id: int, at: datetime | None = None) -> bool:
    """Return whether `agent` holds a shadow permit of the kind in force at `at` (default now): person,
    team or role.

    The rule behind "record what it would have decided": such an agent's decisions of the kind are
    worth a shadow record. One query.
    """
    at = at or timezone.now()
    return grants_applicable_to_agent(agent=agent, kind_id=kind_id, case_id=None, at=at, shadow=True).filter(
        shadow=True, effect=Effect.PERMIT, case__isnull=True).exists()


def grants_applicable_to_agents(*, agent_ids: list[int], kind_id: int, case_id: int | None,
                                at: datetime) -> dict[int, list[Grant]]:
    """Return {agent id: the grants that could speak for them}, as grants_applicable_to_agent would.

    Three queries whatever the number of agents: team memberships, roles, grants. Asked for every
    approver pool, so for up to PREPARED_AGENTS agents on a case they are compiled once per number
    of agents (h2h_core.prepared), where building them cost more than running them.
    """
    teams_of: dict[int, set[int]] = {pk: set() for pk in agent_ids}
    roles_of: dict[int, set[int]] = {pk: set() for pk in agent_ids}
    prepared = _AGENT_GRANT_READS.get(len(agent_ids)) if case_id is not None else None
    if prepared is None and case_id is not None and 0 < len(agent_ids) <= PREPARED_AGENTS:
        prepared = _AGENT_GRANT_READS[len(agent_ids)] = _AgentGrantReads(len(agent_ids))
    agents = {f"agent{i}": pk for i, pk in enumerate(agent_ids)}
    if prepared is not None:
        memberships = prepared.memberships.rows(**agents)
        role_memberships = prepared.roles.rows(**agents)
        grants = prepared.grants.all(kind_id=kind_id, case_id=case_id, at=at, **agents)
    else:
        memberships = _memberships(None, **agents)
        role_memberships = _role_memberships(None, **agents)
        grants = list(_agents_grants(None, kind_id=kind_id, case_id=case_id, at=at, **agents))
    for user_id, team_id in memberships:
        teams_of[user_id].add(team_id)
    for user_id, group_id in role_memberships:
        roles_of[user_id].add(group_id)
    return {
        pk: [g for g in grants if g.subject_user_id == pk or g.subject_team_id in teams_of[pk]
             or g.subject_role_id in roles_of[pk]]
        for pk in agent_ids
    }


PREPARED_AGENTS = 12


def _memberships(shape, **agents: int) -> QuerySet:
    return teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id__in=list(agents.values()))
                                        ).values_list("user_id", "team_id")


def _role_memberships(shape, **agents: int) -> QuerySet:
    return User.groups.through.objects.filter(user_id__in=list(agents.values())).values_list("user_id", "group_id")


def _agents_grants(shape, *, kind_id: int, case_id: int | None, at: datetime, **agents: int) -> QuerySet[Grant]:
    agent_ids = list(agents.values())
    personal = Q(subject_user_id__in=agent_ids) & (Q(case__isnull=True) | Q(case_id=case_id))
    teams = teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id__in=agent_ids)).values("team_id")
    roles = User.groups.through.objects.filter(user_id__in=agent_ids).values("group_id")
    return Grant.objects.filter(
        in_force_at(at) & (personal | Q(subject_team_id__in=teams) | Q(subject_role_id__in=roles)),
        kind_id=kind_id, shadow=False,
    ).select_related("subject_user", "subject_team", "subject_role")


class _AgentGrantReads:
    """The three reads of grants_applicable_to_agents for `count` agents, each compiled once."""

    def __init__(self, count: int):
        agents = tuple(f"agent{i}" for i in range(count))
        self.memberships = PreparedQuery(_memberships, ints=agents)
        self.roles = PreparedQuery(_role_memberships, ints=agents)
        self.grants = PreparedQuery(_agents_grants, ints=("kind_id", "case_id", *agents), instants=("at",))


_AGENT_GRANT_READS: dict[int, _AgentGrantReads] = {}


def grant_lapsed_for_agent(*, agent, kind_id: int, at: datetime) -> Grant | None:
    """Return the agent's permit of the kind (person, team or role) that expired or ended last before `at`.

    Asked only when nothing of the kind is in force, to name that grant instead of saying "no grant".
    """
    team_ids = teams_whose_grants_speak_for(Team.members.through.objects.filter(user_id=agent.pk)).values("team_id")
    group_ids = User.groups.through.objects.filter(user_id=agent.pk).values("group_id")
    subject = (Q(subject_user_id=agent.pk, case__isnull=True) | Q(subject_team_id__in=team_ids)
               | Q(subject_role_id__in=group_ids))
    lapse = Least(Coalesce("valid_until", "superseded_at"), Coalesce("superseded_at", "valid_until"))
    return (
        Grant.objects.filter(subject, kind_id=kind_id, effect=Effect.PERMIT, status=GrantStatus.ACTIVE, shadow=False)
        .filter(Q(valid_until__lte=at) | Q(superseded_at__lte=at))
        .annotate(lapsed_at=lapse)
        .select_related("subject_user", "subject_team", "subject_role")
        .order_by("-lapsed_at", "-pk")
        .first()
    )


def usage_for_keys(keys: list[str]) -> dict[str, Decimal]:
    """{key: used} for the counters among `keys` that exist (a counter not yet written has used nothing)."""
    if not keys:
        return {}
    if len(keys) > PREPARED_KEYS:
        return dict(UsageCounter.objects.filter(key__in=keys).values_list("key", "used"))
    return _used(_usage_read(keys).all())


def _usage_read(keys: list[str]) -> Bound | None:
    """The read of the counters among `keys`, not yet run; None for none, or more than PREPARED_KEYS."""
    if not keys or len(keys) > PREPARED_KEYS:
        return None
    # Compiled once per number of keys (h2h_core.prepared): an evaluation reads from two to five.
    prepared = _USAGE_FOR.get(len(keys))
    if prepared is None:
        names = tuple(f"key{i}" for i in range(len(keys)))
        prepared = _USAGE_FOR[len(keys)] = PreparedQuery(_usage_for, texts=names)
    return prepared.bound(**{f"key{i}": key for i, key in enumerate(keys)})


def _usage_for(shape, **keys: str) -> QuerySet[UsageCounter]:
    return UsageCounter.objects.filter(key__in=list(keys.values())).only("key", "used")


def _used(counters: list[UsageCounter]) -> dict[str, Decimal]:
    return {counter.key: counter.used for counter in counters}


_USAGE_FOR: dict[int, PreparedQuery] = {}


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


def requests_for_approver(user) -> QuerySet:
    """Open authority requests whose pool includes `user`."""
    from .models import AuthorityRequest, RequestStatus

    open_requests = AuthorityRequest.objects.filter(status=RequestStatus.OPEN).select_related(
        "case__customer", "requester", "kind"
    )
    return open_requests.filter(in_pool_of(user, status=RequestStatus.OPEN))


def in_pool_of(user, *, status: str | None = None) -> Q:
    """Filter for requests whose approver pool names `user` (of one status, or any)."""
    # JSON containment is not portable to SQLite; ids in the pool are few, so filter on their text form.
    if _json_contains_supported():
        return Q(pool__contains=[user.pk])
    return Q(pk__in=_pool_ids_sqlite(user.pk, status=status))


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


def _pool_ids_sqlite(user_id: int, *, status: str | None) -> list[int]:
    from django.db import connection

    from .models import AuthorityRequest

    table = AuthorityRequest._meta.db_table
    where, params = ("r.status = %s AND ", [status]) if status else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT r.id FROM {table} r, json_each(r.pool) p WHERE {where}p.value = %s",
                       [*params, user_id])
        return [row[0] for row in cursor.fetchall()]


def authority_summary(*, agent, at: datetime) -> list[dict]:
    """Return, per kind, the grant that decides for `agent` outside any case scope and its usage.

    Three queries whatever the number of kinds: kinds, grants, counters.
    """
    from h2h_core.organisation import current_organisation

    from . import periods, usage
    from .models import AuthorityKind, Effect
    from .policy.evaluation import standing_grant

    tz = current_organisation().tz
    kinds = list(AuthorityKind.objects.order_by("name"))
    grants = [g for g in grants_applicable_to_agent(agent=agent, kind_id=None, case_id=None, at=at) if not g.case_id]
    rows, keys = [], []
    for kind in kinds:
        mine = [g for g in grants if g.kind_id == kind.pk]
        forbids = [g for g in mine if g.effect == Effect.FORBID]
        permits = [g for g in mine if g.effect == Effect.PERMIT]
        deciding = standing_grant(permits)
        start = periods.bucket_start(deciding.period, at, tz) if deciding else None
        key = (
            usage.period_key(agent_id=agent.pk, kind_code=kind.code, currency=deciding.currency,
                             period=deciding.period, start=start)
            if start
            else None
        )
        if key:
            keys.append(key)
        rows.append({"kind": kind, "grants": mine, "suspensions": forbids, "deciding": deciding, "key": key,
                     "resets_at": periods.resets_at(deciding.period, at, tz) if deciding else None, "tz": tz})
    used = usage_for_keys(keys)
    for row in rows:
        deciding = row["deciding"]
        row["used"] = used.get(row["key"], Decimal(0)) if row["key"] else None
        if deciding and deciding.period_limit is not None and row["used"] is not None:
            row["left"] = max(deciding.period_limit - row["used"], Decimal(0))
            row["percent_used"] = int(row["used"] * 100 / deciding.period_limit) if deciding.period_limit else 100
        else:
            row["left"] = None
            row["percent_used"] = None
    return rows


def case_authority(*, agent, case) -> list[dict]:
    """Return, per kind, the agent's verdict for the smallest amount on `case`: its headroom."""
    from .models import AuthorityKind
    from .policy import evaluate
    from .quantities import allowed_places

    rows = []
    currency = str(case.amount_at_stake.currency)
    for kind in AuthorityKind.objects.order_by("name"):
        cur = currency if kind.is_money else None
        smallest = Decimal(1).scaleb(-allowed_places(unit=kind.unit, currency=cur))
        rows.append({"kind": kind, "currency": cur or "",
                     "verdict": evaluate(agent=agent, kind=kind, amount=smallest, currency=cur, case=case,
                                         with_approvers=False)})
    return rows


def usernames(user_ids: list[int]) -> list[str]:
    return list(User.objects.filter(pk__in=user_ids).order_by("username").values_list("username", flat=True))
