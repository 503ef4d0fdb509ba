"""Who may act on a case's workflow tasks: viewflow's node hooks ask the case rules of the policy.

Viewflow asks these through its node hooks (can_assign, can_unassign, can_execute); the workflow
services ask viewflow in turn, because a transition called from code checks nothing by itself.
The case services enforce the very same predicates under the case's row lock.
"""

from __future__ import annotations

from h2h_core.access import may_act_as_owner, may_claim, may_hand_over, may_reopen

may_resolve = may_act_as_owner

__all__ = ["may_claim", "may_hand_over", "may_reopen", "may_resolve"]
