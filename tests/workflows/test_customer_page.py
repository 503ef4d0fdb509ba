"""The whole customer: their page and the panel on a case show only what the person may see, and
internal notes are written once, by agents and managers, through one audited service."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authority.services import decision_execute
from h2h_core.customers import customer_note_add
from h2h_core.errors import NotAllowed
from h2h_core.models import AuditEvent, CaseStatus, CustomerNote, Role
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, UserFactory, kind

CUSTOMER_PAGE_QUERIES = 16
TOKEN = re.compile(r'name="once_token" value="([^"]+)"')


@pytest.fixture
def lena(db):
    return CustomerFactory(name="Lena Fischer GmbH", email="ap@lena.example")


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


@pytest.fixture
def retention_case(alice, retention, lena):
    """A resolved Retention case of lena's, rated 5, with a goodwill credit of 321 by alice."""
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("500"),
                 period_limit=Decimal("5000"))
    case = CaseFactory(customer=lena, team=retention, owner=alice, subject="Retention offer: three months free")
    decision_execute(actor=alice, case=case, kind=kind("goodwill_credit"), amount="321", currency="EUR",
                     rationale="Keep the customer")
    case.status, case.rating, case.resolution_summary = CaseStatus.RESOLVED, 5, "Three months free"
    case.save(update_fields=["status", "rating", "resolution_summary"])
    return case


@pytest.fixture
def billing_case(carol, billing, lena):
    """An owned Billing case of lena's with a refund of 45 by carol."""
    GrantFactory(subject_user=carol, kind=kind("refund"), per_case_limit=Decimal("500"), period_limit=Decimal("5000"))
    case = CaseFactory(customer=lena, team=billing, owner=carol, subject="Invoice sent twice")
    decision_execute(actor=carol, case=case, kind=kind("refund"), amount="45", currency="EUR", rationale="Duplicate")
    return case


def customer_page(client, customer):
    return client.get(reverse("customers:detail", args=[customer.pk]))


def add_note(client, customer, text, *, case=None, token=None):
    data = {"text": text, **({"case": case.pk} if case else {}), **({"once_token": token} if token else {})}
    return client.post(reverse("customers:note_add", args=[customer.pk]), data)


@pytest.mark.django_db
def test_a_billing_agent_gets_404_for_a_customer_with_only_retention_cases(client, carol, lena, retention_case):
    # given lena has only a Retention case; when carol (Billing) asks for lena's page
    client.force_login(carol)
    page = customer_page(client, lena)
    # then there is no such customer for her, and nothing of the case shows
    assert page.status_code == 404
    assert "Lena Fischer" not in page.text and retention_case.reference not in page.text


@pytest.mark.django_db
def test_each_team_sees_only_its_own_cases_and_decisions_of_a_shared_customer(
    client, alice, carol, lena, retention_case, billing_case
):
    # given lena has a Retention case (alice, credit 321) and a Billing case (carol, refund 45)
    # when each agent opens lena's page
    client.force_login(alice)
    alices = customer_page(client, lena).text
    client.force_login(carol)
    carols = customer_page(client, lena).text
    # then each sees the contact details and only their own team's case, decision and rating
    for page in (alices, carols):
        assert "ap@lena.example" in page and "Standard" in page and "12,000.00" in page
    assert retention_case.reference in alices and "321.00 EUR" in alices and "rated 5/5" in alices
    assert billing_case.reference not in alices and "45.00 EUR" not in alices and "Invoice sent twice" not in alices
    assert billing_case.reference in carols and "45.00 EUR" in carols and "carol" in carols
    assert retention_case.reference not in carols and "321.00" not in carols and "rated 5/5" not in carols
    assert "Three months free" not in carols and "no rated case" in carols


@pytest.mark.django_db
def test_an_auditor_reads_both_teams_of_the_customer(client, audrey, lena, retention_case, billing_case):
    client.force_login(audrey)
    page = customer_page(client, lena).text
    assert retention_case.reference in page and billing_case.reference in page
    # an auditor only reads: no note form
    assert 'name="text"' not in page


@pytest.mark.django_db
def test_a_note_from_the_case_panel_is_added_audited_and_shown(client, carol, lena, billing_case):
    # given carol on her Billing case's page, which offers the note form
    client.force_login(carol)
    case_page = client.get(reverse("cases:detail", args=[billing_case.pk])).text
    assert "ap@lena.example" in case_page and reverse("customers:detail", args=[lena.pk]) in case_page
    # when she adds a note from the panel
    response = add_note(client, lena, "  Prefers e-mail; never call before 10.  ", case=billing_case,
                        token=TOKEN.findall(case_page)[-1])
    # then she is back on her case, the note is stored (trimmed), tied to the case, and audited
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:detail", args=[billing_case.pk]) + "#customer-notes"
    note = CustomerNote.objects.get()
    assert (note.customer, note.case, note.author, note.text) == (lena, billing_case, carol,
                                                                  "Prefers e-mail; never call before 10.")
    event = AuditEvent.objects.get(action="customer.note_added")
    assert event.actor_id == carol.pk and event.object_id == str(lena.pk) and event.after["note_id"] == note.pk
    assert "never call" not in str(event.after)  # the chain keeps a digest, not the text
    assert "Prefers e-mail; never call before 10." in client.get(response["Location"]).text


@pytest.mark.django_db
def test_an_auditor_cannot_add_a_note_and_nothing_is_created(client, audrey, lena, retention_case):
    client.force_login(audrey)
    before = AuditEvent.objects.exclude(outcome="denied").count()
    # when the auditor posts a note anyway
    response = add_note(client, lena, "Looks suspicious")
    # then she is refused with the reason, no note exists, and only the refusal is on record
    assert response.status_code == 403 and "Only agents and managers add notes" in response.text
    assert not CustomerNote.objects.exists()
    assert AuditEvent.objects.exclude(outcome="denied").count() == before
    assert AuditEvent.objects.filter(action="customer.note_add.refused", actor_id=audrey.pk).count() == 1
    with pytest.raises(NotAllowed):
        customer_note_add(actor=audrey, customer=lena, text="Looks suspicious")
    assert not CustomerNote.objects.exists()


@pytest.mark.django_db
def test_an_agent_of_another_team_cannot_add_a_note_nor_tie_one_to_a_case_she_cannot_see(
    client, carol, lena, retention_case, billing_case
):
    # carol may see lena (Billing case) but not the Retention case
    client.force_login(carol)
    assert add_note(client, lena, "On the Retention case", case=retention_case).status_code == 404
    other = CustomerFactory(name="Other AG")
    CaseFactory(customer=other, team=retention_case.team)
    assert add_note(client, other, "Not my customer").status_code == 404
    with pytest.raises(NotAllowed):
        customer_note_add(actor=carol, customer=lena, text="via the service", case=retention_case)
    assert not CustomerNote.objects.exists()


@pytest.mark.django_db
def test_a_double_submitted_note_is_added_once(client, carol, lena, billing_case):
    # given the customer page's note form with its one-time token
    client.force_login(carol)
    token = TOKEN.findall(customer_page(client, lena).text)[-1]
    # when the same form arrives twice (a double click)
    first = add_note(client, lena, "Called back, all fine.", token=token)
    second = add_note(client, lena, "Called back, all fine.", token=token)
    # then one note exists and the second is sent to the first one's result
    assert first.status_code == second.status_code == 302 and second["Location"] == first["Location"]
    assert CustomerNote.objects.count() == 1
    assert AuditEvent.objects.filter(action="customer.note_added").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   ", "x" * 2001, "before\x00after", None])
def test_the_note_service_refuses_empty_too_long_or_nul_text(carol, lena, billing_case, text):
    with pytest.raises(ValidationError):
        customer_note_add(actor=carol, customer=lena, text=text)
    assert not CustomerNote.objects.exists()


@pytest.mark.django_db
def test_a_too_long_note_is_shown_again_with_the_reason_and_nothing_lost(client, carol, lena, billing_case):
    client.force_login(carol)
    response = add_note(client, lena, "y" * 2001, case=billing_case)
    assert response.status_code == 400 and "y" * 2001 in response.text
    assert "at most 2000 characters" in response.text
    assert not CustomerNote.objects.exists()


@pytest.mark.django_db
def test_notes_are_never_changed_nor_deleted(carol, lena, billing_case):
    note = customer_note_add(actor=carol, customer=lena, text="First impression")
    note.text = "Rewritten"
    with pytest.raises(ValidationError):
        note.save()
    with pytest.raises(ValidationError):
        note.delete()
    assert CustomerNote.objects.get().text == "First impression"


@pytest.mark.django_db
def test_notes_tied_to_another_teams_case_stay_with_that_team(client, alice, carol, lena, retention_case,
                                                              billing_case):
    # given a customer-wide note by alice and a note alice tied to her Retention case
    customer_note_add(actor=alice, customer=lena, text="Key account, be generous")
    customer_note_add(actor=alice, customer=lena, text="Threatened to leave", case=retention_case)
    # when carol opens lena's page and her Billing case
    client.force_login(carol)
    pages = [customer_page(client, lena).text, client.get(reverse("cases:detail", args=[billing_case.pk])).text]
    # then she reads the customer-wide note, never the Retention case's
    for page in pages:
        assert "Key account, be generous" in page and "Threatened to leave" not in page
    client.force_login(alice)
    assert "Threatened to leave" in customer_page(client, lena).text


@pytest.mark.django_db
def test_the_case_panel_shows_the_latest_five_notes_and_links_to_all(client, carol, lena, billing_case):
    for n in range(7):
        customer_note_add(actor=carol, customer=lena, text=f"Note number {n}")
    client.force_login(carol)
    page = client.get(reverse("cases:detail", args=[billing_case.pk])).text
    panel = page[page.index('id="customer-panel-h"'):]
    panel = panel[:panel.index("</section>")]
    assert [n for n in range(7) if f"Note number {n}<" in panel] == [2, 3, 4, 5, 6]
    assert reverse("customers:detail", args=[lena.pk]) + "#notes" in panel


@pytest.mark.django_db
def test_the_customer_page_costs_the_same_queries_for_many_cases_decisions_and_notes(
    client, carol, billing, lena, billing_case, django_assert_max_num_queries
):
    client.force_login(carol)
    counts = {}
    for n in (2, 8):  # 3, then 11 cases, decisions and notes
        for case in CaseFactory.create_batch(n, customer=lena, team=billing, owner=carol, rating=4):
            decision_execute(actor=carol, case=case, kind=kind("refund"), amount="7", currency="EUR",
                             rationale="Goodwill")
            customer_note_add(actor=carol, customer=lena, text=f"Note on {case.reference}", case=case)
        with django_assert_max_num_queries(CUSTOMER_PAGE_QUERIES), CaptureQueriesContext(connection) as shown:
            page = customer_page(client, lena)
        counts[n] = len(shown)
    assert page.status_code == 200 and "Cases (11)" in page.text and "4.0/5 on average over 10 rated cases" in page.text
    assert "115.00 EUR (11)" in page.text
    assert counts[2] == counts[8]
