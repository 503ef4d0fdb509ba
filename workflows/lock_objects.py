"""The row locks the workflow steps take themselves: the process row, first.

A step locks its process row before anything else, then the case (or request) row inside the
domain service (then, on SQLite, the audit head, last); the whole order is in `h2h_core.lock_objects`. The
timer dispatcher takes the same process row first (viewflow's `select_for_update_lock`, which
retries NOWAIT), so a step and a timer on one case queue up instead of deadlocking. A step waits
for the row instead (`process_qs_select_for_update`): on PostgreSQL a failed NOWAIT aborts the
enclosing transaction, so a step could not retry it.

The one exception to "the audit append is the last write": after the case or request service has
appended its event, the step still advances its process (viewflow updates the process and its tasks
and inserts the next task; `case_flow_reopen` may start a new run on the case it already holds;
`case_flow_rate` stores the rating on the process; approving or rejecting a request ends its
approval wait). These writes cannot wait for another
transaction: every row they change belongs to the process this transaction locked first, and their
foreign-key checks (immediate by then, see `h2h_core.lock_objects`) take KEY SHARE locks on that
process, its tasks, the case it holds and users, rows no other transaction locks FOR UPDATE or
rekeys. Advancing the process before the case service instead would let viewflow act on a case
state the service has not written yet, or not at all when it refuses. Opening a request starts its
flow after the append too: the request row it locks then was inserted by this same transaction, so
no other transaction can hold it.
"""

from __future__ import annotations

from django.db.models import QuerySet
from viewflow.workflow.models import Process


def process_qs_select_for_update(process_class: type[Process]) -> QuerySet[Process]:
    """Return processes of `process_class` to lock, in key order, waiting for a timer that holds one."""
    return process_class._default_manager.order_by("pk").select_for_update(of=("self",))
