"""A long chain is walked by several processes at once (PostgreSQL), with the one-process walk's verdicts."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from h2h_core.audit import audit_record, audit_seal, event_hash, verify_segments
from h2h_core.audit.chain import HASHED_FIELDS
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the helpers share a PostgreSQL snapshot")
# The helpers are other processes: they see only what this test committed.
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)

EVENTS = "h2h_core_auditevent"


@pytest.fixture
def small_segments(monkeypatch):
    """Share even a short walk, in blocks of 4 entries, so segments and blocks are many."""
    monkeypatch.setattr(verify_segments, "PARALLEL_FROM", 0)
    monkeypatch.setattr(verify_segments, "BLOCK", 4)


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "keys" / "audit_signing_key.pem"
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


def record(n: int) -> None:
    for index in range(n):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index,
                         after={"note": f"note {index}", "n": index})
    audit_seal()


def a_chain_with_checkpoints() -> None:
    """Entries with signed trees inside blocks and on a block's border, in every segment."""
    for count in (9, 4, 6, 13):  # each signing is one more entry: checkpoints at 9, 14, 21, 35
        record(count)
        audit_checkpoint_create()


@on_postgres
@committed
def test_a_shared_walk_proves_an_intact_chain_as_one_process_does(small_segments, signing_key):
    # given a chain of 36 entries with four signed trees
    a_chain_with_checkpoints()
    # when it is verified by three processes, and by one
    shared = verify_chain(processes=3)
    alone = verify_chain(processes=1)
    # then three walked it, and they found what one process finds: intact, every signed root matching
    assert (shared.processes, alone.processes) == (3, 1)
    assert shared.ok and alone.ok
    assert shared.summary() == alone.summary()
    assert (shared.count, shared.last_seq, shared.last_hash) == (alone.count, alone.last_seq, alone.last_hash)
    assert [result.as_dict() for result in shared.checkpoints] == [result.as_dict() for result in alone.checkpoints]
    assert len(shared.checkpoints) == 4 and all(result.ok for result in shared.checkpoints)


@on_postgres
@committed
@pytest.mark.parametrize("seq", [3, 13, 26, 36], ids=["first segment", "a helper's first entry", "mid-segment",
                                                      "the last entry"])
def test_an_altered_entry_is_named_as_one_process_names_it(small_segments, signing_key, bypass_audit_triggers, seq):
    # given a chain of 36 entries, one of which is rewritten behind the database's back
    a_chain_with_checkpoints()
    with transaction.atomic(), bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {EVENTS} SET reason = 'rewritten' WHERE seq = %s", [seq])
    # when the chain is verified by three processes, and by one
    shared = verify_chain(processes=3)
    alone = verify_chain(processes=1)
    # then both name that entry, in the same words
    assert not shared.ok and shared.first_bad_seq == seq
    assert shared.summary() == alone.summary()
    assert shared.count == alone.count


@on_postgres
@committed
def test_an_entry_removed_at_a_segment_border_is_named(small_segments, signing_key, bypass_audit_triggers):
    # given a chain of 36 entries whose entry 13, the first of a helper's segment, was deleted
    a_chain_with_checkpoints()
    assert verify_segments.borders(after_seq=0, head_seq=36, processes=3, block=4) == [12, 24]
    with transaction.atomic(), bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {EVENTS} WHERE seq = 13")
    # when the chain is verified by three processes
    report = verify_chain(processes=3)
    # then entry 13 is named missing, as one process names it
    assert not report.ok and report.first_bad_seq == 13
    assert "missing" in report.summary()
    assert report.summary() == verify_chain(processes=1).summary()


@on_postgres
@committed
def test_an_entry_rewritten_with_a_new_hash_before_a_border_is_named(small_segments, signing_key,
                                                                      bypass_audit_triggers):
    # given a chain of 36 entries whose entry 12, the last before a helper's segment, a forger rewrote
    # together with its hash, so that it hashes right on its own
    a_chain_with_checkpoints()
    with transaction.atomic(), bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {EVENTS} SET reason = 'rewritten' WHERE seq = 12")
        cursor.execute(f"UPDATE {EVENTS} SET hash = %s WHERE seq = 12",
                       [event_hash(AuditEvent.objects.filter(seq=12).values(*HASHED_FIELDS).get())])
    # when the chain is verified by three processes
    report = verify_chain(processes=3)
    # then the break is found where entry 13 no longer links to it, as one process finds it
    assert not report.ok and report.first_bad_seq == 13
    assert report.summary() == verify_chain(processes=1).summary()


@on_postgres
@committed
def test_a_short_chain_is_walked_by_one_process(signing_key):
    # given a chain far below the length worth sharing
    record(5)
    # when it is verified with processes to spare
    report = verify_chain(processes=4)
    # then one process walked it
    assert report.ok and report.count == 5 and report.processes == 1


def test_the_borders_are_block_multiples_strictly_inside_the_walk():
    # one helper: the verifying process walks half, and the entries it walks while the helper starts
    assert verify_segments.borders(after_seq=0, head_seq=1_000_001, processes=2, block=1024) == [524_288]
    # three helpers share what the verifying process leaves evenly
    assert verify_segments.borders(after_seq=900_000, head_seq=1_000_000, processes=4, block=1024) == [
        928_768, 952_320, 975_872]
    # a walk shorter than a block is not cut
    assert verify_segments.borders(after_seq=0, head_seq=1000, processes=4, block=1024) == []


@on_postgres
@committed
def test_verify_audit_says_how_many_processes_walked(small_segments, signing_key):
    # given a chain of 36 entries
    a_chain_with_checkpoints()
    # when verify_audit is asked for two processes
    out = StringIO()
    call_command("verify_audit", "--processes", "2", stdout=out)
    # then two walked it, and it is intact
    assert "Audit chain intact: 36 of 36 entries verified" in out.getvalue()
    assert "Walked by 2 processes side by side." in out.getvalue()


def test_verify_audit_refuses_fewer_than_one_process():
    with pytest.raises(CommandError, match="--processes must be 1 or more"):
        call_command("verify_audit", "--processes", "0")


def failing_setup(database: dict) -> None:
    """A helper's start-up that fails (it runs in the helper: importable, at module level)."""
    raise RuntimeError("this helper cannot start")


@on_postgres
@committed
def test_a_helper_that_fails_leaves_the_walk_to_one_process(small_segments, signing_key, monkeypatch, caplog):
    # given a chain of 36 entries, and helpers that cannot start
    a_chain_with_checkpoints()
    monkeypatch.setattr(verify_segments, "django_setup", failing_setup)
    # when it is verified by three processes
    report = verify_chain(processes=3)
    # then one process walked it and proved it intact, and the failure was logged
    assert report.ok and report.processes == 1 and report.count == 36
    assert all(result.ok for result in report.checkpoints)
    assert "one process walks" in caplog.text
