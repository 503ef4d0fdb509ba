"""Events the sealer has not linked yet (PostgreSQL) show in the auditor's audit log, marked as sealing."""

import pytest
from django.db import transaction
from django.urls import reverse

from h2h_core.audit import audit_record, audit_seal
from h2h_core.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def record(object_id: int) -> None:
    with transaction.atomic():
        audit_record(actor=None, action="case.note_added", object_type="case", object_id=object_id)


def test_the_audit_log_lists_events_not_sealed_yet_first_marked_sealing(client, audrey):
    # given one sealed event and one written after the sealer ran
    record(1)
    audit_seal()
    record(2)
    # when the auditor opens the audit log
    client.force_login(audrey)
    response = client.get(reverse("audit:log"))
    # then both are listed: the one waiting for its chain link first, marked as sealing, then entry 1
    html = response.content.decode()
    assert response.status_code == 200
    waiting = AuditEvent.objects.filter(seq__isnull=True).count()  # event 2, and any the visit itself recorded
    assert waiting >= 1 and html.count("<td>sealing</td>") == waiting and "<td>1</td>" in html
    assert html.index("<td>sealing</td>") < html.index("<td>1</td>")


def test_the_api_lists_the_chain_only(client, audrey):
    # given one sealed event and one waiting for the sealer
    record(1)
    audit_seal()
    record(2)
    # when the auditor reads the log through the API (session authentication, as the browsable API)
    client.force_login(audrey)
    response = client.get("/api/v1/audit-events/")
    # then only the sealed one is listed, with its place in the chain
    assert response.status_code == 200, response.content
    assert [row["seq"] for row in response.json()["results"]] == [1]
