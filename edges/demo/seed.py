"""Seed a believable demo organisation, through the services, so the audit chain starts consistent.

`seed_demo()` is idempotent and deterministic: a plan is drawn from `random.Random(SEED)` (it never
depends on what the database holds), then every object of the plan that is not there yet is
created through its service. People are found by username, teams by slug, customers by name, cases
by customer and subject (each subject carries an invoice, contract or incident number), grants by
subject, kind and reason, decisions by an idempotency key naming the case and step, and a case's
other steps by the events on its timeline. A second run therefore writes nothing, not even an audit
event, and a run that was interrupted picks up where it stopped.

Team grants and the managers' own grants are made by the admin and kept within the kinds'
confirmation thresholds: a team's managers may not grant to it, and with a single superuser nobody
could confirm more for a manager. Grants above a threshold go to a second actor who may confirm.

History spreads over the last three months: the organisation, its grants and the exchange rates
exist from the start, a grant is changed half-way, a temporary raise starts days ago, and every case
is opened and worked on at the instants of its plan. The services read the time from
`timezone.now()`; the seed runs them on a virtual clock (`edges.demo.clock`) that moves forward
through the plan, so "authority as of", time to approve and the dashboards show real values and
the audit chain's time never runs backwards. A second run continues from the last audit event.
"""


from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone

from authority import policy
from authority.errors import AuthorityDenied
from authority.models import AuthorityKind, AuthorityRequest, Decision, ExchangeRate, Grant, GrantStatus, RequestStatus
from authority.services import (
    GrantTerms,
    authority_request_approve,
    authority_request_open,
    authority_request_reject,
    decision_execute,
    exchange_rate_set,
    grant_change,
    grant_confirm,
    grant_create,
)
from edges.demo.cast import (
    AI_AGENTS,
    GRANTS,
    HISTORY_DAYS,
    KEY_PREFIX,
    PASSWORD,
    PEOPLE,
    RATE_CURRENCIES,
    RATE_WEEKS,
    SEED,
    TEAMS,
    GrantPlan,
    _rate_on,
)
from edges.demo.clock import VirtualClock, running_on
from edges.demo.plan import PERIOD_RESERVE, STEP_EVENT, CasePlan, Step, build_plan
from edges.demo.report import SeedReport, sqlite_commits_without_fsync
from h2h_core import access
from h2h_core.ai_agents import ai_agent_register
from h2h_core.errors import DomainError
from h2h_core.hand_offs import hand_off_pick_up
from h2h_core.models import AiAgent, AuditEvent, Case, CaseEvent, Customer, HandOff, Team
from h2h_core.people import user_create
from h2h_core.services import (
    case_add_note,
    case_claim,
    case_close,
    case_handover,
    case_open,
    case_rate,
    case_reopen,
    case_resolve,
    customer_create,
    team_add_manager,
    team_add_member,
    team_create,
    user_set_roles,
)
from workflows.steps.ai import AiOutcome, ai_case_decide, ai_case_take

User = get_user_model()
# The organisation and its standing grants exist this many days before the first case.
GRANTS_LEAD_DAYS = 14
GRANT_CHANGE_AFTER_DAYS = 50
TEMPORARY_RAISE_AGE_DAYS = 5
# Simulated history before the demo's own: three months, a few cases a day (edges.demo.simulation).
SIMULATED_DAYS = 90
SIMULATED_CASES = 450

# --- applying the plan -----------------------------------------------------------------------


class _Seeder:
    def __init__(self, *, scale: float, now: datetime, clock: VirtualClock):
        self.now = now
        self.clock = clock
        self.history_start = now - timedelta(days=HISTORY_DAYS + GRANTS_LEAD_DAYS)
        self.plan = build_plan(scale=scale, now=now)
        self.report = SeedReport()
        self.users: dict[str, object] = {}
        self.teams: dict[str, Team] = {}
        self.kinds = {kind.code: kind for kind in AuthorityKind.objects.all()}
        self.opened: dict[int, Case] = {}

    # people and teams

    def load_users(self) -> None:
        """(Re)load the cast, with groups prefetched: the role and team caches start empty."""
        names = [person.username for person in PEOPLE] + [agent.username for agent in AI_AGENTS]
        self.users = {u.username: u for u in User.objects.filter(username__in=names).prefetch_related("groups")}
        self.by_pk = {user.pk: user for user in self.users.values()}

    def people(self) -> None:
        self.load_users()
        for person in PEOPLE:
            if person.username in self.users:
                continue
            user_create(actor=None, username=person.username, password=PASSWORD,
                        email=f"{person.username}@example.com", first_name=person.first_name,
                        last_name=person.last_name, is_staff=person.superuser, is_superuser=person.superuser)
            self.report.created["users"] += 1
        self.load_users()
        admin = self.users["admin"]
        for person in PEOPLE:
            user = self.users[person.username]
            if sorted(g.name for g in user.groups.all()) != sorted(person.roles):
                user_set_roles(actor=admin, user=user, roles=[str(role) for role in person.roles])
                self.report.created["roles set"] += 1

    def organisation(self) -> None:
        admin = self.users["admin"]
        self.teams = {team.slug: team for team in Team.objects.filter(slug__in=[slug for slug, _ in TEAMS])}
        for slug, name in TEAMS:
            if slug not in self.teams:
                self.teams[slug] = team_create(actor=admin, name=name, slug=slug)
                self.report.created["teams"] += 1
        for person in PEOPLE:
            user = self.users[person.username]
            for slug in person.member_of:
                team = self.teams[slug]
                if not team.members.filter(pk=user.pk).exists():
                    team_add_member(actor=admin, team=team, user=user)
                    self.report.created["team members"] += 1
            for slug in person.manages:
                team = self.teams[slug]
                if team.pk not in access.managed_team_ids(user):
                    team_add_manager(actor=admin, team=team, user=user)
                    self.report.created["team managers"] += 1
        self.load_users()

    def ai_agents(self) -> None:
        """Register the AI agents that are missing, by the manager of their team, through the service."""
        registered = set(AiAgent.objects.filter(user__username__in=[plan.username for plan in AI_AGENTS])
                         .values_list("user__username", flat=True))
        for plan in AI_AGENTS:
            if plan.username in registered:
                continue
            ai_agent_register(actor=self.users[plan.registered_by], username=plan.username,
                              team=self.teams[plan.team], model_name=plan.model_name,
                              model_version=plan.model_version, description=plan.description,
                              route_categories=plan.route_categories, max_stakes=plan.max_stakes)
            self.report.created["AI agents"] += 1
        self.load_users()

    # money and authority

    def exchange_rates(self) -> None:
        admin = self.users["admin"]
        today = timezone.localdate(self.now)
        monday = today - timedelta(days=today.weekday())
        days = [monday - timedelta(weeks=week) for week in range(RATE_WEEKS - 1, -1, -1)]
        existing = set(ExchangeRate.objects.filter(base="EUR", quote__in=RATE_CURRENCIES, valid_on__in=days)
                       .values_list("quote", "valid_on"))
        for day in days:
            for currency in RATE_CURRENCIES:
                if (currency, day) not in existing:
                    exchange_rate_set(actor=admin, base="EUR", quote=currency, rate=_rate_on(currency, day),
                                      valid_on=day)
                    self.report.created["exchange rates"] += 1

    def _subject(self, subject: tuple[str, str]) -> dict:
        level, name = subject
        if level == "user":
            return {"user": self.users[name]}
        if level == "team":
            return {"team": self.teams[name]}
        return {"role": Group.objects.get(name=name)}

    def _terms(self, plan: GrantPlan, per_case, period_limit) -> GrantTerms:
        kind = self.kinds[plan.kind]
        return GrantTerms(
            effect=plan.effect,
            per_case_limit=Decimal(per_case) if per_case else None,
            period_limit=Decimal(period_limit) if period_limit else None,
            period=plan.period,
            currency="EUR" if kind.is_money else "",
            scope_categories=plan.categories,
            scope_tiers=plan.tiers,
            valid_until=self.now + timedelta(days=plan.temporary_days) if plan.temporary_days else None,
        )

    def grants(self) -> list[tuple[datetime, Callable[[], None]]]:
        """Create the standing grants now (the start of history); return the later ones as timeline entries."""
        later = []
        for plan in GRANTS:
            if plan.temporary_days:
                later.append((self.now - timedelta(days=TEMPORARY_RAISE_AGE_DAYS), partial(self._grant, plan)))
            else:
                self._grant(plan)
            if plan.change:
                later.append((self.history_start + timedelta(days=GRANT_CHANGE_AFTER_DAYS),
                              partial(self._grant_change, plan)))
        return later

    def _grant(self, plan: GrantPlan) -> Grant:
        subject = self._subject(plan.subject)
        lookup = {f"subject_{level}": value for level, value in subject.items()}
        kind = self.kinds[plan.kind]
        grant = Grant.objects.filter(kind=kind, version=1, reason=plan.reason, case__isnull=True, **lookup).first()
        if grant is None:
            grant = grant_create(actor=self.users[plan.maker], kind=kind, reason=plan.reason,
                                 terms=self._terms(plan, plan.per_case, plan.period_limit), shadow=plan.shadow,
                                 **subject)
            self.report.created["grants"] += 1
        if grant.status == GrantStatus.PENDING and plan.checker:
            grant = grant_confirm(actor=self.users[plan.checker], grant=grant)
            self.report.created["grants confirmed"] += 1
        return grant

    def _grant_change(self, plan: GrantPlan) -> None:
        grant = self._grant(plan)
        if Grant.objects.filter(lineage=grant.lineage, version__gt=1).exists():
            return
        maker, per_case, period_limit, reason, checker = plan.change
        new = grant_change(actor=self.users[maker], grant=grant, reason=reason,
                           terms=self._terms(plan, per_case, period_limit))
        self.report.created["grant changes"] += 1
        if new.status == GrantStatus.PENDING and checker:
            grant_confirm(actor=self.users[checker], grant=new)
            self.report.created["grants confirmed"] += 1

    # customers and cases

    def customers(self) -> dict[str, Customer]:
        admin = self.users["admin"]
        names = [c.name for c in self.plan.customers]
        found = {c.name: c for c in Customer.objects.filter(name__in=names)}
        for plan in self.plan.customers:
            if plan.name not in found:
                found[plan.name] = customer_create(
                    actor=admin, name=plan.name, email=plan.email, tier=plan.tier, annual_value=plan.annual_value,
                    currency=plan.currency, customer_since=plan.customer_since,
                )
                self.report.created["customers"] += 1
        return found

    def cases(self, customers: dict[str, Customer], later: list[tuple[datetime, Callable[[], None]]]) -> None:
        """Open and work every case at the instants of its plan, in time order across all cases."""
        subjects = [plan.subject for plan in self.plan.cases]
        existing = {(case.customer_id, case.subject): case for case in Case.objects.filter(subject__in=subjects)}
        events: dict[int, Counter] = {}
        if existing:
            rows = (CaseEvent.objects.filter(case__in=existing.values()).values("case_id", "kind")
                    .annotate(n=Count("id")))
            for row in rows:
                events.setdefault(row["case_id"], Counter())[row["kind"]] = row["n"]
        self.decision_keys = set(
            Decision.objects.filter(idempotency_key__startswith=f"{KEY_PREFIX}:").values_list("idempotency_key",
                                                                                             flat=True)
        )
        self.refused_cases = {
            int(pk) for pk in AuditEvent.objects.filter(action="decision.refused", object_type="case")
            .values_list("object_id", flat=True) if pk.isdigit()
        }
        # An AI agent's decision leaves a decision or a hand-off under its key; a pick-up, its instant.
        self.hand_off_keys = set(
            HandOff.objects.filter(idempotency_key__startswith=f"{KEY_PREFIX}:").values_list("idempotency_key",
                                                                                             flat=True)
        )
        self.picked_up_cases = set(HandOff.objects.filter(picked_up_at__isnull=False).values_list("case_id",
                                                                                                 flat=True))
        timeline = list(later)
        for plan in self.plan.cases:
            case = existing.get((customers[plan.customer].pk, plan.subject))
            if case is None:
                timeline.append((plan.opened_at, partial(self._open, plan, customers[plan.customer])))
                start = 0
            else:
                self.opened[plan.number] = case
                start = self._first_missing_step(plan, case, events.get(case.pk, Counter()))
            timeline.extend((plan.steps[index].at, partial(self._perform, plan, index))
                            for index in range(start, len(plan.steps)))
        for at, happen in sorted(timeline, key=lambda entry: entry[0]):
            self.clock.advance_to(at)
            happen()

    def _open(self, plan: CasePlan, customer: Customer) -> None:
        self.opened[plan.number] = case_open(
            actor=None, customer=customer, subject=plan.subject, category=plan.category,
            amount_at_stake=plan.amount, currency=plan.currency, description=plan.description,
            opened_at=self.clock.now(),
        )
        self.report.created["cases"] += 1

    def _key(self, case: Case, index: int) -> str:
        """Name step `index` of `case`: the case's own id, so plans of other scales never collide."""
        return f"{KEY_PREFIX}:{case.pk}:{index}"

    def _done(self, plan: CasePlan, case: Case, seen: Counter) -> list[bool]:
        """Say for each step whether it already happened, from the case's timeline."""
        done, occurrences = [], Counter()
        for index, step in enumerate(plan.steps):
            if step.action == "decide":
                done.append(self._key(case, index) in self.decision_keys)
            elif step.action == "attempt":
                done.append(case.pk in self.refused_cases)
            elif step.action == "ai_decide":
                key = self._key(case, index)
                done.append(key in self.decision_keys or key in self.hand_off_keys)
            elif step.action == "pick_up":
                done.append(case.pk in self.picked_up_cases)
            else:
                event = STEP_EVENT[step.action]
                occurrences[event] += 1
                done.append(seen[event] >= occurrences[event])
        return done

    def _first_missing_step(self, plan: CasePlan, case: Case, seen: Counter) -> int:
        done = self._done(plan, case, seen)
        return max((index + 1 for index, flag in enumerate(done) if flag), default=0)

    def _perform(self, plan: CasePlan, index: int) -> None:
        """Do one step; a generic request, answer or decision the rules refuse is skipped."""
        step = plan.steps[index]
        if step.story or step.action not in ("request", "approve", "reject", "decide"):
            self._do(plan, index)
            return
        try:
            self._do(plan, index)
        except (AuthorityDenied, DomainError, ValidationError):
            self.report.created["skipped"] += 1

    def _do(self, plan: CasePlan, index: int) -> None:
        case, step = self.opened[plan.number], plan.steps[index]
        actor = self.users[step.actor] if step.actor else None
        action = step.action
        if action == "claim":
            case_claim(actor=actor, case=case)
        elif action == "note":
            case_add_note(actor=actor, case=case, text=step.text)
        elif action == "handover":
            case_handover(actor=actor, case=case, to_user=self.users[step.to], note=step.text)
        elif action == "resolve":
            case_resolve(actor=actor, case=case, summary=step.text)
        elif action == "close":
            case_close(actor=actor, case=case, reason=step.text)
        elif action == "reopen":
            case_reopen(actor=actor, case=case, reason=step.text)
        elif action == "rate":
            case_rate(case=case, rating=step.rating)
        elif action == "request":
            authority_request_open(actor=actor, case=case, kind=self.kinds[step.kind], amount=step.amount,
                                   currency=step.currency or None, justification=step.text,
                                   idempotency_key=self._key(case, index))
            self.report.created["authority requests"] += 1
        elif action in ("approve", "reject"):
            request = (AuthorityRequest.objects.filter(case=case, kind=self.kinds[step.kind])
                       .order_by("-created_at", "-id").first())
            if actor is None:  # a generic answer: whoever the request's pool names first
                actor = next((self.by_pk[pk] for pk in request.pool if pk in self.by_pk), None) if request else None
                if actor is None or request.status != RequestStatus.OPEN:
                    self.report.created["skipped"] += 1
                    return
            if action == "approve":
                authority_request_approve(actor=actor, request=request, note=step.text)
            else:
                authority_request_reject(actor=actor, request=request, note=step.text)
        elif action == "attempt":
            try:
                decision_execute(actor=actor, case=case, kind=self.kinds[step.kind], amount=step.amount,
                                 currency=step.currency or None, rationale=step.text)
            except AuthorityDenied:
                self.report.created["refusals"] += 1
            else:
                raise AssertionError(f"The demo expected {step.actor}'s {step.kind} on {plan.subject} to be refused.")
            return
        elif action == "decide":
            self._decide(case, index, step, actor)
            return
        elif action == "ai_take":
            self._expect(plan, step, ai_case_take(actor=actor, case=case))
        elif action == "ai_decide":
            outcome = ai_case_decide(
                actor=actor, case=case, kind=self.kinds[step.kind], amount=step.amount,
                currency=step.currency or None, rationale=step.text, confidence=step.confidence,
                idempotency_key=self._key(case, index), summary=step.summary,
                transcript=[{"from": who, "text": text} for who, text in step.transcript])
            self._expect(plan, step, outcome)
            self.report.created["AI decisions" if outcome.decision else "AI hand-offs"] += 1
            return
        elif action == "pick_up":
            hand_off = HandOff.objects.select_related("to_user").filter(case=case).order_by("-created_at",
                                                                                            "-id").first()
            hand_off_pick_up(actor=actor or hand_off.to_user, hand_off=hand_off)
        self.report.created["case steps"] += 1

    @staticmethod
    def _expect(plan: CasePlan, step: Step, outcome: AiOutcome) -> None:
        if step.expect and outcome.outcome != step.expect:
            raise AssertionError(f"The demo expected {step.actor}'s {step.action} on {plan.subject} to end "
                                 f"{step.expect}, not {outcome.outcome}: {' '.join(outcome.reasons)}")

    def _decide(self, case: Case, index: int, step: Step, actor) -> None:
        kind = self.kinds[step.kind]
        currency = step.currency or None
        if not step.story:
            fresh = Case.objects.select_related("customer").get(pk=case.pk)
            verdict = policy.evaluate(agent=actor, kind=kind, amount=step.amount, currency=currency, case=fresh)
            if not verdict.allowed:
                return
            if verdict.period_limit is not None:
                left_after = verdict.period_headroom - verdict.counted_amount
                if left_after < verdict.period_limit * PERIOD_RESERVE:
                    return
        decision_execute(actor=actor, case=case, kind=kind, amount=step.amount, currency=currency,
                         rationale=step.text, idempotency_key=self._key(case, index))
        self.report.created["decisions"] += 1


def seed_demo(*, scale: float = 1.0, now: datetime | None = None, history_cases: int | None = None) -> SeedReport:
    """Create whatever of the demo organisation is missing, through the services; return what was made.

    Runs outside any transaction: every service commits its own change and audit event. On an empty
    audit chain, `history_cases` cases (default SIMULATED_CASES times the scale) are first simulated
    over the SIMULATED_DAYS before the demo's own history (edges.demo.simulation), so the reports have
    months of outcomes to show; later runs skip it, since time on the chain never runs back.
    """
    started = time.monotonic()
    first_event = AuditEvent.objects.count()
    now = now or timezone.now()
    simulated = _simulate_history(now=now, cases=round(SIMULATED_CASES * scale) if history_cases is None
                                  else history_cases)
    last_recorded = AuditEvent.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    clock = VirtualClock(now - timedelta(days=HISTORY_DAYS + GRANTS_LEAD_DAYS))
    if last_recorded:
        clock.advance_to(min(last_recorded, now))  # a second run continues where the chain ends
    seeder = _Seeder(scale=scale, now=now, clock=clock)
    with sqlite_commits_without_fsync(), running_on(clock):
        seeder.people()
        seeder.organisation()
        seeder.ai_agents()
        seeder.exchange_rates()
        later = seeder.grants()
        seeder.cases(seeder.customers(), later)
    report = seeder.report
    if simulated:
        report.created.update(simulated["organisation_created"])
        report.created["simulated cases"] += simulated["cases"]
    last_event = AuditEvent.objects.count()
    report.audit_events = last_event - first_event
    report.seconds = time.monotonic() - started
    return report


def _simulate_history(*, now: datetime, cases: int) -> dict | None:
    """Simulate the months before the demo's history, once: only while the audit chain is empty."""
    if cases <= 0 or AuditEvent.objects.exists():
        return None
    from edges.demo.simulation import simulate  # it builds its cast with this module's seeder

    end = now - timedelta(days=HISTORY_DAYS + GRANTS_LEAD_DAYS + 1)
    return simulate(days=SIMULATED_DAYS, cases=cases, seed=SEED, start=end - timedelta(days=SIMULATED_DAYS),
                    ai_share=0.2, now=now)
