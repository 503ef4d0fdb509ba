"""Evaluate a question against the database: load inputs in at most four queries, then resolve."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from authority import selectors
from authority.models import AuthorityKind
from authority.quantities import parse_amount
from h2h_core.models import Case
from h2h_core.organisation import current_organisation

from .evaluation import Question, counters_needed, currencies_needed, resolve
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
) -> Verdict:
    """Answer "may `agent` decide `kind` of `amount` on `case` at `at` (default now)?".

    Queries: grants (1), usage counters (1), exchange rates (1, only when the deciding grant or a
    one-off grant of the case is in another currency) and the approver pool (1, only when refused).
    History never adds a query: usage is kept in counters. Pass `case` with its customer loaded
    (select_related) to keep it that way.
    """
    amount = parse_amount(amount, kind=kind, currency=currency)
    at = validate_instant(at)
    organisation = current_organisation()
    tz = organisation.tz
    question = Question(
        agent_id=agent.pk,
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
        tz=tz,
    )
    grants = list(selectors.grants_applicable_to_agent(agent=agent, kind_id=kind.pk, case_id=case.pk, at=at))
    used = selectors.usage_for_keys(counters_needed(question, grants))
    rates = selectors.latest_rates(
        from_currency=question.currency,
        to_currencies=currencies_needed(question, grants),
        on=at.astimezone(tz).date(),
    )
    verdict = resolve(question, grants, used, rates)
    if not verdict.allowed and not verdict.suspended:
        verdict = dataclasses.replace(verdict, approvers=selectors.team_manager_usernames(agent=agent))
    return verdict
