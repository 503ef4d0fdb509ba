"""Reading, locking and advancing a process: what every workflow step shares.

Locks are taken in one order everywhere (workflows.lock_objects): the process row (the row viewflow's
select_for_update_lock locks), then the case or request row (inside the domain service), then the
audit head (last, inside audit_record, on SQLite; on PostgreSQL the sealer takes it after commit).
The timer dispatcher takes the process lock first too, so a step and a timer on the same case
queue up instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from viewflow.workflow.lock import lock_scope
from viewflow.workflow.status import PROCESS, STATUS

from h2h_core.models import Case, CaseStatus
from h2h_core.prepared import PreparedQuery

from .flows import CaseFlow, first_response_was_in_time
from .lock_objects import process_locked_read, process_rows_held
from .models import CaseProcess, FlowTask

FINISHED = (STATUS.DONE, STATUS.CANCELED, STATUS.REVIVED, STATUS.ERROR)

# The reads every step makes, compiled once per process (h2h_core.prepared): building them cost
# more CPU than running them.
_RUNNING_PROCESS = PreparedQuery(
    lambda shape, *, case_id: CaseProcess.objects.filter(case_id=case_id, status=PROCESS.NEW).order_by("-pk")[:1],
    ints=("case_id",))
_ACTIVE_TASKS = PreparedQuery(  # shape: the nodes
    lambda nodes, *, process_id: FlowTask.objects.filter(process_id=process_id, flow_task__in=nodes)
    .exclude(status__in=FINISHED).order_by("pk"),
    ints=("process_id",))
_SCHEDULED_AFTER = PreparedQuery(  # shape: the timer node
    lambda timer, *, process_id, previous_id: FlowTask.objects.filter(process_id=process_id, flow_task=timer,
                                                                      previous=previous_id, status=STATUS.SCHEDULED),
    ints=("process_id", "previous_id"))


def current_process(case: Case) -> CaseProcess | None:
    """Return the case's running process, if it has one."""
    return _RUNNING_PROCESS.first(case_id=case.pk)


def active_tasks(process, *nodes) -> dict:
    """Return the running task of each of `nodes` in `process` (the latest one; absent when none), in one query.

    Each task carries `process` itself, so an activation made from it does not read the process
    again (viewflow reads the row, then its subclass): the caller holds the process locked, so the
    object it read under the lock is the process.
    """
    found = {}
    for task in _ACTIVE_TASKS.all(shape=tuple(nodes), process_id=process.pk):
        task.process = process
        found[task.flow_task] = task
    return found


def active_task(process, node) -> FlowTask | None:
    return active_tasks(process, node).get(node)


def activation_of(task: FlowTask):
    return task.flow_task.activation_class(task)


@contextmanager
def process_locked(flow_class, process_pk: int) -> Iterator:
    """Hold the process row lock for the rest of the step's transaction; yield the process as read under it.

    The step waits for the row (a timer holds it for milliseconds) instead of failing fast:
    viewflow's select_for_update_lock retries NOWAIT, and on PostgreSQL a failed NOWAIT aborts the
    enclosing transaction, so inside a step it could not retry. The rows read here are the rows the
    flow's lock takes, so the step's own lock scope takes nothing more; the lock the nodes it runs
    take then (lock_objects.process_row_lock) succeeds at once.
    """
    process = process_locked_read(flow_class.process_class, process_pk)
    with lock_scope(process_rows_held, flow_class, process_pk):
        yield process


def first_response_timer_disarm(process, own: FlowTask, case: Case) -> None:
    """Cancel the ownership task's first-response timer once the first response came in time.

    Fired, it would find nothing to flag (flows.first_response_was_in_time, the same predicate) and
    only record that on the process: one activation and about fifteen statements on almost every
    case, in the timer sweep. A late first response keeps its timer, which flags the breach.
    """
    if not first_response_was_in_time(case, "first_response"):
        return
    timer = CaseFlow.own_first_response_timer()
    for task in _SCHEDULED_AFTER.all(shape=timer, process_id=process.pk, previous_id=own.pk):
        task.process = process
        activation = activation_of(task)
        if activation.cancel.can_proceed():
            activation.cancel()


def refuse_unless(transition, user, error: Exception) -> None:
    """Check a task transition's permission: viewflow does not when code calls it."""
    if transition.can_proceed() and not transition.has_perm(user):
        raise error


def catch_up(process: CaseProcess, case: Case, *, tasks: dict | None = None, read: bool = True) -> CaseProcess:
    """Advance `process` (locked by the caller) to where `case` is; return the running process.

    `tasks`: the process's running tasks as the caller read them under the same lock (`active_tasks`),
    when nothing but the caller's own service ran since (a service changes the case, never the
    tasks). `read=False`: `case` is what the caller's service just wrote under the case's row lock
    in this transaction, so reading it again would return the same.
    """
    if read:
        case = Case.objects.select_related("owner").get(pk=case.pk)
    if process.status != PROCESS.NEW:
        if case.is_open:  # a closed case was reopened: a new run, back to its owner
            return CaseFlow.reopen.run(case=case)
        return process
    process.case = case  # the nodes run below read the case from here (flows._case_of), as it is now
    if tasks is None:
        tasks = active_tasks(process, CaseFlow.follow_up, CaseFlow.own)
    follow_up = tasks.get(CaseFlow.follow_up)
    if follow_up is not None and case.is_open:
        CaseFlow.follow_up.run(follow_up)
        # Viewflow ran that on a process object of its own: read the process again, and the new ownership task.
        process.refresh_from_db()
        process.case = case
        tasks = active_tasks(process, CaseFlow.own)
    own = tasks.get(CaseFlow.own)
    if own is None:
        return process
    activation = activation_of(own)
    if case.owner_id and own.owner_id != case.owner_id:
        if activation.assign.can_proceed():
            activation.assign(case.owner)
            first_response_timer_disarm(process, own, case)
        else:
            activation.reassign(case.owner)
    if case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and activation.start.can_proceed():
        activation.start(None)
        activation.execute()
    return process
