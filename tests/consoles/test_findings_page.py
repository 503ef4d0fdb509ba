"""The auditor's findings page: auditors only, evidence linked, a finding becomes an audited review
flag once, a CSV export with safe cells, and a fixed number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authority.models import ReviewFlag
from h2h_core.models import AuditEvent
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, successful_audit_events

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db


def split(agent, *, customers=1, name="Split Ltd"):
    """Customers each refunded twice just under the agent's 500 per-case limit; returns the last decisions."""
    grant = GrantFactory(subject_user=agent, per_case_limit=Decimal("500"))
    last = []
    for i in range(customers):
        customer = CustomerFactory(name=f"{name} {i}" if customers > 1 else name)
        for days, amount in ((4, "480"), (2, "470")):
            decision = DecisionFactory(case=CaseFactory(customer=customer, owner=agent), agent=agent, grant=grant,
                                       amount=Decimal(amount), executed_at=timezone.now() - timedelta(days=days))
        last.append(decision)
    return last


def test_an_auditor_sees_each_finding_with_its_evidence(client, cast):
    # given: alice split refunds for one customer
    [last] = split(cast["alice"])
    # when
    client.force_login(cast["audrey"])
    response = client.get(reverse("audit:findings"))
    # then: the finding in words, its decisions and cases linked, a flag form with a once token
    assert response.status_code == 200
    page = response.text
    assert "2 refund decisions for Split Ltd" in page
    assert reverse("audit:decision", args=[last.pk]) in page
    assert f"?case={last.case.reference}" in page
    assert 'action="/audit/findings/flag/"' in page and 'name="once_token"' in page
    assert "Flag for review" in page


def test_the_detector_filter_and_bad_filters(client, cast):
    # given
    split(cast["alice"])
    client.force_login(cast["audrey"])
    # when one other detector is chosen, then the split refunds are not shown
    page = client.get(reverse("audit:findings"), {"detector": "approver-shopping"}).text
    assert "Split Ltd" not in page and "Approver shopping" in page
    # and a made-up detector or period is a 400 with the error, never a 500
    for bad in ({"detector": "nonsense"}, {"days": "12"}):
        response = client.get(reverse("audit:findings"), bad)
        assert response.status_code == 400 and "Correct the filters" in response.text


@pytest.mark.parametrize("persona", ["alice", "maria"])
def test_others_get_403_and_nothing_changes(client, cast, persona):
    # given
    [last] = split(cast["alice"])
    before = (ReviewFlag.objects.count(), successful_audit_events())
    client.force_login(cast[persona])
    # when / then
    assert client.get(reverse("audit:findings")).status_code == 403
    assert client.get(reverse("audit:findings_csv")).status_code == 403
    assert client.post(reverse("audit:findings_flag"), {"decision": last.pk, "severity": "major",
                                                         "finding": "x"}).status_code == 403
    assert (ReviewFlag.objects.count(), successful_audit_events()) == before


def test_a_superuser_reads_but_does_not_flag(client, cast):
    # given
    split(cast["alice"])
    client.force_login(cast["admin"])
    # when
    page = client.get(reverse("audit:findings")).text
    # then
    assert "Split Ltd" in page and "Read-only" in page and "Flag for review" not in page


def test_flagging_a_finding_writes_an_audited_review_flag_and_the_page_says_so(client, cast):
    # given: the finding on the page
    [last] = split(cast["alice"])
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:findings"), {"days": "90"}).text
    text = page.split('name="finding" value="')[1].split('"')[0]
    # when the auditor flags it
    response = client.post(reverse("audit:findings_flag"), {
        "decision": last.pk, "severity": "major", "finding": text.replace("&#x27;", "'").replace("&quot;", '"'),
        "back": "/audit/findings/?days=90"})
    # then: a review flag on the finding's latest decision with its explanation, audited, back to the page
    assert response.status_code == 302 and response["Location"] == "/audit/findings/?days=90"
    flag = ReviewFlag.objects.get()
    assert (flag.decision_id, flag.auditor, flag.severity) == (last.pk, cast["audrey"], "major")
    assert "2 refund decisions for Split Ltd" in flag.finding and "(finding split-refunds:d" in flag.finding
    assert AuditEvent.objects.get(action="review_flag.created").object_id == str(last.pk)
    # and the page now says the finding is flagged, with no form for it
    again = client.get(reverse("audit:findings"), {"days": "90"}).text
    assert "Flagged already" in again and "Flag for review" not in again


def test_a_flag_elsewhere_than_the_page_may_return_to_is_refused(client, cast):
    # given
    [last] = split(cast["alice"])
    client.force_login(cast["audrey"])
    # when the return address points away, then the page is where it goes back to
    response = client.post(reverse("audit:findings_flag"), {"decision": last.pk, "severity": "minor",
                                                             "finding": "split refunds", "back": "https://evil.test/"})
    assert response["Location"] == "/audit/findings/"
    # and a missing decision or severity writes nothing
    before = ReviewFlag.objects.count()
    client.post(reverse("audit:findings_flag"), {"decision": 999999, "severity": "minor", "finding": "x"})
    client.post(reverse("audit:findings_flag"), {"decision": last.pk, "severity": "fatal", "finding": "x"})
    assert ReviewFlag.objects.count() == before


def test_the_csv_export_is_audited_and_its_cells_are_safe(client, cast):
    # given: a customer whose name a spreadsheet would run
    split(cast["alice"], name="=HYPERLINK(1)")
    client.force_login(cast["audrey"])
    # when
    response = client.get(reverse("audit:findings_csv"))
    body = b"".join(response.streaming_content).decode()
    # then
    assert response.status_code == 200 and body.startswith("detector,severity,explanation")
    assert "'=HYPERLINK(1)" in body and ",=HYPERLINK" not in body
    assert AuditEvent.objects.filter(action="audit.exported", object_id="abuse-findings").count() == 1


@pytest.mark.parametrize("customers", [2, 12])
def test_the_page_keeps_a_constant_query_count(client, cast, customers, django_assert_max_num_queries):
    # given: a few or many findings
    split(cast["alice"], customers=customers)
    client.force_login(cast["audrey"])
    # when / then: the detectors' 12 queries, the flags, and the session and user
    with django_assert_max_num_queries(18):
        page = client.get(reverse("audit:findings")).text
    assert f"{customers} findings" in page
