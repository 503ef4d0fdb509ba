"""authority.policy: who may decide what (evaluate) and who may do what (permissions).

Everything that answers "may this person…" lives here; views, the API, viewflow and the admin are
thin adapters over it.
"""

from .approvals import (
    Approval,
    ApproverPool,
    ApproverRights,
    approver_pool,
    approver_rights,
    holds_delegation_for_team,
    may_approve,
    may_reject,
    requests_visible_to,
    with_pool,
)
from .evaluation import Question, resolve
from .grants import (
    may_check,
    may_confirm,
    may_grant,
    own_authority,
    pending_changes_checkable_by,
)
from .permissions import (
    case_visible_to,
    cases_visible_to,
    decisions_visible_to,
    is_auditor,
    is_manager,
    managed_team_ids,
    may_manage_user,
    may_open_cases,
    may_view_case,
    navigation_for,
    roles_of,
)
from .reversals import may_reverse
from .service import evaluate, evaluate_many, evaluate_visible, validate_instant
from .verdict import Consumption, GrantRef, Verdict

__all__ = [
    "Approval",
    "ApproverPool",
    "ApproverRights",
    "Consumption",
    "GrantRef",
    "Question",
    "Verdict",
    "approver_pool",
    "approver_rights",
    "case_visible_to",
    "cases_visible_to",
    "decisions_visible_to",
    "evaluate",
    "evaluate_many",
    "evaluate_visible",
    "holds_delegation_for_team",
    "is_auditor",
    "is_manager",
    "managed_team_ids",
    "may_check",
    "may_confirm",
    "may_approve",
    "may_grant",
    "may_manage_user",
    "may_open_cases",
    "may_reject",
    "may_reverse",
    "requests_visible_to",
    "may_view_case",
    "navigation_for",
    "own_authority",
    "pending_changes_checkable_by",
    "resolve",
    "roles_of",
    "validate_instant",
    "with_pool",
]
