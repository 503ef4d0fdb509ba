"""Per person: limit, used, left and reset for each kind, and a track record of their requests.

Every function documents its query budget; tests/consoles assert it."""


from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Avg,
    Count,
    Exists,
    OuterRef,
    Q,
)
from django.utils import timezone

from authority import periods, selectors, usage
from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    Effect,
    Grant,
    RequestStatus,
    ReviewFlag,
)
from authority.policy.evaluation import standing_grant
from h2h_core.models import Case, CaseEvent, Team
from h2h_core.organisation import current_organisation

User = get_user_model()
WARN_LEVELS = (100, 90, 75)



# --- per person: limit, used, left, reset -------------------------------------------------------


@dataclass
class KindUsage:
    """One person's standing authority for one kind outside any case scope, and its period usage."""

    kind: AuthorityKind
    deciding: Grant | None
    suspensions: list[Grant]
    used: Decimal | None = None
    left: Decimal | None = None
    percent: int | None = None
    resets_at: datetime | None = None
    key: str | None = None

    @property
    def warning(self) -> int | None:
        """The highest warning threshold reached: 100, 90 or 75 (% of the period cap), else None."""
        if self.percent is None:
            return None
        return next((level for level in WARN_LEVELS if self.percent >= level), None)


@dataclass
class PersonAuthority:
    user: object
    teams: list[Team]
    roles: list[str]
    kinds: list[KindUsage] = field(default_factory=list)

    @property
    def worst(self) -> KindUsage | None:
        rated = [row for row in self.kinds if row.percent is not None]
        return max(rated, key=lambda row: row.percent) if rated else None


def people_authority(people, *, at: datetime | None = None) -> list[PersonAuthority]:
    """Return, for each person, per kind: deciding grant, limit, used, left, reset (constant queries).

    Queries: kinds, team memberships, role memberships, grants in force, usage counters (5), however
    many people and grants there are.
    """
    at = at or timezone.now()
    tz = current_organisation().tz
    people = list(people)
    ids = [p.pk for p in people]
    kinds = list(AuthorityKind.objects.order_by("name"))
    teams_of: dict[int, list[Team]] = defaultdict(list)
    for link in Team.members.through.objects.filter(user_id__in=ids).select_related("team").order_by("team__name"):
        teams_of[link.user_id].append(link.team)
    roles_of: dict[int, list[Group]] = defaultdict(list)
    for link in User.groups.through.objects.filter(user_id__in=ids).select_related("group").order_by("group__name"):
        roles_of[link.user_id].append(link.group)
    team_ids = {team.pk for teams in teams_of.values() for team in teams}
    group_ids = {group.pk for groups in roles_of.values() for group in groups}
    grants = list(
        Grant.objects.filter(selectors.in_force_at(at), case__isnull=True)
        .filter(Q(subject_user_id__in=ids) | Q(subject_team_id__in=team_ids) | Q(subject_role_id__in=group_ids))
        .select_related("subject_user", "subject_team", "subject_role")
    )
    result, keys = [], []
    for person in people:
        mine = [
            g for g in grants
            if g.subject_user_id == person.pk
            or (g.subject_team_id and g.subject_team_id in {t.pk for t in teams_of[person.pk]})
            or (g.subject_role_id and g.subject_role_id in {r.pk for r in roles_of[person.pk]})
        ]
        row = PersonAuthority(user=person, teams=teams_of[person.pk], roles=[r.name for r in roles_of[person.pk]])
        for kind in kinds:
            of_kind = [g for g in mine if g.kind_id == kind.pk]
            deciding = standing_grant([g for g in of_kind if g.effect == Effect.PERMIT])
            entry = KindUsage(kind=kind, deciding=deciding,
                              suspensions=[g for g in of_kind if g.effect == Effect.FORBID])
            start = periods.bucket_start(deciding.period, at, tz) if deciding else None
            if start is not None:
                entry.key = usage.period_key(agent_id=person.pk, kind_code=kind.code, currency=deciding.currency,
                                             period=deciding.period, start=start)
                entry.resets_at = periods.resets_at(deciding.period, at, tz)
                keys.append(entry.key)
            row.kinds.append(entry)
        result.append(row)
    used = selectors.usage_for_keys(keys)
    for row in result:
        for entry in row.kinds:
            if entry.key is None:
                continue
            entry.used = used.get(entry.key, Decimal(0))
            limit = entry.deciding.period_limit
            if limit is not None:
                entry.left = max(limit - entry.used, Decimal(0))
                entry.percent = int(entry.used * 100 / limit) if limit else 100
    return result



@dataclass
class TrackRecord:
    decisions: int = 0
    own_authority: int = 0
    via_approval: int = 0
    approved: int = 0
    rejected: int = 0
    expired: int = 0
    resolved: int = 0
    rating: float | None = None
    reopened: int = 0
    flags: int = 0


def track_records(user_ids, *, days: int = 90) -> dict[int, TrackRecord]:
    """Return each agent's record over the last `days` days: 4 queries for any number of agents."""
    since = timezone.now() - timedelta(days=days)
    ids = list(set(user_ids))
    records = {pk: TrackRecord() for pk in ids}
    for row in (Decision.objects.filter(agent_id__in=ids, executed_at__gte=since).values("agent_id")
                .annotate(n=Count("pk"), own=Count("pk", filter=Q(request__isnull=True)))):
        record = records[row["agent_id"]]
        record.decisions, record.own_authority = row["n"], row["own"]
        record.via_approval = row["n"] - row["own"]
    for row in (AuthorityRequest.objects.filter(requester_id__in=ids, created_at__gte=since)
                .values("requester_id", "status").annotate(n=Count("pk"))):
        record = records[row["requester_id"]]
        if row["status"] in (RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.EXPIRED):
            setattr(record, row["status"], row["n"])
    reopened = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED)
    for row in (Case.objects.filter(owner_id__in=ids, resolved_at__gte=since).alias(reo=Exists(reopened))
                .values("owner_id").annotate(n=Count("pk"), avg_rating=Avg("rating"),
                                             n_reopened=Count("pk", filter=Q(reo=True)))):
        record = records[row["owner_id"]]
        record.resolved, record.reopened = row["n"], row["n_reopened"]
        record.rating = round(row["avg_rating"], 1) if row["avg_rating"] is not None else None
    for row in (ReviewFlag.objects.filter(decision__agent_id__in=ids).values("decision__agent_id")
                .annotate(n=Count("pk"))):
        records[row["decision__agent_id"]].flags = row["n"]
    return records
