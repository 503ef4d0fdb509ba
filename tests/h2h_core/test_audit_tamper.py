"""The database refuses to change audit rows, and verify_audit names any row changed behind its back."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from h2h_core.audit import audit_record, audit_seal, event_hash
from h2h_core.audit.chain import HASHED_FIELDS
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead

EVENTS = "h2h_core_auditevent"
CHECKPOINTS = "h2h_core_auditcheckpoint"


def record(n: int) -> list[AuditEvent]:
    events = []
    for index in range(n):
        with transaction.atomic():
            events.append(audit_record(actor=None, action="case.note_added", object_type="case",
                                       object_id=index, after={"note": f"note {index}"}))
    audit_seal()  # when the sealer has run (PostgreSQL; SQLite links at once): read the events back sealed
    return [AuditEvent.objects.get(pk=event.pk) for event in events]


def a_checkpoint() -> AuditCheckpoint:
    return AuditCheckpoint.objects.create(seq=1, hash="a" * 64, signed_at=timezone.now(), signature="b" * 128,
                                          public_key="-", key_fingerprint="c" * 64)


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def stored(seq: int) -> dict:
    return AuditEvent.objects.filter(seq=seq).values(*HASHED_FIELDS, "hash").get()


def verify_audit() -> tuple[int, str, str]:
    """Run verify_audit and return its exit code, stdout and stderr."""
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- The database refuses ----------------------------------------------------------------------------

REFUSED_CHANGES = {
    "orm save": lambda row: (setattr(row, "reason", "rewritten"), row.save()),
    "orm queryset update": lambda row: type(row).objects.filter(pk=row.pk).update(hash="0" * 64),
    "orm delete": lambda row: row.delete(),
    "orm queryset delete": lambda row: type(row).objects.all().delete(),
    "raw sql update": lambda row: sql(f"UPDATE {row._meta.db_table} SET hash = %s WHERE id = %s", ["0" * 64, row.pk]),
    "raw sql delete": lambda row: sql(f"DELETE FROM {row._meta.db_table} WHERE id = %s", [row.pk]),
    "raw sql delete everything": lambda row: sql(f"DELETE FROM {row._meta.db_table}"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("change", REFUSED_CHANGES, ids=str)
@pytest.mark.parametrize("make_row", [lambda: record(1)[0], a_checkpoint], ids=["event", "checkpoint"])
def test_the_database_refuses_to_change_an_audit_row(make_row, change, audit_refusal):
    # given an audit row
    row = make_row()
    model = type(row)
    before = model.objects.filter(pk=row.pk).values().get()
    # when anyone tries to change or delete it
    with audit_refusal(), transaction.atomic():
        REFUSED_CHANGES[change](row)
    # then the database refused, and the row is exactly as it was
    assert model.objects.filter(pk=row.pk).values().get() == before


@pytest.mark.django_db
@pytest.mark.parametrize("table", [EVENTS, CHECKPOINTS])
def test_postgresql_refuses_to_truncate_an_audit_table(table, audit_refusal):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only (SQLite's DELETE is covered above)")
    # given an audit event and a checkpoint
    record(1)
    a_checkpoint()
    # when anyone truncates an audit table
    with audit_refusal("append-only: TRUNCATE"), transaction.atomic():
        sql(f"TRUNCATE {table}")
    # then the rows are still there
    assert AuditEvent.objects.count() == 1 and AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_the_chain_head_may_still_advance():
    # given an event (the head row is the one audit row that must change)
    record(1)
    # when another is recorded
    record(1)
    # then the head moved on
    assert AuditHead.objects.get(pk=1).seq == 2


# --- verify_audit names what was tampered with ---------------------------------------------------------


@pytest.mark.django_db
def test_an_intact_chain_exits_zero():
    # given three untouched events
    record(3)
    # when the chain is verified
    code, out, err = verify_audit()
    # then it is intact
    assert (code, err) == (0, "")
    assert "Audit chain intact: 3 of 3 entries" in out


@pytest.mark.django_db
def test_an_altered_entry_is_named(bypass_audit_triggers):
    # given three events, and the second one's note rewritten behind the triggers' back
    record(3)
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=2).update(after={"note": "something else"})
    # when the chain is verified
    code, out, err = verify_audit()
    # then it fails at entry 2, which was altered
    assert code == 1
    assert "Audit chain BROKEN at entry 2: entry 2 was altered: its hash does not match its content" in err
    assert "First bad sequence number: 2" in err
    assert "1 of 3 entries verified before it" in err
    assert "intact" not in out


@pytest.mark.django_db
def test_an_altered_and_rehashed_entry_is_caught_by_the_next_link(bypass_audit_triggers):
    # given three events, and the second rewritten with a freshly computed hash
    record(3)
    second = stored(2) | {"reason": "covering tracks"}
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=2).update(reason=second["reason"], hash=event_hash(second))
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 3 no longer links to it
    assert code == 1
    assert "First bad sequence number: 3" in err
    assert "entry 3 does not link to entry 2" in err


@pytest.mark.django_db
def test_a_rehashed_last_entry_is_caught_by_the_head(bypass_audit_triggers):
    # given three events, and the last rewritten with a freshly computed hash
    record(3)
    last = stored(3) | {"reason": "covering tracks"}
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=3).update(reason=last["reason"], hash=event_hash(last))
    # when the chain is verified
    code, _, err = verify_audit()
    # then it no longer matches the chain head
    assert code == 1
    assert "First bad sequence number: 3" in err
    assert "entry 3 does not match the chain head" in err
    assert "2 of 3 entries verified before it" in err


@pytest.mark.django_db
def test_a_removed_entry_is_named(bypass_audit_triggers):
    # given three events, and the second deleted behind the triggers' back
    record(3)
    with bypass_audit_triggers():
        sql(f"DELETE FROM {EVENTS} WHERE seq = 2")
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 2 is reported missing
    assert code == 1
    assert "Audit chain BROKEN at entry 2: entry 2 is missing (removed)" in err


@pytest.mark.django_db
def test_removing_the_last_entries_is_caught_by_the_head(bypass_audit_triggers):
    # given four events, and the last two deleted behind the triggers' back
    record(4)
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq__gte=3).delete()
    # when the chain is verified
    code, _, err = verify_audit()
    # then entries 3 and 4 are reported missing
    assert code == 1
    assert "Audit chain BROKEN at entry 3: entries 3 to 4 are missing (removed)" in err


@pytest.mark.django_db
def test_a_row_appended_behind_the_chains_back_is_named():
    # given three events, and a fourth inserted with plain SQL (inserting needs no bypass), its
    # link made up and the head left alone
    record(3)
    forged = stored(3) | {"seq": 4, "prev_hash": "f" * 64, "reason": "forged"}
    AuditEvent.objects.create(**(forged | {"hash": event_hash(forged)}))
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 4 is named as inserted
    assert code == 1
    assert "Audit chain BROKEN at entry 4: entry 4 lies beyond the chain head (entry 3)" in err


@pytest.mark.django_db
def test_a_row_appended_with_the_head_moved_does_not_link():
    # given three events, and a fourth inserted with a made-up link and the head moved to it
    record(3)
    forged = stored(3) | {"seq": 4, "prev_hash": "f" * 64, "reason": "forged"}
    AuditEvent.objects.create(**(forged | {"hash": event_hash(forged)}))
    AuditHead.objects.filter(pk=1).update(seq=4, hash=event_hash(forged))
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 4 does not link to entry 3
    assert code == 1
    assert "First bad sequence number: 4" in err
    assert "entry 4 does not link to entry 3" in err


@pytest.mark.django_db
def test_a_row_slipped_into_the_middle_is_named(bypass_audit_triggers):
    # given four events; the attacker renumbers 3 and 4 to 4 and 5 and slips a well-formed entry 3
    # in after entry 2 (correct link, correct hash), moving the head along
    record(4)
    forged = stored(3) | {"prev_hash": stored(2)["hash"], "reason": "slipped in"}
    forged["hash"] = event_hash(forged)
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=4).update(seq=5)
        AuditEvent.objects.filter(seq=3).update(seq=4)
        AuditEvent.objects.create(**forged)
    AuditHead.objects.filter(pk=1).update(seq=5)
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 3 is named as inserted, since the entry after it links to entry 2
    assert code == 1
    assert "Audit chain BROKEN at entry 3: entry 3 was inserted behind the chain's back" in err


@pytest.mark.django_db
def test_a_renumbered_entry_is_named(bypass_audit_triggers):
    # given three events, and the last one renumbered to close a gap after deleting the second
    record(3)
    with bypass_audit_triggers():
        sql(f"DELETE FROM {EVENTS} WHERE seq = 2")
        sql(f"UPDATE {EVENTS} SET seq = 2 WHERE seq = 3")
    AuditHead.objects.filter(pk=1).update(seq=2)
    # when the chain is verified
    code, _, err = verify_audit()
    # then the renumbered entry fails: its link (and its hash, which covers seq) no longer fit
    assert code == 1
    assert "First bad sequence number: 2" in err


@pytest.mark.django_db
def test_a_row_with_an_impossible_sequence_number_is_named():
    # given two events and a row numbered 0 inserted with plain SQL
    record(2)
    forged = stored(1) | {"seq": 0, "reason": "before the beginning"}
    AuditEvent.objects.create(**(forged | {"hash": event_hash(forged)}))
    # when the chain is verified
    code, _, err = verify_audit()
    # then entry 0 is named
    assert code == 1
    assert "Audit chain BROKEN at entry 0: entry 0 has an impossible sequence number" in err


@pytest.mark.django_db
def test_verify_audit_quiet_still_reports_a_break(bypass_audit_triggers):
    # given an altered entry
    record(2)
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=1).update(reason="changed")
    # when verify_audit runs with --quiet
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit", "--quiet", stdout=out, stderr=err)
    # then it still fails loudly on stderr and exits 1
    assert exit_.value.code == 1
    assert out.getvalue() == ""
    assert "entry 1 was altered" in err.getvalue()
