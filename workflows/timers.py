"""The workflow timers' sweep: service levels, approval windows, follow-up, adoption.

Viewflow keeps every timer as a task row with its due moment; this fires the due ones. It is safe
with several sweeps at once (each timer is re-checked under its flow lock), and the worker's
schedule runs it every H2H_TIMER_SWEEP_SECONDS under a lease so that runs never overlap, which the
start timers (one upkeep process a day) need.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Q, QuerySet
from django.utils import timezone
from viewflow.workflow.exceptions import FlowLockFailed
from viewflow.workflow.status import STATUS
from viewflow.workflow.timers import fire_due_start_timers

from authority.models import RequestStatus
from h2h_core.models import Case
from h2h_core.prepared import PreparedQuery, joining

from .flows import RequestFlow
from .models import CaseProcess, FlowTask, RequestProcess

logger = logging.getLogger(__name__)


def _process_with_record(process_class, *, pk: int) -> QuerySet:
    related = {CaseProcess: ("case__owner", "case__team"), RequestProcess: ("request",)}.get(process_class, ())
    return joining(process_class._default_manager.all(), related).filter(pk=pk)


# Read for every timer that fires: compiled once per process (h2h_core.prepared).
_PROCESS_WITH_RECORD = PreparedQuery(_process_with_record, ints=("pk",))


def timers_fire(*, cases: QuerySet[Case] | None = None) -> dict:
    """Fire every due timer, start due scheduled processes, fire met conditions; return the counts.

    `cases`: only the timers and conditions of those cases' flows and of their requests' flows, and
    no scheduled starts: the sweep of one part of a simulated organisation, whose clock is its own
    (edges.demo.simulation). None, the worker's sweep: everything.
    """
    return {
        "timers": _fire_each(due_timers(cases=cases), condition=False),
        "started": fire_due_start_timers() if cases is None else 0,
        "conditions": _fire_each(armed_conditions(cases=cases), condition=True),
    }


def _of_cases(tasks: QuerySet[FlowTask], cases: QuerySet[Case] | None) -> QuerySet[FlowTask]:
    if cases is None:
        return tasks
    return tasks.filter(Q(process__caseprocess__case__in=cases) | Q(process__requestprocess__request__case__in=cases))


def due_timers(*, cases: QuerySet[Case] | None = None) -> QuerySet[FlowTask]:
    """The timers due now, the earliest first (viewflow's dispatcher's query, optionally of `cases` only)."""
    due = FlowTask._default_manager.filter(flow_task_type="TIMER", status=STATUS.SCHEDULED,
                                       scheduled__lte=timezone.now())
    return _of_cases(due, cases).order_by("scheduled")


def armed_conditions(*, cases: QuerySet[Case] | None = None) -> QuerySet[FlowTask]:
    """The armed condition tasks whose condition may hold now, in viewflow's order.

    An approval wait's condition is "the request is no longer open" (RequestFlow.decided): a wait
    whose request is still open is left out here, in the query, instead of being locked and asked
    one by one on every sweep. Any other condition (the upkeep's watch) is asked as before.
    """
    armed = FlowTask._default_manager.filter(flow_task_type="CONDITION", status=STATUS.NEW).exclude(
        flow_task__in=(RequestFlow.team_approval, RequestFlow.fallback_approval),
        process__requestprocess__request__status=RequestStatus.OPEN,
    )
    return _of_cases(armed, cases)


@contextmanager
def _activation(task: FlowTask) -> Iterator:
    """Viewflow's `task.activation()`: the task read again under its flow lock, and its activation.

    The process is read in one statement with the record it follows (the case with its owner and
    team, or the request), where viewflow reads the process, then its subclass, and the flow's
    handler the record (`flows._case_of`): the same rows, read at the same moment, under the lock.
    """
    flow_class = task.flow_task.flow_class
    with flow_class.lock(task.process_id):
        task.refresh_from_db()
        task.process = _PROCESS_WITH_RECORD.get(shape=flow_class.process_class, pk=task.process_id)
        yield task.flow_task.activation_class(task)


def _fire_each(tasks: QuerySet[FlowTask], *, condition: bool) -> int:
    """Fire each task that can proceed (a condition: whose condition holds), re-checked under its flow lock.

    Viewflow's `fire_due_timers` and `fire_due_conditions`, over the querysets above; return how many fired.
    """
    fired = 0
    for task in tasks:
        try:
            with _activation(task) as activation:
                start = getattr(activation, "start", None)
                if start is None:  # the node was renamed or removed since: it can never fire
                    logger.warning("Task %s references a missing node %r, skipped", task.pk, task.flow_task)
                    continue
                if start.can_proceed() and (not condition or activation.condition_met()):
                    activation.start()
                    activation.execute()
                    fired += 1
        except FlowLockFailed:
            logger.info("Task %s is locked by another dispatcher, skipped", task.pk)
        except Exception:  # one broken flow must not block the whole sweep
            logger.exception("Task %s failed to fire", task.pk)
    return fired
