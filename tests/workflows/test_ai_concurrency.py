"""AI agents decide concurrently on PostgreSQL: their caps stay exact, and what does not fit goes to a
person, one owner per case, never a lost or doubled decision."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from authority.models import Decision, Period, UsageCounter
from h2h_core.models import AuditEvent, CaseCategory, HandOff, HandOffReason
from tests.authority.test_concurrency import assert_chain_intact_with, run_together, split
from tests.factories import CaseFactory, GrantFactory, UserFactory, ai_agent, kind
from workflows.steps.ai import ai_case_decide

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency tests need PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 16


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_concurrent_ai_decisions_never_exceed_its_month_cap_and_the_rest_reach_a_person(retention):
    # given an AI agent may credit 25 EUR a case and 200 EUR a month, owns 16 billing cases, and its
    # team has one person who can take what it cannot do
    bot = ai_agent(retention, "ava-bot", categories=[CaseCategory.BILLING_ERROR])
    person = UserFactory(username="alice-h", roles=["Agent"])
    retention.members.add(person)
    credit = kind("goodwill_credit")
    GrantFactory(subject_user=bot.user, kind=credit, per_case_limit=Decimal("25"), period_limit=Decimal("200"),
                 period=Period.MONTH)
    cases = [CaseFactory(owner=bot.user, team=retention, category=CaseCategory.BILLING_ERROR, stakes_score=20)
             for _ in range(THREADS)]

    # when the AI agent decides a 20 EUR credit on each of them at the same instant, with a key each
    results = run_together(THREADS, lambda i: ai_case_decide(
        actor=bot.user, case=cases[i], kind=credit, amount="20", currency="EUR", rationale=f"double charge {i}",
        confidence="0.9", idempotency_key=f"ai-race-{i}"))

    # then every call answered (no error, no dead end): exactly ten fit the month's 200 EUR
    outcomes, errors = split(results)
    assert errors == []
    executed = [o for o in outcomes if o.outcome == "executed"]
    handed = [o for o in outcomes if o.outcome == "handed_off"]
    assert len(executed) == 10 and len(handed) == THREADS - 10
    assert Decision.objects.filter(agent=bot.user, by_ai_agent=True).count() == 10
    month = UsageCounter.objects.get(scope=UsageCounter.Scope.PERIOD, agent=bot.user)
    assert month.used == Decimal("200")
    # and each case over the cap now has one owner, the person, with one hand-off saying why
    for outcome in handed:
        case = outcome.case
        assert case.owner_id == person.pk
        hand_off = HandOff.objects.get(case=case)
        assert hand_off.reason == HandOffReason.OVER_AUTHORITY and hand_off.to_user_id == person.pk
        assert hand_off.attempts[0]["outcome"] == "refused" and hand_off.attempts[0]["amount"] == "20"
    assert HandOff.objects.count() == THREADS - 10
    # and the log holds one executed or refused decision per call, plus the hand-offs, chained intact
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("decision.executed") == 10 and actions.count("decision.refused") == THREADS - 10
    assert actions.count("case.handed_off") == THREADS - 10
    assert_chain_intact_with(AuditEvent.objects.count())


def test_no_decision_of_an_ai_agent_commits_after_its_suspension(retention):
    # given an AI agent with ample authority owns 12 cases, and maria manages its team
    from h2h_core.ai_agents import ai_agent_suspend
    from h2h_core.models import AiAgent
    from tests.factories import team_manager

    bot = ai_agent(retention, "ava-bot", categories=[CaseCategory.BILLING_ERROR])
    maria = team_manager(retention, "maria")
    credit = kind("goodwill_credit")
    GrantFactory(subject_user=bot.user, kind=credit, per_case_limit=Decimal("25"), period_limit=None)
    cases = [CaseFactory(owner=bot.user, team=retention, category=CaseCategory.BILLING_ERROR, stakes_score=20)
             for _ in range(12)]

    # when maria suspends it while it decides on all of them at once
    def work(i: int):
        if i == 12:
            return ai_agent_suspend(actor=maria, ai_agent=AiAgent.objects.get(pk=bot.pk), reason="refunds look off")
        return ai_case_decide(actor=bot.user, case=cases[i], kind=credit, amount="10", currency="EUR",
                              rationale=f"credit {i}", confidence="0.9", idempotency_key=f"suspend-race-{i}")

    results = run_together(13, work)

    # then every decision that executed committed before the suspension took effect, and every other
    # call was refused as suspended, never executed after it
    suspended_at = AiAgent.objects.get(pk=bot.pk).suspended_at
    assert suspended_at is not None
    executed = list(Decision.objects.filter(agent=bot.user).values_list("executed_at", flat=True))
    assert all(at < suspended_at for at in executed)
    errors = [value for outcome, value in results if outcome == "error"]
    assert all(getattr(error, "code", "") == "ai_agent_suspended" for error in errors), errors
    assert len(executed) + len(errors) == 12
