"""The audit chain: gapless sequence numbers, hashes that recompute from the stored rows."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from h2h_core import request_context
from h2h_core.audit import GENESIS_HASH, audit_record, audit_seal, event_hash
from h2h_core.audit.chain import HASHED_FIELDS
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead
from tests.factories import UserFactory

# Committed for real, then flushed. serialized_rollback restores the migrations' reference data and
# keeps the flush from recreating content types, which would clash with other serialized tests.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def record(action="case.note_added", **fields):
    """Record one event and, when the sealer has run (PostgreSQL; SQLite links at once), return it sealed."""
    with transaction.atomic():
        event = audit_record(actor=fields.pop("actor", None), action=action, object_type="case",
                             object_id=fields.pop("object_id", 1), **fields)
    audit_seal()
    return AuditEvent.objects.get(pk=event.pk)


def stored_fields(event: AuditEvent) -> dict:
    return AuditEvent.objects.filter(pk=event.pk).values(*HASHED_FIELDS, "hash").get()


@pytest.mark.django_db
def test_events_chain_with_gapless_sequence_numbers():
    # given an empty log
    assert AuditHead.objects.get(pk=1).seq == 0
    # when three changes are recorded
    events = [record(object_id=n) for n in range(3)]
    # then they are numbered 1, 2, 3, each links to the one before, and the head is the last
    rows = list(AuditEvent.objects.order_by("seq"))
    assert [row.seq for row in rows] == [1, 2, 3]
    assert [row.prev_hash for row in rows] == [GENESIS_HASH, rows[0].hash, rows[1].hash]
    assert [row.hash for row in rows] == [event.hash for event in events]
    head = AuditHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (3, rows[2].hash)


@pytest.mark.django_db
def test_every_hash_recomputes_from_the_stored_row():
    # given a change recorded with everything an event can carry: actor, roles, an IPv6 address
    # written the long way, decimals, dates, unicode and nested structures
    actor = UserFactory(username="zoë", roles=["Agent", "Manager"])
    token = request_context.activate(request_context.RequestMeta(ip="2001:0DB8:0000::0001", request_id="req-1"))
    try:
        event = record(actor=actor, before={"amount": Decimal("10.50"), "tags": {"b", "a"}},
                       after={"amount": Decimal("1E+3"), "note": "Grüße — ✓", "nested": [{"x": 1.25}]},
                       reason="double charge", outcome="denied")
    finally:
        request_context.reset(token)
    # when the row is read back from the database
    row = stored_fields(event)
    # then hashing what was stored gives the stored hash
    assert row["ip"] == "2001:db8::1"
    assert row["actor_roles"] == ["Agent", "Manager"]
    assert event_hash(row) == row["hash"] == event.hash


@pytest.mark.django_db
def test_verify_chain_streams_the_log_in_chunks():
    # given five events
    for n in range(5):
        record(object_id=n)
    # when the chain is verified two rows at a time
    report = verify_chain(chunk_size=2)
    # then all five are checked and the report ends at the last one
    last = AuditEvent.objects.get(seq=5)
    assert report.ok, report.message
    assert (report.count, report.total, report.first_bad_seq) == (5, 5, None)
    assert (report.last_seq, report.last_hash, report.last_time) == (5, last.hash, last.occurred_at)


@pytest.mark.django_db
def test_verify_audit_reports_an_intact_chain_and_exits_zero():
    # given three events
    for n in range(3):
        record(object_id=n)
    last = AuditEvent.objects.get(seq=3)
    # when verify_audit runs
    out, err = StringIO(), StringIO()
    call_command("verify_audit", stdout=out, stderr=err)  # SystemExit here would fail the test
    # then it says how many entries are intact and up to when
    assert out.getvalue().startswith(
        f"Audit chain intact: 3 of 3 entries verified up to 3 ({last.occurred_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_verify_audit_quiet_prints_nothing_when_intact():
    # given an intact chain
    record()
    # when verify_audit runs with --quiet
    out, err = StringIO(), StringIO()
    call_command("verify_audit", "--quiet", stdout=out, stderr=err)
    # then nothing is printed
    assert (out.getvalue(), err.getvalue()) == ("", "")


@pytest.mark.django_db
def test_an_empty_log_verifies():
    # given no events at all
    assert not AuditEvent.objects.exists()
    # when the chain is verified
    report = verify_chain()
    # then it is intact with nothing to check
    assert report.ok and report.count == 0
    assert report.summary() == "Audit chain intact: 0 of 0 entries verified (the log is empty)"


@TRANSACTIONAL
def test_audit_record_outside_a_transaction_raises():
    # given no transaction is open (a transactional test runs in autocommit)
    before = AuditEvent.objects.count()
    # when a change is recorded outside one
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=None, action="case.note_added", object_type="case", object_id=1)
    # then nothing was written
    assert AuditEvent.objects.count() == before


@TRANSACTIONAL
def test_a_transactional_test_records_events_and_is_still_flushed(tmp_path, settings):
    # given a transactional test (committed rows; the flush that ends it must empty the audit
    # tables despite their triggers)
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    # when it commits an event and a checkpoint (which records a second event)
    record()
    audit_checkpoint_create()
    # then they are committed and verify, outside any transaction (the snapshot path)
    assert AuditEvent.objects.count() == 2 and AuditCheckpoint.objects.count() == 1
    report = verify_chain()
    assert report.ok, report.message
    assert report.checkpoints[0].ok
    # (the teardown flush then runs; an error there fails this test)


@TRANSACTIONAL
def test_after_a_flush_the_audit_tables_are_empty_and_still_append_only(audit_refusal):
    # given the transactional test above left committed audit rows for the flush to remove
    # when this transactional test starts
    # then the audit tables are empty
    assert not AuditEvent.objects.exists() and not AuditCheckpoint.objects.exists()
    # and the triggers still refuse to delete a committed event
    event = record()
    with audit_refusal(), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()
