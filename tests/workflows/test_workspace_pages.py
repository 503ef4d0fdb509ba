"""The agent's workspace over HTTP: my cases, the queue, intake, the case page, review, handover,
resolve and reopen; and the number of queries each page costs as the data grows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import AuthorityRequest, Decision
from authority.services import decision_execute
from h2h_core.models import AuditEvent, Case, CaseStatus, Role
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, UserFactory, kind
from workflows import services
from workflows.models import CaseProcess

from .conftest import open_case

LIST_QUERIES = 10  # the case list reads the teams of its filter form once; the navigation counts once
# With issue 14's panels; the navigation counts and the approved callout are one query each; issue 12's
# hand-off panel and the customer's AI conversations one each.
CASE_PAGE_QUERIES = 33


@pytest.fixture
def alice_may_refund_500(alice, maria):
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))


@pytest.fixture
def alices_case(alice, maria, customer, alice_may_refund_500):
    case = open_case(alice, customer)
    return services.case_flow_claim(actor=alice, case=case)


@pytest.mark.django_db
def test_my_cases_come_by_resolution_due_then_stakes(client, alice, retention):
    # given three cases of alice's: two due at the same time with different stakes, one due later
    now = timezone.now()
    later = CaseFactory(team=retention, owner=alice, subject="Due later", resolution_due=now + timedelta(days=2),
                        stakes_score=90)
    low = CaseFactory(team=retention, owner=alice, subject="Due soon, low stakes",
                      resolution_due=now + timedelta(hours=3), stakes_score=20)
    high = CaseFactory(team=retention, owner=alice, subject="Due soon, high stakes",
                       resolution_due=now + timedelta(hours=3), stakes_score=80)
    client.force_login(alice)
    # when she opens the case list
    page = client.get(reverse("cases:list")).text
    mine = page[page.index('id="mine"'):page.index('id="queue"')]
    # then the soonest due comes first, and among equals the higher stakes
    assert mine.index(high.reference) < mine.index(low.reference) < mine.index(later.reference)
    assert "in 2\xa0days" in mine or "in 1\xa0day" in mine


@pytest.mark.django_db
def test_the_queue_shows_only_unclaimed_cases_of_my_teams(client, alice, customer, maria):
    # given a queued case of her team, and one of a team she is not in
    mine = open_case(alice, customer)
    other_team = CaseFactory(team=None, owner=None, status=CaseStatus.NEW, subject="Not my team")
    client.force_login(alice)
    page = client.get(reverse("cases:list")).text
    queue = page[page.index('id="queue"'):]
    assert mine.reference in queue and other_team.reference not in queue


@pytest.mark.django_db
def test_claiming_from_the_case_page_makes_her_the_owner(client, alice, customer, maria):
    case = open_case(alice, customer)
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[case.pk])).text
    assert "Claim this case" in page and "Waiting in the Retention queue" in page
    response = client.post(reverse("cases:claim", args=[case.pk]), follow=True)
    assert f"You own {case.reference} now." in response.text and "Own and resolve: with alice." in response.text
    case.refresh_from_db()
    assert case.owner == alice


@pytest.mark.django_db
def test_the_case_page_shows_customer_stakes_sla_owner_and_headroom(client, alice, alices_case):
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[alices_case.pk])).text
    facts = page[:page.index('id="decide-h"')]
    # the facts an agent needs come before anything else, in words
    assert "Acme Corp" in facts and "250.00" in facts and "stakes" in facts
    assert "resolution due" in facts and "Europe/Berlin" in facts and "alice" in facts
    assert "My authority on this case" in facts and "500.00 EUR" in facts and "1,000.00 EUR" in facts


@pytest.mark.django_db
def test_the_review_step_restates_the_decision_before_it_is_executed(client, alice, alices_case):
    client.force_login(alice)
    form = {"kind": "refund", "amount": "200", "currency": "EUR", "rationale": "Charged twice"}
    # when alice reviews a refund of 200
    review = client.post(reverse("cases:review", args=[alices_case.pk]), form)
    # then the page restates amount, customer, the grant applied and that no approval is needed
    assert review.status_code == 200
    text = review.text
    assert "200.00 EUR" in text and "Acme Corp" in text and "person grant #" in text
    assert "Approval needed" in text and "within your authority" in text
    assert Decision.objects.count() == 0
    # when she confirms, twice (a double click)
    key = text.split('name="idempotency_key" value="')[1].split('"')[0]
    for _ in range(2):
        client.post(reverse("cases:decide", args=[alices_case.pk]), {**form, "idempotency_key": key})
    # then one refund was executed, and her headroom on the case dropped to 300
    assert Decision.objects.count() == 1
    page = client.get(reverse("cases:detail", args=[alices_case.pk])).text
    assert "300.00 EUR" in page


@pytest.mark.django_db
def test_over_the_limit_the_review_offers_one_request_to_the_approvers(client, alice, alices_case):
    client.force_login(alice)
    review = client.post(reverse("cases:review", args=[alices_case.pk]),
                         {"kind": "refund", "amount": "1200", "currency": "EUR", "rationale": "Key account"})
    # then it says approval is needed, why, and who will be asked; nothing was decided or requested
    assert "Request approval from maria" in review.text and "over your per-case limit of 500.00 EUR" in review.text
    assert Decision.objects.count() == 0 and AuthorityRequest.objects.count() == 0
    # and the request sent from there starts its approval flow
    client.post(reverse("cases:request", args=[alices_case.pk]),
                {"kind": "refund", "amount": "1200", "currency": "EUR", "justification": "Key account"})
    request = AuthorityRequest.objects.get()
    assert request.process.task_set.filter(flow_task_type="CONDITION", status="NEW").exists()


@pytest.mark.django_db
def test_only_the_owner_reaches_the_review_step(client, alice, bob, alices_case):
    client.force_login(bob)
    response = client.post(reverse("cases:review", args=[alices_case.pk]),
                           {"kind": "refund", "amount": "200", "currency": "EUR", "rationale": "x"}, follow=True)
    assert "Only the owner" in response.text and "Approval needed" not in response.text


@pytest.mark.django_db
def test_the_new_owner_reads_the_handover_note_first(client, alice, bob, alices_case):
    client.force_login(alice)
    client.post(reverse("cases:handover", args=[alices_case.pk]),
                {"to_user": bob.pk, "note": "Promised a call back on Friday"})
    client.force_login(bob)
    page = client.get(reverse("cases:detail", args=[alices_case.pk])).text
    main = page[page.index('<main'):]
    # the note comes before the case heading
    assert "Handed over to you by alice" in main
    assert main.index("Promised a call back on Friday") < main.index(f"<h1>{alices_case.reference}")
    # and alice no longer sees it as hers
    client.force_login(alice)
    assert "Handed over to you" not in client.get(reverse("cases:detail", args=[alices_case.pk])).text


@pytest.mark.django_db
def test_a_handover_without_a_note_changes_nothing(client, alice, bob, alices_case):
    client.force_login(alice)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    response = client.post(reverse("cases:handover", args=[alices_case.pk]), {"to_user": bob.pk, "note": ""},
                           follow=True)
    assert "context note" in response.text
    alices_case.refresh_from_db()
    assert alices_case.owner == alice and AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_intake_from_the_web_form_opens_a_case_in_the_queue(client, alice, maria):
    customer = CustomerFactory(name="Globex")
    client.force_login(alice)
    response = client.post(reverse("cases:new"), {
        "customer": customer.pk, "subject": "Contract renewal went wrong", "category": "renewal",
        "amount_at_stake": "1800", "currency": "EUR", "description": "",
    })
    case = Case.objects.get(subject="Contract renewal went wrong")
    assert response.status_code == 302 and response["Location"] == reverse("cases:detail", args=[case.pk])
    assert case.status == CaseStatus.QUEUED and case.team.slug == "retention"
    assert CaseProcess.objects.filter(case=case).exists()


@pytest.mark.django_db
def test_intake_with_bad_input_shows_the_errors_and_opens_nothing(client, alice):
    client.force_login(alice)
    response = client.post(reverse("cases:new"), {"subject": "", "category": "nope", "amount_at_stake": "-3"})
    assert response.status_code == 200 and "field-error" in response.text
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_auditors_do_not_open_cases(client, db):
    audrey = UserFactory(username="audrey", roles=[Role.AUDITOR])
    client.force_login(audrey)
    assert client.get(reverse("cases:new")).status_code == 403


@pytest.mark.django_db
def test_resolving_shows_the_rating_link_and_reopening_returns_the_case(client, alice, alices_case):
    client.force_login(alice)
    resolved = client.post(reverse("cases:resolve", args=[alices_case.pk]), {"summary": "Refunded"}, follow=True)
    assert "is resolved" in resolved.text and 'id="rating-link"' in resolved.text
    reopened = client.post(reverse("cases:reopen", args=[alices_case.pk]), {"reason": "Refund bounced"}, follow=True)
    assert "is open again" in reopened.text
    alices_case.refresh_from_db()
    assert alices_case.status == CaseStatus.OWNED and alices_case.owner == alice


def _grow(n: int, *, alice, retention, customer, case) -> None:
    """Give alice n queued and n owned cases of the customer, and n decisions on `case`."""
    CaseFactory.create_batch(n, team=retention, owner=None, status=CaseStatus.QUEUED, customer=customer)
    CaseFactory.create_batch(n, team=retention, owner=alice, status=CaseStatus.OWNED, customer=customer)
    for i in range(n):
        decision_execute(actor=alice, case=case, kind=kind("refund"), amount="1", currency="EUR", rationale=f"#{i}")


@pytest.mark.django_db
def test_queue_and_case_pages_cost_the_same_queries_for_5_or_50_cases_and_decisions(
    client, alice, maria, retention, customer, django_assert_max_num_queries
):
    # given alice may refund plenty, and owns one case
    GrantFactory(subject_user=alice, per_case_limit=Decimal("100000"), period_limit=Decimal("1000000"))
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    client.force_login(alice)
    counts = {}
    for n in (5, 45):  # 5, then 50 of each
        _grow(n, alice=alice, retention=retention, customer=customer, case=case)
        total = Case.objects.filter(owner=alice).count() - 1
        # when she opens the case list and the case page
        with django_assert_max_num_queries(LIST_QUERIES), CaptureQueriesContext(connection) as listed:
            assert client.get(reverse("cases:list")).status_code == 200
        with django_assert_max_num_queries(CASE_PAGE_QUERIES), CaptureQueriesContext(connection) as shown:
            assert client.get(reverse("cases:detail", args=[case.pk])).status_code == 200
        counts[total] = (len(listed), len(shown))
    # then each page cost the same number of queries with 5 and with 50
    assert set(counts) == {5, 50}
    assert counts[5] == counts[50]
    assert Decision.objects.filter(case=case).count() == 50
