"""The case list's one selector: search, filters, sorting and the saved views, over visible cases only.

Everything starts from `cases_visible_to`: a filter can only narrow what the user may see, so a
search for another team's reference finds nothing. Every row carries what the list shows (waiting
for approval, last activity) as annotations, so a page costs the same queries for 5 rows or 500.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from authority import policy
from authority.models import AuthorityRequest
from authority.models.decisions import RequestStatus
from h2h_core.models import Case, CaseEvent, CaseStatus, Customer, Team
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.organisation import current_organisation

DUE_SOON = timedelta(hours=4)

STATUS_CHOICES = [
    ("open", "Open (any)"),
    ("unclaimed", "Unclaimed (new or queued)"),
    *CaseStatus.choices,
]
OWNER_CHOICES = [("me", "Me"), ("none", "Nobody (unclaimed)")]
SLA_CHOICES = [
    ("breached", "Breached or overdue"),
    ("due_soon", "Due within 4 h"),
    ("on_time", "On time"),
]
RESOLVED_CHOICES = [("week", "This week")]
# The sort keys: resolution due soonest first, highest stakes first, newest first, latest activity first.
SORT_CHOICES = [
    ("due", "Resolution due"),
    ("stakes", "Stakes"),
    ("opened", "Opened (newest first)"),
    ("activity", "Last activity"),
]


@dataclass(frozen=True)
class CaseQuery:
    """One list's question, as the query string carries it: empty means "any"."""

    q: str = ""
    status: str = ""
    category: str = ""
    team: str = ""  # "mine" (the teams I am in or manage) or a team id
    owner: str = ""
    sla: str = ""
    waiting: bool = False
    resolved: str = ""
    sort: str = "due"

    def params(self) -> dict[str, str]:
        """The non-default parts, as query-string values (what a bookmark of this view holds)."""
        default = CaseQuery()
        out = {}
        for name, value in asdict(self).items():
            if value != getattr(default, name) or name == "sort":
                out[name] = "1" if value is True else str(value)
        return out


FIELD_NAMES = tuple(f.name for f in fields(CaseQuery))

# The saved views: named presets in code, each a bookmarkable query string.
PRESETS = {
    "mine": ("My open cases", CaseQuery(owner="me", status="open", sort="due")),
    "queue": ("Team queue", CaseQuery(status="unclaimed", team="mine", sort="due")),
    "waiting": ("Waiting for approval", CaseQuery(waiting=True, sort="due")),
    "overdue": ("Overdue", CaseQuery(status="open", sla="breached", sort="due")),
    "resolved_week": ("Resolved this week", CaseQuery(resolved="week", sort="activity")),
}


def preset_of(query: CaseQuery) -> str | None:
    """The saved view this query is, if any (the page marks it as the current one)."""
    for key, (_label, preset) in PRESETS.items():
        if preset == query:
            return key
    return None


def my_team_ids(user) -> QuerySet:
    return Team.objects.filter(Q(members=user.pk) | Q(pk__in=policy.managed_team_ids(user))).values("pk")


def teams_for_filter(user) -> QuerySet[Team]:
    """The teams a user may filter by: all for those who see every case, else their own."""
    if user.is_superuser or policy.is_auditor(user):
        return Team.objects.order_by("name")
    return Team.objects.filter(pk__in=my_team_ids(user)).order_by("name")


_REFERENCE = re.compile(r"^(?:h2h-?)?0*(\d{1,9})$", re.IGNORECASE)


def _search(text: str) -> Q:
    text = text.strip()
    match = Q(subject__icontains=text) | Q(customer__name__icontains=text) | Q(customer__email__icontains=text)
    ref = _REFERENCE.match(text)
    if ref:
        match |= Q(pk=int(ref.group(1)))
    return match


def _sla(state: str, now: datetime) -> Q:
    overdue = Q(sla_breached=True) | Q(status__in=OPEN_STATUSES, resolution_due__lt=now)
    due_soon = Q(status__in=OPEN_STATUSES, sla_breached=False, resolution_due__gte=now,
                 resolution_due__lt=now + DUE_SOON)
    if state == "breached":
        return overdue
    if state == "due_soon":
        return due_soon
    # On time: not breached, and (if still open) due later than the 4-hour window or without a due time.
    return Q(sla_breached=False) & (
        ~Q(status__in=OPEN_STATUSES) | Q(resolution_due__isnull=True) | Q(resolution_due__gte=now + DUE_SOON)
    )


def _ordering(sort: str) -> tuple:
    if sort == "stakes":
        return (F("stakes_score").desc(), F("resolution_due").asc(nulls_last=True), "-pk")
    if sort == "opened":
        return ("-opened_at", "-pk")
    if sort == "activity":
        return (F("last_activity").desc(nulls_last=True), "-pk")
    return (F("resolution_due").asc(nulls_last=True), F("stakes_score").desc(), "pk")


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of this week in the organisation's time zone."""
    local = now.astimezone(current_organisation().tz)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def cases_search(*, user, query: CaseQuery, now: datetime) -> QuerySet[Case]:
    """The cases `user` may see that answer `query`, annotated and ordered; one query per page."""
    visible = policy.cases_visible_to(user).select_related("customer", "owner", "team")
    return cases_filtered(visible, user=user, query=query, now=now)


def cases_filtered(cases: QuerySet[Case], *, user, query: CaseQuery, now: datetime) -> QuerySet[Case]:
    """Narrow `cases` (already what `user` may see: the API's list passes its own) by `query`."""
    if query.q.strip():
        cases = cases.filter(_search(query.q))
    if query.status == "open":
        cases = cases.filter(status__in=OPEN_STATUSES)
    elif query.status == "unclaimed":
        cases = cases.filter(status__in=[CaseStatus.NEW, CaseStatus.QUEUED], owner__isnull=True)
    elif query.status:
        cases = cases.filter(status=query.status)
    if query.category:
        cases = cases.filter(category=query.category)
    if query.team == "mine":
        cases = cases.filter(team_id__in=my_team_ids(user))
    elif query.team:
        cases = cases.filter(team_id=int(query.team))
    if query.owner == "me":
        cases = cases.filter(owner_id=user.pk)
    elif query.owner == "none":
        cases = cases.filter(owner__isnull=True)
    if query.sla:
        cases = cases.filter(_sla(query.sla, now))
    if query.resolved == "week":
        cases = cases.filter(resolved_at__gte=week_start(now))
    open_request = AuthorityRequest.objects.filter(case=OuterRef("pk"), status=RequestStatus.OPEN)
    latest_event = CaseEvent.objects.filter(case=OuterRef("pk")).order_by("-at").values("at")[:1]
    cases = cases.annotate(waiting_approval=Exists(open_request),
                           last_activity=Coalesce(Subquery(latest_event), F("opened_at")))
    if query.waiting:
        cases = cases.filter(waiting_approval=True)
    return cases.order_by(*_ordering(query.sort))


def customers_matching(text: str, *, limit: int = 20) -> list[Customer]:
    """The intake picker: customers whose name or e-mail contains `text`, exact matches first."""
    text = text.strip()
    if not text:
        return []
    exact = Q(name__iexact=text) | Q(email__iexact=text)
    contains = Q(name__icontains=text) | Q(email__icontains=text)
    exact_rows = list(Customer.objects.filter(exact).order_by("name", "pk")[:limit])
    if len(exact_rows) >= limit:
        return exact_rows
    rest = Customer.objects.filter(contains).exclude(pk__in=[c.pk for c in exact_rows]).order_by("name", "pk")
    return exact_rows + list(rest[: limit - len(exact_rows)])


def customer_resolve(text: str, *, shown: int = 10) -> tuple[Customer | None, list[Customer]]:
    """What a typed customer means: (the customer, []) when it is one, else (None, the candidates).

    "#12", "Name (#12)" or "12" name a customer by number; otherwise an exact name or e-mail that
    only one customer has, or a fragment only one customer contains.
    """
    text = text.strip()
    number = re.search(r"#\s*(\d{1,9})\)?$", text) or re.fullmatch(r"(\d{1,9})", text)
    if number:
        customer = Customer.objects.filter(pk=int(number.group(1))).first()
        return (customer, []) if customer else (None, [])
    exact = list(Customer.objects.filter(Q(name__iexact=text) | Q(email__iexact=text)).order_by("name", "pk")
                 [: shown + 1])
    if len(exact) == 1:
        return exact[0], []
    if exact:
        return None, exact
    candidates = customers_matching(text, limit=shown + 1)
    if len(candidates) == 1:
        return candidates[0], []
    return None, candidates
