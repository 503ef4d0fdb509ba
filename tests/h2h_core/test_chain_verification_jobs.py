"""Chain verification runs as a job: requested once, run by a worker, incremental from a proven checkpoint.

An incremental run reads only the entries after the newest checkpoint that the last (passed) run
proved; a full run reads them all. The trade-off is tested too: an entry rewritten before that
checkpoint is found by the full run only.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from h2h_core.audit import audit_record, audit_seal
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.audit.jobs import chain_verification_run, chain_verification_scheduled
from h2h_core.audit.verification import chain_verification_request
from h2h_core.errors import NotAllowed
from h2h_core.jobs import enqueue
from h2h_core.models import AuditEvent, ChainVerification, Role
from tests.factories import UserFactory, successful_audit_events
from tests.jobs import queued, run_jobs

pytestmark = pytest.mark.django_db

Status = ChainVerification.Status


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    settings.H2H_AUDIT_PUBLIC_KEY = ""
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


def record(n: int) -> None:
    for index in range(n):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index)
    audit_seal()  # when the sealer has run (PostgreSQL; SQLite links at once)


def verify(actor, *, full: bool = False) -> ChainVerification:
    """Request a verification, let the worker run it, and return it as it finished."""
    verification, created = chain_verification_request(actor=actor, full=full)
    assert created
    run_jobs(queues="audit")
    verification.refresh_from_db()
    return verification


def tamper(seq: int, bypass_audit_triggers) -> None:
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=seq).update(reason="rewritten behind the chain's back")


# --- Requesting ---------------------------------------------------------------------------------------


def test_a_request_queues_a_job_that_a_worker_runs_to_a_passed_result(signing_key, audrey):
    # given three events and a checkpoint of them (entry 4 records its signing)
    record(3)
    audit_checkpoint_create()
    # when audrey requests a full verification
    verification, created = chain_verification_request(actor=audrey, full=True)
    # then it is queued, with its job, and the request is on the record
    assert created and verification.status == Status.QUEUED
    assert queued("chain_verification_run").count() == 1
    requested = AuditEvent.objects.get(action="audit.verification_requested")
    assert (requested.actor_username, requested.object_id) == ("audrey", str(verification.pk))
    # and when the worker runs it, it passes, with what it checked
    assert run_jobs(queues="audit") == 1
    verification.refresh_from_db()
    assert verification.status == Status.PASSED
    assert (verification.from_seq, verification.to_seq, verification.events_checked) == (1, 5, 5)
    assert verification.first_bad_seq is None
    assert verification.summary.startswith("Audit chain intact: 5 of 5 entries verified up to 5")
    assert [(c["seq"], c["ok"], c["event_seq"]) for c in verification.checkpoint_results] == [(3, True, 4)]
    assert verification.started_at <= verification.finished_at
    # and the outcome is on the record too
    finished = AuditEvent.objects.get(action="audit.chain_verified")
    assert finished.after["status"] == "passed" and finished.after["events_checked"] == 5


def test_a_second_request_while_one_is_queued_gets_the_queued_one(signing_key, audrey):
    # given a queued verification
    first, _ = chain_verification_request(actor=audrey)
    events = AuditEvent.objects.count()
    # when another is requested (full this time)
    second, created = chain_verification_request(actor=audrey, full=True)
    # then it is the queued one, and nothing new was queued or recorded
    assert (second.pk, created) == (first.pk, False)
    assert ChainVerification.objects.count() == 1 and queued("chain_verification_run").count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="simultaneous requests need PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_requests_queue_one_verification(signing_key, audrey):
    # given eight auditors' requests released at once
    barrier, results = threading.Barrier(8), []

    def request() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            results.append(chain_verification_request(actor=audrey))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one was created and queued, and every request got it
    assert len(results) == 8
    assert sum(created for _, created in results) == 1
    assert {verification.pk for verification, _ in results} == {ChainVerification.objects.get().pk}
    assert queued("chain_verification_run").count() == 1


def test_a_job_delivered_twice_runs_once(signing_key, audrey):
    # given a verification whose job is delivered twice
    verification, _ = chain_verification_request(actor=audrey)
    enqueue(chain_verification_run, verification.pk)
    # when the worker runs both
    assert run_jobs(queues="audit") == 2
    # then one ran and the other found nothing queued to do
    assert AuditEvent.objects.filter(action="audit.chain_verified").count() == 1
    verification.refresh_from_db()
    assert verification.status == Status.PASSED


def test_a_run_abandoned_by_its_worker_does_not_block_new_requests(signing_key, audrey, settings):
    # given a verification that has been "running" for longer than a run can take
    stuck, _ = chain_verification_request(actor=audrey)
    long_ago = timezone.now() - timedelta(hours=settings.H2H_AUDIT_VERIFICATION_STALE_HOURS + 1)
    ChainVerification.objects.filter(pk=stuck.pk).update(status=Status.RUNNING, started_at=long_ago)
    # when a new one is requested
    fresh, created = chain_verification_request(actor=audrey)
    # then the stuck one is marked not completed, and the new one is queued
    stuck.refresh_from_db()
    assert created and fresh.pk != stuck.pk
    assert stuck.status == Status.ERROR and "Abandoned" in stuck.summary


def test_an_agent_cannot_request_a_verification_and_nothing_is_created(signing_key, alice):
    # given an agent
    before = successful_audit_events()
    # when she requests a verification
    with pytest.raises(NotAllowed, match="Only auditors read the audit log, export evidence and verify the chain"):
        chain_verification_request(actor=alice, full=True)
    # then nothing was created or queued, and the refusal is on the record
    assert not ChainVerification.objects.exists() and not queued().exists()
    assert successful_audit_events() == before
    refused = AuditEvent.objects.get(action="audit.verification_request.refused")
    assert (refused.actor_username, refused.outcome) == ("alice", "denied")


def test_the_schedule_requests_verifications_as_the_system(signing_key):
    # given the periodic job
    record(2)
    enqueue(chain_verification_scheduled, full=True)
    # when the worker runs it (and the verification it queues)
    run_jobs(queues="audit")
    # then a full verification by nobody in particular passed
    verification = ChainVerification.objects.get()
    assert (verification.requested_by, verification.mode, verification.status) == (None, "full", Status.PASSED)


# --- Incremental runs ---------------------------------------------------------------------------------


def test_an_incremental_run_after_a_passed_run_checks_only_the_entries_after_its_checkpoint(signing_key, audrey):
    # given a passed full run that proved the checkpoint at entry 3 (entries 1 to 5 verified)
    record(3)
    audit_checkpoint_create()
    assert verify(audrey, full=True).status == Status.PASSED  # its outcome is entry 6
    # and two more events (7, 8)
    record(2)
    # when an incremental run is requested (entry 9) and run
    incremental = verify(audrey)
    # then it started after the checkpoint: entries 4 to 9 only
    assert incremental.status == Status.PASSED
    assert (incremental.from_seq, incremental.to_seq, incremental.events_checked) == (4, 9, 6)
    assert incremental.summary.startswith("Audit chain intact: 6 new entries verified, 4 to 9")
    assert incremental.summary.endswith(
        "after the checkpoint at entry 3, which an earlier verification proved; 9 entries in all")
    assert incremental.anchor_checkpoint_id is not None


def test_the_next_incremental_run_starts_from_the_newest_checkpoint_proven(signing_key, audrey):
    # given an incremental run that proved a newer checkpoint (at entry 7) after the first (at entry 3)
    record(3)
    audit_checkpoint_create()
    verify(audrey, full=True)  # entries 5 (request) and 6 (outcome)
    audit_checkpoint_create()  # at entry 6, recorded as 7
    verify(audrey)  # 8 and 9
    # when the next incremental run comes (entry 10)
    latest = verify(audrey)
    # then it reads only what follows the newer checkpoint
    assert (latest.from_seq, latest.to_seq, latest.events_checked) == (7, 10, 4)


def test_an_incremental_run_without_a_proven_checkpoint_verifies_everything(signing_key, audrey):
    # given events but no verification yet
    record(2)
    # when an incremental run is requested
    verification = verify(audrey)
    # then it verified from the first entry, and says why
    assert (verification.status, verification.from_seq, verification.events_checked) == (Status.PASSED, 1, 3)
    assert any("the whole chain was verified" in warning for warning in verification.warnings)


def test_an_incremental_run_names_an_entry_altered_after_the_last_checkpoint(signing_key, audrey,
                                                                           bypass_audit_triggers):
    # given a passed run proving the checkpoint at entry 3, then more events
    record(3)
    audit_checkpoint_create()
    verify(audrey, full=True)
    record(2)  # entries 7 and 8
    # when entry 7 is altered behind the chain's back
    tamper(7, bypass_audit_triggers)
    # then the incremental run fails and names it
    incremental = verify(audrey)
    assert incremental.status == Status.FAILED
    assert incremental.first_bad_seq == 7 and incremental.from_seq == 4
    assert "Audit chain BROKEN at entry 7: entry 7 was altered" in incremental.summary


def test_an_entry_altered_before_the_proven_checkpoint_is_found_by_the_full_run_only(signing_key, audrey,
                                                                                   bypass_audit_triggers):
    # given a passed run proving the checkpoint at entry 3
    record(3)
    audit_checkpoint_create()
    verify(audrey, full=True)
    # when entry 2, before that checkpoint, is altered
    tamper(2, bypass_audit_triggers)
    # then an incremental run, which trusts the earlier run up to the checkpoint, still passes
    assert verify(audrey).status == Status.PASSED
    # but a full run finds it
    full = verify(audrey, full=True)
    assert (full.status, full.first_bad_seq) == (Status.FAILED, 2)
    # and after that failure, the next incremental run verifies everything again and fails too
    again = verify(audrey)
    assert (again.status, again.from_seq, again.first_bad_seq) == (Status.FAILED, 1, 2)


# --- The auditor's page -------------------------------------------------------------------------------


def test_the_page_queues_a_verification_and_shows_its_result_after_the_worker_ran(client, signing_key, audrey):
    # given a checkpoint
    record(2)
    audit_checkpoint_create()
    client.force_login(audrey)
    # when audrey asks for a full verification on the page
    response = client.post(reverse("audit:verify_request"), {"scope": "full"}, follow=True)
    # then it is queued, and the page says so and reloads itself until it is done
    verification = ChainVerification.objects.get()
    assert (verification.mode, verification.status) == ("full", Status.QUEUED)
    page = response.text
    assert f"Verification {verification.pk} (full) is queued" in page
    assert '<meta http-equiv="refresh"' in page and "waiting for a worker" in page
    # and when the worker has run it, the page shows the result
    total = AuditEvent.objects.count()
    run_jobs(queues="audit")
    page = client.get(reverse("audit:verify")).text
    assert f"Audit chain intact: {total} of {total} entries verified up to {total}" in page
    assert "signature valid, matches the chain" in page
    assert '<meta http-equiv="refresh"' not in page


def test_the_page_says_a_second_request_got_the_queued_one(client, signing_key, audrey):
    # given a queued verification
    queued_one, _ = chain_verification_request(actor=audrey)
    client.force_login(audrey)
    # when audrey asks again
    page = client.post(reverse("audit:verify_request"), {"scope": "incremental"}, follow=True).text
    # then the page says the queued one stands, and nothing new was queued
    assert f"Verification {queued_one.pk} is already queued" in page and "no second one was queued" in page
    assert ChainVerification.objects.count() == 1


def test_an_agent_posting_the_request_is_refused_and_nothing_is_created(client, signing_key, alice):
    # given an agent
    client.force_login(alice)
    # when she posts the request form
    response = client.post(reverse("audit:verify_request"), {"scope": "full"})
    # then she is refused, and nothing was queued
    assert response.status_code == 403
    assert not ChainVerification.objects.exists() and not queued().exists()


def test_a_request_without_a_valid_scope_is_shown_again_and_queues_nothing(client, signing_key, audrey):
    # given audrey on the page
    client.force_login(audrey)
    # when the form arrives with a scope that is not offered
    response = client.post(reverse("audit:verify_request"), {"scope": "everything"})
    # then the page says what to choose, and nothing was queued
    assert response.status_code == 400
    assert "Choose what to verify" in response.text
    assert not ChainVerification.objects.exists() and not queued().exists()
