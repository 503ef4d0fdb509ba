"""Idempotency-Key after a fault: a retry gets a definitive answer within seconds, and nothing runs twice.

The first attempt's database session is killed (pg_terminate_backend) while its thread stays
blocked, as a killed worker process would: it never gets to store or release anything.
"""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authority.errors import IdempotencyConflict
from authority.models import AuthorityKind, Decision, Grant, IdempotencyRecord
from authority.services import GrantTerms, decision_execute, grant_change, grant_create
from edges.api.idempotency import fingerprint_of
from h2h_core.models import AuditEvent, Case
from tests.factories import CaseFactory, CustomerFactory
from workflows import services as flow_steps
from workflows.models import CaseProcess

from .helpers import assert_error_shape, client_for, grant_refund, idempotency_records, state

DECISIONS = "/api/v1/decisions/"
CASES = "/api/v1/cases/"
GRANTS = "/api/v1/grants/"
KEY = "refund-1"


def refund(case, amount="200.00"):
    return {"case": case.pk, "kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Double charge"}


class FirstAttempt:
    """The first request with the key, in its own thread and session, held at a chosen point of its work."""

    def __init__(self, user, payload, *, hold: str, monkeypatch, endpoint=DECISIONS,
                 service=("edges.api.views.decisions.decision_execute", decision_execute)):
        self.user, self.payload, self.hold, self.endpoint = user, payload, hold, endpoint
        self.reached, self.go_on = threading.Event(), threading.Event()
        self.backend_pid = None
        self.outcome: list = []
        target, self.service = service
        monkeypatch.setattr(target, self._service)
        self.thread = threading.Thread(target=self._post)

    def _service(self, **kwargs):
        if threading.current_thread() is not self.thread:
            return self.service(**kwargs)
        if self.hold == "after_commit":
            done = self.service(**kwargs)
            self._pause()
            return done
        self._pause()
        return self.service(**kwargs)

    def _pause(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend_pid = cursor.fetchone()[0]
        self.reached.set()
        assert self.go_on.wait(timeout=60)

    def _post(self):
        try:
            response = client_for(self.user).post(self.endpoint, self.payload, format="json",
                                                  HTTP_IDEMPOTENCY_KEY=KEY)
            self.outcome.append(response.status_code)
        except BaseException as error:  # a dead session may surface as an exception: reported, not lost
            self.outcome.append(error)
        finally:
            connection.close()

    def start(self):
        self.thread.start()
        assert self.reached.wait(timeout=30), "the first attempt never reached its service"

    def kill_session(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [self.backend_pid])

    def finish(self):
        self.go_on.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def retry_until_definitive(client, payload, *, within: float, endpoint=DECISIONS):
    """Send the same request as a client would, again after each 409, for `within` seconds.

    Return the last response and the 409s before it.
    """
    deadline, in_progress = time.monotonic() + within, []
    while True:
        response = client.post(endpoint, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response, in_progress
        in_progress.append(response)
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL session")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("hold", ["before_the_service", "after_commit"])
def test_a_retry_after_the_first_attempts_session_is_killed_gets_a_definitive_answer_at_once(alice, retention,
                                                                                            monkeypatch, hold):
    # given a first attempt whose session dies mid-request (before its service ran, or after it
    # committed), in a process that never runs another line
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention)
    payload = refund(case)
    first = FirstAttempt(alice, payload, hold=hold, monkeypatch=monkeypatch)
    first.start()
    try:
        first.kill_session()
        # when the client retries with the same key
        started = time.monotonic()
        response, in_progress = retry_until_definitive(client_for(alice), payload, within=5)
        # then within seconds it gets the decision, made exactly once, and the answer is stored
        assert response.status_code == 201, (response.status_code, response.content[:300])
        assert time.monotonic() - started < 5
        assert all(r.status_code == 409 and r["Retry-After"].isdigit() for r in in_progress)
        (decision,) = Decision.objects.all()
        assert response.json()["id"] == decision.pk
        assert idempotency_records() == [(KEY, "done", 201)]
    finally:
        # and when the stuck first attempt wakes up on its dead session, it changes nothing more
        first.finish()
    assert Decision.objects.count() == 1 and idempotency_records() == [(KEY, "done", 201)]
    assert AuditEvent.objects.filter(action="decision.executed").count() == 1
    replay = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert replay.status_code == 201 and replay.json() == response.json() and replay["Idempotent-Replayed"] == "true"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a second PostgreSQL session")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_while_the_first_attempt_runs_a_retry_is_409_with_retry_after_and_then_its_replay(alice, retention,
                                                                                         monkeypatch):
    # given a first attempt that is alive and still running
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention)
    payload = refund(case)
    first = FirstAttempt(alice, payload, hold="before_the_service", monkeypatch=monkeypatch)
    first.start()
    try:
        before = state()
        # when the client retries, and when it sends another body with the same key
        retry = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        other = client_for(alice).post(DECISIONS, refund(case, "300.00"), format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        # then the retry is told when to come back, the other body is a conflict, and nothing ran
        body = assert_error_shape(retry, 409, "idempotency_in_progress")
        assert retry["Retry-After"] == "1" and body["details"]["retry_after_seconds"] == 1
        assert_error_shape(other, 422, "idempotency_conflict")
        assert state() == before and not Decision.objects.exists()
    finally:
        first.finish()
    # and once the first attempt is done, the retry gets its answer
    assert first.outcome == [201]
    replay = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert Decision.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL advisory locks")
@pytest.mark.django_db
def test_a_fresh_record_whose_session_is_gone_is_taken_over_at_once(as_alice, alice, case_owned_by_alice,
                                                                     alice_may_refund_500):
    # given a record claimed a moment ago under a session lock that nobody holds any more
    payload = refund(case_owned_by_alice)
    IdempotencyRecord.objects.create(user=alice, key=KEY, endpoint=f"POST {DECISIONS}",
                                     fingerprint=fingerprint_of(endpoint=f"POST {DECISIONS}", body=payload),
                                     created_at=timezone.now(), held_by_session=True)
    # when the client retries
    response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then it runs now, once
    assert response.status_code == 201 and Decision.objects.count() == 1
    assert idempotency_records() == [(KEY, "done", 201)]


@pytest.mark.django_db
def test_every_in_progress_409_says_when_to_retry(as_alice, alice, case_owned_by_alice, alice_may_refund_500):
    # given a record in progress that no lock vouches for (SQLite; or claimed by an older release)
    payload = refund(case_owned_by_alice)
    IdempotencyRecord.objects.create(user=alice, key=KEY, endpoint=f"POST {DECISIONS}",
                                     fingerprint=fingerprint_of(endpoint=f"POST {DECISIONS}", body=payload),
                                     created_at=timezone.now())
    before = state()
    # when the retry arrives
    response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then it is a 409 with Retry-After in seconds, and nothing ran
    body = assert_error_shape(response, 409, "idempotency_in_progress")
    assert response["Retry-After"] == "1" and body["details"] == {"retry_after_seconds": 1}
    assert state() == before and not Decision.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL session")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_case_opened_before_the_first_attempts_session_was_killed_is_the_retrys_answer(alice, monkeypatch):
    # given a first attempt whose case (and its flow) committed, and whose session then died
    payload = {"customer": CustomerFactory().pk, "subject": "Charged twice", "category": "billing_error",
               "amount_at_stake": "89.90", "currency": "EUR"}
    first = FirstAttempt(alice, payload, hold="after_commit", monkeypatch=monkeypatch, endpoint=CASES,
                         service=("workflows.services.case_flow_open", flow_steps.case_flow_open))
    first.start()
    try:
        first.kill_session()
        # when the client retries with the same key
        response, _ = retry_until_definitive(client_for(alice), payload, within=5, endpoint=CASES)
        # then the answer names the one case there is, with its one flow
        assert response.status_code == 201, (response.status_code, response.content[:300])
        (case,) = Case.objects.all()
        assert response.json()["id"] == case.pk
        assert CaseProcess.objects.filter(case_id=case.pk).count() == 1
    finally:
        first.finish()
    assert Case.objects.count() == 1 and idempotency_records() == [(KEY, "done", 201)]
    assert AuditEvent.objects.filter(action="case.opened").count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL session")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_grant_made_before_the_first_attempts_session_was_killed_is_the_retrys_answer(maria, alice, monkeypatch):
    # given a first attempt whose grant committed, and whose session then died
    payload = {"kind": "refund", "per_case_limit": "300.00", "period_limit": "900.00", "period": "month",
               "currency": "EUR", "reason": "New starter", "subject_user": "alice"}
    first = FirstAttempt(maria, payload, hold="after_commit", monkeypatch=monkeypatch, endpoint=GRANTS,
                         service=("edges.api.views.grants.grant_create", grant_create))
    first.start()
    try:
        first.kill_session()
        # when the client retries with the same key
        response, _ = retry_until_definitive(client_for(maria), payload, within=5, endpoint=GRANTS)
        # then the answer names the one grant there is
        assert response.status_code == 201, (response.status_code, response.content[:300])
        (grant,) = Grant.objects.filter(subject_user=alice)
        assert response.json()["id"] == grant.pk
    finally:
        first.finish()
    assert Grant.objects.filter(subject_user=alice).count() == 1 and idempotency_records() == [(KEY, "done", 201)]
    assert AuditEvent.objects.filter(action="grant.created").count() == 1


# --- PostgreSQL: the claim lock rides on the record's own statements -------------------------------


def advisory_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return cursor.fetchone()[0]


def lock_statements_of_their_own(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries
            if q["sql"].lstrip().startswith(("SELECT pg_try_advisory_lock", "SELECT pg_advisory_unlock"))]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's advisory claim lock")
@pytest.mark.parametrize("outcome", ["decided", "refused", "released", "server_error"])
@pytest.mark.django_db
def test_a_keyed_request_takes_and_drops_its_claim_lock_in_its_own_statements(as_alice, case_owned_by_alice,
                                                                              alice_may_refund_500, monkeypatch,
                                                                              outcome):
    # given a keyed request that ends each way a request can: stored (a decision, a refusal) or released
    payload = refund(case_owned_by_alice, "1200.00" if outcome == "refused" else "200.00")
    if outcome == "released":
        payload["case"] = 987654  # no such case: 404, the key is released
    if outcome == "server_error":
        def broken(**kwargs):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr("edges.api.views.decisions.decision_execute", broken)
    # when it is sent
    with CaptureQueriesContext(connection) as captured:
        response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then it answered as it should, with no lock statement of its own, and left no lock behind
    expected = {"decided": (201, [(KEY, "done", 201)]), "refused": (403, [(KEY, "done", 403)]),
                "released": (404, []), "server_error": (500, [])}[outcome]
    assert (response.status_code, idempotency_records()) == expected
    assert lock_statements_of_their_own(captured) == []
    assert sum("pg_try_advisory_lock" in q["sql"] for q in captured.captured_queries) == 1  # in the claim
    assert advisory_locks_held() == 0


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's advisory claim lock")
@pytest.mark.django_db
def test_a_claim_whose_statement_fails_leaves_no_lock_behind(as_alice, case_owned_by_alice, alice_may_refund_500,
                                                            monkeypatch):
    # given a claim statement that fails once it holds the lock (here: a division by zero when it does)
    from edges.api import idempotency

    monkeypatch.setattr(idempotency, "_CLAIM_TAKING_LOCK", idempotency._CLAIM_TAKING_LOCK.replace(
        "LEFT JOIN claimed ON TRUE", "LEFT JOIN claimed ON 1 / (1 - claim_lock.held::int) = 1"))
    # when a keyed request is sent
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then it is a 500, the session holds no claim lock, and nothing was claimed or decided
    assert_error_shape(response, 500, "server_error")
    assert advisory_locks_held() == 0
    assert idempotency_records() == [] and not Decision.objects.exists()


@pytest.mark.django_db
def test_a_retry_whose_takeover_finds_the_record_just_stored_answers_with_it(as_alice, alice, case_owned_by_alice,
                                                                             alice_may_refund_500, monkeypatch):
    # given a first attempt that stores its answer between the retry's read of the record (still in
    # progress, under a claim lock nobody holds) and the retry's takeover: on PostgreSQL the store drops
    # the lock a moment before it commits
    from edges.api import idempotency

    payload = refund(case_owned_by_alice)
    endpoint = f"POST {DECISIONS}"
    record = IdempotencyRecord.objects.create(user=alice, key=KEY, endpoint=endpoint,
                                              fingerprint=fingerprint_of(endpoint=endpoint, body=payload),
                                              created_at=timezone.now(), held_by_session=True)
    first_answer = {"id": 4711, "stored": "by the first attempt"}
    read_in_progress = idempotency._answer_existing

    def first_attempt_stores_meanwhile(existing, **kwargs):
        answer = read_in_progress(existing, **kwargs)
        if answer is None:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                state=IdempotencyRecord.State.DONE, response_status=201, response_body=first_answer)
        return answer

    monkeypatch.setattr(idempotency, "_answer_existing", first_attempt_stores_meanwhile)
    # when the retry arrives
    response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then it answers with what the first attempt stored, runs nothing, and holds no lock
    assert response.status_code == 201 and response.json() == first_answer
    assert response["Idempotent-Replayed"] == "true"
    assert not Decision.objects.exists() and idempotency_records() == [(KEY, "done", 201)]
    if connection.vendor == "postgresql":
        assert advisory_locks_held() == 0


# --- the services behind every keyed create know the key: a taken-over retry finds what was committed ---


def open_case(actor, customer, *, subject="Charged twice", key=KEY):
    return flow_steps.case_flow_open(actor=actor, customer=customer, subject=subject, category="billing_error",
                                     amount_at_stake="89.90", currency="EUR", idempotency_key=key)


@pytest.mark.django_db
def test_opening_a_case_again_with_its_key_returns_that_case_and_another_opening_is_refused(alice):
    # given a case opened with a key
    customer = CustomerFactory()
    opened = open_case(alice, customer)
    before, events = state(), AuditEvent.objects.count()
    # when the same opening comes again with the key, and a different one with the same key
    again = open_case(alice, customer)
    with pytest.raises(IdempotencyConflict):
        open_case(alice, customer, subject="Another problem")
    # then the first answer is the case already opened, with its one flow, and nothing else changed
    assert again.pk == opened.pk
    assert CaseProcess.objects.filter(case_id=opened.pk).count() == 1
    assert state() == before and AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_keys_of_case_openings_belong_to_who_opens(alice, bob):
    customer = CustomerFactory()
    assert open_case(alice, customer).pk != open_case(bob, customer).pk
    assert Case.objects.count() == 2


@pytest.mark.django_db
def test_a_grant_created_or_changed_again_with_its_key_returns_the_version_it_wrote(maria, alice):
    # given a grant made with a key, and a change of it made with another
    kind = AuthorityKind.objects.get(code="refund")
    terms = GrantTerms(per_case_limit=Decimal("300"), period_limit=Decimal("900"), period="month", currency="EUR")
    made = grant_create(actor=maria, kind=kind, terms=terms, reason="New starter", user=alice, idempotency_key="g1")
    raised = GrantTerms(per_case_limit=Decimal("400"), period_limit=Decimal("900"), period="month", currency="EUR")
    changed = grant_change(actor=maria, grant=made, terms=raised, reason="Trained", idempotency_key="g2")
    before, events = state(), AuditEvent.objects.count()
    # when each comes again with its key (the change is not refused for having a successor now)
    again = grant_create(actor=maria, kind=kind, terms=terms, reason="New starter", user=alice, idempotency_key="g1")
    changed_again = grant_change(actor=maria, grant=made, terms=raised, reason="Trained", idempotency_key="g2")
    # then each answer is the version already written, and nothing changed
    assert (again.pk, changed_again.pk) == (made.pk, changed.pk)
    assert state() == before and AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_grant_key_used_for_something_else_is_refused_and_changes_nothing(maria, alice):
    kind = AuthorityKind.objects.get(code="refund")
    terms = GrantTerms(per_case_limit=Decimal("300"), currency="EUR")
    made = grant_create(actor=maria, kind=kind, terms=terms, reason="New starter", user=alice, idempotency_key="g1")
    before = state()
    with pytest.raises(IdempotencyConflict):
        grant_create(actor=maria, kind=kind, terms=GrantTerms(per_case_limit=Decimal("301"), currency="EUR"),
                     reason="New starter", user=alice, idempotency_key="g1")
    with pytest.raises(IdempotencyConflict):
        grant_change(actor=maria, grant=made, terms=terms, reason="New starter", idempotency_key="g1")
    assert state() == before
