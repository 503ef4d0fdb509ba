"""An AI agent's authority: its own grants and the AI agent role's, never its team's."""

from decimal import Decimal

from authority import policy
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind, loaded_case, role


def test_a_team_grant_never_speaks_for_an_ai_agent_of_the_team(retention, alice):
    # given the team may credit 200 EUR a case, and an AI agent of the team may credit 25
    credit = kind("goodwill_credit")
    GrantFactory(subject_team=retention, kind=credit, per_case_limit=Decimal("200"), period_limit=None)
    bot = ai_agent(retention, "team-bot")
    GrantFactory(subject_role=role("AI agent"), kind=credit, per_case_limit=Decimal("25"), period_limit=None)
    case = loaded_case(CaseFactory(owner=bot.user, team=retention))
    # when each of them asks for a 150 EUR credit
    for_bot = policy.evaluate(agent=bot.user, kind=credit, amount="150", currency="EUR", case=case,
                              with_approvers=False)
    for_alice = policy.evaluate(agent=alice, kind=credit, amount="150", currency="EUR", case=case,
                                with_approvers=False)
    # then the team's grant speaks for alice, and only the AI agent role's 25 EUR for the AI agent
    assert for_alice.allowed
    assert not for_bot.allowed and for_bot.per_case_limit == Decimal("25")
