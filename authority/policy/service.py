"""Evaluate a question against the database: load inputs in a few queries, then resolve.

`evaluate` answers for one agent; `evaluate_many` answers the same question for several agents
(the candidate approvers of a request) in a fixed number of queries, through the same resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from authority import selectors
from authority.models import AuthorityKind
from authority.quantities import parse_amount
from h2h_core.models import Case
from h2h_core.organisation import current_organisation

from .evaluation import Question, counters_foreseen, counters_needed, currencies_needed, needs_lapsed_grant, resolve
from .verdict import Verdict

EARLIEST_YEAR = 2000
LATEST_YEAR = 2100


def validate_instant(at: datetime | None) -> datetime:
    """Return `at` (default now) if it is an aware instant within the supported years."""
    if at is None:
        return timezone.now()
    if not isinstance(at, datetime):
        raise ValidationError({"at": "Give a date and time."})
    if timezone.is_naive(at):
        raise ValidationError({"at": "Give the time zone of the instant."})
    if not EARLIEST_YEAR <= at.year <= LATEST_YEAR:
        raise ValidationError({"at": f"The instant must lie between {EARLIEST_YEAR} and {LATEST_YEAR}."})
    return at


def evaluate(
    *,
    agent,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    case: Case,
    at: datetime | None = None,
    with_approvers: bool = True,
    shadow: bool = False,
) -> Verdict:
    """Answer "may `agent` decide `kind` of `amount` on `case` at `at` (default now)?".

    With `shadow`, the agent's shadow grants speak as if they were live: the answer is what the
    agent would have been allowed, had they been promoted (it names no approvers).

    Queries: the grants, with the usage counters they most likely need (1: counters_foreseen);
    other counters a grant needs (1, only for a grant in another currency or a one-off grant);
    exchange rates (1, only when the deciding grant or a one-off grant of the case is in another
    currency); the grant that lapsed last (1, only when nothing of the kind is in force). History
    never adds a query: usage is kept in counters. Pass `case` with its customer loaded
    (select_related) to keep it that way.

    A refusal an approval can lift (anything but a suspension) also names the approver pool
    (approvals.approver_pool, a fixed handful of queries) unless `with_approvers` is False.
    """
    amount = parse_amount(amount, kind=kind, currency=currency)
    at = validate_instant(at)
    foreseen = _counters_foreseen(agent_id=agent.pk, kind=kind, case_id=case.pk, currency=currency, at=at)
    grants, used = selectors.question_grants_and_usage(agent_id=agent.pk, kind_id=kind.pk, case_id=case.pk, at=at,
                                                       counters=foreseen, shadow=shadow)
    return _evaluated(agent=agent, kind=kind, amount=amount, currency=currency, case=case, at=at, grants=grants,
                      foreseen=Foreseen(keys=foreseen, used=used), with_approvers=with_approvers, shadow=shadow)


def evaluate_visible(*, agent, case_id: int, kind: AuthorityKind, amount, currency: str | None = None,
                     related: tuple[str, ...] = ("customer", "owner")) -> Verdict | None:
    """The authority check: `evaluate` now on case `case_id`, read as `agent` sees it (with `related`:
    at least its customer, and its owner for a refusal to name), or None if they may not see it
    (case_visible_to), evaluating nothing.

    The case, the agent's grants and the counters they most likely need are read by one statement
    where the visibility read is prepared (every viewer but a manager): one round trip, not three.
    """
    at = timezone.now()
    foreseen = _counters_foreseen(agent_id=agent.pk, kind=kind, case_id=case_id, currency=currency, at=at)
    case, grants, used = selectors.visible_case_and_question_inputs(user=agent, case_id=case_id, kind_id=kind.pk,
                                                                    at=at, counters=foreseen, related=related)
    if case is None:
        return None
    amount = parse_amount(amount, kind=kind, currency=currency)
    return _evaluated(agent=agent, kind=kind, amount=amount, currency=currency, case=case, at=at, grants=grants,
                      foreseen=Foreseen(keys=foreseen, used=used), with_approvers=True, shadow=False)


@dataclass(frozen=True)
class Foreseen:
    """Counters read before the grants were known (`keys`), and what those of them that exist have used."""

    keys: list[str]
    used: dict[str, Decimal]


def _counters_foreseen(*, agent_id: int, kind: AuthorityKind, case_id: int, currency: str | None,
                       at: datetime) -> list[str]:
    return counters_foreseen(agent_id=agent_id, kind_code=kind.code, case_id=case_id, currency=currency or "",
                             at=at, tz=current_organisation().tz)


def _evaluated(*, agent, kind: AuthorityKind, amount, currency: str | None, case: Case, at: datetime,
               grants: list, foreseen: Foreseen, with_approvers: bool, shadow: bool) -> Verdict:
    """The verdict on a parsed question, given the grants that could speak for the agent (in id order) and
    the counters read with them; the counters it needs beyond those are read here."""
    question = _question(agent_id=agent.pk, kind=kind, amount=amount, currency=currency, case=case, at=at,
                         agent_name=agent.get_username())
    needed = counters_needed(question, grants)
    asked = set(foreseen.keys)
    used = {key: foreseen.used[key] for key in needed if key in foreseen.used}
    used.update(selectors.usage_for_keys([key for key in needed if key not in asked]))
    rates = selectors.latest_rates(
        from_currency=question.currency,
        to_currencies=currencies_needed(question, grants),
        on=at.astimezone(question.tz).date(),
    )
    lapsed = None
    if needs_lapsed_grant(question, grants):
        lapsed = selectors.grant_lapsed_for_agent(agent=agent, kind_id=kind.pk, at=at)
    verdict = resolve(question, grants, used, rates, lapsed=lapsed)
    if with_approvers and not shadow and not verdict.allowed and not verdict.suspended:
        from .approvals import approver_pool, with_pool

        pool = approver_pool(requester=agent, case=case, kind=kind, amount=amount, currency=currency, at=at)
        verdict = with_pool(verdict, pool)
    return verdict


def evaluate_many(
    *,
    agents: Iterable,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    case: Case,
    at: datetime | None = None,
) -> dict[int, Verdict]:
    """Return {agent id: verdict} for one question asked of several agents, names no approvers.

    Queries, whatever the number of agents: team memberships (1), roles (1), grants (1), usage
    counters (1) and exchange rates (1, only when needed). The lapsed-grant explanation is left out:
    a candidate approver's refusal needs no more than its headroom.
    """
    agents = list(agents)
    if not agents:
        return {}
    amount = parse_amount(amount, kind=kind, currency=currency)
    at = validate_instant(at)
    grants_of = selectors.grants_applicable_to_agents(agent_ids=[a.pk for a in agents], kind_id=kind.pk,
                                                      case_id=case.pk, at=at)
    questions = {a.pk: _question(agent_id=a.pk, kind=kind, amount=amount, currency=currency, case=case, at=at)
                 for a in agents}
    keys, currencies = set(), set()
    for agent_id, question in questions.items():
        keys.update(counters_needed(question, grants_of[agent_id]))
        currencies |= currencies_needed(question, grants_of[agent_id])
    used = selectors.usage_for_keys(sorted(keys))
    any_question = next(iter(questions.values()))
    rates = selectors.latest_rates(from_currency=any_question.currency, to_currencies=currencies,
                                   on=at.astimezone(any_question.tz).date())
    return {agent_id: resolve(question, grants_of[agent_id], used, rates) for agent_id, question in questions.items()}


def _question(*, agent_id: int, kind: AuthorityKind, amount, currency: str | None, case: Case,
              at: datetime, agent_name: str = "") -> Question:
    # The owner's name for a refusal's reason, without a query: from the case when loaded with it,
    # else the agent's own when they are the owner.
    owner_name = (case.owner.get_username() if case.owner_id and Case.owner.is_cached(case)
                  else agent_name if case.owner_id == agent_id else "")
    return Question(
        agent_id=agent_id,
        kind_code=kind.code,
        kind_name=kind.name,
        unit=kind.unit,
        amount=amount,
        currency=currency or "",
        case_id=case.pk,
        case_reference=case.reference,
        case_category=case.category,
        customer_tier=case.customer.tier,
        at=at,
        tz=current_organisation().tz,
        case_owner_id=case.owner_id,
        case_owner_name=owner_name,
    )
