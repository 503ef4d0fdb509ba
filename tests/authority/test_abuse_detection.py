"""Abuse and structuring detection: each detector finds its pattern on hand-made data, leaves the
innocent near-miss alone, bounds its output and keeps a fixed number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authority.models import RequestStatus
from authority.reports.abuse import (
    GRANT_END,
    MANY_AGENTS,
    SHOPPING,
    SPLIT,
    Thresholds,
    abuse_findings,
    approver_shopping,
    before_grant_end,
    csv_rows,
    many_agents,
    split_refunds,
)
from tests.consoles.factories import DecisionFactory, RequestFactory
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, UserFactory, kind

pytestmark = pytest.mark.django_db

NOW = timezone.now()
PERIOD = {"since": NOW - timedelta(days=30), "until": NOW + timedelta(minutes=1)}


def decide(agent, customer, amount, *, days_ago, grant=None, **fields):
    grant = grant or GrantFactory(subject_user=agent, per_case_limit=Decimal("500"))
    case = CaseFactory(customer=customer, owner=agent)
    return DecisionFactory(case=case, agent=agent, grant=grant, amount=Decimal(amount),
                           executed_at=NOW - timedelta(days=days_ago), **fields)


# --- split refunds -------------------------------------------------------------------------------------


def test_refunds_split_just_under_the_limit_are_found(alice):
    # given: alice refunds one customer 480 and then 470 under her 500 per-case limit, three days apart
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    customer = CustomerFactory(name="Split Ltd")
    first = decide(alice, customer, "480", days_ago=5, grant=grant)
    second = decide(alice, customer, "470", days_ago=2, grant=grant)
    # when
    result = split_refunds(**PERIOD)
    # then: one finding, with both decisions as evidence and the numbers in words
    assert result.total == 1
    [finding] = result.findings
    assert finding.decision_ids == (first.pk, second.pk)
    assert finding.flag_decision_id == second.pk
    assert finding.customer_name == "Split Ltd"
    assert finding.people == ("alice",)
    assert set(finding.case_ids) == {first.case_id, second.case_id}
    assert "2 refund decisions" in finding.explanation
    assert "500.00 EUR per-case limit" in finding.explanation
    assert "950.00 EUR" in finding.explanation and "1.9 times" in finding.explanation
    assert finding.severity == "minor"


def test_split_across_agents_counts_and_three_make_it_major(alice, carol):
    # given: alice and carol each refund the same customer just under their own 500 limits, three times
    customer = CustomerFactory()
    decide(alice, customer, "490", days_ago=6)
    decide(carol, customer, "460", days_ago=4)
    decide(alice, customer, "455", days_ago=1)
    # when
    [finding] = split_refunds(**PERIOD).findings
    # then
    assert len(finding.decision_ids) == 3 and set(finding.people) == {"alice", "carol"}
    assert finding.severity == "major"


def test_split_near_misses_are_not_flagged(alice):
    # given: a customer refunded 480 and 300 (300 is far under the limit), one refunded twice just under
    # but ten days apart, and one refunded 480 and 460 in another currency each
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    far_under, apart = CustomerFactory(), CustomerFactory()
    decide(alice, far_under, "480", days_ago=3, grant=grant)
    decide(alice, far_under, "300", days_ago=2, grant=grant)
    decide(alice, apart, "480", days_ago=15, grant=grant)
    decide(alice, apart, "490", days_ago=4, grant=grant)
    # and one 480 under a one-off grant (an approved request's amount is its own limit)
    one_off = GrantFactory(subject_user=alice, case=CaseFactory(), per_case_limit=Decimal("500"))
    decide(alice, far_under, "495", days_ago=1, grant=one_off)
    # when / then
    assert split_refunds(**PERIOD).total == 0


def test_split_window_and_margin_are_parameters(alice):
    # given: 480 and 490 ten days apart
    customer = CustomerFactory()
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    decide(alice, customer, "480", days_ago=12, grant=grant)
    decide(alice, customer, "490", days_ago=2, grant=grant)
    # when the window is 14 days, then they are found; with a 1 % margin, 480 is not near enough
    assert split_refunds(**PERIOD, thresholds=Thresholds(split_window=timedelta(days=14))).total == 1
    assert split_refunds(**PERIOD, thresholds=Thresholds(split_window=timedelta(days=14),
                                                         split_margin=Decimal("0.01"))).total == 0


def test_decisions_that_do_not_add_up_to_more_than_the_limit_are_not_structuring(alice):
    # given: with a wide 60 % margin, one customer refunded 240 and 230 (470, under the 500 limit), another
    # 260 and 250 (510, over it)
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    under, over = CustomerFactory(name="Under"), CustomerFactory(name="Over")
    for customer, amounts in ((under, ("240", "230")), (over, ("260", "250"))):
        for days, amount in zip((3, 2), amounts, strict=True):
            decide(alice, customer, amount, days_ago=days, grant=grant)
    # when
    result = split_refunds(**PERIOD, thresholds=Thresholds(split_margin=Decimal("0.6")))
    # then: only the one over the limit
    assert [f.customer_name for f in result.findings] == ["Over"]


# --- several agents for one customer ---------------------------------------------------------------------


def test_one_customer_refunded_by_three_agents_within_30_days(alice, carol):
    # given: alice, carol and dave each refund the same customer within 20 days
    dave = UserFactory(username="dave")
    customer = CustomerFactory(name="Popular plc")
    decide(alice, customer, "50", days_ago=20)
    decide(carol, customer, "70", days_ago=10)
    last = decide(dave, customer, "30", days_ago=1)
    # when
    result = many_agents(**PERIOD)
    # then
    assert result.total == 1
    [finding] = result.findings
    assert set(finding.people) == {"alice", "carol", "dave"}
    assert finding.flag_decision_id == last.pk
    assert "3 different agents" in finding.explanation and "150.00 EUR" in finding.explanation


def test_three_agents_spread_over_more_than_30_days_are_not_flagged(alice, carol):
    # given: three agents for one customer, but 40 days between the first and the third; and two agents
    # refunding another customer five times
    dave = UserFactory(username="dave")
    spread, two = CustomerFactory(), CustomerFactory()
    decide(alice, spread, "50", days_ago=42)
    decide(carol, spread, "50", days_ago=20)
    decide(dave, spread, "50", days_ago=2)
    for days in range(5):
        decide(alice if days % 2 else carol, two, "40", days_ago=days + 1)
    # when / then
    assert many_agents(**{**PERIOD, "since": NOW - timedelta(days=60)}).total == 0


# --- approver shopping ------------------------------------------------------------------------------------


def shopping_world(alice, maria):
    mike = UserFactory(username="mike")
    case = CaseFactory(owner=alice)
    rejected = RequestFactory(case=case, requester=alice, status=RequestStatus.REJECTED, decided_by=maria,
                              amount=Decimal("1200"), created_at=NOW - timedelta(days=3),
                              decided_at=NOW - timedelta(days=3, hours=-1))
    approved = RequestFactory(case=case, requester=alice, status=RequestStatus.APPROVED, decided_by=mike,
                              amount=Decimal("1100"), created_at=NOW - timedelta(days=2),
                              decided_at=NOW - timedelta(days=1))
    return {"mike": mike, "case": case, "rejected": rejected, "approved": approved}


def test_asking_another_approver_after_a_rejection_is_found(alice, maria):
    # given: maria rejected alice's 1,200 on a case; alice asked again, and mike approved 1,100; she executed it
    world = shopping_world(alice, maria)
    decision = decide(alice, world["case"].customer, "1100", days_ago=0, request=world["approved"])
    # when
    result = approver_shopping(**PERIOD)
    # then
    [finding] = result.findings
    assert finding.request_ids == (world["rejected"].pk, world["approved"].pk)
    assert finding.flag_decision_id == decision.pk and finding.severity == "major"
    assert finding.people == ("alice", "maria", "mike")
    assert "maria rejected 1,200.00 EUR" in finding.explanation and "mike approved it" in finding.explanation


def test_approval_by_the_same_approver_or_for_another_kind_is_not_shopping(alice, maria):
    # given: maria rejected, then maria herself approved the next request; and a goodwill credit approved
    # by mike after a refund was rejected
    case = CaseFactory(owner=alice)
    RequestFactory(case=case, requester=alice, status=RequestStatus.REJECTED, decided_by=maria,
                   created_at=NOW - timedelta(days=3), decided_at=NOW - timedelta(days=3))
    RequestFactory(case=case, requester=alice, status=RequestStatus.APPROVED, decided_by=maria,
                   created_at=NOW - timedelta(days=2), decided_at=NOW - timedelta(days=2))
    RequestFactory(case=case, requester=alice, kind=kind("goodwill_credit"), status=RequestStatus.APPROVED,
                   decided_by=UserFactory(username="mike"), created_at=NOW - timedelta(days=2),
                   decided_at=NOW - timedelta(days=1))
    # and a request rejected long (40 days) before the next one
    old = CaseFactory(owner=alice)
    RequestFactory(case=old, requester=alice, status=RequestStatus.REJECTED, decided_by=maria,
                   created_at=NOW - timedelta(days=41), decided_at=NOW - timedelta(days=41))
    RequestFactory(case=old, requester=alice, status=RequestStatus.APPROVED, decided_by=UserFactory(username="x"),
                   created_at=NOW - timedelta(days=1), decided_at=NOW - timedelta(days=1))
    # when / then
    assert approver_shopping(**PERIOD).total == 0


# --- decisions just before a grant ends -------------------------------------------------------------------


def test_decisions_just_before_a_grant_ended_are_found(alice):
    # given: alice's grant (period cap 1,000) ended an hour ago; two hours before, she decided 600
    ended = GrantFactory(subject_user=alice, per_case_limit=Decimal("700"), period_limit=Decimal("1000"),
                         superseded_at=NOW - timedelta(hours=1))
    customer = CustomerFactory()
    late = DecisionFactory(case=CaseFactory(customer=customer, owner=alice), agent=alice, grant=ended,
                           amount=Decimal("600"), executed_at=NOW - timedelta(hours=3))
    # and a decision 30 hours before the end: not in the last 24 hours
    DecisionFactory(case=CaseFactory(customer=customer, owner=alice), agent=alice, grant=ended,
                    amount=Decimal("100"), executed_at=NOW - timedelta(hours=31))
    # when
    result = before_grant_end(**PERIOD)
    # then
    [finding] = result.findings
    assert finding.decision_ids == (late.pk,) and finding.severity == "major"
    assert "60 % of its 1,000.00 EUR period cap" in finding.explanation


def test_a_raised_grant_or_one_still_in_force_is_not_an_ending(alice):
    # given: a grant replaced an hour ago by a version with higher limits, used two hours before
    raised = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"),
                          superseded_at=NOW - timedelta(hours=1))
    GrantFactory(subject_user=alice, supersedes=raised, lineage=raised.lineage, version=2,
                 per_case_limit=Decimal("800"), period_limit=Decimal("2000"), valid_from=NOW - timedelta(hours=1))
    DecisionFactory(case=CaseFactory(owner=alice), agent=alice, grant=raised, amount=Decimal("450"),
                    executed_at=NOW - timedelta(hours=2))
    # and a grant that ends tomorrow, used today
    later = GrantFactory(subject_user=alice, valid_until=NOW + timedelta(hours=20))
    DecisionFactory(case=CaseFactory(owner=alice), agent=alice, grant=later, amount=Decimal("450"),
                    executed_at=NOW - timedelta(hours=2))
    # when / then
    assert before_grant_end(**PERIOD).total == 0


def test_a_lowered_grant_is_an_ending(alice):
    # given: a grant replaced an hour ago by a version with a lower per-case limit, used two hours before
    lowered = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"),
                           superseded_at=NOW - timedelta(hours=1))
    GrantFactory(subject_user=alice, supersedes=lowered, lineage=lowered.lineage, version=2,
                 per_case_limit=Decimal("200"), period_limit=Decimal("1000"), valid_from=NOW - timedelta(hours=1))
    DecisionFactory(case=CaseFactory(owner=alice), agent=alice, grant=lowered, amount=Decimal("150"),
                    executed_at=NOW - timedelta(hours=2))
    # when
    [finding] = before_grant_end(**PERIOD).findings
    # then: 150 of 1,000 is under a fifth of the cap: information only
    assert finding.severity == "info" and "was ended or lowered" in finding.explanation


# --- bounds, queries, parameters --------------------------------------------------------------------------


def split_customers(alice, count):
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    for i in range(count):
        customer = CustomerFactory()
        decide(alice, customer, str(460 + i), days_ago=3, grant=grant)
        decide(alice, customer, "470", days_ago=2, grant=grant)


def test_output_is_bounded_worst_first_and_says_how_many_more(alice):
    # given: five customers with split refunds
    split_customers(alice, 5)
    # when only the top two are asked for
    result = split_refunds(**PERIOD, thresholds=Thresholds(top=2))
    # then: two shown, the biggest sums first, three more
    assert [len(f.decision_ids) for f in result.findings] == [2, 2]
    assert result.total == 5 and result.more == 3
    assert result.findings[0].score >= result.findings[1].score
    assert "934.00 EUR" in result.findings[0].explanation


@pytest.mark.parametrize("customers", [2, 8])
def test_every_detector_runs_in_a_fixed_number_of_queries(alice, carol, maria, customers,
                                                         django_assert_max_num_queries):
    # given: split refunds for a few or several customers, shopping and a grant ending
    split_customers(alice, customers)
    world = shopping_world(alice, maria)
    decide(alice, world["case"].customer, "900", days_ago=0, request=world["approved"])
    ended = GrantFactory(subject_user=carol, superseded_at=NOW - timedelta(hours=1))
    for _ in range(customers):
        DecisionFactory(case=CaseFactory(owner=carol), agent=carol, grant=ended, executed_at=NOW - timedelta(hours=2))
    # when / then: three queries per detector, whatever the size
    with django_assert_max_num_queries(12):
        findings = abuse_findings(**PERIOD)
    assert {r.detector: r.total for r in findings.results} == {SPLIT: customers, MANY_AGENTS: 0, SHOPPING: 1,
                                                                  GRANT_END: 1}
    rows = list(csv_rows(findings))
    assert len(rows) == customers + 2


def test_bad_parameters_are_refused_clearly():
    with pytest.raises(ValueError, match="Unknown detector"):
        abuse_findings(**PERIOD, detectors=["nonsense"])
    with pytest.raises(ValueError, match="start before"):
        abuse_findings(since=NOW, until=NOW - timedelta(days=1))
    with pytest.raises(ValueError, match="split_margin"):
        Thresholds(split_margin=Decimal("1.5"))
