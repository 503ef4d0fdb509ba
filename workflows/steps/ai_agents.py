"""Suspending an AI agent hands its open cases to people.

The suspension commits first (`h2h_core.ai_agents.ai_agent_suspend`): from that instant the AI agent
cannot act and its tokens open nothing. Then each open case it owns is handed off in its own step
(`case_flow_hand_off`, reason "suspended", by the manager on the AI's behalf), so one case that
cannot move (a lock held too long, a refusal) never keeps the others, nor the suspension, from
happening. What could not be handed off is returned with its reason, and
`ai_agent_flow_hand_off_cases` tries again.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import OperationalError

from h2h_core.access import ALLOWED, Permission
from h2h_core.ai_agents import ai_agent_suspend, may_manage_ai_agents
from h2h_core.errors import DomainError
from h2h_core.models import AiAgent, Case, HandOff, HandOffReason
from h2h_core.models.cases import OPEN_STATUSES

from .hand_offs import case_flow_hand_off


@dataclass(frozen=True)
class CasesHandedOff:
    """What a suspension did with the AI agent's open cases."""

    ai_agent: AiAgent
    hand_offs: tuple[HandOff, ...] = ()
    # (case, why it stayed with the AI agent) for each case that could not be handed off.
    left: tuple[tuple[Case, str], ...] = ()


def open_cases_of(ai_agent: AiAgent):
    """The open cases the AI agent owns, in key order."""
    return Case.objects.filter(owner_id=ai_agent.user_id, status__in=OPEN_STATUSES).order_by("pk")


def may_hand_off_cases_of(actor, ai_agent: AiAgent) -> Permission:
    """A manager of the AI agent's team hands its cases to people once it is suspended."""
    allowed = may_manage_ai_agents(actor, ai_agent.team)
    if not allowed:
        return allowed
    if not ai_agent.is_suspended:
        return Permission.deny(f"{ai_agent.user.get_username()} is not suspended: it hands off its own cases.")
    return ALLOWED


def ai_agent_flow_suspend(*, actor, ai_agent: AiAgent, reason: str) -> CasesHandedOff:
    """Suspend the AI agent, then hand each open case it owns to a person, with the reason."""
    ai_agent = ai_agent_suspend(actor=actor, ai_agent=ai_agent, reason=reason)
    return _hand_off_open_cases(actor=actor, ai_agent=ai_agent)


def ai_agent_flow_hand_off_cases(*, actor, ai_agent: AiAgent) -> CasesHandedOff:
    """Hand the open cases a suspended AI agent still owns to people (after a suspension left some)."""
    ai_agent = AiAgent.objects.select_related("user", "team").get(pk=ai_agent.pk)
    may_hand_off_cases_of(actor, ai_agent).require()
    return _hand_off_open_cases(actor=actor, ai_agent=ai_agent)


def _hand_off_open_cases(*, actor, ai_agent: AiAgent) -> CasesHandedOff:
    ai_user = ai_agent.user
    by = actor.get_username() if actor is not None else "the system"
    reason_text = (f"AI agent {ai_user.get_username()} was suspended by {by}: {ai_agent.suspension_reason}"
                   if ai_agent.suspension_reason else f"AI agent {ai_user.get_username()} was suspended.")
    hand_offs, left = [], []
    for case in open_cases_of(ai_agent):
        try:
            hand_offs.append(case_flow_hand_off(
                actor=ai_user, case=case, reason=HandOffReason.SUSPENDED, reason_text=reason_text, summary="",
                transcript=[], attempts=[], idempotency_key=None, by=actor))
        except (DomainError, ValidationError) as error:
            message = error.message if isinstance(error, DomainError) else " ".join(error.messages)
            left.append((case, message))
        except OperationalError:  # the case was busy past the lock timeout: its step rolled back whole
            left.append((case, "the case was busy; hand its cases off again in a moment."))
    return CasesHandedOff(ai_agent=ai_agent, hand_offs=tuple(hand_offs), left=tuple(left))
