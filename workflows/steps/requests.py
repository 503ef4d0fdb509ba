"""The authority request flow's steps, and the offer to the fallback pool.

Opening a request starts its flow; approving or rejecting it ends the approval wait. Each is one
durable transaction with the authority service it calls: the request and its process commit
together, or neither does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from viewflow.workflow.status import PROCESS

from authority import policy
from authority.lock_objects import authority_request_qs_select_for_update
from authority.models import AuthorityRequest, RequestStatus
from authority.quantities import format_quantity
from authority.services import authority_request_approve, authority_request_open, authority_request_reject
from authority.services.requests import request_snapshot
from h2h_core.access import is_ai_agent, may_act_on_view
from h2h_core.audit import audit_record
from h2h_core.audit.refusals import audits_refusals, case_of, request_of
from h2h_core.lock_objects import case_locked
from h2h_core.mail import mail_queue
from h2h_core.models import Case, CaseEvent
from h2h_core.transactions import service_atomic

from ..flows import RequestFlow
from ..models import RequestProcess
from ..process import activation_of, active_tasks, process_locked

User = get_user_model()


@audits_refusals("authority_request.open", object_type="case", object_from=case_of)
def authority_request_flow_open(*, actor, seen_version: str | None = None, **ask) -> AuthorityRequest:
    """Open a one-hop request (`authority.services.authority_request_open`, same arguments) and start its flow.

    One transaction: when the flow cannot start, no request is recorded either. With `seen_version`
    (the case page's version), a request asked on a page that no longer shows the case is refused,
    under the case's row lock (the first lock this step takes).
    """
    with transaction.atomic(durable=True):
        if seen_version is not None:
            may_act_on_view(case_locked(ask["case"].pk), seen_version).require()
        request = authority_request_open(actor=actor, **ask)
        request_flow_start(request=request)
    return request


@audits_refusals("authority_request.approve", object_type="authority_request", object_from=request_of)
def authority_request_flow_approve(*, actor, request: AuthorityRequest, note: str = "") -> AuthorityRequest:
    """Approve a request (the authority service) and end its approval wait, in one transaction."""
    with _request_step(request) as process:
        request = authority_request_approve(actor=actor, request=request, note=note)
        _end_approval_wait(process)
        _mail_requester(request, actor=actor)
    return request


@audits_refusals("authority_request.reject", object_type="authority_request", object_from=request_of)
def authority_request_flow_reject(*, actor, request: AuthorityRequest, note: str) -> AuthorityRequest:
    """Reject a request (the authority service) and end its approval wait, in one transaction."""
    with _request_step(request) as process:
        request = authority_request_reject(actor=actor, request=request, note=note)
        _end_approval_wait(process)
        _mail_requester(request, actor=actor)
    return request


@contextmanager
def _request_step(request: AuthorityRequest) -> Iterator[RequestProcess | None]:
    """One transaction for a step on `request`, holding its running process's lock (taken first) throughout.

    A request without a running process (opened by the seed, or its flow already over) is decided
    all the same; only an open request is adopted, by the next timer run.
    """
    with transaction.atomic(durable=True):
        process = RequestProcess.objects.filter(request_id=request.pk, status=PROCESS.NEW).first()
        if process is None:
            yield None
            return
        with process_locked(RequestFlow, process.pk) as locked:
            yield locked


def _end_approval_wait(process: RequestProcess | None) -> None:
    """End the approval wait of a decided request's process (locked by the caller): its flow ends."""
    if process is None:
        return
    waits = (RequestFlow.team_approval, RequestFlow.fallback_approval)
    tasks = active_tasks(process, *waits)
    for node in waits:
        if (task := tasks.get(node)) is not None:
            activation = activation_of(task)
            activation.start()
            activation.execute()


def _mail_requester(request: AuthorityRequest, *, actor) -> None:
    """Queue the approval or rejection to the requester, in the deciding transaction (sent by a job after it commits).

    Only a person is written to (an AI agent reads the API), and only one with an email address.
    """
    requester = User.objects.filter(pk=request.requester_id).first()
    if requester is None or not requester.email or is_ai_agent(requester):
        return
    case = request.case  # loaded with the request under its lock
    asked = format_quantity(request.amount, unit=request.kind.unit, currency=request.currency)
    what = f"{request.kind.name.lower()} of {asked} on {case.reference} ({case.subject})"
    link = getattr(settings, "H2H_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/") + reverse(
        "cases:detail", args=[case.pk])
    note = request.decision_note or "(no note)"
    by = actor.get_username()
    if request.status == RequestStatus.APPROVED:
        verb = "approved"
        grant = request.one_off_grant
        until = f" until {grant.valid_until:%d %b %Y %H:%M} UTC" if grant and grant.valid_until else ""
        then = (f"The approval covers exactly this amount on this case while you own it{until}; it becomes void "
                f"if the case is handed over or reopened. Execute it from the case:\n{link}\n")
    else:
        verb = "rejected"
        then = f"The case:\n{link}\n"
    body = (f"Hello {requester.get_full_name() or requester.get_username()},\n\n{by} {verb} your request: {what}.\n\n"
            f"{by}'s note: {note}\n\n{then}")
    mail_queue(subject=f"{case.reference}: your {request.kind.name.lower()} request for {asked} was {verb}",
               body=body, recipients=[requester.email], purpose=f"request_{verb}", case=case)


def request_flow_start(*, request: AuthorityRequest) -> RequestProcess | None:
    """Start the flow of an open request that has none (idempotent; joins the caller's transaction)."""
    with service_atomic():
        request = authority_request_qs_select_for_update().get(pk=request.pk)
        existing = RequestProcess.objects.filter(request_id=request.pk).first()
        if existing is not None or request.status != RequestStatus.OPEN:
            return existing
        return RequestFlow.start.run(request=request)


def authority_request_offer_fallback(*, request: AuthorityRequest) -> AuthorityRequest:
    """Offer a request nobody in the team pool decided in time to the fallback pool (joins the flow's transaction).

    One hop still: the fallback approvers join the pool; nobody is added after them. When no
    fallback approver has the authority, that is recorded and the request stays where it is.
    """
    case = Case.objects.select_related("customer").get(pk=request.case_id)
    with service_atomic():
        request = authority_request_qs_select_for_update().select_related("kind", "requester").get(pk=request.pk)
        if request.status != RequestStatus.OPEN or request.pool_is_fallback:
            return request
        now = timezone.now()
        # The fallback tier of the one approver pool (rule 3a), asked now: who there covers it today.
        pool = policy.approver_pool(requester=request.requester, case=case, kind=request.kind, amount=request.amount,
                                    currency=request.currency or None, fallback_only=True).users
        asked = format_quantity(request.amount, unit=request.kind.unit, currency=request.currency)
        waiting = ", ".join(User.objects.filter(pk__in=request.pool).order_by("username")
                            .values_list("username", flat=True)) or "nobody"
        if not pool:
            text = (f"Nobody decided the request for {asked} in time, and no fallback approver has the "
                    f"authority for it: it stays with {waiting} until it expires.")
            CaseEvent.objects.create(case_id=request.case_id, actor=None, kind=CaseEvent.Kind.REQUEST, at=now,
                                     text=text)
            audit_record(actor=None, action="authority_request.fallback_unavailable",
                         object_type="authority_request", object_id=request.pk, after=request_snapshot(request),
                         reason=text)
            return request
        before = request_snapshot(request)
        request.pool = sorted(set(request.pool) | {u.pk for u in pool})
        request.pool_is_fallback = True
        request.save(update_fields=["pool", "pool_is_fallback"])
        names = ", ".join(u.get_username() for u in pool)
        text = (f"Nobody in the team pool ({waiting}) decided the request for {asked} in time: "
                f"offered to the fallback pool ({names}) until it expires.")
        CaseEvent.objects.create(case_id=request.case_id, actor=None, kind=CaseEvent.Kind.REQUEST, at=now, text=text)
        audit_record(actor=None, action="authority_request.offered_to_fallback", object_type="authority_request",
                     object_id=request.pk, before=before, after=request_snapshot(request), reason=text)
    return request
