"""The workflows: a case from intake to close, an authority request's one hop, and their upkeep.

The case row and the request row are the record and change only through their services. A process
follows one of them: it holds the human task (the ownership task in the team queue) and the timers
(service levels, the follow-up period, the approval windows) that `manage.py workflow_timers`
fires. Every handler here calls a service; none writes a case or a request itself. Handlers run
inside viewflow's transaction, and the services they call simply join it (`h2h_core.transactions`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from viewflow import this
from viewflow.workflow import flow

from authority.models import RequestStatus
from h2h_core import services as case_services
from h2h_core.models import Case, CaseStatus
from h2h_core.organisation import current_organisation
from h2h_core.prepared import PreparedQuery

from . import conf, permissions
from .lock_objects import process_row_lock
from .models import CaseProcess, FlowTask, RequestProcess

logger = logging.getLogger(__name__)
# A timer needs a moment; a case without a due time (imported data) gets one that never comes.
NEVER = timedelta(days=365 * 100)
# The permission hooks read the task's case on every transition: compiled once (h2h_core.prepared).
_CASE_OF_PROCESS = PreparedQuery(lambda shape, *, process_id: Case.objects.filter(processes__pk=process_id),
                                 ints=("process_id",))


class OwnershipTask(flow.View):
    """The ownership task: in the team queue until claimed, then the owner's until resolved.

    The permission hooks are adapters over the policy (workflows.permissions). The workflow
    services call them before every transition, because viewflow checks nothing when a transition
    is called from code.
    """

    def __init__(self, **kwargs):
        super().__init__(None, **kwargs)

    @staticmethod
    def _case(task) -> Case:
        return _CASE_OF_PROCESS.get(process_id=task.process_id)

    def can_assign(self, user, task) -> bool:
        return not task.owner_id and bool(permissions.may_claim(user, self._case(task)))

    def can_unassign(self, user, task) -> bool:
        return bool(task.owner_id) and bool(permissions.may_hand_over(user, self._case(task)))

    def can_execute(self, user, task) -> bool:
        return task.owner_id == getattr(user, "pk", None) and bool(permissions.may_resolve(user, self._case(task)))


def _case_of(activation) -> Case:
    """The case the process follows, as it is now.

    A step hands the process object the case as it is in the step's transaction: a start (take_in,
    take_back) the case it was given, `workflows.process.catch_up` the case its service just wrote.
    The nodes that step runs (triage, the ownership task's owner and due times, the follow-up's end)
    change no case, so they use that object instead of reading the row again, up to four times.
    The timer sweep reads the process with its case under the process lock (`workflows.timers`), so a
    timer's nodes use that; the service a node calls locks and reads the row again before it writes.
    Any other node on a process read from the database reads the row.
    """
    process = activation.process
    if CaseProcess.case.is_cached(process):
        return process.case
    return Case.objects.select_related("owner", "team").get(pk=process.case_id)


def first_response_was_in_time(case: Case, target: str) -> bool:
    """The first response came by its due time, for good: case_sla_breach would find nothing to flag.

    Both moments are written once (case_open, the first claim), so the row read without the case's
    lock tells it; the first-response timer fires on almost every case, claimed in time or not.
    """
    return (target == "first_response" and case.first_response_at is not None
            and case.first_response_due is not None and case.first_response_at <= case.first_response_due)


def _utc_iso(moment: datetime | None) -> str | None:
    # In UTC as the database returns it, also when the case object in hand came with another offset.
    return moment.astimezone(UTC).isoformat() if moment else None


def _sync_after_commit(case_id: int) -> None:
    """Bring the case's process in line with the case once this transaction commits.

    Used when a timer finds that the case moved on through an entry point that bypassed the
    workflow (the case row is the record; the process follows it).
    """
    from .adoption import case_flow_sync

    def sync():
        try:
            case_flow_sync(case=Case.objects.get(pk=case_id))
        except Exception:  # the next timer or step on this case tries again
            logger.exception("Could not bring the process of case %s up to date", case_id)

    transaction.on_commit(sync)


class CaseFlow(flow.Flow):
    """Case

    Intake and triage, ownership in the team queue, resolution by the owner, follow-up with the
    customer's rating, then close. Reopening returns the case to its last owner.
    """

    process_class = CaseProcess
    task_class = FlowTask
    lock_impl = process_row_lock

    intake = flow.StartHandle(this.take_in).Next(this.triage)
    triage = flow.Function(this.route).Annotation(title="Triage").Next(this.own)
    own = (
        OwnershipTask()
        .Annotation(title="Own and resolve")
        .Assign(this.case_owner)
        .OnTimeout(this.first_response_due, this.first_response_missed, interrupting=False,
                   title="First response due")
        .OnTimeout(this.resolution_due, this.resolution_missed, interrupting=False, title="Resolution due")
        .Next(this.follow_up)
    )
    first_response_missed = flow.Function(this.flag_first_response).Next(this.sla_recorded)
    resolution_missed = flow.Function(this.flag_resolution).Next(this.sla_recorded)
    sla_recorded = flow.End()
    follow_up = (
        flow.Handle(this.back_to_owner)
        .Annotation(title="Follow-up: the customer rates the outcome")
        .OnTimeout(this.follow_up_ends, this.close, title="Follow-up period over")
        .Next(this.own)
    )
    close = flow.Function(this.close_case).Annotation(title="Close").Next(this.end)
    end = flow.End()
    # A closed case that is reopened starts a new run, straight back to its owner.
    reopen = flow.StartHandle(this.take_back).Next(this.own)

    @classmethod
    def own_first_response_timer(cls):
        """The ownership task's first-response timer (viewflow names a task's boundary timers in order)."""
        return next(node for node in cls.own._boundary_events if node._next is cls.first_response_missed)

    # --- start -------------------------------------------------------------------------------

    def take_in(self, activation, case: Case, adopted: bool = False):
        activation.process.case = case
        activation.process.artifact = case
        activation.process.data = {"adopted": adopted}
        return activation.process

    def take_back(self, activation, case: Case):
        activation.process.case = case
        activation.process.artifact = case
        activation.process.data = {"reopened": True}
        return activation.process

    def route(self, activation) -> None:
        """Record the triage case_open did (stakes, due times, team queue) on the process."""
        case = _case_of(activation)
        activation.process.data = {
            **activation.process.data,
            "team": case.team.slug if case.team_id else None,
            "stakes": case.stakes_score,
            "first_response_due": _utc_iso(case.first_response_due),
            "resolution_due": _utc_iso(case.resolution_due),
        }
        activation.process.save(update_fields=["data"])

    def case_owner(self, activation):
        return _case_of(activation).owner

    # --- service levels ------------------------------------------------------------------------

    def first_response_due(self, activation) -> datetime | timedelta:
        return _case_of(activation).first_response_due or NEVER

    def resolution_due(self, activation) -> datetime | timedelta:
        return _case_of(activation).resolution_due or NEVER

    def _flag(self, activation, target: str) -> None:
        case = _case_of(activation)
        if not case.is_open:
            _sync_after_commit(case.pk)
        elif not first_response_was_in_time(case, target):
            case_services.case_sla_breach(case=case, target=target, tz=current_organisation().tz)

    def flag_first_response(self, activation) -> None:
        self._flag(activation, "first_response")

    def flag_resolution(self, activation) -> None:
        self._flag(activation, "resolution")

    # --- follow-up and close -----------------------------------------------------------------

    def follow_up_ends(self, activation) -> datetime:
        case = _case_of(activation)
        return (case.resolved_at or timezone.now()) + conf.follow_up_period()

    def back_to_owner(self, activation) -> None:
        """The case was reopened during its follow-up: the ownership task goes back to the owner."""

    def close_case(self, activation) -> None:
        case = _case_of(activation)
        if case.status == CaseStatus.RESOLVED:
            case_services.case_close(actor=None, case=case, reason="The follow-up period ended: closed by the timer.")
        elif case.is_open:  # reopened outside the workflow: this run ends, a new one takes over
            _sync_after_commit(case.pk)


class RequestFlow(flow.Flow):
    """Authority request

    One hop: the team's managers approve within a window; if none does, the request is offered to
    the fallback pool until it expires. Never a chain.
    """

    process_class = RequestProcess
    task_class = FlowTask
    lock_impl = process_row_lock

    start = flow.StartHandle(this.take_in).Next(this.route)
    route = flow.If(this.with_fallback_from_the_start).Then(this.fallback_approval).Else(this.team_approval)
    team_approval = (
        flow.ConditionalCatch(this.decided)
        .Annotation(title="The team's managers approve or reject")
        .OnTimeout(this.team_window_ends, this.offer_fallback, title="Team window over")
        .Next(this.end)
    )
    offer_fallback = flow.Function(this.to_fallback_pool).Annotation(title="Offer to the fallback pool").Next(
        this.fallback_approval
    )
    fallback_approval = (
        flow.ConditionalCatch(this.decided)
        .Annotation(title="The fallback pool approves or rejects until expiry")
        .OnTimeout(this.expires, this.expire, title="Request expires")
        .Next(this.end)
    )
    expire = flow.Function(this.expire_request).Annotation(title="Expire").Next(this.end)
    end = flow.End()

    def take_in(self, activation, request):
        activation.process.request = request
        activation.process.artifact = request
        return activation.process

    def _request(self, activation):
        """The request, as it is now: the one its start was handed (see `_case_of`), else the row."""
        from authority.models import AuthorityRequest

        process = activation.process
        if RequestProcess.request.is_cached(process):
            return process.request
        return AuthorityRequest.objects.get(pk=process.request_id)

    def with_fallback_from_the_start(self, activation) -> bool:
        return self._request(activation).pool_is_fallback

    def decided(self, activation) -> bool:
        """The request was approved, rejected, withdrawn or expired, by whichever entry point."""
        return self._request(activation).status != RequestStatus.OPEN

    def team_window_ends(self, activation) -> datetime:
        request = self._request(activation)
        return min(request.created_at + conf.team_approval_window(), request.expires_at)

    def expires(self, activation) -> datetime:
        return self._request(activation).expires_at

    def to_fallback_pool(self, activation) -> None:
        from .steps.requests import authority_request_offer_fallback

        authority_request_offer_fallback(request=self._request(activation))

    def expire_request(self, activation) -> None:
        """Expire through the authority service, in its own transaction once this one commits."""
        from authority.services import authority_requests_expire

        transaction.on_commit(authority_requests_expire)


class UpkeepFlow(flow.Flow):
    """Workflow upkeep

    Cases and authority requests opened through an entry point that bypassed the workflow layer
    (the demo seed, an import) are adopted at the next timer run, so their service levels,
    follow-up and approval windows run like everyone else's. One run a day, each watching for a day.
    """

    task_class = FlowTask
    lock_impl = process_row_lock

    start = flow.StartTimer(interval=timedelta(days=1)).Next(this.watch)
    watch = (
        flow.ConditionalCatch(this.work_waiting)
        .Annotation(title="Watch for work opened outside the workflow")
        .OnTimeout(this.day_ends, this.done, title="Day over")
        .Next(this.adopt)
    )
    adopt = flow.Function(this.adopt_work).Annotation(title="Adopt").Next(this.watch)
    done = flow.End()

    def day_ends(self, activation) -> datetime:
        return activation.process.created + timedelta(days=1)

    def work_waiting(self, activation) -> bool:
        from .adoption import unadopted_cases, unadopted_requests

        return unadopted_cases().exists() or unadopted_requests().exists()

    def adopt_work(self, activation) -> None:
        from .adoption import adopt_waiting_work

        adopted = adopt_waiting_work()
        activation.task.data = {**(activation.task.data or {}), "adopted": adopted}
        activation.task.save(update_fields=["data"])


__all__ = ["CaseFlow", "CaseProcess", "OwnershipTask", "RequestFlow", "RequestProcess", "UpkeepFlow"]
