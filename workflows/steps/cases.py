"""The case flow's steps, and the customer's rating link.

Each step locks the case's process, checks the task's permission, calls the case service and
advances the process, in one durable transaction. A case without a running process (opened by the
seed or an import) is adopted by its first step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from authority.services import one_off_grants_void
from h2h_core import services as case_services
from h2h_core.access import may_act_on_view
from h2h_core.audit.refusals import audits_refusals, case_of
from h2h_core.errors import NotAllowed, NotCaseOwner
from h2h_core.hand_offs import hand_off_pick_up, may_claim_handed_off, pending_hand_off
from h2h_core.lock_objects import case_locked
from h2h_core.mail import mail_queue
from h2h_core.models import Case, Customer

from .. import conf
from ..adoption import case_flow_adopt
from ..flows import CaseFlow
from ..models import CaseProcess
from ..process import activation_of, active_tasks, catch_up, current_process, process_locked, refuse_unless

RATING_SALT = "h2h.workflows.rating"


@contextmanager
def _case_step(case: Case) -> Iterator[CaseProcess | None]:
    """One transaction for a workflow step on `case`, holding its process lock throughout."""
    with transaction.atomic(durable=True):
        process = current_process(case) or case_flow_adopt(case=case)
        if process is None:
            yield None
            return
        with process_locked(CaseFlow, process.pk) as locked:
            yield locked


def _require_fresh_view(case: Case, seen_version: str | None) -> None:
    """Refuse a step taken on a page that no longer shows the case (None: the caller sent no version).

    Asked under the case's row lock, taken after the process lock (the one lock order), so nothing
    can change the case between this check and the step's own write.
    """
    if seen_version is not None:
        may_act_on_view(case_locked(case.pk), seen_version).require()


def case_flow_open(*, actor, idempotency_key: str | None = None, **intake) -> Case:
    """Intake and triage (`h2h_core.services.case_open`, same arguments) and the start of the case's flow.

    One transaction: the case and its process commit together, or neither does. A repeat with the
    idempotency key of a case already opened returns that case, whose flow started with it.
    """
    try:
        return _open_and_start(actor=actor, idempotency_key=idempotency_key, **intake)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent call with the same key committed first: this one now finds its case.
        return _open_and_start(actor=actor, idempotency_key=idempotency_key, **intake)


def _open_and_start(*, actor, idempotency_key: str | None, **intake) -> Case:
    with transaction.atomic(durable=True):
        case = case_services.case_open(actor=actor, idempotency_key=idempotency_key, **intake)
        if idempotency_key is None or not CaseProcess.objects.filter(case_id=case.pk).exists():
            CaseFlow.intake.run(case=case)
    return case


@audits_refusals("case.claim", object_type="case", object_from=case_of)
def case_flow_claim(*, actor, case: Case, seen_version: str | None = None) -> Case:
    """Claim the ownership task in the team queue: the actor owns the case."""
    with _case_step(case) as process:
        _require_fresh_view(case, seen_version)
        tasks = active_tasks(process, CaseFlow.follow_up, CaseFlow.own) if process else {}
        if (own := tasks.get(CaseFlow.own)) is not None:
            refuse_unless(activation_of(own).assign, actor,
                          NotAllowed(f"Only an agent of the case's team may claim {case.reference}."))
        may_claim_handed_off(actor, case).require()
        # Before the claim's own write: the grants' locks come before the audit head (the one lock order).
        _void_approvals(actor=actor, case=case, reason=f"{case.reference} was claimed by {actor.get_username()}")
        case = case_services.case_claim(actor=actor, case=case)
        if (waiting := pending_hand_off(case)) is not None:  # an AI agent's hand-off waited in the queue
            hand_off_pick_up(actor=actor, hand_off=waiting)
        if process:
            catch_up(process, case, tasks=tasks, read=False)
    return case


@audits_refusals("case.handover", object_type="case", object_from=case_of)
def case_flow_handover(*, actor, case: Case, to_user, note: str, seen_version: str | None = None) -> Case:
    """Reassign the ownership task to another agent of the team, with the note they will read first."""
    with _case_step(case) as process:
        _require_fresh_view(case, seen_version)
        tasks = active_tasks(process, CaseFlow.follow_up, CaseFlow.own) if process else {}
        if (own := tasks.get(CaseFlow.own)) is not None:
            refuse_unless(activation_of(own).reassign, actor,
                          NotCaseOwner(f"Only the owner of {case.reference} or a manager of its team may "
                                       "hand it over."))
        _void_approvals(actor=actor, case=case,
                        reason=f"{case.reference} was handed over to {getattr(to_user, 'username', to_user)}")
        case = case_services.case_handover(actor=actor, case=case, to_user=to_user, note=note)
        if process:
            catch_up(process, case, tasks=tasks, read=False)
    return case


@audits_refusals("case.resolve", object_type="case", object_from=case_of)
def case_flow_resolve(*, actor, case: Case, summary: str, seen_version: str | None = None) -> Case:
    """Complete the ownership task with a resolution summary; the follow-up period starts."""
    with _case_step(case) as process:
        _require_fresh_view(case, seen_version)
        tasks = active_tasks(process, CaseFlow.follow_up, CaseFlow.own) if process else {}
        if (own := tasks.get(CaseFlow.own)) is not None:
            refuse_unless(activation_of(own).start, actor,
                          NotCaseOwner(f"Only the owner of {case.reference} may resolve it."))
        case = case_services.case_resolve(actor=actor, case=case, summary=summary)
        if process:
            catch_up(process, case, tasks=tasks, read=False)
        _mail_rating_link(case)
    return case


@audits_refusals("case.reopen", object_type="case", object_from=case_of)
def case_flow_reopen(*, actor, case: Case, reason: str, seen_version: str | None = None) -> Case:
    """Reopen a resolved or closed case: the ownership task goes back to its last owner."""
    with transaction.atomic(durable=True):
        process = current_process(case)
        if process is None:  # closed: its run has ended; a new one starts at ownership
            _require_fresh_view(case, seen_version)
            _void_approvals(actor=actor, case=case, reason=f"{case.reference} was reopened")
            case = case_services.case_reopen(actor=actor, case=case, reason=reason)
            case_flow_adopt(case=case)
            return case
        with process_locked(CaseFlow, process.pk) as process:
            _require_fresh_view(case, seen_version)
            _void_approvals(actor=actor, case=case, reason=f"{case.reference} was reopened")
            case = case_services.case_reopen(actor=actor, case=case, reason=reason)
            catch_up(process, case)
    return case


def _void_approvals(*, actor, case: Case, reason: str) -> None:
    """Void the case's one-off grants before a step changes its owner or reopens it.

    Called before the case service, in the step's transaction: the void locks the case, then the
    grants, then the audit head, the one lock order; a refused step rolls the void back with it.
    """
    one_off_grants_void(actor=actor, case=case, reason=reason)


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


def _mail_rating_link(case: Case) -> None:
    """Queue the rating link to the customer in the resolving transaction (sent by a job after it commits)."""
    if Case.customer.is_cached(case):  # read with the case under its lock (case_resolve): the same row
        customer = {"name": case.customer.name, "email": case.customer.email}
    else:
        customer = Customer.objects.filter(pk=case.customer_id).values("name", "email").first()
    if not customer or not customer["email"]:
        return
    link = getattr(settings, "H2H_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/") + rating_url(case)
    body = (f"Dear {customer['name']},\n\nyour case {case.reference} is resolved: {case.resolution_summary}\n\n"
            f"How did we do? Rate the outcome from 1 to 5 here (no login needed):\n{link}\n")
    mail_queue(subject=f"{case.reference} is resolved: how did we do?", body=body, recipients=[customer["email"]],
               purpose="rating_link", case=case)
