"""A submit made on a stale view of a case is refused with what changed since the page was opened.

The case page carries the version it showed (`h2h_core.case_views.case_view_version`); every
state-changing step checks it under the case lock (`h2h_core.access.may_act_on_view`). API
callers that send no version are not checked.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from authority.models import AuthorityRequest, Decision
from authority.services import decision_execute
from h2h_core.case_views import case_view_version
from h2h_core.errors import StaleView
from h2h_core.models import AuditEvent, Case, CaseEvent, CaseStatus
from tests.api.helpers import client_for
from tests.factories import GrantFactory, kind
from workflows import services

from .conftest import open_case

REFUND_40 = {"kind": "refund", "amount": "40", "currency": "EUR", "rationale": "Charged twice"}


@pytest.fixture
def grants(alice, maria):
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))


@pytest.fixture
def alices_case(alice, customer, grants):
    return services.case_flow_claim(actor=alice, case=open_case(alice, customer))


def seen_version_on(page: str) -> str:
    return page.split('name="seen_version" value="')[1].split('"')[0]


def state(case) -> tuple:
    case = Case.objects.get(pk=case.pk)
    return (case.owner_id, case.status, Decision.objects.count(), AuthorityRequest.objects.count(),
            CaseEvent.objects.filter(case=case).count(),
            AuditEvent.objects.exclude(outcome="denied").count())


def refuse_40_eur(alice, case, seen_version):
    return decision_execute(actor=alice, case=case, kind=kind("refund"), amount="40", currency="EUR",
                            rationale="Charged twice", seen_version=seen_version)


@pytest.mark.django_db
def test_a_claim_on_a_page_opened_before_someone_else_claimed_is_refused_naming_the_new_owner(
        client, alice, bob, customer):
    # given alice has the queued case open
    case = open_case(alice, customer)
    client.force_login(alice)
    seen = seen_version_on(client.get(reverse("cases:detail", args=[case.pk])).text)
    # and meanwhile bob claims it
    services.case_flow_claim(actor=bob, case=case)
    before = state(case)
    # when alice presses "Claim this case" on her page
    response = client.post(reverse("cases:claim", args=[case.pk]), {"seen_version": seen}, follow=True)
    # then she is told what changed, and nothing did
    assert response.status_code == 200
    assert "Since you opened this case: the owner changed from nobody to bob" in response.text
    assert state(case) == before
    # and the refusal is on the record
    assert AuditEvent.objects.filter(action="case.claim.refused", outcome="denied").exists()


@pytest.mark.django_db
def test_a_decision_on_a_page_opened_before_another_decision_is_refused_naming_it(client, alice, alices_case):
    # given alice has her case open, and in another tab executes a refund of 40
    client.force_login(alice)
    seen = seen_version_on(client.get(reverse("cases:detail", args=[alices_case.pk])).text)
    decision_execute(actor=alice, case=alices_case, kind=kind("refund"), amount="40", currency="EUR",
                     rationale="First tab")
    before = state(alices_case)
    # when she submits the same decision reviewed on the first page (a new review: a new key)
    response = client.post(reverse("cases:decide", args=[alices_case.pk]),
                           {**REFUND_40, "seen_version": seen, "idempotency_key": "review-other-tab"})
    # then the page is shown again with what changed, her form kept, and nothing executed twice
    assert response.status_code == 200
    assert "Since you opened this case: a decision was executed by alice (Refund of 40.00 EUR)" in response.text
    assert 'value="Charged twice"' in response.text or "Charged twice</textarea>" in response.text
    assert state(alices_case) == before
    # and the page she sees now carries the current version: acting on it again passes
    assert seen_version_on(response.text) == case_view_version(alices_case)


@pytest.mark.django_db
def test_the_review_step_already_says_the_page_is_stale(client, alice, alices_case):
    client.force_login(alice)
    seen = seen_version_on(client.get(reverse("cases:detail", args=[alices_case.pk])).text)
    refuse_40_eur(alice, alices_case, None)
    response = client.post(reverse("cases:review", args=[alices_case.pk]), {**REFUND_40, "seen_version": seen})
    assert "a decision was executed by alice (Refund of 40.00 EUR)" in response.text
    assert 'name="idempotency_key"' not in response.text  # no confirm button on a stale view


@pytest.mark.django_db
def test_a_fresh_page_decides_through_review_and_confirmation(client, alice, alices_case):
    # given alice opens her case
    client.force_login(alice)
    seen = seen_version_on(client.get(reverse("cases:detail", args=[alices_case.pk])).text)
    # when she reviews and confirms a refund, nothing having changed
    review = client.post(reverse("cases:review", args=[alices_case.pk]), {**REFUND_40, "seen_version": seen}).text
    key = review.split('name="idempotency_key" value="')[1].split('"')[0]
    assert seen_version_on(review) == seen
    client.post(reverse("cases:decide", args=[alices_case.pk]),
                {**REFUND_40, "seen_version": seen, "idempotency_key": key})
    # then it is executed
    assert Decision.objects.filter(case=alices_case, amount=Decimal("40")).count() == 1


@pytest.mark.django_db
def test_the_service_refuses_a_stale_decision_and_records_the_refusal(alice, alices_case):
    seen = case_view_version(alices_case)
    refuse_40_eur(alice, alices_case, None)
    before = state(alices_case)
    with pytest.raises(StaleView, match=r"a decision was executed by alice \(Refund of 40.00 EUR\)"):
        refuse_40_eur(alice, alices_case, seen)
    assert state(alices_case) == before
    assert AuditEvent.objects.filter(action="decision.refused", outcome="denied").exists()


@pytest.mark.django_db
def test_a_forged_version_is_refused_and_nothing_changes(alice, bob, customer):
    case = open_case(alice, customer)
    genuine = case_view_version(case)
    # bob rewrites the parts of a genuine version (say, to claim past a change) without its signature
    forged = genuine.replace(f"{case.pk}:0:queued:", f"{case.pk}:0:new:", 1)
    assert forged != genuine
    before = state(case)
    with pytest.raises(StaleView, match="could not be verified"):
        services.case_flow_claim(actor=bob, case=case, seen_version=forged)
    with pytest.raises(StaleView, match="could not be verified"):
        services.case_flow_claim(actor=bob, case=case, seen_version="")
    assert state(case) == before


@pytest.mark.django_db
def test_a_version_of_another_case_is_refused(alice, bob, customer):
    case, other = open_case(alice, customer), open_case(alice, customer)
    with pytest.raises(StaleView, match="could not be verified"):
        services.case_flow_claim(actor=bob, case=case, seen_version=case_view_version(other))
    assert Case.objects.get(pk=case.pk).owner_id is None


@pytest.mark.django_db
def test_a_fresh_version_passes_every_step(alice, bob, maria, alices_case):
    # hand over to bob, bob resolves, alice reopens: each on a page that shows the case as it is
    services.case_flow_handover(actor=alice, case=alices_case, to_user=bob, note="Over to you",
                                seen_version=case_view_version(alices_case))
    case = Case.objects.get(pk=alices_case.pk)
    services.case_flow_resolve(actor=bob, case=case, summary="Refunded", seen_version=case_view_version(case))
    case = Case.objects.get(pk=case.pk)
    services.case_flow_reopen(actor=bob, case=case, reason="Came back", seen_version=case_view_version(case))
    case = Case.objects.get(pk=case.pk)
    assert case.owner == bob and case.status == CaseStatus.OWNED


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["handover", "resolve", "request"])
def test_every_step_refuses_a_page_opened_before_the_case_changed(step, alice, bob, alices_case):
    # given alice's page, then a decision on the case from another tab
    seen = case_view_version(alices_case)
    refuse_40_eur(alice, alices_case, None)
    before = state(alices_case)
    calls = {
        "handover": lambda: services.case_flow_handover(actor=alice, case=alices_case, to_user=bob, note="Over",
                                                        seen_version=seen),
        "resolve": lambda: services.case_flow_resolve(actor=alice, case=alices_case, summary="Done",
                                                      seen_version=seen),
        "request": lambda: services.authority_request_flow_open(
            actor=alice, case=alices_case, kind=kind("refund"), amount="900", currency="EUR",
            justification="Key account", seen_version=seen),
    }
    with pytest.raises(StaleView, match="Since you opened this case: a decision was executed"):
        calls[step]()
    assert state(alices_case) == before


@pytest.mark.django_db
def test_a_reopen_on_a_page_opened_before_a_status_change_names_it(alice, maria, alices_case):
    # given alice resolved her case and has the resolved page open
    services.case_flow_resolve(actor=alice, case=alices_case, summary="Refunded")
    case = Case.objects.get(pk=alices_case.pk)
    seen = case_view_version(case)
    # and maria, her manager, reopens it from her own page
    services.case_flow_reopen(actor=maria, case=case, reason="Customer wrote back")
    before = state(case)
    # when alice reopens it from hers
    with pytest.raises(StaleView, match="the status changed from resolved to owned"):
        services.case_flow_reopen(actor=alice, case=case, reason="Twice", seen_version=seen)
    assert state(case) == before


@pytest.mark.django_db
def test_a_round_trip_back_to_the_same_owner_still_counts_as_a_change(alice, bob, alices_case):
    # given alice's page of her case; then she hands it to bob in another tab, and bob hands it back
    seen = case_view_version(alices_case)
    services.case_flow_handover(actor=alice, case=alices_case, to_user=bob, note="Yours")
    services.case_flow_handover(actor=bob, case=alices_case, to_user=alice, note="Back to you: read my note")
    before = state(alices_case)
    # when she resolves from the old page, then it is refused: she has not read bob's note
    with pytest.raises(StaleView, match="the case was handed over by alice; the case was handed over by bob"):
        services.case_flow_resolve(actor=alice, case=alices_case, summary="Done", seen_version=seen)
    assert state(alices_case) == before


@pytest.mark.django_db
def test_api_callers_that_send_no_version_are_not_checked(alice, alices_case, grants):
    # given the case changed since anybody "saw" it: an API caller has no page and sends no version
    refuse_40_eur(alice, alices_case, None)
    api = client_for(alice)
    response = api.post("/api/v1/decisions/", {"case": alices_case.pk, "kind": "refund", "amount": "10",
                                               "currency": "EUR", "rationale": "Goodwill"}, format="json")
    assert response.status_code == 201, response.content
    assert Decision.objects.filter(case=alices_case).count() == 2
