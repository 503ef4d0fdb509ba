"""Mail goes out through a job: committed with the change it reports, retried with backoff, then failed, visibly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from h2h_core import mail as outbound
from h2h_core import services as case_services
from h2h_core.jobs import TaskResultStatus
from h2h_core.models import AuditEvent, CaseStatus, MailStatus, OutboundMail
from tests.factories import CaseFactory, UserFactory
from tests.jobs import failed_jobs, queued, run_jobs

pytestmark = pytest.mark.django_db

FAILING_BACKEND = "tests.h2h_core.test_mail_jobs.RefusingBackend"


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server unreachable")


def use_mail_backend(settings, backend: str) -> None:
    """Send the default mailer's mail through `backend`, under the setting this Django reads (MAILERS from 6.1)."""
    if hasattr(settings, "MAILERS"):
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def breached_case(alice, maria, retention):
    """A case of alice's whose resolution was due an hour ago."""
    return CaseFactory(owner=alice, team=retention, status=CaseStatus.OWNED,
                       resolution_due=timezone.now() - timedelta(hours=1))


def time_passes() -> None:
    now = timezone.now()
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=now)
    OutboundMail.objects.filter(status=MailStatus.PENDING).update(next_attempt_at=now)


def test_a_breach_queues_its_mail_with_the_change_and_a_job_sends_it(breached_case, alice, maria, mailoutbox):
    # when the breach is flagged
    case_services.case_sla_breach(case=breached_case, target="resolution")
    # then the mail is queued, not sent yet, about this case
    queued_mail = OutboundMail.objects.get()
    assert queued_mail.status == MailStatus.PENDING and queued_mail.case == breached_case
    assert queued_mail.purpose == "sla_breach" and sorted(queued_mail.recipients) == [alice.email, maria.email]
    assert mailoutbox == [] and queued("mail_send").get().queue_name == "mail"
    # when the worker runs the job, it is sent, once
    assert run_jobs() == 1
    assert [sorted(m.to) for m in mailoutbox] == [[alice.email, maria.email]]
    assert breached_case.reference in mailoutbox[0].subject
    sent = OutboundMail.objects.get()
    assert sent.status == MailStatus.SENT and sent.attempts == 1 and sent.sent_at
    assert run_jobs() == 0 and len(mailoutbox) == 1


def test_no_mail_when_the_business_transaction_rolls_back(breached_case, mailoutbox):
    # given the breach is flagged inside a unit of work that then fails
    with pytest.raises(RuntimeError), transaction.atomic():
        case_services.case_sla_breach(case=breached_case, target="resolution")
        raise RuntimeError("the caller's unit of work failed")
    # then nothing was queued, nothing is sent
    assert not OutboundMail.objects.exists() and not queued("mail_send").exists()
    run_jobs()
    assert mailoutbox == []


def test_a_failing_mail_server_is_retried_with_backoff_then_the_mail_fails_visibly(
        breached_case, mailoutbox, settings, root, client):
    settings.H2H_MAIL_MAX_ATTEMPTS = 3
    use_mail_backend(settings, FAILING_BACKEND)
    case_services.case_sla_breach(case=breached_case, target="resolution")
    delays = []
    for attempt in (1, 2):
        # when the job runs and the server refuses, the next attempt is a job for later
        run_jobs()
        waiting = OutboundMail.objects.get()
        assert waiting.status == MailStatus.PENDING and waiting.attempts == attempt
        assert "mail server unreachable" in waiting.last_error
        (job,) = queued("mail_send")
        assert job.run_after == waiting.next_attempt_at > timezone.now()
        delays.append((job.run_after - waiting.last_attempt_at).total_seconds())
        assert run_jobs() == 0
        time_passes()
    assert 30 <= delays[0] <= 34 and 60 <= delays[1] <= 67, delays
    # after the last attempt it is failed, no job waits, and no job crashed
    run_jobs()
    failed = OutboundMail.objects.get()
    assert failed.status == MailStatus.FAILED and failed.attempts == 3 and failed.failed_at
    assert not queued("mail_send").exists() and not failed_jobs().exists() and mailoutbox == []
    # and the administrator sees it among the failed mail
    client.force_login(root)
    changelist = reverse("admin:h2h_core_outboundmail_changelist")
    listing = client.get(changelist, {"status__exact": "failed"})
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert "mail server unreachable" in listing.text
    # when the server is back and they retry it, it is sent, and the retry is on the record
    use_mail_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert client.post(changelist, {"action": "retry_failed_mail", "_selected_action": [failed.pk]}).status_code == 302
    event = AuditEvent.objects.get(action="outbound_mail.retried")
    assert event.actor_username == "root" and event.before["status"] == "failed"
    run_jobs()
    assert OutboundMail.objects.get().status == MailStatus.SENT and len(mailoutbox) == 1


def test_retrying_mail_that_has_not_failed_is_refused_and_changes_nothing(breached_case, root, client):
    case_services.case_sla_breach(case=breached_case, target="resolution")
    mail = OutboundMail.objects.get()
    client.force_login(root)
    response = client.post(reverse("admin:h2h_core_outboundmail_changelist"),
                           {"action": "retry_failed_mail", "_selected_action": [mail.pk]}, follow=True)
    assert response.status_code == 200 and "only failed mail is retried" in response.text
    assert OutboundMail.objects.get().status == MailStatus.PENDING and queued("mail_send").count() == 1
    assert not AuditEvent.objects.filter(action="outbound_mail.retried").exists()


def test_the_sweep_re_enqueues_pending_mail_whose_job_was_lost(breached_case, mailoutbox):
    # given a queued mail whose job row is gone (a broker lost it; a worker crashed)
    case_services.case_sla_breach(case=breached_case, target="resolution")
    later = timezone.now() + timedelta(minutes=5)
    # the sweep leaves a mail alone while its job still waits
    assert outbound.mail_resend_stale(now=later) == []
    queued("mail_send").delete()
    # when the sweep runs, the mail is enqueued again, and sent once
    assert outbound.mail_resend_stale(now=later) == [OutboundMail.objects.get().pk]
    assert outbound.mail_sweep.call() == "0 mail(s) re-enqueued"
    run_jobs()
    assert len(mailoutbox) == 1 and OutboundMail.objects.get().status == MailStatus.SENT


def test_mail_to_nobody_is_not_queued(db):
    assert outbound.mail_queue(subject="x", body="y", recipients=["", ""], purpose="test") is None
    assert not OutboundMail.objects.exists()
