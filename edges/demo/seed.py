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

Two things are relative to the moment of the run: cases are opened over the last ~90 days and
exchange rates are dated on the Mondays of the last quarter (their values depend only on the date).
Everything after a case is opened (claims, decisions, resolutions) happens now: the services take
no other time, and the audit chain never runs backwards.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from authority import policy
from authority.errors import AuthorityDenied
from authority.models import AuthorityKind, AuthorityRequest, Decision, Effect, ExchangeRate, Grant, GrantStatus, Period
from authority.quantities import currency_exponent
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
from h2h_core import access
from h2h_core.models import AuditEvent, Case, CaseCategory, CaseEvent, CaseStatus, Customer, CustomerTier, Role, Team
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
from h2h_core.sla import team_slug_for

User = get_user_model()

SEED = 20250514
PASSWORD = "h2h-demo"
BASE_CUSTOMERS = 200
BASE_CASES = 300
HISTORY_DAYS = 90
KEY_PREFIX = "demo"

# --- the cast --------------------------------------------------------------------------------

FALLBACK = settings.H2H_FALLBACK_APPROVER_GROUP


@dataclass(frozen=True)
class Person:
    username: str
    first_name: str
    last_name: str
    roles: tuple[str, ...] = ()
    member_of: tuple[str, ...] = ()
    manages: tuple[str, ...] = ()
    superuser: bool = False


PEOPLE = (
    Person("admin", "Sam", "Admin", superuser=True),
    Person("alice", "Alice", "Novak", (Role.AGENT,), ("retention",)),
    Person("bob", "Bob", "Keller", (Role.AGENT, Role.SENIOR_AGENT), ("retention",)),
    Person("carol", "Carol", "Jansen", (Role.AGENT,), ("billing",)),
    Person("dave", "Dave", "Okafor", (Role.AGENT,), ("billing",)),
    Person("erin", "Erin", "Lindqvist", (Role.AGENT,), ("onboarding",)),
    Person("maria", "Maria", "Costa", (Role.MANAGER,), manages=("retention", "billing")),
    Person("mike", "Mike", "Brennan", (Role.MANAGER, FALLBACK), manages=("onboarding",)),
    Person("audrey", "Audrey", "Fischer", (Role.AUDITOR,)),
)
TEAMS = (("retention", "Retention"), ("billing", "Billing"), ("onboarding", "Onboarding"))
TEAM_AGENTS = {"retention": ("alice", "bob"), "billing": ("carol", "dave"), "onboarding": ("erin",)}

# --- money -----------------------------------------------------------------------------------

# Rough EUR rates used to make amounts look natural in each currency; the recorded rates vary
# around them (see _rate_on).
APPROX_RATE = {"EUR": Decimal(1), "USD": Decimal("1.09"), "GBP": Decimal("0.855"), "CHF": Decimal("0.955"),
               "SEK": Decimal("11.35"), "JPY": Decimal("163")}
RATE_CURRENCIES = ("USD", "GBP", "CHF", "SEK", "JPY")
RATE_WEEKS = 13


def _in_currency(eur: Decimal, currency: str, *, step: int = 1) -> Decimal:
    """Convert a EUR figure to a natural-looking amount in `currency` (whole `step`s of it)."""
    value = Decimal(eur) * APPROX_RATE[currency]
    if currency == "JPY":
        step *= 100
    rounded = (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    return max(rounded, Decimal(step)).quantize(Decimal(1).scaleb(-currency_exponent(currency)))


def _rate_on(currency: str, day: date) -> Decimal:
    """Return the EUR/`currency` rate recorded for `day`: fixed for a given day, whenever seeded."""
    wobble = Decimal(str(random.Random(f"{currency}:{day.isoformat()}").uniform(-0.02, 0.02)))
    places = Decimal("0.01") if currency == "JPY" else Decimal("0.0001")
    return (APPROX_RATE[currency] * (1 + wobble)).quantize(places)


# --- grants ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantPlan:
    """One grant lineage: who makes it, who confirms it, and an optional second version."""

    subject: tuple[str, str]  # ("role", name) | ("team", slug) | ("user", username)
    kind: str
    reason: str
    maker: str
    per_case: str | None = None
    period_limit: str | None = None
    period: str = Period.NONE
    effect: str = Effect.PERMIT
    categories: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    temporary_days: int | None = None
    checker: str | None = None
    # (maker, per_case, period_limit, reason, checker) of a version 2
    change: tuple[str, str, str, str, str | None] | None = None


def _role(name):
    return ("role", str(name))


M, Q, W = Period.MONTH, Period.QUARTER, Period.WEEK
GRANTS = (
    # Roles: the baseline every agent, senior agent and manager starts from (set by the admin).
    GrantPlan(_role(Role.AGENT), "refund", "Baseline refund authority for every agent.", "admin", "250", "1000", M),
    GrantPlan(_role(Role.AGENT), "goodwill_credit", "Baseline goodwill credits for every agent.", "admin",
              "100", "400", M),
    GrantPlan(_role(Role.AGENT), "fee_waiver", "Agents may waive routine fees.", "admin", "150", "500", M),
    GrantPlan(_role(Role.AGENT), "contract_extension", "Agents may extend a contract by a month.", "admin",
              "1", "3", Q),
    GrantPlan(_role(Role.AGENT), "discount", "Agents may offer a small retention discount.", "admin", "10"),
    GrantPlan(_role(Role.SENIOR_AGENT), "refund", "Senior agents settle larger refunds without a hop.", "admin",
              "1000", "3000", M, checker="maria"),
    GrantPlan(_role(Role.SENIOR_AGENT), "goodwill_credit", "Senior agents: goodwill for escalations.", "admin",
              "300", "1000", M),
    GrantPlan(_role(Role.SENIOR_AGENT), "fee_waiver", "Senior agents: fee waivers.", "admin", "300", "500", M),
    GrantPlan(_role(Role.SENIOR_AGENT), "contract_extension", "Senior agents: contract extensions.", "admin",
              "3", "6", Q),
    GrantPlan(_role(Role.SENIOR_AGENT), "discount", "Senior agents: retention discounts.", "admin", "20"),
    GrantPlan(_role(Role.MANAGER), "goodwill_credit", "Managers approve goodwill credits.", "admin",
              "1000", "1000", M),
    GrantPlan(_role(Role.MANAGER), "fee_waiver", "Managers approve fee waivers.", "admin", "500", "500", M),
    GrantPlan(_role(Role.MANAGER), "contract_extension", "Managers approve contract extensions.", "admin", "6"),
    GrantPlan(_role(Role.MANAGER), "discount", "Managers approve discounts up to the pricing policy.", "admin", "25"),
    # Teams: a team's own managers may not grant to it (it counts as their own authority), so the
    # admin sets these, within the confirmation thresholds (no second superuser could confirm).
    GrantPlan(("team", "retention"), "goodwill_credit", "Retention keeps unhappy customers: more goodwill.",
              "admin", "200", "800", M),
    GrantPlan(("team", "retention"), "discount", "Retention may match competitor offers for key accounts.",
              "admin", "15", tiers=(CustomerTier.GOLD, CustomerTier.PLATINUM)),
    GrantPlan(("team", "retention"), "contract_extension", "Retention may bridge renewals.", "admin",
              "3", "6", Q, categories=(CaseCategory.RENEWAL,)),
    GrantPlan(("team", "billing"), "refund", "Billing corrects billing errors on the spot.", "admin",
              "800", "2000", M),
    GrantPlan(("team", "billing"), "fee_waiver", "Billing waives fees charged in error.", "admin", "300", "500", M),
    GrantPlan(("team", "onboarding"), "fee_waiver", "Onboarding may waive setup fees.", "admin", "100", "300", M,
              change=("admin", "200", "500", "Setup fees for delayed go-lives are waived in full now.", None)),
    GrantPlan(("team", "onboarding"), "contract_extension", "Onboarding compensates a late go-live.", "admin",
              "2", categories=(CaseCategory.ONBOARDING,)),
    # People: agents by their manager; managers by the admin, within the threshold, because only
    # another superuser could confirm more for them.
    GrantPlan(("user", "alice"), "refund", "Alice handles the key-account complaints.", "maria",
              "500", "1500", M),
    GrantPlan(("user", "bob"), "refund", "Bob leads the retention escalations.", "maria", "1500", "4000", M,
              checker="admin"),
    GrantPlan(("user", "carol"), "refund", "Temporary raise while Carol clears the quarter-end backlog.", "maria",
              "1200", "2000", M, temporary_days=21),
    GrantPlan(("user", "maria"), "refund", "Maria approves refund requests of Retention and Billing.", "admin",
              "2000", "2000", W),
    GrantPlan(("user", "mike"), "refund", "Mike approves refund requests of Onboarding and the fallback pool.",
              "admin", "2000", "2000", W),
    GrantPlan(("user", "dave"), "goodwill_credit",
              "Suspended while two goodwill credits issued without a rationale are reviewed.", "maria",
              effect=Effect.FORBID),
)

# --- customers -------------------------------------------------------------------------------

NAME_WORDS = (
    "Alder", "Amber", "Arcadia", "Aurora", "Baltic", "Beacon", "Birch", "Blue Harbor", "Brightwater", "Cedar",
    "Cobalt", "Copper", "Crescent", "Delta", "Eastgate", "Ember", "Evergreen", "Falcon", "Fjord", "Granite",
    "Greenfield", "Helios", "Highland", "Horizon", "Ironwood", "Juniper", "Kestrel", "Lakeside", "Linden",
    "Lumen", "Maple", "Meridian", "Nordlicht", "North Star", "Oakridge", "Orion", "Pacific", "Pinecrest",
    "Polaris", "Quarry", "Rhine", "Riverside", "Sable", "Silverline", "Solstice", "Summit", "Tidewater",
    "Trident", "Union", "Vale", "Vertex", "Westwind", "Willow", "Zenith",
)
TRADES = (
    "Analytics", "Bakeries", "Biotech", "Builders", "Clinics", "Consulting", "Dental", "Energy", "Engineering",
    "Fitness", "Foods", "Freight", "Furniture", "Health", "Hotels", "Insurance", "Labs", "Legal", "Logistics",
    "Media", "Motors", "Optics", "Outfitters", "Pharma", "Printing", "Robotics", "Software", "Solar", "Studios",
    "Textiles", "Travel",
)
LEGAL_FORMS = {"EUR": ("GmbH", "AG", "B.V.", "SAS", "S.r.l.", "Oy"), "GBP": ("Ltd", "plc"), "USD": ("Inc.", "LLC"),
               "CHF": ("AG", "SA"), "SEK": ("AB",), "JPY": ("K.K.",)}
CURRENCY_WEIGHTS = (("EUR", 70), ("USD", 10), ("GBP", 8), ("CHF", 6), ("SEK", 4), ("JPY", 2))
TIER_WEIGHTS = ((CustomerTier.STANDARD, 45), (CustomerTier.SILVER, 30), (CustomerTier.GOLD, 18),
                (CustomerTier.PLATINUM, 7))
TIER_VALUE_EUR = {CustomerTier.STANDARD: (3_000, 25_000), CustomerTier.SILVER: (25_000, 90_000),
                  CustomerTier.GOLD: (90_000, 350_000), CustomerTier.PLATINUM: (350_000, 2_500_000)}
TIER_CASE_WEIGHT = {CustomerTier.STANDARD: 1.0, CustomerTier.SILVER: 1.3, CustomerTier.GOLD: 1.8,
                    CustomerTier.PLATINUM: 2.5}


@dataclass(frozen=True)
class CustomerPlan:
    name: str
    email: str
    tier: str
    annual_value: Decimal
    currency: str
    customer_since: date


# --- cases -----------------------------------------------------------------------------------

CATEGORY_WEIGHTS = (
    (CaseCategory.COMPLAINT, 20), (CaseCategory.BILLING_ERROR, 25), (CaseCategory.RENEWAL, 16),
    (CaseCategory.ONBOARDING, 13), (CaseCategory.HIGH_VALUE, 9), (CaseCategory.CRISIS, 7), (CaseCategory.OTHER, 10),
)
SUBJECTS = {
    CaseCategory.COMPLAINT: (
        "Charged twice for the monthly plan (invoice {inv})", "Outage credit promised but not applied ({inv})",
        "Support ticket ignored for two weeks ({tk})", "Delivery missed twice, order {ord}",
        "Price increase not announced, contract {ctr}", "Cancelled add-on still billed ({inv})",
    ),
    CaseCategory.ONBOARDING: (
        "Setup fee billed before go-live, contract {ctr}", "Data migration stalled for account {acc}",
        "Training session cancelled at short notice, order {ord}", "Single sign-on not working after setup ({tk})",
        "Go-live postponed by the implementation team, contract {ctr}",
    ),
    CaseCategory.RENEWAL: (
        "Renewal quote too high, contract {ctr}", "Auto-renewal of contract {ctr} disputed",
        "Wants to downgrade at renewal, contract {ctr}", "Competitor offer on the table, contract {ctr}",
        "Renewal paperwork stuck in procurement, contract {ctr}",
    ),
    CaseCategory.CRISIS: (
        "Platform down for all users ({inc})", "Payroll export failed before pay day ({inc})",
        "Order intake stopped after the update ({inc})", "Customer data visible to the wrong tenant ({inc})",
    ),
    CaseCategory.HIGH_VALUE: (
        "Expansion to four new sites, contract {ctr}", "Executive escalation on account {acc}",
        "Multi-year deal review, contract {ctr}", "Board asks for a service review, account {acc}",
    ),
    CaseCategory.BILLING_ERROR: (
        "Invoice {inv} charged twice", "Wrong VAT rate on invoice {inv}", "Late fee applied in error ({inv})",
        "Refund for cancelled order {ord} not received", "Invoice {inv} in the wrong currency",
        "Seats billed after they were removed ({inv})",
    ),
    CaseCategory.OTHER: (
        "Change of billing address for account {acc}", "Question about data retention ({tk})",
        "Copy of contract {ctr} requested", "New invoice contact for account {acc}",
    ),
}
DESCRIPTIONS = {
    CaseCategory.COMPLAINT: "The customer is unhappy and says so; they expect a fix and an apology.",
    CaseCategory.ONBOARDING: "New customer, first weeks: the start has not gone as promised.",
    CaseCategory.RENEWAL: "The contract is up for renewal and the customer is hesitating.",
    CaseCategory.CRISIS: "Business-critical: the customer cannot work until this is fixed.",
    CaseCategory.HIGH_VALUE: "A large account with a lot at stake; handle with care.",
    CaseCategory.BILLING_ERROR: "Something on the bill is wrong; the customer sent the invoice.",
    CaseCategory.OTHER: "A routine request from the customer.",
}
RESOLUTIONS = {
    CaseCategory.COMPLAINT: ("Apologised, corrected the charge and confirmed in writing.",
                             "Explained the cause; the customer accepted the credit."),
    CaseCategory.ONBOARDING: ("Go-live date agreed, setup fee settled, customer confirmed.",
                              "Migration finished; walked the customer through the first week."),
    CaseCategory.RENEWAL: ("Renewed for another year on adjusted terms.",
                           "Customer renewed after we matched the offer for the first quarter."),
    CaseCategory.CRISIS: ("Service restored; customer informed of cause and compensation.",
                          "Workaround in place and the fix deployed; post-mortem sent."),
    CaseCategory.HIGH_VALUE: ("Agreement reached with the customer's leadership.",
                              "Review held; action plan agreed and sent."),
    CaseCategory.BILLING_ERROR: ("Invoice corrected and the difference refunded.",
                                 "Duplicate charge reversed; customer has the credit note."),
    CaseCategory.OTHER: ("Done as requested and confirmed to the customer.",
                         "Answered the question in writing."),
}
NOTES = (
    "Called the customer; waiting for their bank statement.", "Customer prefers e-mail; sent a summary.",
    "Checked the billing history: the charge is ours.", "Asked engineering for the incident timeline.",
    "Customer available after 15:00 only.", "Promised an update by tomorrow noon.",
)
HANDOVER_NOTES = (
    "I am out from tomorrow. Customer knows you are taking over; all context is in the notes above.",
    "Handing over because you know this account; the customer asked for you by name.",
    "Needs someone on the early shift: the customer is in another time zone.",
)
REOPEN_REASONS = ("Customer wrote back: the credit has not arrived.",
                  "The same error came back on the next invoice.")
# (kind, low, high) per category; money in EUR before conversion, months and percent as they are.
DECISION_OPTIONS = {
    CaseCategory.COMPLAINT: (("goodwill_credit", 20, 150), ("refund", 30, 200)),
    CaseCategory.BILLING_ERROR: (("refund", 15, 400), ("fee_waiver", 10, 120)),
    CaseCategory.RENEWAL: (("discount", 5, 15), ("contract_extension", 1, 2)),
    CaseCategory.CRISIS: (("goodwill_credit", 50, 200), ("contract_extension", 1, 1)),
    CaseCategory.HIGH_VALUE: (("discount", 5, 20), ("goodwill_credit", 100, 250)),
    CaseCategory.ONBOARDING: (("fee_waiver", 25, 150), ("contract_extension", 1, 2)),
    CaseCategory.OTHER: (("goodwill_credit", 10, 40),),
}
RATIONALES = {
    "refund": "Refund of the amount charged in error.",
    "goodwill_credit": "Goodwill credit for the trouble caused.",
    "fee_waiver": "Fee waived: it should not have been charged.",
    "contract_extension": "Contract extended to make up for the lost time.",
    "discount": "Discount on the next term to keep the customer.",
}
# Customers are mostly content, a few are not.
RATINGS = (5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 2, 1)
# Generic decisions keep half of every period cap free, so the demo people still have headroom.
PERIOD_RESERVE = Decimal("0.5")


@dataclass(frozen=True)
class Step:
    """One thing that happens to a case after it is opened, by `actor` (a username, or None)."""

    action: str
    actor: str | None = None
    kind: str = ""
    amount: Decimal | None = None
    currency: str = ""
    text: str = ""
    to: str = ""
    rating: int | None = None
    story: bool = False  # must succeed; generic decisions are skipped when outside authority


@dataclass
class CasePlan:
    number: int
    customer: str
    subject: str
    category: str
    amount: Decimal
    currency: str
    opened_at: datetime
    description: str
    steps: list[Step] = field(default_factory=list)


# Which timeline event shows that a step happened (decisions are found by idempotency key and
# refusals by their audit event instead: a skipped decision leaves no trace).
STEP_EVENT = {
    "claim": CaseEvent.Kind.CLAIMED, "note": CaseEvent.Kind.NOTE, "handover": CaseEvent.Kind.HANDOVER,
    "request": CaseEvent.Kind.REQUEST, "approve": CaseEvent.Kind.REQUEST, "reject": CaseEvent.Kind.REQUEST,
    "resolve": CaseEvent.Kind.RESOLVED, "close": CaseEvent.Kind.CLOSED, "reopen": CaseEvent.Kind.REOPENED,
    "rate": CaseEvent.Kind.RATED,
}


@dataclass
class Plan:
    customers: list[CustomerPlan]
    cases: list[CasePlan]


# --- the plan (pure: depends on the seed, the scale and the current time only) ---------------


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _plan_customers(rng: random.Random, count: int, today: date) -> list[CustomerPlan]:
    customers, brands = [], set()
    while len(customers) < count:
        currency = _weighted(rng, CURRENCY_WEIGHTS)
        brand = f"{rng.choice(NAME_WORDS)} {rng.choice(TRADES)}"
        name = f"{brand} {rng.choice(LEGAL_FORMS[currency])}"
        tier = _weighted(rng, TIER_WEIGHTS)
        low, high = TIER_VALUE_EUR[tier]
        value = _in_currency(Decimal(rng.randint(low, high)), currency, step=100)
        since = today - timedelta(days=rng.randint(120, 365 * 12))
        if brand in brands:
            continue
        brands.add(brand)
        domain = brand.lower().replace(" ", "-")
        customers.append(CustomerPlan(name=name, email=f"accounts@{domain}.example", tier=tier,
                                      annual_value=value, currency=currency, customer_since=since))
    return customers


def _amount_at_stake_eur(rng: random.Random, category: str, customer: CustomerPlan) -> Decimal:
    annual_eur = customer.annual_value / APPROX_RATE[customer.currency]
    if category == CaseCategory.RENEWAL:
        return Decimal(int(annual_eur * Decimal(rng.uniform(0.6, 1.0))))
    if category == CaseCategory.HIGH_VALUE:
        return Decimal(int(annual_eur * Decimal(rng.uniform(0.3, 1.2))))
    low, high = {CaseCategory.COMPLAINT: (40, 1500), CaseCategory.ONBOARDING: (150, 3000),
                 CaseCategory.CRISIS: (1000, 20000), CaseCategory.BILLING_ERROR: (15, 900),
                 CaseCategory.OTHER: (0, 150)}[category]
    return Decimal(rng.randint(low, high))


def _subject(rng: random.Random, category: str, number: int) -> str:
    template = rng.choice(SUBJECTS[category])
    return template.format(inv=f"INV-{240000 + number * 7}", ord=f"SO-{51000 + number * 3}",
                           ctr=f"C-{30000 + number * 11}", acc=f"A-{8000 + number * 5}",
                           tk=f"T-{90000 + number * 13}", inc=f"INC-{4000 + number}")


def _target(rng: random.Random, age: timedelta) -> str:
    r = rng.random()
    if age > timedelta(days=21):
        bands = ((0.80, CaseStatus.CLOSED), (0.92, CaseStatus.RESOLVED), (0.98, CaseStatus.OWNED))
    elif age > timedelta(days=7):
        bands = ((0.35, CaseStatus.CLOSED), (0.70, CaseStatus.RESOLVED), (0.92, CaseStatus.OWNED))
    else:
        bands = ((0.0, CaseStatus.CLOSED), (0.15, CaseStatus.RESOLVED), (0.60, CaseStatus.OWNED))
    return next((status for limit, status in bands if r < limit), CaseStatus.QUEUED)


def _decision_step(rng: random.Random, category: str, owner: str, currency: str) -> Step:
    kind, low, high = rng.choice(DECISION_OPTIONS[category])
    value = rng.randint(low, high)
    if kind in ("refund", "goodwill_credit", "fee_waiver"):
        return Step("decide", owner, kind, _in_currency(Decimal(value), currency, step=5), currency,
                    RATIONALES[kind])
    return Step("decide", owner, kind, Decimal(value), "", RATIONALES[kind])


def _random_steps(rng: random.Random, category: str, target: str, currency: str) -> list[Step]:
    draws = [rng.random() for _ in range(8)]
    if target == CaseStatus.QUEUED:
        return []
    agents = TEAM_AGENTS[team_slug_for(category)]
    owner = agents[int(draws[0] * len(agents))]
    steps = [Step("claim", owner)]
    if draws[1] < 0.3:
        steps.append(Step("note", owner, text=NOTES[int(draws[1] * 100) % len(NOTES)]))
    if len(agents) > 1 and draws[2] < 0.025:
        other = next(agent for agent in agents if agent != owner)
        steps.append(Step("handover", owner, to=other, text=HANDOVER_NOTES[int(draws[2] * 1000) % 3]))
        owner = other
    finished = target in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
    decisions = (2 if draws[3] < 0.15 else 1 if draws[3] < 0.55 else 0) if finished else int(draws[3] < 0.25)
    steps.extend(_decision_step(rng, category, owner, currency) for _ in range(decisions))
    if not finished:
        return steps
    summaries = RESOLUTIONS[category]
    steps.append(Step("resolve", owner, text=summaries[0]))
    if target == CaseStatus.CLOSED:
        by_timer = draws[4] < 0.5
        steps.append(Step("close", None if by_timer else owner,
                          text="Closed automatically a week after resolution." if by_timer
                          else "Customer confirmed the resolution."))
    if draws[5] < 0.6:
        steps.append(Step("rate", rating=RATINGS[int(draws[6] * len(RATINGS))]))
    if target == CaseStatus.CLOSED and draws[7] < 0.025:
        steps.append(Step("reopen", owner, text=REOPEN_REASONS[int(draws[7] * 1000) % 2]))
        if draws[7] < 0.0125:
            steps.append(Step("resolve", owner, text=summaries[1]))
    return steps


def _story_cases(customers: list[CustomerPlan], now: datetime) -> list[CasePlan]:
    """The cases the walk-through relies on, opened in the last days."""
    by_tier = {tier: [c for c in customers if c.tier == tier and c.currency == "EUR"] for tier in CustomerTier.values}

    def pick(tier: str, index: int) -> CustomerPlan:
        pool = by_tier[tier] or [c for c in customers if c.currency == "EUR"] or customers
        return pool[index % len(pool)]

    eur = "EUR"
    refund = "refund"
    stories = [
        # alice: three fresh open cases with nothing decided yet (refund 200 works, 1,200 is over).
        (pick(CustomerTier.GOLD, 0), "Charged twice for the March subscription (invoice INV-770120)",
         CaseCategory.COMPLAINT, "189", 26, [Step("claim", "alice"),
                                             Step("note", "alice", text=NOTES[2])]),
        (pick(CustomerTier.PLATINUM, 0), "Sales promised a refund of 1,200 EUR that never came (contract C-558100)",
         CaseCategory.COMPLAINT, "1200", 20, [Step("claim", "alice")]),
        (pick(CustomerTier.SILVER, 0), "Renewal price up 18 %, customer weighing a competitor (contract C-559020)",
         CaseCategory.RENEWAL, "9600", 44, [Step("claim", "alice")]),
        # alice: the request waiting for maria.
        (pick(CustomerTier.GOLD, 1), "Outage on Monday cost a day of sales (incident INC-994471)",
         CaseCategory.CRISIS, "2400", 30,
         [Step("claim", "alice"),
          Step("request", "alice", refund, Decimal(1200), eur, story=True,
               text="Key account since 2016: the outage stopped their web shop for a full day. "
                    "Refunding a month's fee keeps them; my limit is 500.")]),
        # bob hands a case to alice: a fourth open case of hers with nothing used.
        (pick(CustomerTier.GOLD, 2), "Auto-renewal of contract C-559133 disputed by the new CFO",
         CaseCategory.RENEWAL, "14500", 52,
         [Step("claim", "bob"), Step("handover", "bob", to="alice", text=HANDOVER_NOTES[1])]),
        # the Retention queue: fresh, unclaimed.
        (pick(CustomerTier.STANDARD, 0), "Cancelled add-on still billed for three months (INV-770215)",
         CaseCategory.COMPLAINT, "87", 1, []),
        (pick(CustomerTier.PLATINUM, 1), "Board asks for a service review after two outages (account A-99120)",
         CaseCategory.HIGH_VALUE, "180000", 2, []),
        (pick(CustomerTier.SILVER, 1), "Copy of the signed contract C-559301 requested", CaseCategory.OTHER,
         "0", 3, []),
        # erin: a request mike approved, then the refund executed on the one-off grant.
        (pick(CustomerTier.SILVER, 2), "Setup fee billed although go-live slipped six weeks (contract C-560110)",
         CaseCategory.ONBOARDING, "600", 75,
         [Step("claim", "erin"),
          Step("request", "erin", refund, Decimal(600), eur, story=True,
               text="The delay was ours; the customer should not pay setup for a system they cannot use."),
          Step("approve", "mike", refund, text="Agreed: our delay, full setup fee back.", story=True),
          Step("decide", "erin", refund, Decimal(600), eur, "Setup fee refunded: the go-live delay was ours.",
               story=True),
          Step("resolve", "erin", text="Setup fee refunded in full; go-live booked."),
          Step("rate", rating=5)]),
        # dave: a request maria rejected, then what he could do himself.
        (pick(CustomerTier.STANDARD, 1), "Annual licence invoiced twice after the plan change (invoice INV-773010)",
         CaseCategory.BILLING_ERROR, "1500", 100,
         [Step("claim", "dave"),
          Step("request", "dave", refund, Decimal(1500), eur, story=True,
               text="Both invoices were paid; the customer wants the full second charge back today."),
          Step("reject", "maria", refund, story=True,
               text="The second invoice is only partly a duplicate: refund the 800 overlap now, "
                    "credit the rest on the next invoice."),
          Step("decide", "dave", refund, Decimal(800), eur, "Refunded the duplicated part of the licence.",
               story=True),
          Step("resolve", "dave", text="800 EUR refunded; the remaining 700 EUR credited on the next invoice.")]),
        # dave: suspended from goodwill credits, so he waives the fee instead.
        (pick(CustomerTier.SILVER, 3), "Late fee charged over the bank holiday (invoice INV-773550)",
         CaseCategory.BILLING_ERROR, "45", 120,
         [Step("claim", "dave"),
          Step("attempt", "dave", "goodwill_credit", Decimal(45), eur, "Goodwill for the bank-holiday late fee."),
          Step("decide", "dave", "fee_waiver", Decimal(45), eur, "Late fee waived: the bank holiday was ours.",
               story=True),
          Step("resolve", "dave", text="Late fee waived.")]),
        # carol hands a Billing case to dave.
        (pick(CustomerTier.GOLD, 3), "Wrong VAT rate on invoice INV-773780 for the Austrian entity",
         CaseCategory.BILLING_ERROR, "420", 8,
         [Step("claim", "carol"), Step("note", "carol", text=NOTES[0]),
          Step("handover", "carol", to="dave", text=HANDOVER_NOTES[0])]),
    ]
    return [
        CasePlan(number=0, customer=customer.name, subject=subject, category=category, amount=Decimal(amount),
                 currency=eur, opened_at=now - timedelta(hours=hours), description=DESCRIPTIONS[category],
                 steps=steps)
        for customer, subject, category, amount, hours, steps in stories
    ]


def build_plan(*, scale: float = 1.0, now: datetime) -> Plan:
    """Draw the demo data from the fixed seed; the same scale always gives the same plan."""
    rng = random.Random(SEED)
    customers = _plan_customers(rng, max(20, round(BASE_CUSTOMERS * scale)), now.date())
    weights = [TIER_CASE_WEIGHT[c.tier] for c in customers]
    cases = []
    for _ in range(max(30, round(BASE_CASES * scale))):
        customer = rng.choices(customers, weights=weights)[0]
        category = _weighted(rng, CATEGORY_WEIGHTS)
        age = timedelta(seconds=rng.randint(1800, HISTORY_DAYS * 86400))
        amount = _in_currency(_amount_at_stake_eur(rng, category, customer), customer.currency)
        if category == CaseCategory.OTHER and rng.random() < 0.5:
            amount = Decimal(0)
        cases.append(CasePlan(number=0, customer=customer.name, subject="", category=category, amount=amount,
                              currency=customer.currency, opened_at=now - age,
                              description=DESCRIPTIONS[category],
                              steps=_random_steps(rng, category, _target(rng, age), customer.currency)))
    cases.sort(key=lambda plan: plan.opened_at)  # oldest first, so references follow time
    for number, plan in enumerate(cases, start=1):
        plan.number = number
        plan.subject = _subject(rng, plan.category, number)
    stories = _story_cases(customers, now)
    for number, plan in enumerate(sorted(stories, key=lambda p: p.opened_at), start=len(cases) + 1):
        plan.number = number
    cases.extend(sorted(stories, key=lambda p: p.number))
    return Plan(customers=customers, cases=cases)


# --- applying the plan -----------------------------------------------------------------------


SUMMARY_LABELS = (
    ("users", "user", "users"), ("roles set", "role assignment", "role assignments"), ("teams", "team", "teams"),
    ("team members", "team member", "team members"), ("team managers", "team manager", "team managers"),
    ("exchange rates", "exchange rate", "exchange rates"), ("grants", "grant", "grants"),
    ("grants confirmed", "confirmation", "confirmations"), ("grant changes", "grant change", "grant changes"),
    ("customers", "customer", "customers"), ("cases", "case", "cases"), ("case steps", "case step", "case steps"),
    ("decisions", "decision", "decisions"), ("refusals", "refused decision", "refused decisions"),
    ("authority requests", "authority request", "authority requests"),
)


@dataclass
class SeedReport:
    created: Counter = field(default_factory=Counter)
    audit_events: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if not sum(self.created.values()):
            return f"Demo data already seeded: nothing to do ({self.seconds:.1f} s)."
        parts = [f"{self.created[key]} {singular if self.created[key] == 1 else plural}"
                 for key, singular, plural in SUMMARY_LABELS if self.created[key]]
        return f"Seeded {', '.join(parts)}; {self.audit_events} audit events in {self.seconds:.1f} s."


class _Seeder:
    def __init__(self, *, scale: float, now: datetime):
        self.now = now
        self.plan = build_plan(scale=scale, now=now)
        self.report = SeedReport()
        self.users: dict[str, object] = {}
        self.teams: dict[str, Team] = {}
        self.kinds = {kind.code: kind for kind in AuthorityKind.objects.all()}

    # people and teams

    def load_users(self) -> None:
        """(Re)load the cast, with groups prefetched: the role and team caches start empty."""
        names = [person.username for person in PEOPLE]
        self.users = {u.username: u for u in User.objects.filter(username__in=names).prefetch_related("groups")}

    def people(self) -> None:
        self.load_users()
        password = None
        for person in PEOPLE:
            if person.username in self.users:
                continue
            password = password or make_password(PASSWORD)  # hash once: it is the slow part
            User.objects.create(
                username=person.username, email=f"{person.username}@example.com", first_name=person.first_name,
                last_name=person.last_name, password=password, is_staff=person.superuser,
                is_superuser=person.superuser,
            )
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

    def grants(self) -> None:
        for plan in GRANTS:
            subject = self._subject(plan.subject)
            lookup = {f"subject_{level}": value for level, value in subject.items()}
            kind = self.kinds[plan.kind]
            grant = Grant.objects.filter(kind=kind, version=1, reason=plan.reason, case__isnull=True,
                                         **lookup).first()
            if grant is None:
                grant = grant_create(actor=self.users[plan.maker], kind=kind, reason=plan.reason,
                                     terms=self._terms(plan, plan.per_case, plan.period_limit), **subject)
                self.report.created["grants"] += 1
            if grant.status == GrantStatus.PENDING and plan.checker:
                grant = grant_confirm(actor=self.users[plan.checker], grant=grant)
                self.report.created["grants confirmed"] += 1
            if plan.change and not Grant.objects.filter(lineage=grant.lineage, version__gt=1).exists():
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

    def cases(self, customers: dict[str, Customer]) -> None:
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
        for plan in self.plan.cases:
            case = existing.get((customers[plan.customer].pk, plan.subject))
            if case is None:
                case = case_open(
                    actor=None, customer=customers[plan.customer], subject=plan.subject, category=plan.category,
                    amount_at_stake=plan.amount, currency=plan.currency, description=plan.description,
                    opened_at=plan.opened_at,
                )
                self.report.created["cases"] += 1
            self._advance(plan, case, events.get(case.pk, Counter()))

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
            else:
                event = STEP_EVENT[step.action]
                occurrences[event] += 1
                done.append(seen[event] >= occurrences[event])
        return done

    def _advance(self, plan: CasePlan, case: Case, seen: Counter) -> None:
        done = self._done(plan, case, seen)
        start = max((index + 1 for index, flag in enumerate(done) if flag), default=0)
        for index in range(start, len(plan.steps)):
            self._perform(plan, case, index, plan.steps[index])

    def _perform(self, plan: CasePlan, case: Case, index: int, step: Step) -> None:
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
            request = AuthorityRequest.objects.filter(case=case, kind=self.kinds[step.kind]).latest("created_at", "id")
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
        self.report.created["case steps"] += 1

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


@contextmanager
def _sqlite_commits_without_fsync() -> Iterator[None]:
    """On SQLite, skip the fsync of each of the ~1,700 commits while seeding (this connection only).

    The commits dominate the run on a busy disk; demo data needs no protection against a power cut
    in the middle of seeding (run it again), and the setting is restored afterwards.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous = {previous}")


def seed_demo(*, scale: float = 1.0, now: datetime | None = None) -> SeedReport:
    """Create whatever of the demo organisation is missing, through the services; return what was made.

    Runs outside any transaction: every service commits its own change and audit event.
    """
    started = time.monotonic()
    first_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    seeder = _Seeder(scale=scale, now=now or timezone.now())
    with _sqlite_commits_without_fsync():
        seeder.people()
        seeder.organisation()
        seeder.exchange_rates()
        seeder.grants()
        seeder.cases(seeder.customers())
    report = seeder.report
    last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    report.audit_events = last_event - first_event
    report.seconds = time.monotonic() - started
    return report
