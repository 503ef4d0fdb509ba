"""Pure resolution of authority: grants, usage and rates in, a Verdict out. No I/O here.

Rules (DESIGN.md 1, 2, 3, 5):
- deny by default: without an applicable permit nothing is allowed;
- a suspension (forbid grant) at any level forbids, one-off grants included;
- a one-off grant (an approval) covers a decision on its own case only when the decision is exactly
  what was approved: the same kind, currency and amount, not yet used, and the case still owned by
  the agent who owned it at approval (`bound_owner`); otherwise it covers nothing, and a refusal
  says which of these changed;
- otherwise the most specific level with a permit decides: person over team over role. Within a
  level the grant in the decision's currency is preferred, then the higher per-case limit, then
  the higher period limit, then the oldest grant;
- the amount, converted to the deciding grant's currency with the latest dated rate and rounded
  up, must fit both the per-case headroom (everything of the kind decided on the case, whoever
  decided it) and the agent's period headroom.

A refusal says precisely why: the category or tier outside a grant's scope, how much over which
limit, or which grant expired (the service loads the latest lapsed grant only when nothing is in
force). Who could approve more is not decided here: see approvals.approver_pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from authority import periods, usage
from authority.models import Effect, Grant, Period
from authority.quantities import convert, format_quantity
from h2h_core.models import CaseCategory, CustomerTier

from .verdict import Consumption, GrantRef, Verdict

LEVEL_ORDER = ("person", "team", "role")
_INFINITY = Decimal("Infinity")
PERIOD_CAP_NAME = {Period.DAY: "daily", Period.WEEK: "weekly", Period.MONTH: "monthly", Period.QUARTER: "quarterly"}


@dataclass(frozen=True)
class Question:
    agent_id: int
    kind_code: str
    kind_name: str
    unit: str
    amount: Decimal
    currency: str
    case_id: int
    case_reference: str
    case_category: str
    customer_tier: str
    at: datetime
    tz: ZoneInfo
    # The case's owner now (an approval is bound to the owner it was given to), and their name when known.
    case_owner_id: int | None = None
    case_owner_name: str = ""


def grant_ref(grant: Grant) -> GrantRef:
    return GrantRef(
        id=grant.pk,
        lineage=grant.lineage or grant.pk,
        version=grant.version,
        level=grant.level,
        effect=grant.effect,
        subject=grant.subject_label,
    )


def in_scope(grant: Grant, question: Question) -> bool:
    if grant.case_id is not None and grant.case_id != question.case_id:
        return False
    if grant.scope_categories and question.case_category not in grant.scope_categories:
        return False
    return not (grant.scope_tiers and question.customer_tier not in grant.scope_tiers)


def counters_needed(question: Question, grants: Iterable[Grant]) -> list[str]:
    """Return the usage counter keys a resolution over these grants will read."""
    keys: set[str] = set()
    for grant in grants:
        if grant.effect != Effect.PERMIT:
            continue
        if grant.case_id is not None:
            keys.add(usage.one_off_key(grant_id=grant.pk))
            continue
        keys.add(usage.case_key(case_id=question.case_id, kind_code=question.kind_code, currency=grant.currency))
        start = periods.bucket_start(grant.period, question.at, question.tz)
        if start is not None:
            keys.add(
                usage.period_key(
                    agent_id=question.agent_id,
                    kind_code=question.kind_code,
                    currency=grant.currency,
                    period=grant.period,
                    start=start,
                )
            )
    return sorted(keys)


def counters_foreseen(*, agent_id: int, kind_code: str, case_id: int, currency: str, at: datetime,
                      tz: ZoneInfo) -> list[str]:
    """The counters a resolution reads when the agent's grants are kept in `currency`, as most are:
    the case's counter and the agent's bucket now of every period, named before the grants are read.

    Only so that the counters can be read in the statement that reads the grants. What a resolution
    reads is still counters_needed's answer once the grants are known; a key it needs that is not
    foreseen here (a grant in another currency, a one-off grant) is read after.
    """
    keys = [usage.case_key(case_id=case_id, kind_code=kind_code, currency=currency)]
    for period in PERIOD_CAP_NAME:  # every period with buckets
        keys.append(usage.period_key(agent_id=agent_id, kind_code=kind_code, currency=currency, period=period,
                                     start=periods.bucket_start(period, at, tz)))
    return sorted(keys)


def _generosity(grant: Grant, currency: str) -> tuple:
    return (
        grant.currency == currency,
        grant.per_case_limit if grant.per_case_limit is not None else _INFINITY,
        grant.period_limit if grant.period_limit is not None else _INFINITY,
        -grant.pk,
    )


def needs_lapsed_grant(question: Question, grants: Iterable[Grant]) -> bool:
    """True when nothing of the kind is in force for the agent (in any scope): only then is the
    grant that lapsed last worth a query, to name it instead of saying "no grant"."""
    return not any(grant.case_id is None for grant in grants)


def choose_deciding_grant(question: Question, permits: list[Grant]) -> Grant | None:
    """The permit that decides a question: the most specific level, then the most generous grant."""
    for level in LEVEL_ORDER:
        at_level = [grant for grant in permits if grant.level == level]
        if at_level:
            return max(at_level, key=lambda grant: _generosity(grant, question.currency))
    return None


def standing_grant(permits: list[Grant]) -> Grant | None:
    """The permit that speaks for an agent outside any one case (what "my authority" and the people
    page show): as `choose_deciding_grant`, preferring at each level a grant without a scope."""
    for level in LEVEL_ORDER:
        at_level = [grant for grant in permits if grant.level == level]
        unscoped = [grant for grant in at_level if not grant.scope_categories and not grant.scope_tiers]
        if at_level:
            return max(unscoped or at_level, key=lambda grant: _generosity(grant, ""))
    return None


def currencies_needed(question: Question, grants: Iterable[Grant]) -> set[str]:
    """Return the currencies a resolution may convert into: those of the grants that can speak.

    Only the deciding grant can need a rate (none under a suspension; a one-off grant covers only
    its own currency), so grants in other currencies elsewhere never cost a rate query.
    """
    applicable = [grant for grant in grants if in_scope(grant, question)]
    if not question.currency or any(grant.effect == Effect.FORBID for grant in applicable):
        return set()
    permits = [grant for grant in applicable if grant.effect == Effect.PERMIT]
    deciding = choose_deciding_grant(question, [grant for grant in permits if grant.case_id is None])
    if deciding is None or not deciding.currency or deciding.currency == question.currency:
        return set()
    return {deciding.currency}


def resolve(
    question: Question,
    grants: Iterable[Grant],
    used: Mapping[str, Decimal],
    rates: Mapping[str, tuple[Decimal, date]],
    lapsed: Grant | None = None,
) -> Verdict:
    """Decide. `rates` maps a target currency to (rate from the question's currency, rate date);
    `lapsed` is the agent's grant of the kind that lapsed last, when nothing of the kind is in force."""
    grants = list(grants)
    applicable = [grant for grant in grants if in_scope(grant, question)]
    fmt = _formatter(question)
    base = {
        "kind": question.kind_code,
        "unit": question.unit,
        "amount": question.amount,
        "currency": question.currency,
        "evaluated_at": question.at,
    }

    forbids = [grant for grant in applicable if grant.effect == Effect.FORBID]
    if forbids:
        reasons = [
            f"Suspended: {grant.subject_label} may not decide {question.kind_name.lower()} "
            f"(grant {grant.label}{': ' + grant.reason if grant.reason else ''})."
            for grant in sorted(forbids, key=lambda g: g.pk)
        ]
        return Verdict(
            allowed=False,
            reasons=reasons,
            deciding_grants=[grant_ref(g) for g in forbids],
            level=forbids[0].level,
            suspended=True,
            **base,
        )

    permits = [grant for grant in applicable if grant.effect == Effect.PERMIT]
    # Why each approval of the case does not cover this decision: said first in a refusal.
    not_covered = []
    for grant in sorted((g for g in permits if g.case_id is not None), key=lambda g: g.pk):
        mismatch = _one_off_mismatch(question, grant, used, fmt)
        if mismatch is None:
            return _one_off_verdict(question, grant, base, fmt)
        not_covered.append(mismatch)

    grant = choose_deciding_grant(question, [g for g in permits if g.case_id is None])
    if grant is None:
        return Verdict(allowed=False, reasons=not_covered + _no_grant_reasons(question, grants, lapsed), **base)

    counted = _counted_amount(question, grant, rates)
    if counted is None:
        return Verdict(
            allowed=False,
            reasons=[*not_covered, f"No exchange rate from {question.currency} to {grant.currency} on or before "
                     f"{question.at.astimezone(question.tz).date():%d %b %Y}."],
            deciding_grants=[grant_ref(grant)],
            level=grant.level,
            **base,
        )
    amount, rate, rate_date = counted
    case_k = usage.case_key(case_id=question.case_id, kind_code=question.kind_code, currency=grant.currency)
    case_used = used.get(case_k, Decimal(0))
    case_left = None if grant.per_case_limit is None else max(grant.per_case_limit - case_used, Decimal(0))
    start = periods.bucket_start(grant.period, question.at, question.tz)
    period_used = period_left = resets = None
    consumptions = [Consumption(key=case_k, scope="case", amount=amount, cap=grant.per_case_limit,
                                currency=grant.currency)]
    if start is not None:
        period_k = usage.period_key(agent_id=question.agent_id, kind_code=question.kind_code,
                                    currency=grant.currency, period=grant.period, start=start)
        period_used = used.get(period_k, Decimal(0))
        if grant.period_limit is not None:
            period_left = max(grant.period_limit - period_used, Decimal(0))
        resets = periods.resets_at(grant.period, question.at, question.tz)
        consumptions.append(Consumption(key=period_k, scope="period", amount=amount, cap=grant.period_limit,
                                        currency=grant.currency, period=grant.period, bucket_start=start))

    within_case = case_left is None or amount <= case_left
    within_period = period_left is None or amount <= period_left
    allowed = within_case and within_period
    reasons = _headroom_reasons(question, grant, amount, case_left, period_left, resets, within_case,
                                within_period, fmt)
    if not allowed:
        reasons[:0] = not_covered
    if rate is not None:
        reasons.append(f"Converted {fmt(question.amount, question.currency)} to {fmt(amount, grant.currency)} "
                       f"at {rate} ({rate_date:%d %b %Y} rate, rounded up).")
    return Verdict(
        allowed=allowed,
        reasons=reasons,
        deciding_grants=[grant_ref(grant)],
        level=grant.level,
        counted_amount=amount,
        counted_currency=grant.currency,
        rate=rate,
        rate_date=rate_date,
        per_case_limit=grant.per_case_limit,
        per_case_used=case_used,
        per_case_headroom=case_left,
        period=grant.period,
        period_limit=grant.period_limit,
        period_used=period_used,
        period_headroom=period_left,
        period_resets_at=resets,
        consumptions=consumptions if allowed else [],
        **base,
    )


def _formatter(question: Question):
    def fmt(value: Decimal | None, currency: str = "") -> str:
        return format_quantity(value, unit=question.unit, currency=currency)

    return fmt


def _counted_amount(question: Question, grant: Grant, rates) -> tuple[Decimal, Decimal | None, date | None] | None:
    if not grant.currency or grant.currency == question.currency:
        return question.amount, None, None
    if grant.currency not in rates:
        return None
    rate, rate_date = rates[grant.currency]
    return convert(question.amount, rate=rate, to_currency=grant.currency), rate, rate_date


def _one_off_mismatch(question: Question, grant: Grant, used: Mapping[str, Decimal], fmt) -> str | None:
    """Say why an approval (one-off grant) does not cover this decision, or None when it does.

    It covers exactly what was approved: the amount in the currency approved (never less, never
    converted), once, on its case, while the owner it was approved for still owns the case. The
    selector gives only grants of the question's kind.
    """
    approved = fmt(grant.per_case_limit, grant.currency)
    approval = f"The approval of {approved} on {question.case_reference}"
    if grant.per_case_limit is None:
        return f"{approval} names no amount: it covers nothing."
    if grant.bound_owner_id is not None and grant.bound_owner_id != question.case_owner_id:
        then = grant.bound_owner.get_username() if Grant.bound_owner.is_cached(grant) else "another agent"
        now = (f"{question.case_owner_name} owns it now" if question.case_owner_name
               else "it has changed hands since" if question.case_owner_id else "nobody owns it now")
        return f"The approval was given while {then} owned the case; {now}: it is void."
    if used.get(usage.one_off_key(grant_id=grant.pk), Decimal(0)) > 0:
        return f"{approval} was already used: an approval covers one decision."
    if grant.currency != question.currency:
        return (f"{approval} covers exactly that amount in {grant.currency or 'its unit'}; this decision is in "
                f"{question.currency or 'no currency'}.")
    if question.amount != grant.per_case_limit:
        return f"{approval} covers exactly that amount; this decision is {fmt(question.amount, question.currency)}."
    return None


def _one_off_verdict(question: Question, grant: Grant, base: dict, fmt) -> Verdict:
    """Allow exactly what the approval covers, consuming all of it (a conditional UPDATE: used once)."""
    amount = grant.per_case_limit
    key = usage.one_off_key(grant_id=grant.pk)
    case_k = usage.case_key(case_id=question.case_id, kind_code=question.kind_code, currency=grant.currency)
    until = f" until {grant.valid_until.astimezone(question.tz):%d %b %Y %H:%M}" if grant.valid_until else ""
    return Verdict(
        allowed=True,
        reasons=[f"Covered by one-off grant {grant.label} for case {question.case_reference}: the approval of "
                 f"exactly {fmt(amount, grant.currency)}, for this decision only{until and ', valid' + until}."],
        deciding_grants=[grant_ref(grant)],
        level="one-off",
        via_one_off=grant.pk,
        counted_amount=amount,
        counted_currency=grant.currency,
        per_case_limit=grant.per_case_limit,
        per_case_used=Decimal(0),
        per_case_headroom=amount,
        consumptions=[
            Consumption(key=key, scope="one_off", amount=amount, cap=grant.per_case_limit,
                        currency=grant.currency, grant_id=grant.pk),
            # The case counter still rises, so later decisions on the case see everything decided.
            Consumption(key=case_k, scope="case", amount=amount, cap=None, currency=grant.currency),
        ],
        **base,
    )


def _headroom_reasons(question, grant, amount, case_left, period_left, resets, within_case, within_period, fmt):
    reasons = []
    cur = grant.currency
    needs = fmt(amount, cur)
    source = f"{grant.level} grant {grant.label}"
    if not within_case:
        reasons.append(f"{fmt(amount - case_left, cur)} over your per-case limit of {fmt(grant.per_case_limit, cur)}: "
                       f"{fmt(case_left, cur)} left on case {question.case_reference}, this needs {needs} ({source}).")
    if not within_period:
        when = periods.PERIOD_ADJECTIVE[Period(grant.period)]
        reset_text = f"; resets {resets.astimezone(question.tz):%d %b %Y %H:%M} {question.tz.key}" if resets else ""
        reasons.append(f"{fmt(amount - period_left, cur)} over your {PERIOD_CAP_NAME[Period(grant.period)]} cap of "
                       f"{fmt(grant.period_limit, cur)}: {fmt(period_left, cur)} left {when}, "
                       f"this needs {needs}{reset_text} ({source}).")
    if within_case and within_period:
        case_text = "no per-case limit" if case_left is None else f"{fmt(case_left, cur)} left on this case"
        if grant.period == Period.NONE:
            period_text = "no period cap"
        elif period_left is None:
            period_text = f"no {grant.get_period_display().lower()} cap"
        else:
            period_text = f"{fmt(period_left, cur)} left {periods.PERIOD_ADJECTIVE[Period(grant.period)]}"
        reasons.append(f"Within your authority: {case_text}, {period_text} ({source}).")
    return reasons


def _no_grant_reasons(question: Question, grants: list[Grant], lapsed: Grant | None) -> list[str]:
    """Say why no permit speaks: the scope that leaves this case out, the grant that lapsed, or none."""
    out_of_scope = [g for g in grants if g.effect == Effect.PERMIT and g.case_id is None and not in_scope(g, question)]
    if out_of_scope:
        ordered = sorted(out_of_scope, key=lambda g: (LEVEL_ORDER.index(g.level), g.pk))
        return [_scope_reason(question, grant) for grant in ordered]
    if lapsed is not None:
        return [_lapsed_reason(question, lapsed)]
    return [f"No grant gives you authority to decide {question.kind_name.lower()} on this case."]


def _whose(question: Question, grant: Grant) -> str:
    kind = question.kind_name.lower()
    if grant.subject_user_id:
        return f"Your {kind} grant"
    if grant.subject_team_id:
        return f"The {grant.subject_team} team's {kind} grant"
    return f"The {grant.subject_role} role's {kind} grant"


def _labels(choices, codes: Iterable[str]) -> str:
    names = sorted(choices(code).label if code in choices.values else str(code) for code in codes)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _scope_reason(question: Question, grant: Grant) -> str:
    """E.g. "Your refund grant covers Billing error and Complaint cases; this case is Renewal (…)."."""
    category = _labels(CaseCategory, [question.case_category])
    tier = _labels(CustomerTier, [question.customer_tier])
    category_out = bool(grant.scope_categories) and question.case_category not in grant.scope_categories
    tier_out = bool(grant.scope_tiers) and question.customer_tier not in grant.scope_tiers
    if category_out and tier_out:
        text = (f"covers {_labels(CaseCategory, grant.scope_categories)} cases of "
                f"{_labels(CustomerTier, grant.scope_tiers)} customers; this case is {category}, "
                f"for a {tier} customer")
    elif category_out:
        text = f"covers {_labels(CaseCategory, grant.scope_categories)} cases; this case is {category}"
    else:
        text = f"covers {_labels(CustomerTier, grant.scope_tiers)} customers; this customer is {tier}"
    return f"{_whose(question, grant)} {text} ({grant.level} grant {grant.label})."


def _lapsed_reason(question: Question, grant: Grant) -> str:
    """E.g. "Your refund grant (version 2) expired on 3 Nov 2026." (or was ended, by a manager)."""
    ended = (grant.superseded_at is not None and grant.superseded_at <= question.at
             and (grant.valid_until is None or grant.superseded_at < grant.valid_until))
    when = (grant.superseded_at if ended else grant.valid_until).astimezone(question.tz)
    what = "was ended" if ended else "expired"
    return (f"{_whose(question, grant)} (version {grant.version}) {what} on {when.day} {when:%b %Y}: "
            f"no grant gives you {question.kind_name.lower()} authority now.")
