"""Who manages AI agents, whether an AI agent may act, and which cases it may own (its routing rules).

The routing rule keeps the moments that matter with people: a case an AI agent may not own goes to
a person, and the reason given here is the one the person and the console read.
"""

from __future__ import annotations

from authority.assist.sentiment import sentiment_of
from h2h_core.access import ALLOWED, Permission
from h2h_core.ai_agents import (  # noqa: F401  (re-exported: the one place to ask)
    ai_agent_of,
    ai_may_act,
    may_manage_ai_agents,
)
from h2h_core.models import AiAgent, Case, CaseCategory, CustomerTier


def _label(choices, value: str) -> str:
    try:
        return choices(value).label
    except ValueError:
        return value


def customer_message(case: Case) -> str:
    """What the customer wrote: the case's description, or its subject when there is none."""
    return case.description if case.description and case.description.strip() else case.subject


def ai_may_own(ai_agent: AiAgent, case: Case) -> Permission:
    """Return whether the routing rules give `case` to `ai_agent`, or the plain reason it goes to a person.

    In order: the AI agent is not suspended; the case is its team's; its category is one the AI owns
    (none listed: none); its customer's tier is one listed (none listed: every tier); its stakes
    score is not above the AI's highest; and, when the AI hands negative sentiment off, the
    customer's message does not read negative (VADER, `authority.assist.sentiment`).
    """
    name = ai_agent.user.get_username()
    if ai_agent.is_suspended:
        return Permission.deny(f"AI agent {name} is suspended: {ai_agent.suspension_reason}")
    if case.team_id != ai_agent.team_id:
        team = case.team.name if case.team_id else "no team"
        return Permission.deny(f"{case.reference} belongs to {team}, not to {name}'s team.")
    if case.category not in ai_agent.route_categories:
        return Permission.deny(f"{_label(CaseCategory, case.category)} cases go to a person.")
    if ai_agent.route_tiers and case.customer.tier not in ai_agent.route_tiers:
        return Permission.deny(f"{_label(CustomerTier, case.customer.tier)} customers go to a person.")
    if case.stakes_score > ai_agent.max_stakes:
        return Permission.deny(f"Case stakes {case.stakes_score} is above this AI agent's {ai_agent.max_stakes}.")
    if ai_agent.hand_off_negative_sentiment:
        sentiment = sentiment_of(customer_message(case))
        if sentiment is not None and sentiment.negative:
            return Permission.deny(f"The customer's message reads negative (compound {sentiment.compound:.2f}).")
    return ALLOWED
