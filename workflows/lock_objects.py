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

from contextlib import contextmanager

from django.db import connection
from django.db.models import QuerySet
from viewflow.workflow.lock import select_for_update_lock
from viewflow.workflow.models import Process

from h2h_core.prepared import PreparedQuery


def process_qs_select_for_update(process_class: type[Process]) -> QuerySet[Process]:
    """Return processes of `process_class` to lock, in key order, waiting for a timer that holds one.

    The rows viewflow's lock takes: the process's own and its subclass's (no OF).
    """
    return process_class._default_manager.order_by("pk").select_for_update()


_PROCESS_TO_LOCK = PreparedQuery(  # shape: the process class
    lambda process_class, *, pk: process_qs_select_for_update(process_class).filter(pk=pk), ints=("pk",))


def process_locked_read(process_class: type[Process], pk: int) -> Process:
    """Lock process `pk` of `process_class` (the rows viewflow's lock takes) and return it as read under the lock.

    `process_qs_select_for_update(process_class).get(pk=pk)`, compiled once per process
    (h2h_core.prepared): every step and every node it runs takes this lock.
    """
    return _PROCESS_TO_LOCK.get(shape=process_class, pk=pk)


@contextmanager
def process_rows_held(flow_class, process_pk):
    """A lock implementation for rows this transaction already holds: nothing left to take."""
    yield


class ProcessRowLock:
    """Viewflow's `select_for_update_lock`, joining the transaction it is taken in.

    Taken outside a transaction (the timer sweep's activations), it is viewflow's lock: a transaction
    of its own that takes the process row NOWAIT and retries. Taken inside one (a workflow step, which
    holds its process row already, see `process_locked`, and every node that step runs), it locks the
    same rows (`process_locked_read`'s statement) but waits for them, in the caller's transaction, without a
    savepoint: NOWAIT there could not retry (on PostgreSQL a failed statement aborts the transaction),
    and the savepoint, two statements on each of the several nodes a step runs, protected nothing,
    since an error inside fails the whole step. The nodes' own savepoints, which viewflow's error
    handling rolls back to, are untouched.
    """

    @contextmanager
    def __call__(self, flow_class, process_pk):
        if not connection.in_atomic_block:
            with select_for_update_lock(flow_class, process_pk):
                yield
            return
        if process_pk is not None:  # as viewflow's lock, a missing row is not an error here
            _PROCESS_TO_LOCK.first(shape=flow_class.process_class, pk=process_pk)
        yield


process_row_lock = ProcessRowLock()
