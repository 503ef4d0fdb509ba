"""The audit sealer (PostgreSQL): events written without their chain link are linked after commit, each once.

These tests commit for real (transactional, so other connections see the rows) and run writers
and the sealer on threads, each with its own database connection, as app servers and workers do.
"""

import threading

import pytest
from django.db import connection, connections, transaction

from h2h_core.audit import GENESIS_HASH, audit_record, audit_seal, event_hash
from h2h_core.audit.chain import HASHED_FIELDS
from h2h_core.audit.seal_lag import seal_lag
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent, AuditHead

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

EVENTS = "h2h_core_auditevent"


def record(index: int = 0) -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=None, action="case.note_added", object_type="case", object_id=index)


def on_own_connection(work):
    """Wrap `work` to run on a thread's own connection, closed at the end, keeping the first error."""
    errors = []

    def run(*args):
        try:
            work(*args)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    return run, errors


def chain() -> list[dict]:
    return list(AuditEvent.objects.order_by("seq").values(*HASHED_FIELDS, "hash", "sealed_at"))


def test_concurrent_writers_and_a_running_sealer_leave_every_event_sealed_exactly_once():
    # given four writers recording 60 events each while the sealer runs again and again
    writers, per_writer = 4, 60
    done = threading.Event()

    def write(writer: int):
        for index in range(per_writer):
            record(writer * 1000 + index)

    def seal():
        while not done.is_set():
            audit_seal(batch=7)  # small batches: several per run

    sealer_run, sealer_errors = on_own_connection(seal)
    writer_run, writer_errors = on_own_connection(write)
    sealer = threading.Thread(target=sealer_run)
    threads = [threading.Thread(target=writer_run, args=(writer,)) for writer in range(writers)]
    sealer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sealer.join()
    assert writer_errors == [] and sealer_errors == []
    # when the sealer runs once more after the writers
    audit_seal()
    # then every event is sealed, numbered 1..N without gaps, each linking to the one before
    rows = chain()
    assert len(rows) == writers * per_writer == AuditEvent.objects.count()
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(rows, rows[1:], strict=False))
    assert all(event_hash(row) == row["hash"] for row in rows)
    assert sorted(int(row["object_id"]) for row in rows) == sorted(
        writer * 1000 + index for writer in range(writers) for index in range(per_writer))
    head = AuditHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (rows[-1]["seq"], rows[-1]["hash"])
    report = verify_chain()
    assert report.ok and report.count == len(rows) and report.pending == 0, report.summary()


def test_an_event_of_a_transaction_still_open_is_sealed_by_a_later_run_not_lost():
    # given an event committed before, and a transaction that recorded one and stays open
    record(1)
    recorded, release = threading.Event(), threading.Event()

    def open_transaction():
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=2)
            recorded.set()
            release.wait(30)

    run, errors = on_own_connection(open_transaction)
    writer = threading.Thread(target=run)
    writer.start()
    assert recorded.wait(30)
    record(3)  # committed after the open transaction began
    try:
        # when the sealer runs while it is open
        first = audit_seal()
        # then the committed events are sealed and the open one's is not (the sealer cannot see it)
        sealed = list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("object_id", "seq"))
    finally:
        release.set()
        writer.join()
    assert errors == []
    assert first == 2 and sealed == [("1", 1), ("3", 2)]
    assert verify_chain().pending == 1
    # when it has committed and the sealer runs again
    second = audit_seal()
    # then its event is sealed after them, and the chain is whole
    assert second == 1
    assert list(AuditEvent.objects.order_by("seq").values_list("object_id", "seq")) == [("1", 1), ("3", 2), ("2", 3)]
    report = verify_chain()
    assert report.ok and report.count == 3 and report.pending == 0


def test_a_rolled_back_transaction_leaves_nothing_to_seal():
    # given a transaction that records an event and then fails
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="case.note_added", object_type="case", object_id=1)
        raise RuntimeError("the change failed")
    # when the sealer runs
    sealed = audit_seal()
    # then there was nothing: no event, the head unmoved
    assert sealed == 0 and not AuditEvent.objects.exists()
    assert AuditHead.objects.get(pk=1).seq == 0


def test_unsealed_events_are_pending_not_broken_and_show_in_the_lag():
    # given two sealed events and one written after the sealer ran
    record(1)
    record(2)
    audit_seal()
    record(3)
    # when the chain is verified and the lag measured
    report = verify_chain()
    lag = seal_lag()
    # then the sealed ones verify, the third is reported as waiting, not as a break
    assert report.ok and report.count == 2 and report.pending == 1
    assert "1 newer entry waiting to be sealed" in report.summary()
    assert lag.pending == 1 and lag.sample == 2 and lag.p99 >= 0


def test_a_sealed_event_cannot_be_sealed_again_or_unsealed(audit_refusal):
    # given a sealed event
    record(1)
    audit_seal()
    event = AuditEvent.objects.get()
    before = AuditEvent.objects.filter(pk=event.pk).values().get()
    # when anyone tries to relink it, or to take it out of the chain
    for statement in (f"UPDATE {EVENTS} SET seq = 7, hash = repeat('a', 64) WHERE id = %s",
                      f"UPDATE {EVENTS} SET seq = NULL WHERE id = %s"):
        with audit_refusal(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [event.pk])
    # then the database refused, and it is exactly as it was
    assert AuditEvent.objects.filter(pk=event.pk).values().get() == before


def test_sealing_may_not_change_anything_else_of_the_event(audit_refusal):
    # given an unsealed event
    event = record(1)
    # when an update sets its link and rewrites its reason in the same statement
    with audit_refusal(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {EVENTS} SET seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64), "
                       "sealed_at = now(), reason = 'rewritten' WHERE id = %s", [event.pk])
    # then it was refused: the event is still unsealed and unchanged, and the sealer seals it normally
    assert AuditEvent.objects.filter(pk=event.pk, seq__isnull=True, reason="").exists()
    assert audit_seal() == 1 and verify_chain().ok


def test_an_unsealed_event_taken_out_of_the_chain_behind_its_back_is_named(bypass_audit_triggers):
    # given three sealed events
    for index in range(3):
        record(index)
    audit_seal()
    # when the owner, past the triggers, makes entry 2 look unsealed again
    with transaction.atomic(), bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {EVENTS} SET seq = NULL, prev_hash = '', hash = '' WHERE seq = 2")
        report = verify_chain()
    # then verification names entry 2 as missing from the chain
    assert not report.ok and report.first_bad_seq == 2 and "missing" in report.message


def test_only_one_sealer_runs_at_a_time():
    # given an event, and another sealer holding the sealer's lock
    from h2h_core.audit.sealer import SEALER_LOCK

    record(1)
    holding, release = threading.Event(), threading.Event()

    def other_sealer():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK])
            holding.set()
            release.wait(30)

    run, errors = on_own_connection(other_sealer)
    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(30)
    try:
        # when this one runs meanwhile
        sealed = audit_seal()
    finally:
        release.set()
        thread.join()
    # then it does nothing at once (the other one seals), and seals once the lock is free
    assert errors == [] and sealed == 0
    assert audit_seal() == 1
