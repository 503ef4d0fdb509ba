"""Exports: decisions and audit events as CSV and JSON Lines, following the filters, streamed, audited."""

import csv
import io
import json
import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from h2h_core.audit.chain import event_hash
from h2h_core.models import AuditEvent
from tests.factories import CaseFactory, GrantFactory

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert response.streaming, "exports are streamed"
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def decisions(cast):
    alice_case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    carol_case = CaseFactory(owner=cast["carol"], team=cast["billing"])
    return ([DecisionFactory(case=alice_case, amount=Decimal(10 + i)) for i in range(3)]
            + [DecisionFactory(case=carol_case, amount=Decimal("75.5"))])


def test_a_csv_export_follows_the_filters_and_is_audited(client, cast, decisions):
    client.force_login(cast["audrey"])
    response = client.get(reverse("audit:export", args=["decisions", "csv"]), {"agent": "alice", "amount_min": "11"})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert sorted(r["amount"] for r in rows) == ["11", "12"]
    assert {r["agent"] for r in rows} == {"alice"} and rows[0]["grant_version"] == "1"
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_username == "audrey"
    assert event.after == {"dataset": "decisions", "format": "csv",
                           "filters": {"agent": "alice", "amount_min": "11"}}


def test_a_json_lines_export_has_one_object_per_decision(client, cast, decisions):
    client.force_login(cast["audrey"])
    text = body(client.get(reverse("audit:export", args=["decisions", "jsonl"]), {"team": cast["billing"].pk}))
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 1 and records[0]["amount"] == "75.5" and records[0]["team"] == "Billing"
    assert records[0]["id"] == decisions[-1].pk


def test_exported_events_carry_what_is_needed_to_recompute_the_chain(client, cast, decisions):
    GrantFactory(subject_user=cast["bob"])
    client.force_login(cast["audrey"])
    text = body(client.get(reverse("audit:export", args=["events", "jsonl"])))
    events = [json.loads(line) for line in text.splitlines()]
    assert events, "the export itself is at least one event"
    for record in events:
        stored = AuditEvent.objects.get(seq=record["seq"])
        fields = {name: getattr(stored, name) for name in record if name != "hash"}
        assert event_hash(fields) == record["hash"]
    assert events[0]["action"] == "audit.exported"  # newest first, and the export is on the record


def test_an_events_export_follows_the_audit_log_filters(client, cast, decisions):
    client.force_login(cast["audrey"])
    client.get(reverse("audit:export", args=["decisions", "csv"]))
    text = body(client.get(reverse("audit:export", args=["events", "csv"]), {"action": "audit.exported"}))
    rows = list(csv.DictReader(io.StringIO(text)))
    # the decisions export, and this events export itself (recorded before the first byte leaves)
    assert [(r["action"], json.loads(r["after"])["dataset"]) for r in rows] == [
        ("audit.exported", "audit-events"), ("audit.exported", "decisions")]


def test_refused_decisions_export_as_events(client, cast, decisions):
    from authority.errors import AuthorityDenied
    from authority.services import decision_execute
    from tests.factories import kind

    with pytest.raises(AuthorityDenied):
        decision_execute(actor=cast["bob"], case=CaseFactory(owner=cast["bob"], team=cast["retention"]),
                         kind=kind("refund"), amount="900", currency="EUR", rationale="x")
    client.force_login(cast["audrey"])
    text = body(client.get(reverse("audit:export", args=["decisions", "jsonl"]), {"outcome": "refused"}))
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["action"] for r in records] == ["decision.refused"]


def test_unknown_formats_and_datasets_are_404_and_audit_nothing(client, cast):
    client.force_login(cast["audrey"])
    before = AuditEvent.objects.count()
    assert client.get(reverse("audit:export", args=["decisions", "xlsx"])).status_code == 404
    assert client.get(reverse("audit:export", args=["people", "csv"])).status_code == 404
    assert AuditEvent.objects.count() == before


def test_only_auditors_export(client, cast, decisions):
    not_sign_ins = AuditEvent.objects.exclude(action__startswith="auth.")  # logging in is audited too
    before = not_sign_ins.count()
    for person in ("maria", "alice"):
        client.force_login(cast[person])
        assert client.get(reverse("audit:export", args=["decisions", "csv"])).status_code == 403
    assert not_sign_ins.count() == before


def _peak_while_streaming(client, rows: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        response = client.get(reverse("audit:export", args=["decisions", "jsonl"]))
        count = 0
        for chunk in response.streaming_content:
            count += chunk.count(b"\n")
        return tracemalloc.get_traced_memory()[1], count
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_number_of_rows(client, cast, monkeypatch):
    monkeypatch.setattr("edges.auditor.exports.CHUNK", 100)
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    grant = GrantFactory(subject_user=cast["alice"])
    client.force_login(cast["audrey"])
    now = timezone.now()

    def add(count):
        DecisionFactory.create_batch(count, case=case, agent=cast["alice"], grant=grant,
                                     executed_at=now - timedelta(seconds=1))

    add(500)
    small_peak, small_rows = _peak_while_streaming(client, 500)
    add(4500)
    big_peak, big_rows = _peak_while_streaming(client, 5000)
    assert (small_rows, big_rows) == (500, 5000)
    # Ten times the rows, not ten times the memory: rows are fetched in chunks and written one by one.
    assert big_peak < small_peak * 3, (small_peak, big_peak)
