"""The case list's search, filters, sorting, pages and saved views; the intake's customer picker.

Everything is read through the visibility selector: another team's case is never found.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import AuthorityRequest
from authority.models.decisions import RequestStatus
from h2h_core.models import Case, CaseCategory, CaseEvent, CaseStatus, Role
from tests.factories import CaseFactory, CustomerFactory, UserFactory, kind
from workflows import case_search
from workflows.case_search import PRESETS, CaseQuery

pytestmark = pytest.mark.django_db


def listed(client, **params) -> str:
    """The results section of the case list for these query parameters."""
    response = client.get(reverse("cases:list"), params)
    assert response.status_code == 200
    page = response.text
    return page[page.index('id="results"'):]


def references(html: str) -> list[str]:
    return re.findall(r"H2H-\d{6}", html)


def preset_url(key: str) -> str:
    from urllib.parse import urlencode

    return f"{reverse('cases:list')}?{urlencode(PRESETS[key][1].params())}"


def open_request(case, requester):
    return AuthorityRequest.objects.create(
        case=case, requester=requester, kind=kind("refund"), amount=Decimal("900"), currency="EUR",
        justification="Over my limit", verdict={}, status=RequestStatus.OPEN, created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=2))


# --- search --------------------------------------------------------------------------------------


def test_search_finds_by_reference_subject_and_customer_name_case_insensitively(client, alice, retention):
    # given three cases of alice's team and one that matches nothing
    by_subject = CaseFactory(team=retention, subject="Router keeps rebooting")
    by_customer = CaseFactory(team=retention, customer=CustomerFactory(name="Initech GmbH"))
    by_reference = CaseFactory(team=retention)
    other = CaseFactory(team=retention, subject="Invoice question")
    client.force_login(alice)
    # when she searches
    # then each search finds its case and not the unrelated one
    assert references(listed(client, q="ROUTER")) == [by_subject.reference]
    assert references(listed(client, q="initech")) == [by_customer.reference]
    assert references(listed(client, q=by_reference.reference.lower())) == [by_reference.reference]
    assert references(listed(client, q=f"h2h-{by_reference.pk}")) == [by_reference.reference]
    assert other.reference not in listed(client, q="router")


def test_another_teams_case_is_never_found(client, carol, retention, billing):
    # given a Retention case, and carol, an agent of Billing
    retention_case = CaseFactory(team=retention, subject="Cancel my contract", status=CaseStatus.QUEUED, owner=None)
    CaseFactory(team=billing, subject="Cancel my contract too", status=CaseStatus.QUEUED, owner=None)
    client.force_login(carol)
    # when she searches for its reference, its subject, or lists every case
    by_reference = listed(client, q=retention_case.reference)
    by_subject = listed(client, q="cancel my contract")
    everything = listed(client, sort="opened")
    # then the Retention case never appears; her own team's case does
    assert "No case you may see matches." in by_reference
    assert retention_case.reference not in by_reference + by_subject + everything
    assert len(references(by_subject)) == 1 and len(references(everything)) == 1


# --- filters -------------------------------------------------------------------------------------


def test_filters_by_status_category_team_and_owner(client, alice, retention, billing):
    # given an auditor's view of cases that differ in one property each
    auditor = UserFactory(username="audra", roles=[Role.AUDITOR])
    owned = CaseFactory(team=retention, owner=alice, status=CaseStatus.OWNED, category=CaseCategory.RENEWAL)
    queued = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED, category=CaseCategory.COMPLAINT)
    resolved = CaseFactory(team=billing, owner=None, status=CaseStatus.RESOLVED, category=CaseCategory.COMPLAINT)
    client.force_login(auditor)
    # when she filters / then only the matching cases show
    assert references(listed(client, status="owned")) == [owned.reference]
    assert set(references(listed(client, status="open"))) == {owned.reference, queued.reference}
    assert references(listed(client, status="unclaimed")) == [queued.reference]
    assert references(listed(client, category="renewal")) == [owned.reference]
    assert references(listed(client, team=str(billing.pk))) == [resolved.reference]
    assert references(listed(client, owner="none", category="complaint", team=str(retention.pk))) == [
        queued.reference]


def test_filter_by_sla_state(client, alice, retention):
    # given an overdue case, one flagged breached, one due within 4 h and one due tomorrow
    now = timezone.now()
    overdue = CaseFactory(team=retention, owner=alice, resolution_due=now - timedelta(hours=3))
    flagged = CaseFactory(team=retention, owner=alice, resolution_due=now + timedelta(days=1), sla_breached=True)
    soon = CaseFactory(team=retention, owner=alice, resolution_due=now + timedelta(hours=2))
    later = CaseFactory(team=retention, owner=alice, resolution_due=now + timedelta(days=1))
    client.force_login(alice)
    # when she filters by SLA state / then each state holds its cases
    breached = listed(client, sla="breached")
    assert set(references(breached)) == {overdue.reference, flagged.reference}
    assert references(listed(client, sla="due_soon")) == [soon.reference]
    assert references(listed(client, sla="on_time")) == [later.reference]
    # and the overdue case says so in words, not colour alone
    assert "Overdue by 2\xa0hours" in breached or "Overdue by 3\xa0hours" in breached


def test_filter_waiting_for_approval_means_an_open_request(client, alice, retention):
    # given a case with an open request, one whose request was approved, and one without any
    waiting = CaseFactory(team=retention, owner=alice)
    decided = CaseFactory(team=retention, owner=alice)
    CaseFactory(team=retention, owner=alice)
    open_request(waiting, alice)
    AuthorityRequest.objects.filter(pk=open_request(decided, alice).pk).update(status=RequestStatus.APPROVED)
    client.force_login(alice)
    # when she filters on waiting for approval
    page = listed(client, waiting="on")
    # then only the case with the open request shows, marked in words
    assert references(page) == [waiting.reference]
    assert "Waiting for approval</span>" in page


def test_a_bad_filter_value_is_said_and_ignored(client, alice, retention):
    case = CaseFactory(team=retention, owner=alice)
    client.force_login(alice)
    page = client.get(reverse("cases:list"), {"status": "lost", "sort": "nonsense", "page": "x"}).text
    assert "Status: Select a valid choice." in page and case.reference in page


# --- sorting and pages ---------------------------------------------------------------------------


def test_sorting_by_due_stakes_opened_and_last_activity(client, alice, retention):
    now = timezone.now()
    a = CaseFactory(team=retention, owner=alice, resolution_due=now + timedelta(hours=1), stakes_score=10,
                    opened_at=now - timedelta(days=3))
    b = CaseFactory(team=retention, owner=alice, resolution_due=now + timedelta(hours=9), stakes_score=90,
                    opened_at=now - timedelta(days=1))
    c = CaseFactory(team=retention, owner=alice, resolution_due=None, stakes_score=50,
                    opened_at=now - timedelta(days=2))
    CaseEvent.objects.create(case=a, at=now - timedelta(minutes=5), kind=CaseEvent.Kind.NOTE, text="Called back")
    client.force_login(alice)
    assert references(listed(client, sort="due")) == [a.reference, b.reference, c.reference]
    assert references(listed(client, sort="stakes")) == [b.reference, c.reference, a.reference]
    assert references(listed(client, sort="opened")) == [b.reference, c.reference, a.reference]
    assert references(listed(client, sort="activity")) == [a.reference, b.reference, c.reference]


def test_pages_of_25_keep_the_filters(client, alice, retention):
    # given 30 of alice's cases
    for n in range(30):
        CaseFactory(team=retention, owner=alice, stakes_score=n)
    client.force_login(alice)
    # when she sorts by stakes and turns the page
    first = listed(client, sort="stakes", owner="me")
    second = listed(client, sort="stakes", owner="me", page="2")
    # then the first page holds 25, the second the other 5, and the links keep her filters
    assert len(references(first)) == 25 and len(references(second)) == 5
    assert not set(references(first)) & set(references(second))
    assert "Page 1 of 2" in first and 'href="?owner=me&amp;sort=stakes&amp;page=2" rel="next"' in first


# --- saved views ---------------------------------------------------------------------------------


def test_saved_views_are_links_and_mark_the_current_one(client, alice, maria, retention):
    # given her open case, a queued case, a case resolved this week and one resolved long ago
    now = timezone.now()
    mine = CaseFactory(team=retention, owner=alice, status=CaseStatus.OWNED)
    queued = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED)
    this_week = CaseFactory(team=retention, owner=alice, status=CaseStatus.RESOLVED, resolved_at=now)
    long_ago = CaseFactory(team=retention, owner=alice, status=CaseStatus.RESOLVED,
                           resolved_at=now - timedelta(days=30))
    overdue = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED,
                          resolution_due=now - timedelta(hours=1))
    client.force_login(alice)
    # when she opens each saved view
    pages = {key: client.get(preset_url(key)).text for key in PRESETS}
    # then each holds its cases and marks itself as the current view
    results = {key: set(references(page[page.index('id="results"'):])) for key, page in pages.items()}
    assert results["mine"] == {mine.reference}
    assert results["queue"] == {queued.reference, overdue.reference}
    assert results["overdue"] == {overdue.reference}
    assert results["resolved_week"] == {this_week.reference} and long_ago.reference not in pages["resolved_week"]
    for key, (label, _query) in PRESETS.items():
        assert f'aria-current="page">{label}</a>' in pages[key]
        nav = pages[key][pages[key].index('aria-label="Saved views"'):pages[key].index("</nav>",
                                                                                 pages[key].index("Saved views"))]
        assert nav.count('aria-current="page"') == 1
        assert f"<h2 id=\"results\">{label} " in pages[key]


def test_waiting_for_approval_view(client, alice, retention):
    waiting = CaseFactory(team=retention, owner=alice)
    open_request(waiting, alice)
    CaseFactory(team=retention, owner=alice)
    client.force_login(alice)
    page = client.get(preset_url("waiting")).text
    assert references(page[page.index('id="results"'):]) == [waiting.reference]


def test_preset_of_knows_a_saved_view_only_by_its_whole_query():
    assert case_search.preset_of(PRESETS["overdue"][1]) == "overdue"
    assert case_search.preset_of(CaseQuery(status="open", sla="breached", sort="stakes")) is None


# --- query count ---------------------------------------------------------------------------------


def test_the_list_costs_the_same_queries_for_5_and_30_cases(client, alice, retention, django_assert_max_num_queries):
    counts = {}
    client.force_login(alice)
    client.get(reverse("cases:list"))  # warm the per-process caches (content types) once
    for total in (5, 30):
        while Case.objects.filter(owner=alice).count() < total:
            case = CaseFactory(team=retention, owner=alice, resolution_due=timezone.now() - timedelta(hours=1))
            open_request(case, alice)
            CaseEvent.objects.create(case=case, at=timezone.now(), kind=CaseEvent.Kind.NOTE, text="n")
        with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as searched:
            html = listed(client, q="Problem", sort="activity", waiting="on")
        with CaptureQueriesContext(connection) as overview:
            client.get(reverse("cases:list"))
        assert len(references(html)) == min(total, 25)
        counts[total] = (len(searched), len(overview))
    assert counts[5] == counts[30]


# --- the intake's customer picker ----------------------------------------------------------------


def test_the_picker_suggests_at_most_20_customers_by_name_or_email(client, alice):
    for n in range(25):
        CustomerFactory(name=f"Acme branch {n:02d}")
    by_mail = CustomerFactory(name="Wayne Enterprises", email="ap@ACME-partner.example")
    CustomerFactory(name="Globex")
    client.force_login(alice)
    results = client.get(reverse("cases:customers"), {"q": "acme"}).json()["results"]
    assert len(results) == 20
    assert all("acme" in (r["name"] + r["email"]).lower() for r in results)
    mail = client.get(reverse("cases:customers"), {"q": "acme-partner"}).json()["results"]
    assert mail == [{"id": by_mail.pk, "name": "Wayne Enterprises", "email": "ap@ACME-partner.example",
                     "label": f"Wayne Enterprises (#{by_mail.pk})"}]
    assert client.get(reverse("cases:customers"), {"q": " "}).json() == {"results": []}


def test_the_picker_is_for_people_who_open_cases(client):
    CustomerFactory(name="Acme Corp")
    auditor = UserFactory(username="audra", roles=[Role.AUDITOR])
    assert client.get(reverse("cases:customers"), {"q": "acme"}).status_code == 302  # to the login page
    client.force_login(auditor)
    response = client.get(reverse("cases:customers"), {"q": "acme"})
    assert response.status_code == 403 and "Acme" not in response.text


def intake(client, customer: str, subject: str = "Charged twice"):
    return client.post(reverse("cases:new"), {"customer": customer, "subject": subject, "category": "complaint",
                                              "amount_at_stake": "90", "currency": "EUR", "description": ""})


def test_intake_by_typed_name_without_javascript(client, alice, maria):
    # given a customer among others
    acme = CustomerFactory(name="Acme Corp", email="billing@acme.example")
    CustomerFactory(name="Globex")
    client.force_login(alice)
    # when she types the name (any case), the e-mail, or picks a suggestion "Name (#id)"
    for typed, subject in (("acme corp", "By name"), ("BILLING@acme.example", "By mail"),
                           (f"Acme Corp (#{acme.pk})", "By suggestion"), ("acm", "By a unique fragment")):
        response = intake(client, typed, subject)
        # then the case opens for that customer
        case = Case.objects.get(subject=subject)
        assert response.status_code == 302 and case.customer == acme


def test_an_ambiguous_name_is_a_form_error_listing_the_matches(client, alice, maria):
    first = CustomerFactory(name="Acme Corp", email="eu@acme.example")
    second = CustomerFactory(name="Acme Corporation")
    client.force_login(alice)
    response = intake(client, "acme")
    assert response.status_code == 200 and not Case.objects.exists()
    assert "Several customers match" in response.text
    assert f"Acme Corp (#{first.pk}, eu@acme.example)" in response.text
    assert f"Acme Corporation (#{second.pk})" in response.text
    assert 'value="acme"' in response.text and 'value="Charged twice"' in response.text  # nothing typed is lost


def test_an_exact_name_wins_over_fragments_and_unknown_is_an_error(client, alice, maria):
    acme = CustomerFactory(name="Acme")
    CustomerFactory(name="Acme Corporation")
    client.force_login(alice)
    assert intake(client, "ACME", "Exact").status_code == 302
    assert Case.objects.get(subject="Exact").customer == acme
    response = intake(client, "Nobody at all", "Unknown")
    assert "No customer matches \u201cNobody at all\u201d" in response.text
    assert intake(client, "#999999", "No such number").status_code == 200
    assert not Case.objects.filter(subject__in=["Unknown", "No such number"]).exists()


def test_the_intake_page_offers_the_picker_not_a_select(client, alice):
    CustomerFactory.create_batch(3)
    client.force_login(alice)
    page = client.get(reverse("cases:new")).text
    assert 'list="customer-options"' in page and f'data-source="{reverse("cases:customers")}"' in page
    assert '<select name="customer"' not in page and "h2h/customer_picker.js" in page

