"""evaluate reads its inputs in at most four queries, whatever the number of grants and the history."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authority import policy, usage
from authority.models import Decision, Effect, Period, UsageCounter
from h2h_core.models import Case, Role
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, GrantFactory, exchange_rate, kind, loaded_case, role

pytestmark = pytest.mark.django_db

AT = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def add_many_grants(alice, retention, case, refund):
    """Add 49 grants across every level: none of them changes the answer to the question asked."""
    other_cases = CaseFactory.create_batch(3, owner=alice, team=retention)
    terms = {"kind": refund, "per_case_limit": Decimal("400"), "period": Period.MONTH, "period_limit": Decimal("900")}
    for i in range(10):
        GrantFactory(subject_user=alice, currency=["EUR", "GBP"][i % 2], **terms)
    for i in range(10):
        GrantFactory(subject_team=retention, currency=["EUR", "GBP", "CHF"][i % 3], **terms)
    for i in range(10):
        GrantFactory(subject_role=role([Role.AGENT, Role.SENIOR_AGENT][i % 2]), currency="EUR", **terms)
    for i in range(9):
        one_off_case = case if i < 3 else other_cases[i % 3]
        GrantFactory(subject_user=alice, case=one_off_case, kind=refund, per_case_limit=Decimal("50"),
                     period=Period.NONE, period_limit=None, currency="EUR")
    for i in range(10):
        # suspensions and permits of other kinds do not speak for refunds
        GrantFactory(subject_user=alice, kind=kind(["goodwill_credit", "fee_waiver"][i % 2]),
                     effect=[Effect.FORBID, Effect.PERMIT][i % 2], currency="EUR")
    for quote, rate in [("GBP", "0.85"), ("CHF", "0.95")]:
        exchange_rate("USD", quote, rate, date(2026, 1, 1))


def add_long_history(alice, case, refund, grant):
    """Add 500 usage counters of past buckets and other cases, and 500 executed decisions."""
    counters = []
    for i in range(250):
        start = date(2026, 4, 30) - timedelta(days=i)
        counters.append(UsageCounter(
            key=usage.period_key(agent_id=alice.pk, kind_code="refund", currency="EUR", period=Period.DAY,
                                 start=start),
            scope=UsageCounter.Scope.PERIOD, kind=refund, agent=alice, period=Period.DAY, bucket_start=start,
            currency="EUR", used=Decimal("10"),
        ))
        counters.append(UsageCounter(
            key=usage.case_key(case_id=100000 + i, kind_code="refund", currency="EUR"),
            scope=UsageCounter.Scope.CASE, kind=refund, currency="EUR", used=Decimal("10"),
        ))
    UsageCounter.objects.bulk_create(counters)
    executed_at = datetime(2025, 1, 1, tzinfo=UTC)
    Decision.objects.bulk_create(
        Decision(case=case, agent=alice, kind=refund, amount=Decimal("1"), currency="EUR",
                 counted_amount=Decimal("1"), counted_currency="EUR", grant=grant, verdict={},
                 rationale="history", executed_at=executed_at + timedelta(hours=i))
        for i in range(500)
    )


@pytest.mark.parametrize(
    ("amount", "currency", "allowed", "queries_one_grant", "queries_fifty"),
    [
        # grants with the counters foreseen in USD, the EUR grant's counters, rates: the most the agent's
        # own answer needs (the approver pool a refusal names costs a fixed handful more:
        # tests/authority/test_approver_pool.py)
        pytest.param("900", "USD", False, 3, 3, id="refused-across-currencies"),
        # grants with their counters, foreseen in the question's currency; among fifty grants some are in
        # other currencies or one-off, and their counters are one read more
        pytest.param("10", "EUR", True, 1, 2, id="allowed-in-the-grant-currency"),
    ],
)
def test_evaluate_needs_the_same_few_queries_for_fifty_grants_and_any_history(
    alice, maria, retention, case_owned_by_alice, django_assert_max_num_queries, amount, currency, allowed,
    queries_one_grant, queries_fifty,
):
    # given one person grant, a USD->EUR rate, a case loaded with its customer, and the organisation
    # already read (it is read once per process)
    refund = kind("refund")
    grant = GrantFactory(subject_user=alice, kind=refund, per_case_limit=Decimal("500"), currency="EUR")
    exchange_rate("EUR", "USD", "1.1", date(2026, 1, 1))
    case = loaded_case(case_owned_by_alice)
    current_organisation()

    def ask():
        with django_assert_max_num_queries(4) as captured:
            verdict = policy.evaluate(agent=alice, kind=refund, amount=amount, currency=currency, case=case, at=AT,
                                      with_approvers=False)
        assert verdict.allowed is allowed, verdict.reasons
        # evaluate only reads: a refusal changes nothing
        assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in captured.captured_queries)
        return len(captured)

    # when alice asks with one grant, then with 50 grants, then with 50 grants and 1,000 history rows
    one = ask()
    add_many_grants(alice, retention, case, refund)
    fifty = ask()
    add_long_history(alice, case, refund, grant)
    with_history = ask()
    # then history costs nothing, fifty grants at most one read more, never more than four, and nothing is written
    assert (one, fifty, with_history) == (queries_one_grant, queries_fifty, queries_fifty)


def test_a_case_without_its_customer_loaded_costs_one_more_query(alice, case_owned_by_alice):
    # given a grant and a case fetched without select_related("customer")
    refund = kind("refund")
    GrantFactory(subject_user=alice)
    current_organisation()
    bare = Case.objects.get(pk=case_owned_by_alice.pk)
    loaded = loaded_case(case_owned_by_alice)
    # when alice asks on both
    with CaptureQueriesContext(connection) as bare_queries:
        policy.evaluate(agent=alice, kind=refund, amount="10", currency="EUR", case=bare, at=AT)
    with CaptureQueriesContext(connection) as loaded_queries:
        policy.evaluate(agent=alice, kind=refund, amount="10", currency="EUR", case=loaded, at=AT)
    # then only the loaded case keeps evaluate at its one query (the grants with their counters)
    assert len(loaded_queries) == 1
    assert len(bare_queries) == 2
