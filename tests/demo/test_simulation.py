"""`manage.py simulate`: realistic work through the services, on a virtual clock, the same for a seed."""

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Exists, OuterRef

from authority.models import AuthorityRequest, Decision, RequestStatus
from edges.demo.simulation import simulate
from edges.demo.simulation_report import format_report
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent, Case, CaseEvent

# Mondays in two different quarters, months apart: period caps of one run never touch the other's.
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JULY = datetime(2026, 7, 6, tzinfo=UTC)
SMALL = {"days": 2, "cases": 150, "seed": 7}
FIGURES = ("cases", "resolved", "decisions", "requests", "requests_by_status", "one_hop_share",
           "median_approval_wait_minutes", "fcr_share", "csat_mean", "high_stakes_first_owner_share")


def run_cases(start: datetime, days: int = SMALL["days"]):
    return Case.objects.filter(opened_at__gte=start, opened_at__lte=start + timedelta(days=days))


def facts(start: datetime, days: int) -> list:
    """What happened to the cases opened from `start`, in order, with times relative to it."""
    cases = list(run_cases(start, days).order_by("pk"))
    index = {case.pk: number for number, case in enumerate(cases)}
    return [
        [(c.category, c.status, c.rating, c.stakes_score, c.amount_at_stake.amount, c.opened_at - start)
         for c in cases],
        [(index[e.case_id], e.kind, e.at - start) for e in
         CaseEvent.objects.filter(case__in=cases).order_by("case_id", "at", "pk")],
        # (who of the team receives an AI agent's hand-off depends on the open work the run before left)
        [(index[d.case_id], d.kind.code, d.amount, d.by_ai_agent, d.executed_at - start) for d in
         Decision.objects.filter(case__in=cases).select_related("kind").order_by("case_id", "pk")],
        [(index[r.case_id], r.status, r.amount) for r in
         AuthorityRequest.objects.filter(case__in=cases).order_by("case_id", "pk")],
    ]


@pytest.mark.django_db
def test_a_small_run_works_through_the_services_over_the_days_within_the_caps():
    # when two days with 150 cases are simulated
    report = simulate(start=JUNE, **SMALL)
    cases = run_cases(JUNE)

    # then the audit chain verifies intact: every change went through an audited service
    assert verify_chain().ok
    assert report["cases"] == cases.count() == 150
    decisions = Decision.objects.filter(case__in=cases)
    assert report["decisions"] == decisions.count() > 20
    assert AuditEvent.objects.filter(action="decision.executed").count() == Decision.objects.count()
    assert AuditEvent.objects.filter(action="case.opened").count() >= 150

    # and the clock moved through the two days: arrivals and decisions on both, none after the end
    end = JUNE + timedelta(days=2)
    assert {c.opened_at.date() for c in cases} == {JUNE.date(), (JUNE + timedelta(days=1)).date()}
    assert {d.executed_at.date() for d in decisions} == {JUNE.date(), (JUNE + timedelta(days=1)).date()}
    assert not AuditEvent.objects.filter(occurred_at__gt=end).exists()
    # The virtual clock never runs back in the order events are written (by id). Along seq it may, by a
    # moment, on PostgreSQL, where the sealer numbers events after commit (docs/audit.md).
    times = list(AuditEvent.objects.filter(occurred_at__gte=JUNE).order_by("id").values_list("occurred_at",
                                                                                            flat=True))
    assert times == sorted(times)

    # and every period cap held: per agent and grant, what was counted never passes the grant's cap
    counted = defaultdict(Decimal)
    for decision in decisions.select_related("grant"):
        if decision.grant.period_limit is not None:
            counted[decision.agent_id, decision.grant] += decision.counted_amount
    assert counted
    assert all(total <= grant.period_limit for (_, grant), total in counted.items())

    # and the work is varied: requests answered both ways, approvals executed, ratings given
    requests = AuthorityRequest.objects.filter(case__in=cases)
    assert {RequestStatus.APPROVED, RequestStatus.REJECTED} <= set(requests.values_list("status", flat=True))
    assert decisions.filter(request__isnull=False).exists()
    assert cases.filter(rating__isnull=False).count() == report["ratings"] > 10

    # and the report's figures are the database's: requests, median approval wait, FCR
    assert report["requests"] == requests.count()
    waits = [(d - c).total_seconds() / 60 for c, d in
             requests.filter(status=RequestStatus.APPROVED).values_list("created_at", "decided_at")]
    assert report["median_approval_wait_minutes"] == round(statistics.median(waits), 1)
    resolved = cases.filter(resolved_at__isnull=False).alias(
        handed=Exists(CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.HANDOVER)),
        reopened=Exists(CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED)))
    first_contact = resolved.filter(handed=False, reopened=False).count()
    assert report["fcr_share"] == round(first_contact / resolved.count(), 3)
    assert "Median approval wait" in format_report(report)


@pytest.mark.django_db
def test_the_same_seed_tells_the_same_story():
    # given a run in June, and what happened in it
    small = {**SMALL, "cases": 60}
    june_report = simulate(start=JUNE, **small)
    june = facts(JUNE, days=2)
    # when the same seed runs again in July (another quarter: caps start afresh)
    first_report = {key: value for key, value in june_report.items() if key in FIGURES}
    again = simulate(start=JULY, **small)
    # then the same things happen to the same cases, at the same times after the start
    assert facts(JULY, days=2) == june
    assert {key: value for key, value in again.items() if key in FIGURES} == first_report
    assert again["organisation_created"].get("users", 0) == 0  # the cast was found, not made twice
    # and another seed tells another story
    september = datetime(2026, 9, 7, tzinfo=UTC)
    simulate(start=september, **{**small, "seed": 8})
    assert facts(september, days=2)[0] != june[0]


@pytest.mark.django_db
def test_the_command_refuses_a_period_it_cannot_simulate_and_changes_nothing():
    # given an empty database
    before = AuditEvent.objects.count()
    # when a period in the future, a malformed date or nonsense sizes are asked for
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    for options, message in (({"start": tomorrow}, "after now"), ({"start": "30.11.2026"}, "YYYY-MM-DD"),
                             ({"days": 0}, "--days"), ({"cases": 0}, "--cases"), ({"ai_share": 2.0}, "share"),
                             ({"workers": 0}, "--workers"), ({"workers": 3}, "--workers")):
        args = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
        with pytest.raises(CommandError, match=message):
            call_command("simulate", *args, stdout=StringIO())
    # then it said why, and wrote nothing
    assert AuditEvent.objects.count() == before
