"""Outbound mail: queued with the business change it reports, sent by a job, retried, never lost silently.

`mail_queue` writes an `OutboundMail` row and enqueues its `mail_send` job (queue `mail`) in the
caller's transaction: if the change rolls back, nothing is sent; if it commits, the mail goes out
at least once. The job claims the mail with one conditional UPDATE (pending, due, not leased: two
jobs for one mail never both send), sends it with `fail_silently=False` outside any transaction,
and records the outcome. A failure is retried after `H2H_MAIL_BACKOFF_SECONDS` (default 30 s),
doubling, at most an hour, plus up to 10 % jitter; after `H2H_MAIL_MAX_ATTEMPTS` (default 5) the
mail is failed: listed in the admin, which sends it again through `outbound_mail_retry` (audited).

`mail_sweep` (a job; run it every minute) re-enqueues pending mail that is due by more than
SWEEP_GRACE and not leased: its job was lost, or its worker died mid-send.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from h2h_core.audit import audit_record
from h2h_core.backoff import backoff_delay
from h2h_core.errors import DomainError, NotAllowed
from h2h_core.jobs import enqueue, in_database, task
from h2h_core.models import Case, MailStatus, OutboundMail
from h2h_core.transactions import service_atomic

logger = logging.getLogger("h2h.mail")

#: How long a claimed mail is reserved for its sender: well above any SMTP timeout.
LEASE = timedelta(minutes=5)
SWEEP_GRACE = timedelta(seconds=60)
SWEEP_BATCH = 500
BACKOFF_CAP_SECONDS = 3600
ERROR_TEXT_MAX = 500


def max_attempts() -> int:
    return max(1, int(getattr(settings, "H2H_MAIL_MAX_ATTEMPTS", 5)))


def retry_delay(attempts: int) -> timedelta:
    return backoff_delay(attempts, base=float(getattr(settings, "H2H_MAIL_BACKOFF_SECONDS", 30)),
                         cap=BACKOFF_CAP_SECONDS)


def mail_queue(*, subject: str, body: str, recipients: list[str], purpose: str,
               case: Case | None = None) -> OutboundMail | None:
    """Queue a mail in the caller's transaction; it is sent after the commit, by a job.

    Returns None when there is nobody to write to.
    """
    recipients = [address for address in recipients if address]
    if not recipients:
        return None
    mail = OutboundMail.objects.create(subject=subject[:250], body=body, recipients=recipients, purpose=purpose,
                                       case=case, next_attempt_at=timezone.now())
    enqueue(mail_send, mail.pk)
    return mail


def _claim(mail_id: int, now: datetime) -> OutboundMail | None:
    claimed = OutboundMail.objects.filter(pk=mail_id, status=MailStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lte=now)
    ).update(attempts=F("attempts") + 1, leased_until=now + LEASE, last_attempt_at=now)
    return OutboundMail.objects.get(pk=mail_id) if claimed else None


def mail_deliver(mail_id: int) -> str:
    """Send one queued mail if it is due and free; record the outcome; return what happened."""
    mail = _claim(mail_id, timezone.now())
    if mail is None:
        return "nothing to do"
    try:
        send_mail(mail.subject, mail.body, None, mail.recipients)  # raises on failure
    except Exception as error:  # noqa: BLE001 (any backend error is a failed attempt to record, not a crash)
        text = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
    else:
        text = ""
    now = timezone.now()
    mine = OutboundMail.objects.filter(pk=mail.pk, status=MailStatus.PENDING, attempts=mail.attempts)
    with transaction.atomic():
        if not text:
            mine.update(status=MailStatus.SENT, sent_at=now, leased_until=None, last_error="")
            return "sent"
        if mail.attempts >= max_attempts():
            mine.update(status=MailStatus.FAILED, failed_at=now, leased_until=None, last_error=text)
            outcome = f"failed after {mail.attempts} attempts: {text}"
        else:
            later = now + retry_delay(mail.attempts)
            if mine.update(next_attempt_at=later, leased_until=None, last_error=text):
                enqueue(mail_send, mail.pk, run_after=later)
            outcome = f"attempt {mail.attempts} failed ({text}); next at {later.isoformat()}"
    logger.warning("Mail %s (%s): %s", mail.pk, mail.purpose, outcome)
    return outcome


@task(queue_name="mail")
def mail_send(mail_id: int) -> str:
    """Send one queued mail (retries are enqueued as new jobs)."""
    return mail_deliver(mail_id)


def _waiting_jobs(mail_ids: list[int]) -> set[int]:
    from django_tasks_db.models import DBTaskResult

    from h2h_core.jobs import TaskResultStatus

    rows = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=mail_send.module_path,
                                       args_kwargs__args__0__in=mail_ids)
    return {row["args_kwargs"]["args"][0] for row in rows.values("args_kwargs")}


def mail_resend_stale(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> list[int]:
    """Re-enqueue pending mail that is due for a while, not leased, and has no job waiting; return its ids."""
    now = now or timezone.now()
    stale = list(OutboundMail.objects.filter(status=MailStatus.PENDING, next_attempt_at__lte=now - SWEEP_GRACE)
                 .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
                 .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:batch])
    # With jobs in the database a waiting job is visible: a queue that is merely behind is left alone.
    waiting = _waiting_jobs(stale) if stale and in_database() else set()
    requeued = [mail_id for mail_id in stale if mail_id not in waiting]
    with transaction.atomic():
        for mail_id in requeued:
            enqueue(mail_send, mail_id)
    if requeued:
        logger.warning("Mail sweep re-enqueued %s mail(s)", len(requeued))
    return requeued


@task(queue_name="mail")
def mail_sweep() -> str:
    """Re-enqueue stale pending mail (every minute)."""
    return f"{len(mail_resend_stale())} mail(s) re-enqueued"


def _mail_snapshot(mail: OutboundMail) -> dict:
    return {"purpose": mail.purpose, "case_id": mail.case_id, "status": mail.status, "attempts": mail.attempts,
            "last_error": mail.last_error, "failed_at": mail.failed_at}


def outbound_mail_retry(*, actor, mail: OutboundMail) -> OutboundMail:
    """Send a failed mail again, with a new round of attempts (superusers only; audited)."""
    if not actor.is_superuser:
        raise NotAllowed("Only administrators retry mail.")
    with service_atomic():
        mail = OutboundMail.objects.get(pk=mail.pk)
        before = _mail_snapshot(mail)
        now = timezone.now()
        # A failed mail changes only here: the conditional UPDATE lets one of two retries through.
        if not OutboundMail.objects.filter(pk=mail.pk, status=MailStatus.FAILED).update(
                status=MailStatus.PENDING, attempts=0, next_attempt_at=now, failed_at=None, leased_until=None):
            raise DomainError(f"Mail {mail.pk} is {mail.get_status_display().lower()}, not failed: "
                              "only failed mail is retried.")
        mail.refresh_from_db()
        enqueue(mail_send, mail.pk)
        audit_record(actor=actor, action="outbound_mail.retried", object_type="outbound_mail", object_id=mail.pk,
                     before=before, after=_mail_snapshot(mail))
    return mail
