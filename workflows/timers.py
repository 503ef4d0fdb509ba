"""The workflow timers' sweep: service levels, approval windows, follow-up, adoption.

Viewflow keeps every timer as a task row with its due moment; this fires the due ones. It is safe
with several sweeps at once (each timer is re-checked under its flow lock), and the worker's
schedule runs it every H2H_TIMER_SWEEP_SECONDS under a lease so that runs never overlap, which the
start timers (one upkeep process a day) need.
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet
from viewflow.workflow.exceptions import FlowLockFailed
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS
from viewflow.workflow.timers import fire_due_start_timers, fire_due_timers

from authority.models import RequestStatus

from .flows import RequestFlow

logger = logging.getLogger(__name__)


def timers_fire() -> dict:
    """Fire every due timer, start due scheduled processes, fire met conditions; return the counts."""
    return {
        "timers": fire_due_timers(),
        "started": fire_due_start_timers(),
        "conditions": conditions_fire(),
    }


def armed_conditions() -> QuerySet[Task]:
    """The armed condition tasks whose condition may hold now, in viewflow's order.

    An approval wait's condition is "the request is no longer open" (RequestFlow.decided): a wait
    whose request is still open is left out here, in the query, instead of being locked and asked
    one by one on every sweep. Any other condition (the upkeep's watch) is asked as before.
    """
    return Task._default_manager.filter(flow_task_type="CONDITION", status=STATUS.NEW).exclude(
        flow_task__in=(RequestFlow.team_approval, RequestFlow.fallback_approval),
        process__requestprocess__request__status=RequestStatus.OPEN,
    )


def conditions_fire() -> int:
    """Fire the armed conditions that hold, each re-checked under its flow lock; return how many fired.

    Viewflow's `fire_due_conditions`, over `armed_conditions` instead of every armed task.
    """
    fired = 0
    for task in armed_conditions():
        try:
            with task.activation() as activation:
                start = getattr(activation, "start", None)
                if start is None:  # the node was renamed or removed since: it can never fire
                    logger.warning("Conditional task %s references a missing node %r, skipped", task.pk,
                                   task.flow_task)
                    continue
                if start.can_proceed() and activation.condition_met():
                    activation.start()
                    activation.execute()
                    fired += 1
        except FlowLockFailed:
            logger.info("Conditional task %s is locked by another dispatcher, skipped", task.pk)
        except Exception:  # one broken flow must not block the whole sweep
            logger.exception("Conditional task %s failed to fire", task.pk)
    return fired
