"""Who receives a case an AI agent hands off: a person of the case's team, chosen by one rule.

The candidates are the active people (agents and senior agents, never an AI agent) of the case's
team other than its owner: exactly those `h2h_core.hand_offs.may_receive_hand_off` lets receive
it, read as one queryset. Among them, when the pending decision is known (kind and amount), those
whose own authority covers it come first (authority.policy.evaluate_many: a fixed number of
queries whatever the team's size), then those with the fewest open cases, then by username.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from authority.models import AuthorityKind
from authority.policy import evaluate_many
from h2h_core.models import AiAgent, Case, Role
from h2h_core.models.cases import OPEN_STATUSES

User = get_user_model()


def hand_off_candidates(case: Case) -> QuerySet:
    """The people who may receive `case` from an AI agent, each with `open_cases` (one query)."""
    if not case.team_id:
        return User.objects.none()
    people = (
        User.objects.filter(teams=case.team_id, is_active=True)
        .filter(Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"),
                                                          group__name__in=[Role.AGENT, Role.SENIOR_AGENT])))
        .exclude(Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name=Role.AI_AGENT)))
        .exclude(Exists(AiAgent.objects.filter(user_id=OuterRef("pk"))))
    )
    if case.owner_id:
        people = people.exclude(pk=case.owner_id)
    return people.annotate(
        open_cases=Count("owned_cases", filter=Q(owned_cases__status__in=OPEN_STATUSES), distinct=True)
    ).order_by("username")


def hand_off_receiver(*, case: Case, kind=None, amount=None, currency: str | None = None):
    """Return the person to hand `case` to, or None when its team has nobody (it then waits in the queue).

    `kind` (an AuthorityKind or its code) and `amount` describe the decision the AI agent could not
    take; with both, a person whose own authority covers it is preferred. Queries: the candidates
    (1), and with a decision the kind (1 when given by code) plus evaluate_many's fixed handful.
    """
    candidates = list(hand_off_candidates(case))
    if not candidates:
        return None
    covers: set[int] = set()
    if kind is not None and amount is not None:
        if not isinstance(kind, AuthorityKind):
            code, kind = kind, AuthorityKind.objects.filter(code=kind).first()
            if kind is None:
                raise ValidationError({"kind": f"Unknown authority kind {code!r}."})
        if not Case.customer.is_cached(case):
            case = Case.objects.select_related("customer").get(pk=case.pk)
        verdicts = evaluate_many(agents=candidates, kind=kind, amount=amount, currency=currency, case=case)
        covers = {agent_id for agent_id, verdict in verdicts.items() if verdict.allowed}
    return min(candidates, key=lambda person: (person.pk not in covers, person.open_cases, person.username))
