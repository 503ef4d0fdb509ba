"""The simulator's organisation: the demo cast, more agents and leads as the volume asks, and customers.

Everything is made through the services (users, roles, teams, grants, customers), each found again
by its name on a second run, so a simulation can follow another on the same database. Sizes scale
with the monthly volume: about one agent per 150 cases a month (at least the demo's), one lead per
twelve agents, and a customer per four cases (so most customers come back within 90 days).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model

from authority.models import AuthorityKind, Grant, GrantStatus, Period
from authority.services import GrantTerms, grant_confirm, grant_create
from edges.demo.cast import APPROX_RATE, TEAM_AGENTS, _in_currency
from edges.demo.plan import (
    CATEGORY_WEIGHTS,
    CURRENCY_WEIGHTS,
    LEGAL_FORMS,
    NAME_WORDS,
    TIER_VALUE_EUR,
    TIER_WEIGHTS,
    TRADES,
)
from edges.demo.seed import _Seeder
from h2h_core import access
from h2h_core.models import AiAgent, Customer, Role, Team
from h2h_core.people import team_add_manager, team_add_member, user_create, user_set_roles
from h2h_core.services import customer_create
from h2h_core.sla import team_slug_for

User = get_user_model()
CASES_PER_AGENT_MONTH = 150
AGENTS_PER_LEAD = 12
CASES_PER_CUSTOMER = 4
SENIOR_SHARE = 0.15
PREFIX = "sim"
# (kind, per case, per month) of a simulated agent's own grants, by team: what the team's work needs
# in a month at this volume (the demo's agents keep their own grants).
AGENT_GRANTS = {
    "retention": (("refund", "250", "5000"), ("goodwill_credit", "200", "3000"), ("fee_waiver", "150", "1500")),
    "billing": (("refund", "800", "8000"), ("goodwill_credit", "100", "1500"), ("fee_waiver", "300", "3000")),
    "onboarding": (("refund", "250", "3000"), ("goodwill_credit", "100", "1500"), ("fee_waiver", "200", "2000")),
}
# A lead approves what agents ask beyond their own: per case and per month.
LEAD_GRANTS = (("refund", "2000", "40000"), ("goodwill_credit", "1000", "15000"), ("fee_waiver", "500", "8000"))


@dataclass
class Cast:
    admin: object
    agents: dict[str, list]  # team slug -> people who own that team's cases
    ai_agents: dict[str, list]  # team slug -> [(user, AiAgent)]
    customers: list[Customer]
    customer_weights: list[float]
    kinds: dict[str, AuthorityKind]
    by_pk: dict[int, object]


def team_shares() -> dict[str, float]:
    """The share of the cases each team gets, from the category mix."""
    total = sum(weight for _, weight in CATEGORY_WEIGHTS)
    shares: dict[str, float] = {}
    for category, weight in CATEGORY_WEIGHTS:
        slug = team_slug_for(category)
        shares[slug] = shares.get(slug, 0.0) + weight / total
    return shares


def build_cast(*, cases: int, days: int, start: datetime, end: datetime, created) -> Cast:
    """Make (or find) the organisation for `cases` cases over `days` days; count what was made in `created`."""
    seeder = _Seeder(scale=0.1, now=end, clock=None)
    seeder.report.created = created
    seeder.people()
    seeder.organisation()
    seeder.ai_agents()
    seeder.exchange_rates()
    for plan in _standing_grants():
        seeder._grant(plan)
    admin, checker = seeder.users["admin"], seeder.users["maria"]
    kinds = {kind.code: kind for kind in AuthorityKind.objects.all()}
    per_month = cases * 30 / max(days, 1)
    agents: dict[str, list] = {}
    for slug, share in team_shares().items():
        team = seeder.teams[slug]
        wanted = max(len(TEAM_AGENTS[slug]), math.ceil(per_month * share / CASES_PER_AGENT_MONTH))
        extra = wanted - len(TEAM_AGENTS[slug])
        people = [seeder.users[name] for name in TEAM_AGENTS[slug]]
        for index in range(1, extra + 1):
            roles = [Role.AGENT] + ([Role.SENIOR_AGENT] if index % round(1 / SENIOR_SHARE) == 0 else [])
            user = _person(admin, f"{PREFIX}-{slug}-{index:03d}", roles, created)
            _member(admin, team, user, created)
            for code, per_case, per_period in AGENT_GRANTS[slug]:
                _person_grant(admin, checker, user, kinds[code], per_case, per_period, created)
            people.append(user)
        for index in range(1, math.ceil(extra / AGENTS_PER_LEAD) + 1):
            lead = _person(admin, f"{PREFIX}-{slug}-lead-{index}", [Role.MANAGER], created)
            if team.pk not in access.managed_team_ids(lead):
                team_add_manager(actor=admin, team=team, user=lead)
                created["team managers"] += 1
            for code, per_case, per_period in LEAD_GRANTS:
                _person_grant(admin, checker, lead, kinds[code], per_case, per_period, created)
        agents[slug] = people
    ai = {}
    for agent in AiAgent.objects.select_related("user", "team").filter(suspended_at__isnull=True):
        ai.setdefault(agent.team.slug, []).append((agent.user, agent))
    customers, weights = _customers(admin, max(20, math.ceil(cases / CASES_PER_CUSTOMER)), start.date(), created)
    by_pk = {user.pk: user for team in agents.values() for user in team}
    by_pk.update({user.pk: user for user in User.objects.filter(groups__name=Role.MANAGER)})
    return Cast(admin=admin, agents=agents, ai_agents=ai, customers=customers, customer_weights=weights,
                kinds=kinds, by_pk=by_pk)


def _standing_grants():
    from edges.demo.cast import GRANTS

    return [plan for plan in GRANTS if not plan.temporary_days]


def _person(admin, username: str, roles: list[str], created):
    user = User.objects.filter(username=username).first()
    if user is None:
        first, _, rest = username.partition("-")
        # No password: simulated people never sign in, and hashing one costs 0.2-0.3 s of CPU each
        # (a minute for the cast of a big month). An administrator can still set one.
        user = user_create(actor=admin, username=username, password=None, email=f"{username}@example.com",
                           first_name=first.capitalize(), last_name=rest.replace("-", " ").title())
        created["users"] += 1
    if sorted(user.groups.values_list("name", flat=True)) != sorted(str(role) for role in roles):
        user_set_roles(actor=admin, user=user, roles=[str(role) for role in roles])
        created["roles set"] += 1
    return user


def _member(admin, team: Team, user, created) -> None:
    if not team.members.filter(pk=user.pk).exists():
        team_add_member(actor=admin, team=team, user=user)
        created["team members"] += 1


def _person_grant(maker, checker, user, kind: AuthorityKind, per_case: str, per_period: str, created) -> None:
    reason = f"Simulated workload: {kind.name.lower()} up to {per_case} a case, {per_period} a month."
    grant = Grant.objects.filter(subject_user=user, kind=kind, reason=reason, case__isnull=True).first()
    if grant is None:
        grant = grant_create(actor=maker, kind=kind, reason=reason, user=user, terms=GrantTerms(
            per_case_limit=Decimal(per_case), period_limit=Decimal(per_period), period=Period.MONTH,
            currency="EUR" if kind.is_money else ""))
        created["grants"] += 1
    if grant.status == GrantStatus.PENDING:
        grant_confirm(actor=checker, grant=grant)
        created["grants confirmed"] += 1


def _customers(admin, count: int, start: date, created) -> tuple[list[Customer], list[float]]:
    """The simulation's customers (found by name: `<brand> <n>`), drawn from their own seeded generator."""
    rng = random.Random(f"{PREFIX}-customers")
    plans = []
    for number in range(1, count + 1):
        currency = _weighted(rng, CURRENCY_WEIGHTS)
        tier = _weighted(rng, TIER_WEIGHTS)
        low, high = TIER_VALUE_EUR[tier]
        name = f"{rng.choice(NAME_WORDS)} {rng.choice(TRADES)} {number:05d} {rng.choice(LEGAL_FORMS[currency])}"
        plans.append((name, tier, currency, _in_currency(Decimal(rng.randint(low, high)), currency, step=100),
                      start - timedelta(days=rng.randint(30, 365 * 10))))
    found = {c.name: c for c in Customer.objects.filter(name__in=[p[0] for p in plans])}
    customers = []
    for name, tier, currency, value, since in plans:
        customer = found.get(name)
        if customer is None:
            slug = name.lower().replace(" ", "-").replace(".", "")
            customer = customer_create(actor=admin, name=name, email=f"support@{slug}.example", tier=tier,
                                       annual_value=value, currency=currency, customer_since=since)
            created["customers"] += 1
        customers.append(customer)
    # Bigger customers write more often; a long tail writes once or twice.
    weights = [(1.0 + float(c.annual_value.amount / APPROX_RATE[str(c.annual_value.currency)]) / 100_000)
               * rng.paretovariate(1.5) for c in customers]
    return customers, weights


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]
