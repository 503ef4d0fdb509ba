"""Reads of the manager and auditor consoles (and the API's lists), each a fixed number of queries.

Nothing here writes. Every function documents its query budget; the tests in tests/consoles assert
it, because a console that costs one query per person or per row gets slow exactly when the
organisation grows. Split by reader: people and approvals (managers), the dashboard, the decision
log, the audit log and change history (auditors, and the API's lists of the same rows), and the one
keyset pager they share.
"""

from .approvals import approver_verdicts, inbox_for, over_by
from .audit_log import AuditFilters, events_matching
from .changes import grant_changes, grant_diff, sample_decisions
from .dashboard import AgentFigures, Dashboard, team_dashboard
from .decision_log import (
    COUNT_CAP,
    OUTCOMES,
    DecisionFilters,
    capped_count,
    decisions_matching,
    refusals_matching,
)
from .paging import Page, seek_page, seek_page_events
from .people import WARN_LEVELS, KindUsage, PersonAuthority, TrackRecord, people_authority, track_records

__all__ = [
    "COUNT_CAP", "OUTCOMES", "WARN_LEVELS",
    "AgentFigures", "AuditFilters", "Dashboard", "DecisionFilters", "KindUsage", "Page", "PersonAuthority",
    "TrackRecord",
    "approver_verdicts", "capped_count", "decisions_matching", "events_matching", "grant_changes", "grant_diff",
    "inbox_for", "over_by", "people_authority", "refusals_matching", "sample_decisions", "seek_page",
    "seek_page_events",
    "team_dashboard", "track_records",
]
