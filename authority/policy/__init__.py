"""authority.policy: who may decide what (evaluate) and who may do what (permissions).

Everything that answers "may this person…" lives here; views, the API, viewflow and the admin are
thin adapters over it.
"""

from .evaluation import Question, resolve
from .permissions import (
    cases_visible_to,
    is_auditor,
    is_manager,
    managed_team_ids,
    may_manage_user,
    may_view_case,
    navigation_for,
    roles_of,
)
from .service import evaluate, validate_instant
from .verdict import Consumption, GrantRef, Verdict

__all__ = [
    "Consumption",
    "GrantRef",
    "Question",
    "Verdict",
    "cases_visible_to",
    "evaluate",
    "is_auditor",
    "is_manager",
    "managed_team_ids",
    "may_manage_user",
    "may_view_case",
    "navigation_for",
    "resolve",
    "roles_of",
    "validate_instant",
]
