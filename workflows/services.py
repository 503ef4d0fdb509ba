"""Workflow steps: each calls the case or authority service and advances the process, in one transaction.

Locks are taken in one order everywhere (workflows.lock_objects): the process row (the row viewflow's
select_for_update_lock locks), then the case row (inside the case service), then the audit head
(last, inside audit_record). The timer dispatcher takes the process lock first too, so a step and a
timer on the same case queue up instead of deadlocking.

A case or request that reached the database through an entry point that bypassed this layer (the
demo seed, an import, the API) is adopted: it gets its process on the first step taken here, or at
the next timer run (UpkeepFlow), and the process is brought in line with the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import PROCESS, STATUS

from authority import policy
from authority.lock_objects import authority_request_qs_select_for_update
from authority.models import AuthorityKind, AuthorityRequest, RequestStatus
from authority.quantities import format_quantity
from authority.services import authority_request_open
from authority.services.requests import request_snapshot
from h2h_core import services as case_services
from h2h_core.audit import audit_record
from h2h_core.audit.refusals import audits_refusals, case_of
from h2h_core.errors import NotAllowed, NotCaseOwner
from h2h_core.lock_objects import case_qs_select_for_update
from h2h_core.models import Case, CaseEvent, CaseStatus, Customer
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.transactions import composed, service_atomic

from . import conf
from .flows import CaseFlow, RequestFlow
from .lock_objects import process_qs_select_for_update
from .models import CaseProcess, RequestProcess

User = get_user_model()
logger = logging.getLogger(__name__)

FINISHED = (STATUS.DONE, STATUS.CANCELED, STATUS.REVIVED, STATUS.ERROR)
RATING_SALT = "h2h.workflows.rating"
ADOPT_BATCH = 100


# --- reading the flow state -------------------------------------------------------------------


def current_process(case: Case) -> CaseProcess | None:
    """Return the case's running process, if it has one."""
    return CaseProcess.objects.filter(case_id=case.pk, status=PROCESS.NEW).order_by("-pk").first()


def active_task(process, node) -> Task | None:
    return (
        Task.objects.filter(process_id=process.pk, flow_task=node)
        .exclude(status__in=FINISHED)
        .order_by("-pk")
        .first()
    )


def _activation(task: Task):
    return task.flow_task.activation_class(task)


@contextmanager
def _process_locked(flow_class, process_pk: int) -> Iterator[None]:
    """Hold the process row lock for the rest of the step's transaction.

    The step waits for the row (a timer holds it for milliseconds) instead of failing fast:
    viewflow's select_for_update_lock retries NOWAIT, and on PostgreSQL a failed NOWAIT aborts the
    enclosing transaction, so inside a composed step it could not retry. With the row already held
    by this transaction, viewflow's own lock, taken by the nodes it runs, succeeds at once.
    """
    process_qs_select_for_update(flow_class.process_class).filter(pk=process_pk).exists()
    with flow_class.lock(process_pk):
        yield


# --- keeping a process in line with its case ----------------------------------------------------


def _sync(process: CaseProcess, case: Case) -> CaseProcess:
    """Advance `process` (locked by the caller) to where `case` is; return the running process."""
    case = Case.objects.select_related("owner").get(pk=case.pk)
    if process.status != PROCESS.NEW:
        if case.is_open:  # a closed case was reopened: a new run, back to its owner
            return CaseFlow.reopen.run(case=case)
        return process
    follow_up = active_task(process, CaseFlow.follow_up)
    if follow_up is not None and case.is_open:
        CaseFlow.follow_up.run(follow_up)
    own = active_task(process, CaseFlow.own)
    if own is None:
        return process
    activation = _activation(own)
    if case.owner_id and own.owner_id != case.owner_id:
        if activation.assign.can_proceed():
            activation.assign(case.owner)
        else:
            activation.reassign(case.owner)
    if case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and activation.start.can_proceed():
        activation.start(None)
        activation.execute()
    return process


def case_flow_adopt(*, case: Case) -> CaseProcess | None:
    """Give a case that has no running process one, at the case's current state (composable).

    The case row is locked first so that two adopters cannot both start a run. A closed case is
    left alone: it has nothing left to wait for.
    """
    with service_atomic():
        case = case_qs_select_for_update().get(pk=case.pk)
        process = current_process(case)
        if process is not None or case.status == CaseStatus.CLOSED:
            return process
        if CaseProcess.objects.filter(case_id=case.pk).exists():  # its last run ended, then it was reopened
            process = CaseFlow.reopen.run(case=case)
        else:
            process = CaseFlow.intake.run(case=case, adopted=True)
        with _process_locked(CaseFlow, process.pk):
            return _sync(process, case)


def case_flow_sync(*, case: Case) -> CaseProcess | None:
    """Bring the case's process in line with the case (adopting it if needed), in a transaction of its own."""
    with composed():
        process = current_process(case)
        if process is None:
            return case_flow_adopt(case=case)
        with _process_locked(CaseFlow, process.pk):
            return _sync(process, case)


@contextmanager
def _case_step(case: Case) -> Iterator[CaseProcess | None]:
    """One transaction for a workflow step on `case`, holding its process lock throughout."""
    with composed():
        process = current_process(case) or case_flow_adopt(case=case)
        if process is None:
            yield None
            return
        with _process_locked(CaseFlow, process.pk):
            yield process


def _refuse_unless(transition, user, error: Exception) -> None:
    """Check a task transition's permission: viewflow does not when code calls it."""
    if transition.can_proceed() and not transition.has_perm(user):
        raise error


# --- the case flow's steps --------------------------------------------------------------------


def case_flow_open(
    *,
    actor,
    customer: Customer,
    subject: str,
    category: str,
    amount_at_stake: Decimal,
    currency: str,
    description: str = "",
    opened_at: datetime | None = None,
) -> Case:
    """Intake and triage (case_open), and the start of the case's flow, in one transaction."""
    with composed():
        case = case_services.case_open(actor=actor, customer=customer, subject=subject, category=category,
                                       amount_at_stake=amount_at_stake, currency=currency,
                                       description=description, opened_at=opened_at)
        CaseFlow.intake.run(case=case)
    return case


@audits_refusals("case.claim", object_type="case", object_from=case_of)
def case_flow_claim(*, actor, case: Case) -> Case:
    """Claim the ownership task in the team queue: the actor owns the case."""
    with _case_step(case) as process:
        own = active_task(process, CaseFlow.own) if process else None
        if own is not None:
            _refuse_unless(_activation(own).assign, actor,
                           NotAllowed(f"Only an agent of the case's team may claim {case.reference}."))
        case = case_services.case_claim(actor=actor, case=case)
        if process:
            _sync(process, case)
    return case


@audits_refusals("case.handover", object_type="case", object_from=case_of)
def case_flow_handover(*, actor, case: Case, to_user, note: str) -> Case:
    """Reassign the ownership task to another agent of the team, with the note they will read first."""
    with _case_step(case) as process:
        own = active_task(process, CaseFlow.own) if process else None
        if own is not None:
            _refuse_unless(_activation(own).reassign, actor,
                           NotCaseOwner(f"Only the owner of {case.reference} or a manager of its team may "
                                        "hand it over."))
        case = case_services.case_handover(actor=actor, case=case, to_user=to_user, note=note)
        if process:
            _sync(process, case)
    return case


@audits_refusals("case.resolve", object_type="case", object_from=case_of)
def case_flow_resolve(*, actor, case: Case, summary: str) -> Case:
    """Complete the ownership task with a resolution summary; the follow-up period starts."""
    with _case_step(case) as process:
        own = active_task(process, CaseFlow.own) if process else None
        if own is not None:
            _refuse_unless(_activation(own).start, actor,
                           NotCaseOwner(f"Only the owner of {case.reference} may resolve it."))
        case = case_services.case_resolve(actor=actor, case=case, summary=summary)
        if process:
            _sync(process, case)
        _mail_rating_link_on_commit(case)
    return case


@audits_refusals("case.reopen", object_type="case", object_from=case_of)
def case_flow_reopen(*, actor, case: Case, reason: str) -> Case:
    """Reopen a resolved or closed case: the ownership task goes back to its last owner."""
    with composed():
        process = current_process(case)
        if process is None:  # closed: its run has ended; a new one starts at ownership
            case = case_services.case_reopen(actor=actor, case=case, reason=reason)
            case_flow_adopt(case=case)
            return case
        with _process_locked(CaseFlow, process.pk):
            case = case_services.case_reopen(actor=actor, case=case, reason=reason)
            _sync(process, case)
    return case


def case_flow_rate(*, case: Case, rating: int) -> Case:
    """Record the customer's rating (reached through the signed link) on the case and its process."""
    with _case_step(case) as process:
        case = case_services.case_rate(case=case, rating=rating)
        if process is not None:
            process.data = {**(process.data or {}), "rating": rating}
            process.save(update_fields=["data"])
    return case


# --- the customer's rating link ---------------------------------------------------------------


def rating_token(case: Case) -> str:
    """Return the signed, expiring token of the customer's rating page for `case`."""
    return signing.dumps({"case": case.pk}, salt=RATING_SALT)


def case_for_rating_token(token: str) -> Case:
    """Return the case a rating token names; raise signing.BadSignature when forged or expired."""
    data = signing.loads(token, salt=RATING_SALT, max_age=conf.rating_link_max_age())
    case = Case.objects.select_related("customer", "owner").filter(pk=data.get("case")).first()
    if case is None:
        raise signing.BadSignature("No such case.")
    return case


def rating_url(case: Case) -> str:
    return reverse("cases:rate", args=[rating_token(case)])


def _mail_rating_link_on_commit(case: Case) -> None:
    customer = Customer.objects.filter(pk=case.customer_id).values("name", "email").first()
    if not customer or not customer["email"]:
        return
    link = getattr(settings, "H2H_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/") + rating_url(case)
    body = (f"Dear {customer['name']},\n\nyour case {case.reference} is resolved: {case.resolution_summary}\n\n"
            f"How did we do? Rate the outcome from 1 to 5 here (no login needed):\n{link}\n")
    transaction.on_commit(lambda: send_mail(f"{case.reference} is resolved: how did we do?", body, None,
                                            [customer["email"]], fail_silently=True))


# --- authority requests -------------------------------------------------------------------------


def authority_request_flow_open(
    *,
    actor,
    case: Case,
    kind: AuthorityKind,
    amount,
    currency: str | None = None,
    justification: str,
    idempotency_key: str | None = None,
) -> AuthorityRequest:
    """Open a one-hop request (the authority service) and start its flow.

    The request service commits on its own (it is durable and not composable); the flow starts in
    a second transaction right after. Should that one fail, the next timer run adopts the request.
    """
    request = authority_request_open(actor=actor, case=case, kind=kind, amount=amount, currency=currency,
                                     justification=justification, idempotency_key=idempotency_key)
    try:
        request_flow_start(request=request)
    except Exception:
        logger.exception("Request %s opened; its flow will be started by the next timer run", request.pk)
    return request


def request_flow_start(*, request: AuthorityRequest) -> RequestProcess | None:
    """Start the flow of an open request that has none (idempotent, composable)."""
    with service_atomic():
        request = authority_request_qs_select_for_update().get(pk=request.pk)
        existing = RequestProcess.objects.filter(request_id=request.pk).first()
        if existing is not None or request.status != RequestStatus.OPEN:
            return existing
        return RequestFlow.start.run(request=request)


def request_flow_sync(*, request: AuthorityRequest) -> RequestProcess | None:
    """End the request's approval wait now if it was decided (the timer run would, a little later)."""
    with composed():
        process = RequestProcess.objects.filter(request_id=request.pk, status=PROCESS.NEW).first()
        if process is None:
            return None
        with _process_locked(RequestFlow, process.pk):
            status = AuthorityRequest.objects.filter(pk=request.pk).values_list("status", flat=True).first()
            if status == RequestStatus.OPEN:
                return process
            for node in (RequestFlow.team_approval, RequestFlow.fallback_approval):
                task = active_task(process, node)
                if task is not None:
                    activation = _activation(task)
                    activation.start()
                    activation.execute()
        return process


def authority_request_offer_fallback(*, request: AuthorityRequest) -> AuthorityRequest:
    """Offer a request nobody in the team pool decided in time to the fallback pool (composable).

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


# --- adoption (UpkeepFlow) ----------------------------------------------------------------------


def unadopted_cases() -> QuerySet[Case]:
    """Cases not yet closed that have no running process."""
    return Case.objects.filter(status__in=[*OPEN_STATUSES, CaseStatus.RESOLVED]).exclude(
        processes__status=PROCESS.NEW
    )


def unadopted_requests() -> QuerySet[AuthorityRequest]:
    return AuthorityRequest.objects.filter(status=RequestStatus.OPEN, process__isnull=True)


def adopt_waiting_work() -> dict:
    """Adopt a batch of cases and requests (inside the upkeep flow's transaction); return the counts.

    Each item runs in a savepoint: one that fails is logged and left for the next run.
    """
    counts = {"cases": 0, "requests": 0}
    for case in unadopted_cases().order_by("pk")[:ADOPT_BATCH]:
        try:
            with transaction.atomic():
                case_flow_adopt(case=case)
            counts["cases"] += 1
        except Exception:
            logger.exception("Could not adopt case %s", case.pk)
    for request in unadopted_requests().order_by("pk")[:ADOPT_BATCH]:
        try:
            with transaction.atomic():
                request_flow_start(request=request)
            counts["requests"] += 1
        except Exception:
            logger.exception("Could not adopt authority request %s", request.pk)
    return counts


__all__ = [
    "active_task",
    "adopt_waiting_work",
    "authority_request_flow_open",
    "authority_request_offer_fallback",
    "case_flow_adopt",
    "case_flow_claim",
    "case_flow_handover",
    "case_flow_open",
    "case_flow_rate",
    "case_flow_reopen",
    "case_flow_resolve",
    "case_flow_sync",
    "case_for_rating_token",
    "current_process",
    "rating_token",
    "rating_url",
    "request_flow_start",
    "request_flow_sync",
]
