"""Reads of the workspace that need care: a fixed number of queries whatever the history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from viewflow.workflow.models import Task
from viewflow.workflow.status import PROCESS, STATUS

from h2h_core.models import Case, CaseEvent, Role

from .flows import CaseFlow
from .models import CaseProcess
from .process import FINISHED

User = get_user_model()


@dataclass(frozen=True)
class WorkflowState:
    """Where a case stands in its flow, in words."""

    stage: str  # queue, owned, follow_up, closed, none
    text: str
    follow_up_until: datetime | None = None


def case_workflow_state(case: Case) -> WorkflowState:
    """Describe the case's running process from its open tasks (one query)."""
    tasks = list(
        Task.objects.filter(
            process_id__in=CaseProcess.objects.filter(case_id=case.pk, status=PROCESS.NEW).values("pk")
        ).exclude(status__in=FINISHED).select_related("owner")
    )
    by_node = {task.flow_task: task for task in tasks}
    own = by_node.get(CaseFlow.own)
    if own is not None:
        if own.owner_id:
            return WorkflowState("owned", f"Own and resolve: with {own.owner.get_username()}.")
        team = case.team.name if case.team_id else "no team"
        return WorkflowState("queue", f"Waiting in the {team} queue for an agent to claim it.")
    if CaseFlow.follow_up in by_node:
        timer = by_node.get(CaseFlow.follow_up__timeout)
        until = timer.scheduled if timer is not None else None
        return WorkflowState("follow_up", "Follow-up: waiting for the customer's rating; the case closes by "
                                          "itself when the period ends.", until)
    if case.status == "closed":
        return WorkflowState("closed", "Closed.")
    return WorkflowState("none", "Not followed by a workflow yet; the next step or timer run adopts it.")


def handover_candidates(case: Case) -> QuerySet:
    """Agents of the case's team other than its owner (one query)."""
    if not case.team_id:
        return User.objects.none()
    return (
        User.objects.filter(teams=case.team_id, groups__name__in=[Role.AGENT, Role.SENIOR_AGENT], is_active=True)
        .exclude(pk=case.owner_id)
        .distinct()
        .order_by("username")
    )


def handover_note_for_owner(case: Case, events: list[CaseEvent], user) -> CaseEvent | None:
    """The note of the handover that made `user` the owner, if ownership last moved that way.

    `events` is the timeline, newest first (already loaded for the page: no query).
    """
    if case.owner_id != user.pk or not case.is_open:
        return None
    for event in events:
        if event.kind == CaseEvent.Kind.HANDOVER:
            return event
        if event.kind == CaseEvent.Kind.CLAIMED:
            return None
    return None


def last_timer_run() -> datetime | None:
    """When the timer dispatcher (`workflow_timers`) last fired a timer, or None if it never has.

    Read through the index on `scheduled` (only timer tasks have one): the dispatcher fires due
    timers in that order, so the done timer due latest is the one fired by its latest run. One
    short query, cheap enough for a health probe.
    """
    return (
        Task.objects.filter(flow_task_type="TIMER", status=STATUS.DONE, scheduled__isnull=False)
        .order_by("-scheduled")
        .values_list("finished", flat=True)
        .first()
    )
