"""`manage.py simulate`: a realistic stretch of support work, run through the product's own steps.

Every change goes through the workflow steps and services an agent, a manager, the customer or the
timer sweep would use (case_flow_open/claim/handover/resolve/rate/reopen, decision_execute,
authority_request_flow_open/approve/reject, the AI tools ai_case_take/ai_case_decide, and
workflows.timers.timers_fire for SLA breaches, follow-up closes, fallback offers and expiries), so
the audit chain, usage counters and period caps are exactly what real work would leave. Events are
processed in time order from a priority queue on the virtual clock (edges.demo.clock): timestamps,
SLA timers and period caps behave as in real time, the clock never goes back and never passes now.

The behaviour model (all draws from one `random.Random(seed)`; times in UTC):
- Arrivals: weekdays carry full weight, Saturday a third, Sunday a quarter; within a day the
  hours 08-18 carry most of it (HOUR_WEIGHTS). Categories follow the demo mix (plan.CATEGORY_WEIGHTS);
  customers are drawn with weights that favour big accounts, so many write again within 90 days.
- People work 08:00-18:00 on weekdays (a thin weekend shift answers at a quarter of the speed):
  a step due outside those hours waits for the next working morning.
- An AI agent is offered a share of its routing categories' cases (--ai-share of all cases);
  outside its routing or over its authority it hands the case to a person, who owns it from there.
- Claims follow within minutes to hours; 4 % of cases are handed over (12 % of crises); a case
  carries 0-2 decisions with amounts from plan.DECISION_OPTIONS; a category-dependent share is over
  the owner's authority (OVER_SHARE): a quarter of those owners try anyway (a refusal on record),
  all then ask for approval (one hop). Managers answer after a log-normal wait (median ~40 min,
  in working hours); 80 % approve, the rest reject with a reason, and 5 % are never answered and
  expire through the timers. After an approval the owner executes within two hours; after a
  rejection they decide what their own authority covers.
- Resolution follows after a category-dependent log-normal time; 60 % of customers rate. The rating
  starts from 4.4 and drops with slow resolutions, handovers, rejected or expired requests; it
  rises a little after a one-hop approval. 4 % of resolved cases reopen (more after a low rating)
  and are resolved again. The timer sweep runs every simulated hour and closes cases after follow-up.

The report (edges.demo.simulation_report) reads its figures back from the database for the cases
this run opened, with the dashboard's definitions: FCR = resolved without a handover and without a reopening
(authority.reports.dashboard); CSAT = the mean customer rating (1-5), with the share of 4s and 5s;
high stakes = stakes_score >= 70.
"""

from __future__ import annotations

import gc
import heapq
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from authority.errors import AuthorityDenied
from authority.models import AuthorityRequest, RequestStatus
from authority.services import decision_execute
from edges.demo.cast import _in_currency
from edges.demo.clock import VirtualClock, running_on
from edges.demo.plan import (
    CATEGORY_WEIGHTS,
    DECISION_OPTIONS,
    DESCRIPTIONS,
    HANDOVER_NOTES,
    RATIONALES,
    REOPEN_REASONS,
    RESOLUTIONS,
    _amount_at_stake_eur,
    _subject,
)
from edges.demo.report import sqlite_commits_without_fsync
from edges.demo.simulation_cast import Cast, build_cast
from edges.demo.simulation_crews import Crew, crews_for, run_key_prefix, run_side_by_side
from edges.demo.simulation_report import outcome_report
from h2h_core.errors import DomainError
from h2h_core.models import AuditEvent, Case, CaseCategory, CaseStatus
from h2h_core.sla import team_slug_for
from workflows.services import (
    authority_request_flow_approve,
    authority_request_flow_open,
    authority_request_flow_reject,
    case_flow_claim,
    case_flow_handover,
    case_flow_open,
    case_flow_rate,
    case_flow_reopen,
    case_flow_resolve,
)
from workflows.steps.ai import ai_case_decide, ai_case_take
from workflows.timers import timers_fire

REFUSED = (AuthorityDenied, DomainError, ValidationError)
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 15, 12, 14, 15, 14, 12, 9, 6, 4, 3, 2, 2, 1)
DAY_WEIGHTS = (1, 1, 1, 1, 0.95, 0.33, 0.25)
OVER_SHARE = {CaseCategory.CRISIS: 0.35, CaseCategory.HIGH_VALUE: 0.25, CaseCategory.COMPLAINT: 0.12,
              CaseCategory.BILLING_ERROR: 0.10, CaseCategory.ONBOARDING: 0.10, CaseCategory.RENEWAL: 0.08,
              CaseCategory.OTHER: 0.04}
RESOLVE_MEDIAN_HOURS = {CaseCategory.CRISIS: 5, CaseCategory.HIGH_VALUE: 30, CaseCategory.COMPLAINT: 8,
                        CaseCategory.BILLING_ERROR: 4, CaseCategory.ONBOARDING: 20, CaseCategory.RENEWAL: 24,
                        CaseCategory.OTHER: 2}
TIMER_SWEEP = timedelta(hours=1)


@dataclass
class SimCase:
    case: Case
    crew: Crew
    team: str
    decisions_left: int
    handover: bool
    owner: object = None
    handovers: int = 0
    outcome: str = ""  # "" | "approved" | "rejected" | "expired"
    reopened: bool = False


@dataclass
class Simulation:
    clock: VirtualClock
    cast: Cast
    crews: list[Crew]
    start: datetime
    end: datetime
    ai_share: float
    sweep_scope: str  # the sweep fires the timers of the cases whose keys begin with this
    counts: Counter = field(default_factory=Counter)
    queue: list = field(default_factory=list)
    seq: int = 0
    load: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # time spent per kind of event, for the profile

    # --- the queue ----------------------------------------------------------------------------

    def at(self, when: datetime, action, *args) -> None:
        """Schedule `action(*args)` at `when` (dropped when past the end of the simulated period)."""
        if when <= self.end:
            self.seq += 1
            heapq.heappush(self.queue, (when, self.seq, action, args))

    def run(self) -> None:
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            self.clock.advance_to(when)
            began = time.perf_counter()
            action(*args)
            self.seconds[action.__name__] += time.perf_counter() - began
            self.counts["events"] += 1

    def later(self, rng: random.Random, hours: float, *, working: bool = True) -> datetime:
        """The instant `hours` of (working) time from now."""
        when = self.clock.now() + timedelta(hours=hours)
        if not working:
            return when
        if when.weekday() >= 5:  # the weekend shift is thin: a quarter of the speed
            when = self.clock.now() + timedelta(hours=hours * 4)
        if when.hour < 8:
            when = when.replace(hour=8, minute=0) + timedelta(minutes=rng.uniform(0, 90))
        elif when.hour >= 18:
            when = (when + timedelta(days=1)).replace(hour=8, minute=0) + timedelta(minutes=rng.uniform(0, 90))
        return when

    @staticmethod
    def lognormal(rng: random.Random, median_hours: float, sigma: float = 0.9) -> float:
        return median_hours * math.exp(rng.gauss(0, sigma))

    # --- arrivals and intake ----------------------------------------------------------------------

    def plan_arrivals(self, crew: Crew) -> None:
        rng = crew.rng
        hours = []
        cursor = self.start.replace(minute=0, second=0, microsecond=0)
        while cursor < self.end:
            hours.append((cursor, DAY_WEIGHTS[cursor.weekday()] * HOUR_WEIGHTS[cursor.hour]))
            cursor += timedelta(hours=1)
        slots = rng.choices([h for h, _ in hours], weights=[w for _, w in hours], k=crew.cases)
        for number, slot in enumerate(sorted(slots), start=1):
            when = max(self.start, slot + timedelta(seconds=rng.uniform(0, 3599)))
            self.at(min(when, self.end), self.open_case, crew, number)

    def open_case(self, crew: Crew, number: int) -> None:
        rng, cast = crew.rng, self.cast
        customer = rng.choices(cast.customers, weights=cast.customer_weights)[0]
        category = _weighted(rng, CATEGORY_WEIGHTS)
        currency = str(customer.annual_value.currency)
        value = SimpleNamespace(annual_value=customer.annual_value.amount, currency=currency)
        amount = _in_currency(_amount_at_stake_eur(rng, category, value), currency)
        key = f"{crew.key_prefix}{number}"
        serial = 100_000 * self.start.month + 50_000 * crew.index + number
        case = case_flow_open(actor=None, customer=customer, category=category, amount_at_stake=amount,
                              currency=currency, description=DESCRIPTIONS[category],
                              subject=_subject(rng, category, serial),
                              idempotency_key=key)
        self.counts["cases"] += 1
        decisions = 2 if rng.random() < 0.15 else 1 if rng.random() < 0.55 else 0
        handover_share = 0.12 if category == CaseCategory.CRISIS else 0.04
        sim = SimCase(case=case, crew=crew, team=team_slug_for(category), decisions_left=decisions,
                      handover=rng.random() < handover_share)
        ai = self.ai_for(sim)
        if ai is not None:
            self.at(self.later(rng, rng.uniform(0.01, 0.1), working=False), self.ai_take, sim, ai)
        else:
            self.at(self.later(rng, self.lognormal(rng, 0.6, 1.0)), self.claim, sim)

    def ai_for(self, sim: SimCase):
        """The AI agent offered this case, if any: a share of its routing categories' cases."""
        rng = sim.crew.rng
        candidates = [(user, agent) for user, agent in self.cast.ai_agents.get(sim.team, ())
                      if sim.case.category in agent.route_categories]
        if not candidates or not self.ai_share:
            return None
        routable = sum(w for c, w in CATEGORY_WEIGHTS if any(c in a.route_categories
                                                            for agents in self.cast.ai_agents.values()
                                                            for _, a in agents)) / sum(w for _, w in CATEGORY_WEIGHTS)
        return rng.choice(candidates) if rng.random() < min(1.0, self.ai_share / routable) else None

    # --- AI agents ------------------------------------------------------------------------------

    def ai_take(self, sim: SimCase, ai) -> None:
        rng = sim.crew.rng
        user, _agent = ai
        outcome = ai_case_take(actor=user, case=sim.case, idempotency_key=f"sim-take:{sim.case.pk}")
        sim.case = outcome.case
        if outcome.outcome != "owned":
            self.counts["AI hand-offs"] += 1
            self.at(self.later(rng, self.lognormal(rng, 0.5)), self.pick_up, sim)
            return
        sim.owner = user
        if sim.decisions_left:
            self.at(self.later(rng, rng.uniform(0.01, 0.2), working=False), self.ai_decide, sim)
        else:
            self.at(self.later(rng, rng.uniform(0.05, 0.5), working=False), self.resolve, sim)

    def ai_decide(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        kind, amount, currency = self.draw_decision(sim, over=rng.random() < 0.2)
        confidence = Decimal(str(round(rng.uniform(0.7, 0.99), 3)))
        outcome = ai_case_decide(actor=sim.owner, case=sim.case, kind=kind, amount=amount, currency=currency,
                                 rationale=RATIONALES[kind.code], confidence=confidence,
                                 idempotency_key=f"sim-ai:{sim.case.pk}:{sim.decisions_left}",
                                 summary="The customer's request and what the AI agent proposed.")
        sim.case = outcome.case
        if outcome.outcome == "executed":
            self.counts["AI decisions"] += 1
            sim.decisions_left -= 1
            self.at(self.later(rng, rng.uniform(0.02, 0.3), working=False), self.resolve, sim)
            return
        self.counts["AI hand-offs"] += 1
        sim.owner = None
        self.at(self.later(rng, self.lognormal(rng, 0.5)), self.pick_up, sim)

    def pick_up(self, sim: SimCase) -> None:
        """A person takes over an AI agent's case: the one it was handed to, or a claim from the queue."""
        case = Case.objects.get(pk=sim.case.pk)
        sim.case = case
        person = self.cast.by_pk.get(case.owner_id)
        if person is None:
            self.claim(sim)
            return
        sim.owner = person
        self.load[person.pk] += 1
        self.next_step(sim)

    # --- people ---------------------------------------------------------------------------------

    def claim(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        team = sim.crew.agents[sim.team]
        # The least busy of three: queues are balanced by people, not perfectly.
        agent = min(rng.sample(team, min(3, len(team))), key=lambda user: self.load[user.pk])
        try:
            sim.case = case_flow_claim(actor=agent, case=sim.case)
        except REFUSED:
            self.counts["skipped"] += 1
            return
        sim.owner = agent
        self.load[agent.pk] += 1
        self.next_step(sim)

    def next_step(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        if sim.handover and not sim.handovers:
            self.at(self.later(rng, self.lognormal(rng, 3)), self.handover, sim)
        elif sim.decisions_left:
            self.at(self.later(rng, self.lognormal(rng, 1.5)), self.decide, sim)
        else:
            median = RESOLVE_MEDIAN_HOURS[sim.case.category]
            self.at(self.later(rng, self.lognormal(rng, median)), self.resolve, sim)

    def handover(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        others = [user for user in sim.crew.agents[sim.team] if user.pk != sim.owner.pk]
        sim.handovers += 1
        if others:
            to = rng.choice(others)
            try:
                sim.case = case_flow_handover(actor=sim.owner, case=sim.case, to_user=to,
                                              note=rng.choice(HANDOVER_NOTES))
                self.load[sim.owner.pk] -= 1
                self.load[to.pk] += 1
                sim.owner = to
                self.counts["handovers"] += 1
            except REFUSED:
                self.counts["skipped"] += 1
        self.next_step(sim)

    def draw_decision(self, sim: SimCase, *, over: bool):
        rng = sim.crew.rng
        code, low, high = rng.choice(DECISION_OPTIONS[sim.case.category])
        kind = self.cast.kinds[code]
        value = rng.randint(low, high)
        if over:
            value = round(high * rng.uniform(1.5, 5)) if kind.is_money else high + rng.randint(2, 8)
        if kind.is_money:
            currency = str(sim.case.amount_at_stake.currency)
            return kind, _in_currency(Decimal(value), currency, step=5), currency
        return kind, Decimal(value), None

    def decide(self, sim: SimCase) -> None:
        """Decide within authority, or (over it, or refused at the cap) ask for one hop of approval.

        The owner knows their limits (the case page shows the headroom): an amount drawn over them goes
        to a request, after a refused try a quarter of the time; one within them is executed, and
        refused only when the period cap has run out meanwhile, which then leads to a request too.
        """
        rng = sim.crew.rng
        over = rng.random() < OVER_SHARE[sim.case.category]
        kind, amount, currency = self.draw_decision(sim, over=over)
        sim.decisions_left -= 1
        asks_first = over and rng.random() >= 0.25
        if asks_first or not self.execute(sim, kind, amount, currency, RATIONALES[kind.code]):
            self.ask(sim, kind, amount, currency)
        else:
            self.next_step(sim)

    def ask(self, sim: SimCase, kind, amount, currency) -> None:
        rng = sim.crew.rng
        try:
            request = authority_request_flow_open(
                actor=sim.owner, case=sim.case, kind=kind, amount=amount, currency=currency,
                justification="The customer's loss is more than my authority covers; settling it keeps the account.",
                idempotency_key=f"sim-req:{sim.case.pk}:{sim.decisions_left}")
        except REFUSED:
            self.counts["requests refused"] += 1
            self.next_step(sim)
            return
        self.counts["requests"] += 1
        if rng.random() < 0.05:  # nobody answers: the timers offer it to the fallback pool, then expire it
            sim.outcome = "expired"
            self.at(request.expires_at + timedelta(minutes=5), self.next_step, sim)
            return
        self.at(self.later(rng, self.lognormal(rng, 0.7, 1.1)), self.answer, sim, request, rng.random() < 0.8)

    def execute(self, sim: SimCase, kind, amount, currency, rationale: str) -> bool:
        try:
            decision_execute(actor=sim.owner, case=sim.case, kind=kind, amount=amount, currency=currency,
                             rationale=rationale)
        except REFUSED:
            self.counts["refusals"] += 1
            return False
        self.counts["decisions"] += 1
        return True

    def answer(self, sim: SimCase, request: AuthorityRequest, approve: bool) -> None:
        rng = sim.crew.rng
        request = AuthorityRequest.objects.select_related("kind").get(pk=request.pk)
        if request.status != RequestStatus.OPEN:
            sim.outcome = request.status
            self.next_step(sim)
            return
        pool = [self.cast.by_pk[pk] for pk in request.pool if pk in self.cast.by_pk]
        rng.shuffle(pool)
        for approver in pool:
            try:
                if approve:
                    authority_request_flow_approve(actor=approver, request=request,
                                                   note="Agreed: the evidence supports it.")
                else:
                    authority_request_flow_reject(actor=approver, request=request,
                                                  note="Not in full: settle what you may and credit the rest later.")
            except REFUSED:
                continue
            sim.outcome = "approved" if approve else "rejected"
            self.counts[f"requests {sim.outcome}"] += 1
            if approve:
                self.at(self.later(rng, rng.uniform(0.1, 2)), self.execute_approved, sim, request)
            else:
                self.at(self.later(rng, rng.uniform(0.1, 3)), self.after_rejection, sim, request)
            return
        # Nobody in the pool can answer it: it waits for the fallback pool and its expiry.
        self.counts["requests unanswered"] += 1
        sim.outcome = "expired"
        self.at(request.expires_at + timedelta(minutes=5), self.next_step, sim)

    def execute_approved(self, sim: SimCase, request: AuthorityRequest) -> None:
        self.execute(sim, request.kind, request.amount, request.currency or None, "Executed as approved.")
        self.next_step(sim)

    def after_rejection(self, sim: SimCase, request: AuthorityRequest) -> None:
        kind, amount, currency = self.draw_decision(sim, over=False)
        self.execute(sim, kind, amount, currency, "What my own authority covers, after the rejection.")
        self.next_step(sim)

    def resolve(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        summary = RESOLUTIONS[sim.case.category][1 if sim.reopened else 0]
        try:
            sim.case = case_flow_resolve(actor=sim.owner, case=sim.case, summary=summary)
        except REFUSED:
            self.counts["skipped"] += 1
            return
        self.load[sim.owner.pk] -= 1
        if rng.random() < 0.6 and not sim.reopened:
            self.at(self.later(rng, self.lognormal(rng, 6, 1.2), working=False), self.rate, sim)
        elif not sim.reopened and rng.random() < 0.04:
            self.at(self.later(rng, self.lognormal(rng, 48, 0.8), working=False), self.reopen, sim)

    def rate(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        took = (sim.case.resolved_at - sim.case.opened_at).total_seconds() / 3600
        score = 4.4 - (0.6 if took > 48 else 0.3 if took > 24 else 0) - 0.5 * sim.handovers
        score += {"approved": 0.3, "rejected": -0.7, "expired": -1.2}.get(sim.outcome, 0)
        rating = max(1, min(5, round(score + rng.gauss(0, 0.8))))
        try:
            case_flow_rate(case=sim.case, rating=rating)
        except REFUSED:
            self.counts["skipped"] += 1
            return
        self.counts["ratings"] += 1
        if rng.random() < (0.25 if rating <= 2 else 0.03):
            self.at(self.later(rng, self.lognormal(rng, 30, 0.8), working=False), self.reopen, sim)

    def reopen(self, sim: SimCase) -> None:
        rng = sim.crew.rng
        case = Case.objects.get(pk=sim.case.pk)
        if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED) or case.owner_id != sim.owner.pk:
            return
        try:
            sim.case = case_flow_reopen(actor=sim.owner, case=case, reason=rng.choice(REOPEN_REASONS))
        except REFUSED:
            self.counts["skipped"] += 1
            return
        sim.reopened = True
        self.counts["reopened"] += 1
        self.load[sim.owner.pk] += 1
        self.at(self.later(rng, self.lognormal(rng, 4)), self.resolve, sim)

    def sweep(self) -> None:
        fired = timers_fire(cases=Case.objects.filter(idempotency_key__startswith=self.sweep_scope))
        self.counts["timers fired"] += fired["timers"] + fired["conditions"]
        self.at(self.clock.now() + TIMER_SWEEP, self.sweep)


@contextmanager
def fewer_garbage_collections() -> Iterator[None]:
    """Collect less often while simulating (restored after): the ORM makes and drops many small objects.

    What was built before (Django, the cast) is set aside from collection (`gc.freeze`), and the
    youngest generation is collected every 50,000 allocations instead of 700. About 2 % of the
    CPU on 800 cases, within the noise of that one measurement (docs/performance.md).
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@contextmanager
def statements_not_recorded() -> Iterator[None]:
    """Keep Django from recording each statement, as it does with DEBUG on (restored after).

    A month is millions of statements nobody reads from `connection.queries`; recording each one
    formats it, and on SQLite asks the database to quote its parameters, a second round trip: 15 %
    of a SQLite run (docs/performance.md). Only what Django keeps for debugging changes.
    """
    with override_settings(DEBUG=False):
        yield


@contextmanager
def postgres_commits_without_flush_wait() -> Iterator[None]:
    """On PostgreSQL, let this session's commits return before the WAL reaches the disk (restored after).

    The simulation commits tens of thousands of small transactions; simulated history needs no
    protection against a crash in the middle (run it again). Never a rule: only durability timing.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


# --- the run and its report ------------------------------------------------------------------


def default_start(*, days: int, now: datetime) -> datetime:
    """Midnight UTC `days` + 1 days ago, or where the audit chain ends when that is later."""
    start = (now - timedelta(days=days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    last = AuditEvent.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    return max(start, last + timedelta(seconds=1)) if last else start


def simulate(*, days: int = 30, cases: int = 10_000, seed: int = 7, start: datetime | None = None,
             ai_share: float = 0.2, now: datetime | None = None, workers: int = 1) -> dict:
    """Simulate `cases` cases over `days` days from `start`, through the services; return the report.

    `workers`: how many processes run the crews side by side (edges.demo.simulation_crews); 1 runs
    them together in this process, in one time order, which a seed then replays exactly.
    """
    started = time.monotonic()
    now = now or timezone.now()
    if days < 1 or cases < 1:
        raise ValueError("--days and --cases must be at least 1.")
    if not 0 <= ai_share <= 1:
        raise ValueError("--ai-share is a share between 0 and 1.")
    if workers < 1:
        raise ValueError("--workers must be at least 1.")
    if workers > 1 and connection.vendor == "sqlite":
        raise ValueError("SQLite takes one writer at a time: simulate with --workers 1.")
    start = start or default_start(days=days, now=now)
    end = start + timedelta(days=days)
    if end > now:
        raise ValueError(f"The simulated period would end at {end:%Y-%m-%d %H:%M} UTC, after now: start earlier.")
    last = AuditEvent.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    if last and last > start:
        raise ValueError(f"The audit chain already reaches {last:%Y-%m-%d %H:%M} UTC, and time never runs back: "
                         "start after it (or leave --start out).")
    first_case = (Case.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    first_event = AuditEvent.objects.count()
    created = Counter()
    with (sqlite_commits_without_fsync(), postgres_commits_without_flush_wait(), statements_not_recorded(),
          running_on(VirtualClock(start))):
        cast = build_cast(cases=cases, days=days, start=start, end=end, created=created)
    crews = crews_for(agents=cast.agents, seed=seed, cases=cases, start=start)
    groups = [crews[index::workers] for index in range(min(workers, len(crews)))]

    def run(group: list[Crew]) -> tuple[Counter, Counter]:
        clock = VirtualClock(start)
        scope = group[0].key_prefix if len(group) == 1 else run_key_prefix(start)
        with (sqlite_commits_without_fsync(), postgres_commits_without_flush_wait(), statements_not_recorded(),
              running_on(clock), fewer_garbage_collections()):
            sim = Simulation(clock=clock, cast=cast, crews=group, start=start, end=end, ai_share=ai_share,
                             sweep_scope=scope)
            for crew in group:
                sim.plan_arrivals(crew)
            sim.at(start + TIMER_SWEEP, sim.sweep)
            sim.run()
        return sim.counts, sim.seconds

    outcomes = run_side_by_side(run, groups)
    counts = sum((counted for counted, _ in outcomes), Counter())
    by_step = sum((spent for _, spent in outcomes), Counter())
    report = outcome_report(first_case=first_case, start=start, end=end)
    seconds = time.monotonic() - started
    events = counts["events"]
    last_event = AuditEvent.objects.count()
    report.update(start=start.isoformat(), end=end.isoformat(), seed=seed, events=events, workers=len(groups),
                  audit_events=last_event - first_event, organisation_created=dict(created),
                  simulated=dict(counts), seconds=round(seconds, 1),
                  seconds_by_event={name: round(value, 1) for name, value in by_step.most_common()},
                  events_per_second=round(events / seconds, 1) if seconds else None)
    return report
