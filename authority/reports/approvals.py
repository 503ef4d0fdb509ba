"""The approvals inbox: the requests a person may decide, how far over they are, and the approver's own headroom."""


from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import (
    CharField,
    Q,
    QuerySet,
)
from django.db.models.functions import Cast
from django.utils import timezone

from authority import selectors
from authority.models import (
    AuthorityRequest,
    RequestStatus,
)
from authority.policy import managed_team_ids as policy_managed_team_ids
from authority.policy.evaluation import Question, counters_needed, currencies_needed, resolve
from authority.services.oversight import delegations_in_force
from h2h_core.models import Team
from h2h_core.organisation import current_organisation

User = get_user_model()


# --- the approvals inbox ----------------------------------------------------------------------


def inbox_for(user) -> QuerySet[AuthorityRequest]:
    """Open requests `user` may decide: those in whose pool they are, and, while a manager of the
    case's team hands them their approval rights, that team's requests (authority.services.oversight).
    The queryset form of authority.policy.may_reject (which the page still asks for each button): a
    delegate in a pool whose delegation has ended no longer sees the request.
    """
    in_pool = selectors.requests_for_approver(user).values("pk")
    delegators = delegations_in_force(at=timezone.now()).filter(delegate_id=user.pk).values("manager_id")
    delegated_teams = User.objects.filter(
        pk__in=delegators, userobjectpermission__permission__codename="manage_team",
    ).values("userobjectpermission__object_pk")
    delegated = Q(pool_is_fallback=False, case__team_id__in=Team.objects.annotate(
        pk_text=Cast("pk", output_field=CharField())).filter(pk_text__in=delegated_teams).values("pk"))
    own_right = Q(pool_is_fallback=True) | Q(case__team_id__in=policy_managed_team_ids(user))
    return (
        AuthorityRequest.objects.filter(status=RequestStatus.OPEN)
        .filter((Q(pk__in=in_pool) & own_right) | delegated)
        .exclude(requester_id=user.pk)
        .select_related("case__customer", "case__team", "case__owner", "requester", "kind")
        .order_by("created_at", "id")
    )


def over_by(request: AuthorityRequest) -> dict:
    """How far the request is over the requester's headroom, from the verdict stored with it."""
    verdict = request.verdict or {}
    currency = verdict.get("counted_currency") or request.currency
    needs = Decimal(str(verdict.get("counted_amount") or request.amount))
    lefts = [Decimal(str(verdict[key])) for key in ("per_case_headroom", "period_headroom")
             if verdict.get(key) not in (None, "")]
    left = min(lefts) if lefts else Decimal(0)
    return {"needs": needs, "left": left, "over": max(needs - left, Decimal(0)), "currency": currency,
            "no_authority": not verdict.get("deciding_grants")}


def approver_verdicts(approver, requests: list[AuthorityRequest], *, at: datetime | None = None) -> dict:
    """Return {request id: the approver's own verdict for its amount}, without per-request queries.

    The same resolution as policy.evaluate, with its inputs loaded once for every request: grants
    (1), usage counters (1), and exchange rates (1 per currency asked in, only when conversion is
    needed). Requests must come with case__customer and kind loaded.
    """
    at = at or timezone.now()
    tz = current_organisation().tz
    if not requests:
        return {}
    grants = list(selectors.grants_applicable_to_agent(agent=approver, kind_id=None, case_id=None, at=at))
    questions = {}
    for request in requests:
        kind = request.kind
        questions[request.pk] = Question(
            agent_id=approver.pk, kind_code=kind.code, kind_name=kind.name, unit=kind.unit, amount=request.amount,
            currency=request.currency, case_id=request.case_id, case_reference=request.case.reference,
            case_category=request.case.category, customer_tier=request.case.customer.tier, at=at, tz=tz,
        )
    of_kind = {pk: [g for g in grants if g.kind_id == request.kind_id]
               for pk, request in ((r.pk, r) for r in requests)}
    keys = sorted({key for pk, question in questions.items() for key in counters_needed(question, of_kind[pk])})
    used = selectors.usage_for_keys(keys)
    targets: dict[str, set[str]] = defaultdict(set)
    for pk, question in questions.items():
        targets[question.currency] |= currencies_needed(question, of_kind[pk])
    rates = {currency: selectors.latest_rates(from_currency=currency, to_currencies=wanted, on=at.astimezone(tz).date())
             for currency, wanted in targets.items() if wanted}
    return {pk: resolve(question, of_kind[pk], used, rates.get(question.currency, {}))
            for pk, question in questions.items()}

