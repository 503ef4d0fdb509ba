"""`manage.py seed_demo`: a believable organisation, built through the services, exactly once."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Q, Sum
from django.utils import timezone

from authority import policy
from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    Effect,
    ExchangeRate,
    Grant,
    GrantStatus,
    RequestStatus,
    ShadowDecision,
    UsageCounter,
)
from edges.demo.cast import HISTORY_DAYS
from edges.demo.seed import GRANTS_LEAD_DAYS, SIMULATED_DAYS, build_plan
from h2h_core.models import (
    AiAgent,
    AuditEvent,
    Case,
    CaseCategory,
    CaseEvent,
    CaseStatus,
    Customer,
    HandOff,
    HandOffReason,
    Role,
    Team,
)

User = get_user_model()
# The full demo takes seconds; a third of it keeps every invariant (the story cases are always in).
TEST_SCALE = 0.3


def state() -> dict:
    return {
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "customers": Customer.objects.count(),
        "cases": Case.objects.count(),
        "case events": CaseEvent.objects.count(),
        "grants": Grant.objects.count(),
        "decisions": Decision.objects.count(),
        "requests": AuthorityRequest.objects.count(),
        "AI agents": AiAgent.objects.count(),
        "hand-offs": HandOff.objects.filter(picked_up_at__isnull=False).count(),
        "shadow decisions": ShadowDecision.objects.count(),
        "rates": ExchangeRate.objects.count(),
        "usage": UsageCounter.objects.aggregate(total=Sum("used"))["total"],
        "audit": AuditEvent.objects.count(),
    }


def seed(history_cases: int = 0) -> str:
    """Seed at the test scale; without simulated history unless asked (the story's figures stay exact)."""
    out = StringIO()
    call_command("seed_demo", scale=TEST_SCALE, history_cases=history_cases, stdout=out)
    return out.getvalue()


def in_force(**subject):
    return Grant.objects.filter(status=GrantStatus.ACTIVE, superseded_at__isnull=True, case__isnull=True, **subject)


def test_the_default_demo_has_the_promised_sizes_and_is_the_same_every_time():
    # when the default plan is drawn twice
    now = timezone.now()
    plan, again = build_plan(now=now), build_plan(now=now)
    # then it has 200 customers with distinct names, 300 cases and more, in every category
    assert len(plan.customers) == len({c.name for c in plan.customers}) >= 200
    assert len(plan.cases) == len({c.subject for c in plan.cases}) >= 300
    assert {c.category for c in plan.cases} == set(CaseCategory.values)
    # and it is the same plan both times
    assert plan == again


@pytest.mark.django_db
def test_seed_demo_builds_the_organisation_once_and_tells_the_story():
    # when the demo is seeded on an empty database
    first = seed()
    seeded = state()

    # then it says what it made, in every category and state
    assert first.startswith("Seeded ")
    assert seeded["customers"] == round(200 * TEST_SCALE) and seeded["cases"] > round(300 * TEST_SCALE)
    assert set(Case.objects.values_list("category", flat=True)) == set(CaseCategory.values)
    # (every category routes to a team, so a case is "new" only before its team exists: none here)
    assert set(Case.objects.values_list("status", flat=True)) == set(CaseStatus.values) - {CaseStatus.NEW}
    assert CaseEvent.objects.filter(kind=CaseEvent.Kind.REOPENED).exists()
    assert CaseEvent.objects.filter(kind=CaseEvent.Kind.HANDOVER).count() >= 2
    assert Case.objects.filter(rating__isnull=False).exists()

    # and every deciding role and every team holds authority; one suspension, one change, one raise
    for role in (Role.AGENT, Role.SENIOR_AGENT, Role.MANAGER):
        assert in_force(subject_role__name=role).exists(), role
    for team in Team.objects.all():
        assert in_force(subject_team=team).exists(), team
    assert Grant.objects.filter(effect=Effect.FORBID).count() == 1
    assert in_force(effect=Effect.FORBID, subject_user__username="dave", kind__code="goodwill_credit").exists()
    assert Grant.objects.filter(version=2, status=GrantStatus.ACTIVE).exists()
    assert in_force(valid_until__isnull=False).exists()
    assert Grant.objects.exclude(scope_tiers=[]).exists() and Grant.objects.exclude(scope_categories=[]).exists()
    assert not Grant.objects.filter(status=GrantStatus.PENDING).exists()
    assert Grant.objects.filter(confirmed_by__isnull=False, case__isnull=True).count() == 2

    # and the walk-through holds: alice may refund 200 on a fresh case of hers, not 1,200
    fresh = Case.objects.select_related("customer").filter(owner__username="alice", status=CaseStatus.OWNED,
                                                           decisions__isnull=True).distinct()
    assert fresh.count() >= 3
    alice, refund = User.objects.get(username="alice"), AuthorityKind.objects.get(code="refund")
    assert policy.evaluate(agent=alice, kind=refund, amount=Decimal(200), currency="EUR", case=fresh[0]).allowed
    assert not policy.evaluate(agent=alice, kind=refund, amount=Decimal(1200), currency="EUR", case=fresh[0]).allowed
    assert Case.objects.filter(team__slug="retention", status=CaseStatus.QUEUED, owner__isnull=True).exists()
    requests = {r.status: r for r in AuthorityRequest.objects.select_related("requester")}
    assert set(requests) == {RequestStatus.OPEN, RequestStatus.APPROVED, RequestStatus.REJECTED}
    assert requests[RequestStatus.OPEN].requester.username == "alice"
    assert requests[RequestStatus.OPEN].pool == [User.objects.get(username="maria").pk]
    assert Decision.objects.filter(request=requests[RequestStatus.APPROVED]).exists()
    assert AuditEvent.objects.filter(action="decision.refused", actor_username="dave").count() == 1

    # and two AI agents, registered by their manager, hold small caps; ava-bot's refunds are shadow
    ava, sam = (AiAgent.objects.select_related("team", "registered_by", "user").get(user__username=name)
                for name in ("ava-bot", "sam-bot"))
    assert (ava.team.slug, ava.model_name, ava.model_version, ava.registered_by.username) == (
        "retention", "support-llm", "2026-11", "maria")
    assert (sam.team.slug, sam.route_categories) == ("billing", [CaseCategory.BILLING_ERROR])
    assert in_force(subject_role__name=Role.AI_AGENT, kind__code="goodwill_credit", per_case_limit=25).exists()
    assert in_force(subject_role__name=Role.AI_AGENT, kind__code="fee_waiver", per_case_limit=30).exists()
    assert in_force(subject_user=ava.user, kind__code="refund", shadow=True).exists()

    # and they settled the routine themselves, with their model, version and confidence on the record
    by_ai = Decision.objects.filter(by_ai_agent=True)
    assert set(by_ai.values_list("agent__username", "kind__code")) == {("ava-bot", "goodwill_credit"),
                                                                       ("sam-bot", "fee_waiver")}
    assert not by_ai.filter(Q(ai_model="") | Q(ai_model_version="") | Q(confidence__isnull=True)).exists()
    assert Case.objects.filter(owner=ava.user, status=CaseStatus.OWNED).exists()
    assert Case.objects.filter(owner=ava.user, status=CaseStatus.RESOLVED, rating__isnull=False).exists()

    # and over its authority ava-bot handed a case to a person, with the conversation and what it tried
    over = HandOff.objects.select_related("to_user", "picked_up_by").get(
        from_agent=ava.user, reason=HandOffReason.OVER_AUTHORITY)
    assert over.to_user.username in ("alice", "bob") and over.picked_up_by == over.to_user
    assert len(over.transcript) == 2 and over.attempts[0]["outcome"] == "refused"
    assert Case.objects.get(pk=over.case_id).owner == over.to_user

    # and its shadow refund went to bob (his authority covers it), who picked it up and decided it himself
    shadow = ShadowDecision.objects.get(agent=ava.user)
    assert shadow.allowed and shadow.amount == 550
    handed = HandOff.objects.select_related("to_user", "picked_up_by").get(case=shadow.case,
                                                                          reason=HandOffReason.SHADOW)
    assert handed.to_user.username == "bob" == handed.picked_up_by.username
    assert Decision.objects.filter(case=shadow.case, agent__username="bob", kind__code="refund", amount=550,
                                   by_ai_agent=False).exists()
    # (both of its live attempts were refused on the record before the hand-off)
    assert AuditEvent.objects.filter(action="decision.refused", actor_username="ava-bot").count() == 2

    # and the audit chain starts consistent
    call_command("verify_audit", quiet=True)

    # when it runs again
    second = seed()

    # then nothing changed, not even the audit log
    assert "already seeded" in second
    assert state() == seeded

@pytest.mark.django_db
def test_seed_demo_simulates_months_of_history_before_its_own_once():
    # when the demo is seeded on an empty database with 60 simulated cases
    now = timezone.now()
    first = seed(history_cases=60)

    # then the simulated cases came first, over the three months before the demo's own history
    assert "60 simulated cases" in first
    simulated = Case.objects.filter(idempotency_key__startswith="sim:")
    assert simulated.count() == 60
    demo_history_starts = now - timedelta(days=HISTORY_DAYS + GRANTS_LEAD_DAYS)
    oldest, newest = min(c.opened_at for c in simulated), max(c.opened_at for c in simulated)
    assert demo_history_starts - timedelta(days=SIMULATED_DAYS + 2) < oldest
    assert newest < demo_history_starts and newest - oldest > timedelta(days=60)
    assert Decision.objects.filter(case__in=simulated).exists()
    # and the story is all there after it, on one intact chain
    assert Case.objects.filter(owner__username="alice", status=CaseStatus.OWNED).count() >= 3
    call_command("verify_audit", quiet=True)

    # when it runs again
    seeded = state()
    second = seed(history_cases=60)
    # then nothing changed, not even the audit log
    assert "already seeded" in second
    assert state() == seeded
