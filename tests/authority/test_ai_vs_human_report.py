"""AI agents beside people: every figure of the report on a small hand-made set, in six queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from authority.models import ShadowDecision
from authority.reports.ai_vs_human import AI, HUMAN, ai_vs_human, csv_rows
from h2h_core.audit import audit_record
from h2h_core.models import CaseCategory, CaseEvent, CaseStatus, HandOff, HandOffReason
from h2h_core.models.audit import Outcome
from tests.consoles.factories import DecisionFactory
from tests.factories import CaseFactory, ai_agent, kind

pytestmark = pytest.mark.django_db


def row(report, agent_kind, category):
    return next(r for r in report.rows if (r.agent_kind, r.category) == (agent_kind, category)).figures


def refused(actor, case):
    with transaction.atomic():
        audit_record(actor=actor, action="decision.refused", object_type="case", object_id=case.pk,
                     outcome=Outcome.DENIED, after={"case_id": case.pk, "kind": "refund"})


def shadow(agent, case, *, at):
    return ShadowDecision.objects.create(case=case, agent=agent, kind=kind("refund"), amount=Decimal("80"),
                                         currency="EUR", allowed=True, verdict={}, rationale="double charge",
                                         created_at=at)


def hand_off(agent, case, *, to, at, picked_up_at=None):
    return HandOff.objects.create(case=case, from_agent=agent, to_user=to, reason=HandOffReason.OVER_AUTHORITY,
                                  reason_text="over its authority", created_at=at, picked_up_at=picked_up_at,
                                  picked_up_by=to if picked_up_at else None)


@pytest.fixture
def world(alice, carol, retention, billing):
    """Retention: alice and the AI agent ava-bot; billing: carol. One month of known figures."""
    now = timezone.now()
    ava = ai_agent(retention, "ava-bot").user
    resolved = {"status": CaseStatus.RESOLVED, "resolved_at": now - timedelta(days=1)}
    complaint = CaseFactory(owner=alice, team=retention, category=CaseCategory.COMPLAINT, rating=2, **resolved)
    billing_error = CaseFactory(owner=ava, team=retention, category=CaseCategory.BILLING_ERROR, rating=5,
                                **resolved)
    renewal = CaseFactory(owner=alice, team=retention, category=CaseCategory.RENEWAL, rating=4, **resolved)
    elsewhere = CaseFactory(owner=carol, team=billing, category=CaseCategory.COMPLAINT, rating=1, **resolved)
    unrated = CaseFactory(owner=ava, team=retention, category=CaseCategory.BILLING_ERROR, **resolved)
    # decisions: two by the AI on the billing error (one reversed since), one by alice (reversed)
    DecisionFactory(case=billing_error, agent=ava, by_ai_agent=True, ai_model="support-llm",
                    executed_at=now - timedelta(days=2))
    DecisionFactory(case=unrated, agent=ava, by_ai_agent=True, executed_at=now - timedelta(days=2),
                    reversed_at=now - timedelta(days=1), reversed_by=alice)
    DecisionFactory(case=complaint, agent=alice, executed_at=now - timedelta(days=3),
                    reversed_at=now - timedelta(days=1), reversed_by=alice)
    DecisionFactory(case=complaint, agent=alice, executed_at=now - timedelta(days=45))  # before the period
    DecisionFactory(case=elsewhere, agent=carol, executed_at=now - timedelta(days=2))  # another team
    # refusals: the AI's on the billing error, alice's twice on the complaint, carol's on her team's case
    refused(ava, billing_error)
    refused(alice, complaint)
    refused(alice, complaint)
    refused(carol, elsewhere)
    # the AI's shadow refund on the renewal, handed to alice who picked it up an hour later
    shadow(ava, renewal, at=now - timedelta(days=2))
    hand_off(ava, renewal, to=alice, at=now - timedelta(days=2), picked_up_at=now - timedelta(days=2, hours=-1))
    hand_off(ava, complaint, to=None, at=now - timedelta(hours=5))  # still waiting in the queue
    # handovers: alice handed the complaint over once; the AI handed the billing error over once
    CaseEvent.objects.create(case=complaint, actor=alice, kind=CaseEvent.Kind.HANDOVER, at=now - timedelta(days=4))
    CaseEvent.objects.create(case=billing_error, actor=ava, kind=CaseEvent.Kind.HANDOVER,
                             at=now - timedelta(days=4))
    return {"now": now, "ava": ava, "retention": retention, "billing": billing}


def test_decisions_and_reversals_are_split_by_who_decided(world):
    # when the retention team's month is reported
    report = ai_vs_human(teams=[world["retention"]])
    # then the AI's two decisions on billing errors (one reversed) and alice's one on a complaint show
    assert (row(report, AI, "billing_error").decisions, row(report, AI, "billing_error").reversals) == (2, 1)
    assert (row(report, HUMAN, "complaint").decisions, row(report, HUMAN, "complaint").reversals) == (1, 1)
    assert row(report, HUMAN, "billing_error").decisions == 0 and row(report, AI, "complaint").decisions == 0
    assert row(report, AI, "billing_error").reversal_rate == 50


def test_refusals_are_split_by_the_roles_recorded_on_the_event(world):
    report = ai_vs_human(teams=[world["retention"]])
    assert row(report, AI, "billing_error").refusals == 1
    assert row(report, HUMAN, "complaint").refusals == 2
    assert row(report, HUMAN, "billing_error").refusals == 0 and row(report, AI, "complaint").refusals == 0
    assert row(report, HUMAN, "complaint").refusal_rate == 67  # 2 refused of 3 asked


def test_shadow_decisions_and_hand_offs_are_the_ais_with_the_time_to_pickup(world):
    report = ai_vs_human(teams=[world["retention"]])
    renewal, complaint = row(report, AI, "renewal"), row(report, AI, "complaint")
    assert (renewal.shadow, renewal.hand_offs, renewal.picked_up, renewal.pickup_time) == (1, 1, 1, timedelta(hours=1))
    assert (complaint.hand_offs, complaint.picked_up, complaint.pickup_time) == (1, 0, None)
    assert all(r.figures.hand_offs == 0 and r.figures.shadow == 0 for r in report.rows_of(HUMAN))


def test_handovers_are_counted_by_the_kind_of_whoever_handed_over(world):
    report = ai_vs_human(teams=[world["retention"]])
    assert row(report, HUMAN, "complaint").handovers == 1
    assert row(report, AI, "billing_error").handovers == 1
    assert report.totals[AI].figures.handovers == report.totals[HUMAN].figures.handovers == 1


def test_csat_follows_the_owner_at_resolution(world):
    report = ai_vs_human(teams=[world["retention"]])
    # the billing error the AI resolved is the AI's; the renewal the AI handed to alice is hers
    assert (row(report, AI, "billing_error").rated, row(report, AI, "billing_error").rating) == (1, 5.0)
    assert (row(report, HUMAN, "renewal").rated, row(report, HUMAN, "renewal").rating) == (1, 4.0)
    assert (row(report, AI, "renewal").rated, row(report, AI, "renewal").rating) == (0, None)
    assert (row(report, HUMAN, "complaint").rated, row(report, HUMAN, "complaint").rating) == (1, 2.0)
    assert (report.totals[HUMAN].figures.rated, report.totals[HUMAN].figures.rating) == (2, 3.0)


def test_totals_add_up_per_kind_and_overall(world):
    report = ai_vs_human(teams=[world["retention"]])
    ai, human, total = report.totals[AI].figures, report.totals[HUMAN].figures, report.total.figures
    assert (ai.decisions, ai.refusals, ai.reversals, ai.shadow, ai.hand_offs, ai.rated) == (2, 1, 1, 1, 2, 1)
    assert (human.decisions, human.refusals, human.reversals, human.rated) == (1, 2, 1, 2)
    assert (total.decisions, total.refusals, total.reversals, total.rated, total.rating) == (3, 3, 2, 3, 3.67)
    assert ai.pickup_time == timedelta(hours=1)


def test_only_the_teams_asked_for_count_and_every_team_without_a_filter(world):
    # given carol's decision, refusal and rated complaint in billing
    retention = ai_vs_human(teams=[world["retention"]])
    everyone = ai_vs_human()
    billing = ai_vs_human(teams=[world["billing"]])
    assert row(retention, HUMAN, "complaint").decisions == 1 and row(everyone, HUMAN, "complaint").decisions == 2
    assert row(retention, HUMAN, "complaint").refusals == 2 and row(everyone, HUMAN, "complaint").refusals == 3
    assert row(everyone, HUMAN, "complaint").rated == 2 and row(everyone, HUMAN, "complaint").rating == 1.5
    assert (billing.total.figures.decisions, billing.total.figures.refusals, billing.total.figures.rated) == (1, 1, 1)
    assert billing.totals[AI].figures.is_empty


def test_the_period_bounds_every_figure(world):
    now = world["now"]
    # when the month before last is reported
    report = ai_vs_human(teams=[world["retention"]], since=now - timedelta(days=60), until=now - timedelta(days=30))
    # then only the old decision counts
    assert report.total.figures.decisions == 1 and row(report, HUMAN, "complaint").decisions == 1
    assert report.totals[AI].figures.is_empty
    assert (report.total.figures.refusals, report.total.figures.rated, report.total.figures.handovers) == (0, 0, 0)
    # and a period ending before now leaves out the refusals recorded just now
    week = ai_vs_human(teams=[world["retention"]], since=now - timedelta(days=7), until=now - timedelta(hours=1))
    assert week.total.figures.refusals == 0 and week.total.figures.decisions == 3
    assert week.totals[AI].figures.hand_offs == 2  # both were handed off before the last hour


def test_the_report_costs_six_queries_however_many_rows(world, django_assert_num_queries):
    with django_assert_num_queries(6):
        small = ai_vs_human(teams=[world["retention"]])
    for _ in range(5):
        refused(world["ava"], CaseFactory(owner=world["ava"], team=world["retention"]))
        DecisionFactory(case=CaseFactory(owner=world["ava"], team=world["retention"]), agent=world["ava"],
                        by_ai_agent=True)
    with django_assert_num_queries(6):
        large = ai_vs_human(teams=[world["retention"]])
    assert large.totals[AI].figures.refusals == small.totals[AI].figures.refusals + 5
    assert large.totals[AI].figures.decisions == small.totals[AI].figures.decisions + 5


def test_the_csv_rows_hold_every_category_then_the_totals(world):
    report = ai_vs_human(teams=[world["retention"]])
    rows = csv_rows(report)
    assert len(rows) == 2 * len(CaseCategory.values) + 3
    assert rows[-1][:5] == ["all", "all", 3, 3, 2]
    renewal = next(r for r in rows if r[:2] == ["ai", "renewal"])
    assert renewal[5:9] == [1, 1, 1, 3600]
