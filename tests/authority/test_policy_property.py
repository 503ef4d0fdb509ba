"""Property: a verdict allows exactly what fits the headroom of the grant the rules choose.

The expectation is computed here from the rules as written in DESIGN.md and the policy docstring,
independently of the engine: the most specific level with a permit decides; within it the grant in
the decision's currency, then the highest per-case limit (none = unlimited), then the highest period
limit (none = unlimited), then the lowest id; the amount, converted and rounded up to the grant
currency's minor unit, must fit what is left per case and in the agent's current period bucket.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authority import policy, usage
from authority.models import Grant, Period, UsageCounter
from authority.policy import Question
from h2h_core.models import Role, Team
from tests.factories import GrantFactory, User, exchange_rate, kind, loaded_case, role

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 5, 14, 10, 0, tzinfo=BERLIN)
# The buckets that contain AT, and the ones just before them (whose usage must not count).
CURRENT = {Period.DAY: date(2026, 5, 14), Period.WEEK: date(2026, 5, 11), Period.MONTH: date(2026, 5, 1),
           Period.QUARTER: date(2026, 4, 1)}
PREVIOUS = {Period.DAY: date(2026, 5, 13), Period.WEEK: date(2026, 5, 4), Period.MONTH: date(2026, 4, 1),
            Period.QUARTER: date(2026, 1, 1)}
LEVELS = ("person", "team", "role")
CURRENCIES = ("EUR", "USD")
EUR_TO_USD = Decimal("1.0837")
RATE_DATE = date(2026, 5, 1)
INFINITY = Decimal("Infinity")

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Terms:
    level: str
    currency: str
    per_case_limit: Decimal | None
    period: str
    period_limit: Decimal | None


LIMITS = [Decimal(v) for v in ("50", "100", "250", "500", "1000")]
USED = [Decimal(v) for v in ("0", "10", "49.99", "100", "250", "500", "999.99", "2000")]
limits = st.one_of(st.none(), st.sampled_from(LIMITS))


@st.composite
def permit_terms(draw) -> Terms:
    period = draw(st.sampled_from(Period.values))
    return Terms(
        level=draw(st.sampled_from(LEVELS)),
        currency=draw(st.sampled_from(CURRENCIES)),
        per_case_limit=draw(limits),
        period=period,
        # the grant services refuse a period limit without a period
        period_limit=None if period == Period.NONE else draw(limits),
    )


def period_key(agent_id: int, currency: str, period: str, start: date) -> str:
    return usage.period_key(agent_id=agent_id, kind_code="refund", currency=currency, period=period, start=start)


def case_key(case_id: int, currency: str) -> str:
    return usage.case_key(case_id=case_id, kind_code="refund", currency=currency)


def usage_keys(agent_id: int, case_id: int, other_agent_id: int) -> list[str]:
    """Every counter that could matter, and some that must not: earlier buckets, another agent."""
    keys = []
    for currency in CURRENCIES:
        keys.append(case_key(case_id, currency))
        for period in CURRENT:
            keys.append(period_key(agent_id, currency, period, CURRENT[period]))
            keys.append(period_key(agent_id, currency, period, PREVIOUS[period]))
            keys.append(period_key(other_agent_id, currency, period, CURRENT[period]))
    return keys


used_amounts = st.sampled_from(USED)
any_amount = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1200"), places=2)


def chosen_grant(grants: list[tuple[int, Terms]]) -> tuple[int, Terms, str] | None:
    """Return (id, terms, level) of the grant the rules choose for a question in EUR, or None."""
    for level in LEVELS:
        at_level = [(grant_id, terms) for grant_id, terms in grants if terms.level == level]
        if at_level:
            break
    else:
        return None

    def preference(item):
        grant_id, terms = item
        per_case = INFINITY if terms.per_case_limit is None else terms.per_case_limit
        period = INFINITY if terms.period_limit is None else terms.period_limit
        return (terms.currency != "EUR", -per_case, -period, grant_id)

    grant_id, terms = min(at_level, key=preference)
    return grant_id, terms, level


def headroom(terms: Terms, used: dict[str, Decimal], *, agent_id: int, case_id: int) -> tuple:
    """Return what is left (None = unlimited) per case and in the current period bucket."""
    case_left = period_left = None
    if terms.per_case_limit is not None:
        case_left = terms.per_case_limit - used.get(case_key(case_id, terms.currency), Decimal(0))
    if terms.period != Period.NONE and terms.period_limit is not None:
        bucket = period_key(agent_id, terms.currency, terms.period, CURRENT[terms.period])
        period_left = terms.period_limit - used.get(bucket, Decimal(0))
    return case_left, period_left


def expected_verdict(grants: list[tuple[int, Terms]], used: dict[str, Decimal], amount: Decimal, *, agent_id: int,
                     case_id: int) -> tuple[bool, int | None, str | None]:
    """Return (allowed, deciding grant id, level) from the rules, asked in EUR."""
    chosen = chosen_grant(grants)
    if chosen is None:
        return False, None, None
    grant_id, terms, level = chosen
    counted = amount if terms.currency == "EUR" else (amount * EUR_TO_USD).quantize(Decimal("0.01"), ROUND_UP)
    case_left, period_left = headroom(terms, used, agent_id=agent_id, case_id=case_id)
    fits = all(left is None or counted <= left for left in (case_left, period_left))
    return fits, grant_id, level


def draw_amount(data, grants: list[tuple[int, Terms]], used: dict[str, Decimal], *, agent_id: int,
                case_id: int) -> Decimal:
    """Draw any amount, or (as often) exactly what the chosen grant leaves, or a cent more."""
    chosen = chosen_grant(grants)
    boundaries = []
    if chosen is not None and chosen[1].currency == "EUR":
        lefts = [left for left in headroom(chosen[1], used, agent_id=agent_id, case_id=case_id) if left is not None]
        # the tighter limit twice, so that an exact fit of it (which fits the other too) is common
        for left in lefts + [min(lefts, default=None)] if lefts else []:
            boundaries += [value for value in (left, left + Decimal("0.01")) if value > 0]
    return data.draw(st.one_of(any_amount, st.sampled_from(boundaries)) if boundaries else any_amount, label="amount")


# --- Pure: resolve() on in-memory grants, no database -------------------------------------------

AGENT_ID, OTHER_AGENT_ID, CASE_ID = 7, 8, 11
SUBJECTS = {
    "person": {"subject_user": User(pk=AGENT_ID, username="alice")},
    "team": {"subject_team": Team(pk=3, name="Retention", slug="retention")},
    "role": {"subject_role": Group(pk=5, name="Agent")},
}


def in_memory_grant(grant_id: int, terms: Terms) -> Grant:
    return Grant(
        pk=grant_id, lineage=grant_id, version=1, kind_id=1, effect="permit", status="active",
        per_case_limit=terms.per_case_limit, period_limit=terms.period_limit, period=terms.period,
        currency=terms.currency, scope_categories=[], scope_tiers=[], valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        reason="property", **SUBJECTS[terms.level],
    )


@PROPERTY_SETTINGS
@given(
    terms=st.lists(permit_terms(), max_size=7),
    ids=st.permutations(range(1, 8)),
    used=st.dictionaries(st.sampled_from(usage_keys(AGENT_ID, CASE_ID, OTHER_AGENT_ID)), used_amounts, max_size=12),
    data=st.data(),
)
def test_resolve_allows_exactly_what_fits_the_chosen_grants_headroom(terms, ids, used, data):
    # given permits at random levels with random limits and periods, random usage, and a random amount
    # (often exactly what is left under some limit, or a cent more)
    grants = list(zip(ids, terms, strict=False))
    amount = draw_amount(data, grants, used, agent_id=AGENT_ID, case_id=CASE_ID)
    question = Question(
        agent_id=AGENT_ID, kind_code="refund", kind_name="Refund", unit="money", amount=amount, currency="EUR",
        case_id=CASE_ID, case_reference="H2H-000011", case_category="complaint", customer_tier="standard",
        at=AT, tz=BERLIN,
    )
    # when the engine resolves the question (with no database at hand)
    verdict = policy.resolve(
        question, [in_memory_grant(grant_id, t) for grant_id, t in grants], used, {"USD": (EUR_TO_USD, RATE_DATE)}
    )
    # then it decides exactly as the rules say, through the grant the rules choose
    allowed, grant_id, level = expected_verdict(grants, used, amount, agent_id=AGENT_ID, case_id=CASE_ID)
    assert verdict.allowed is allowed, verdict.reasons
    assert verdict.deciding_grant_id == grant_id
    assert verdict.level == level


# --- Through evaluate: the same property against the database ------------------------------------


@pytest.fixture
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
@pytest.mark.usefixtures("_fast_password_hashing")
@PROPERTY_SETTINGS
@given(
    terms=st.lists(permit_terms(), max_size=5),
    used_values=st.lists(used_amounts, min_size=1, max_size=8),
    used_picks=st.lists(st.integers(min_value=0, max_value=1000), max_size=8),
    data=st.data(),
)
def test_evaluate_allows_exactly_what_fits_the_chosen_grants_headroom(
    alice, retention, case_owned_by_alice, terms, used_values, used_picks, data
):
    # given the case with its customer, the subjects, and the counters that could matter
    refund = kind("refund")
    case = loaded_case(case_owned_by_alice)
    agent_role = role(Role.AGENT)
    subjects = {"person": {"subject_user": alice}, "team": {"subject_team": retention},
                "role": {"subject_role": agent_role}}
    keys = usage_keys(alice.pk, case.pk, alice.pk + 1000)
    with transaction.atomic():
        # and a rate, random permits and random usage, all undone after each example
        exchange_rate("EUR", "USD", EUR_TO_USD, RATE_DATE)
        grants = []
        for t in terms:
            grant = GrantFactory(kind=refund, currency=t.currency, per_case_limit=t.per_case_limit,
                                 period=t.period, period_limit=t.period_limit, **subjects[t.level])
            grants.append((grant.pk, t))
        used = {keys[pick % len(keys)]: value for pick, value in zip(used_picks, used_values, strict=False)}
        UsageCounter.objects.bulk_create(
            UsageCounter(key=key, scope="period", kind=refund, used=value) for key, value in used.items()
        )
        amount = draw_amount(data, grants, used, agent_id=alice.pk, case_id=case.pk)
        # when alice asks
        verdict = policy.evaluate(agent=alice, kind=refund, amount=amount, currency="EUR", case=case, at=AT)
        # then the verdict is the one the rules give
        allowed, grant_id, level = expected_verdict(grants, used, amount, agent_id=alice.pk, case_id=case.pk)
        assert verdict.allowed is allowed, verdict.reasons
        assert verdict.deciding_grant_id == grant_id
        assert verdict.level == level
        transaction.set_rollback(True)

