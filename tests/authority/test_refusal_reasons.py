"""A refusal says precisely why: the scope that leaves the case out, how much over which limit, or
which grant expired; and saying so costs one query more only when nothing is in force."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from authority import policy, usage
from authority.errors import AuthorityDenied
from authority.models import Decision, Period, UsageCounter
from authority.services import decision_execute
from h2h_core.models import CaseCategory, CustomerTier, Role
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, kind, loaded_case, role, set_usage

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def ask(agent, case, amount, *, at=AT):
    return policy.evaluate(agent=agent, kind=kind("refund"), amount=amount, currency="EUR", case=loaded_case(case),
                           at=at)


def nothing_spent():
    return list(Decision.objects.values_list("pk", flat=True)), dict(UsageCounter.objects.values_list("key", "used"))


# --- scope -------------------------------------------------------------------------------------


def test_a_case_outside_the_grants_categories_is_named_with_the_categories_it_covers(alice, retention):
    # given alice's refund grant covers billing errors and complaints, and her case is a renewal
    grant = GrantFactory(subject_user=alice, scope_categories=[CaseCategory.COMPLAINT, CaseCategory.BILLING_ERROR])
    case = CaseFactory(owner=alice, team=retention, category=CaseCategory.RENEWAL)
    before = nothing_spent()
    # when she refunds 10 on it
    with pytest.raises(AuthorityDenied) as refused:
        decision_execute(actor=alice, case=case, kind=kind("refund"), amount="10", currency="EUR",
                         rationale="renewal went wrong")
    # then she is told which categories her grant covers and what this case is, and nothing was spent
    assert refused.value.verdict.reasons == [
        f"Your refund grant covers Billing error and Complaint cases; this case is Renewal "
        f"(person grant #{grant.pk} v1)."
    ]
    assert nothing_spent() == before


def test_a_customer_outside_the_grants_tiers_is_named_with_the_tiers_it_covers(alice, retention):
    # given Retention's refund grant covers gold and platinum customers, and alice's customer is standard
    GrantFactory(subject_team=retention, scope_tiers=[CustomerTier.PLATINUM, CustomerTier.GOLD])
    case = CaseFactory(owner=alice, team=retention, customer=CustomerFactory(tier=CustomerTier.STANDARD))
    # when she asks
    verdict = ask(alice, case, "10")
    # then the tier is named
    assert not verdict.allowed and verdict.deciding_grants == []
    assert verdict.reasons[0].startswith(
        "The Retention team's refund grant covers Gold and Platinum customers; this customer is Standard (team grant #")


def test_a_grant_outside_both_scopes_names_both(alice, retention):
    # given the Agent role's refund grant covers crisis cases of platinum customers
    GrantFactory(subject_role=role(Role.AGENT), scope_categories=[CaseCategory.CRISIS],
                 scope_tiers=[CustomerTier.PLATINUM])
    case = CaseFactory(owner=alice, team=retention, category=CaseCategory.COMPLAINT,
                       customer=CustomerFactory(tier=CustomerTier.SILVER))
    # when alice asks
    verdict = ask(alice, case, "10")
    # then both are named
    assert verdict.reasons[0].startswith("The Agent role's refund grant covers Crisis cases of Platinum customers; "
                                         "this case is Complaint, for a Silver customer (role grant #")


# --- limits ------------------------------------------------------------------------------------


def test_a_per_case_refusal_states_the_amount_over_the_limit(alice, case_owned_by_alice):
    # given alice may refund 500 per case
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period=Period.NONE, period_limit=None)
    before = nothing_spent()
    # when she refunds 800
    with pytest.raises(AuthorityDenied) as refused:
        decision_execute(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="800", currency="EUR",
                         rationale="double charge")
    # then she reads how much over which limit it is, and nothing was spent
    assert refused.value.verdict.reasons[0].startswith(
        f"300.00 EUR over your per-case limit of 500.00 EUR: 500.00 EUR left on case {case_owned_by_alice.reference}, "
        f"this needs 800.00 EUR (person grant #")
    assert nothing_spent() == before


def test_a_period_refusal_states_the_amount_over_the_cap_and_when_it_resets(alice, case_owned_by_alice):
    # given alice may refund 1,000 a month and has used 900 in November
    GrantFactory(subject_user=alice, per_case_limit=Decimal("5000"), period=Period.MONTH,
                 period_limit=Decimal("1000"))
    key = usage.period_key(agent_id=alice.pk, kind_code="refund", currency="EUR", period=Period.MONTH,
                           start=date(2026, 11, 1))
    set_usage(key, "900", kind_obj=kind("refund"), agent=alice, period=Period.MONTH, currency="EUR",
              bucket_start=date(2026, 11, 1))
    # when she asks for 400
    verdict = ask(alice, case_owned_by_alice, "400")
    # then she reads how much over her monthly cap it is, what is left and when it resets
    assert not verdict.allowed
    assert verdict.reasons[0].startswith(
        "300.00 EUR over your monthly cap of 1,000.00 EUR: 100.00 EUR left this month, this needs 400.00 EUR; "
        "resets 01 Dec 2026 00:00 Europe/Berlin")


# --- lapsed grants -----------------------------------------------------------------------------


def test_an_expired_grant_is_named_as_expired_not_as_no_grant(alice, case_owned_by_alice):
    # given alice's refund grant was changed to version 2, which expired on 3 Nov 2026 (Berlin time)
    first = GrantFactory(subject_user=alice, superseded_at=datetime(2026, 6, 1, tzinfo=UTC))
    GrantFactory(subject_user=alice, lineage=first.pk, version=2, supersedes=first,
                 valid_from=datetime(2026, 6, 1, tzinfo=UTC), valid_until=datetime(2026, 11, 3, 12, 0, tzinfo=UTC))
    before = nothing_spent()
    # when she refunds 10 a week later
    with pytest.raises(AuthorityDenied) as refused:
        decision_execute(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="10", currency="EUR",
                         rationale="late delivery")
    # then the grant is named as expired, with its version and date, and nothing was spent
    assert refused.value.verdict.reasons == [
        "Your refund grant (version 2) expired on 3 Nov 2026: no grant gives you refund authority now."
    ]
    assert nothing_spent() == before


def test_an_ended_team_grant_is_named_as_ended(alice, retention, case_owned_by_alice):
    # given Retention's refund grant was ended on 2 Nov 2026, and alice has no other
    GrantFactory(subject_team=retention, superseded_at=datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
    # when she asks
    verdict = ask(alice, case_owned_by_alice, "10")
    # then the ended grant is named
    assert verdict.reasons == [
        "The Retention team's refund grant (version 1) was ended on 2 Nov 2026: no grant gives you refund "
        "authority now."
    ]


def test_naming_a_lapsed_grant_costs_one_query_only_when_nothing_is_in_force(alice, case_owned_by_alice,
                                                                             django_assert_num_queries):
    # given an expired grant, a case loaded with its customer, and the organisation already read
    GrantFactory(subject_user=alice, valid_until=AT - timedelta(days=1))
    case = loaded_case(case_owned_by_alice)
    refund = kind("refund")
    current_organisation()
    # when alice asks with nothing in force: grants (1) and the lapsed grant (1)
    with django_assert_num_queries(2):
        lapsed = policy.evaluate(agent=alice, kind=refund, amount="10", currency="EUR", case=case, at=AT,
                                 with_approvers=False)
    assert lapsed.reasons[0].startswith("Your refund grant (version 1) expired on 9 Nov 2026")
    # and with a grant in force: grants with their usage (1), never the lapsed grant
    GrantFactory(subject_user=alice)
    with django_assert_num_queries(1):
        allowed = policy.evaluate(agent=alice, kind=refund, amount="10", currency="EUR", case=case, at=AT,
                                  with_approvers=False)
    assert allowed.allowed
