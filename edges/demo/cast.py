"""The demo cast: people, teams, the money they deal in, and the grants they hold."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from authority.models import Effect, Period
from authority.quantities import currency_exponent
from h2h_core.models import CaseCategory, CustomerTier, Role

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


@dataclass(frozen=True)
class AiAgentPlan:
    """An AI agent the demo registers: its team, the model it runs, the cases its routing gives it."""

    username: str
    team: str
    description: str
    route_categories: tuple[str, ...]
    model_name: str = "support-llm"
    model_version: str = "2026-11"
    max_stakes: int = 40
    registered_by: str = "maria"


# The routine goes to software; the moments that matter (complaints, renewals, crises, high value,
# onboarding) stay with people, so each AI agent owns one category of its team.
AI_AGENTS = (
    AiAgentPlan("ava-bot", "retention", "Answers routine Retention requests: copies, addresses, small credits.",
                (CaseCategory.OTHER,)),
    AiAgentPlan("sam-bot", "billing", "Settles small billing errors: late fees, duplicate small charges.",
                (CaseCategory.BILLING_ERROR,)),
)

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
    shadow: bool = False  # log-only: what its holder would have decided is recorded, nothing executes
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
    # AI agents: small caps for the role, set by the admin; ava-bot's refunds run in shadow first, so
    # its manager sees what it would have refunded beside what a person then decided.
    GrantPlan(_role(Role.AI_AGENT), "goodwill_credit", "AI agents settle small goodwill credits.", "admin",
              "25", "200", M),
    GrantPlan(_role(Role.AI_AGENT), "fee_waiver", "AI agents waive small fees charged in error.", "admin",
              "30", "200", M),
    GrantPlan(("user", "ava-bot"), "refund", "Shadow: what would ava-bot refund? Evidence before any live refund.",
              "maria", "600", "1500", M, shadow=True),
)

