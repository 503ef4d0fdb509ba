"""Accept a limit recommendation: an ordinary maker-checker grant change that carries its evidence."""

from __future__ import annotations

from dataclasses import replace

from django.utils import timezone

from authority.models import AuthorityKind, Grant
from authority.policy.grants import may_grant
from authority.policy.permissions import console_teams
from authority.reports.recommendations import Recommendation, recommendations
from h2h_core.audit.refusals import audits_refusals
from h2h_core.errors import DomainError, StaleView

from .grants import GrantTerms, grant_change, grant_create


class NoRecommendation(DomainError):
    code = "no_recommendation"


def recommendation_for(*, actor, agent, kind: AuthorityKind) -> Recommendation | None:
    """Recompute the recommendation for `agent` and `kind` as `actor`'s console shows it (their teams)."""
    report = recommendations(teams=console_teams(actor), manager=actor, agent_ids=[agent.pk], kind_id=kind.pk)
    return next((row for row in report.rows if row.action), None)


def _agent_of(kwargs: dict):
    return kwargs.get("agent")


@audits_refusals("recommendation.accept", object_type="user", object_from=_agent_of)
def recommendation_accept(*, actor, agent, kind: AuthorityKind, expected: str | None = None,
                          idempotency_key: str | None = None) -> Grant:
    """Turn the recommendation for `agent` and `kind` into a grant change, with the evidence as its reason.

    The recommendation is recomputed here from the evidence (never taken from a form); `expected`,
    the proposal the page showed (`Recommendation.proposal_key`), refuses the change when the
    evidence moved meanwhile. The deciding grant, when it is the agent's own, gets a new version
    (grant_change); when their authority comes from a team or a role grant, a personal grant with
    the same terms and the new limits is created (grant_create). Either way the grant services
    apply maker-checker unchanged (a change above the kind's threshold waits for a second manager)
    and audit it. Refused, with nothing changed, when `actor` may not set `agent`'s authority.
    """
    may_grant(actor, user=agent).require()
    rec = recommendation_for(actor=actor, agent=agent, kind=kind)
    if rec is None:
        raise NoRecommendation(f"No change of {agent.get_username()}'s {kind.name.lower()} limits is recommended "
                               "now: nothing changed.")
    if expected is not None and expected != rec.proposal_key:
        raise StaleView(f"The evidence changed since the page was shown: it now suggests "
                        f"{rec.action} to {rec.proposal_text}. Review it again; nothing changed.")
    grant = rec.grant
    terms = GrantTerms(
        effect=grant.effect, per_case_limit=rec.per_case_limit, period_limit=rec.period_limit, period=grant.period,
        currency=grant.currency, scope_categories=tuple(grant.scope_categories),
        scope_tiers=tuple(grant.scope_tiers), valid_until=grant.valid_until,
    )
    if grant.subject_user_id == agent.pk:
        return grant_change(actor=actor, grant=grant, terms=replace(terms, valid_from=grant.valid_from),
                            reason=rec.reason, idempotency_key=idempotency_key)
    return grant_create(actor=actor, kind=kind, user=agent, terms=replace(terms, valid_from=timezone.now()),
                        reason=rec.reason, idempotency_key=idempotency_key)
