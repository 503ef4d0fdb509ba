"""Who may reverse an executed decision: one predicate, asked by the service and by every page."""

from __future__ import annotations

from h2h_core.access import Permission, is_manager, managed_team_ids
from h2h_core.errors import AlreadyDecided


def may_reverse(actor, decision) -> Permission:
    """Return whether `actor` may reverse `decision` now, and why not.

    A manager of the case's team (or a superuser) reverses a decision; never the one who decided
    it (nobody undoes their own decision: a second person looks at it), and only once. Reads
    `decision.case` and `decision.reversed_by`: load them with the decision.
    """
    if not getattr(actor, "is_authenticated", False):
        return Permission.deny("Sign in to reverse a decision.")
    if decision.reversed_at is not None:
        by = f" by {decision.reversed_by.get_username()}" if decision.reversed_by_id else ""
        return Permission.deny(f"This decision was already reversed{by} on {decision.reversed_at:%d %b %Y %H:%M} "
                               f"UTC: {decision.reversal_reason}", AlreadyDecided)
    if decision.agent_id == actor.pk:
        return Permission.deny("Nobody reverses their own decision: a manager of the case's team does.")
    if actor.is_superuser:
        return Permission.allow()
    if not is_manager(actor) or decision.case.team_id not in managed_team_ids(actor):
        return Permission.deny("Only a manager of the case's team may reverse a decision on it.")
    return Permission.allow()
