"""Cases through the API: who sees which, opening from other systems, claim, hand over, resolve."""

import pytest
from django.contrib.auth.models import Permission

from h2h_core.models import AuditEvent, Case, CaseStatus, Role
from tests.factories import CaseFactory, CustomerFactory, UserFactory
from workflows.models import CaseProcess

from .helpers import assert_error_shape, audit_actions, client_for, state

pytestmark = pytest.mark.django_db


def case_payload(customer, **overrides):
    return {"customer": customer.pk, "subject": "Charged twice for March", "category": "billing_error",
            "amount_at_stake": "89.90", "currency": "EUR", **overrides}


def test_an_agent_lists_her_teams_cases_and_never_another_teams(as_alice, case_owned_by_alice, retention,
                                                                 billing_case):
    # given a queued case of her team, and a case of Billing
    queued = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED)
    # when alice lists cases
    response = as_alice.get("/api/v1/cases/")
    # then she sees her own and her team's, not Billing's
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {case_owned_by_alice.pk, queued.pk}
    assert response.json()["count"] == 2


def test_a_case_the_caller_may_not_see_is_404_as_if_it_did_not_exist(as_alice, billing_case):
    body = assert_error_shape(as_alice.get(f"/api/v1/cases/{billing_case.pk}/"), 404, "not_found")
    assert billing_case.subject not in str(body)


def test_an_auditor_sees_every_case(as_audrey, case_owned_by_alice, billing_case):
    assert as_audrey.get("/api/v1/cases/").json()["count"] == 2


def test_case_filters_narrow_the_list(as_alice, alice, retention):
    # given alice's open refund case, a resolved case and a queued crisis
    mine = CaseFactory(team=retention, owner=alice, category="complaint", stakes_score=80)
    CaseFactory(team=retention, owner=alice, status=CaseStatus.RESOLVED, stakes_score=10)
    queued = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED, category="crisis", stakes_score=90)

    def ids(query):
        response = as_alice.get(f"/api/v1/cases/?{query}")
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    # then each filter keeps what it says
    assert ids("owner=me&open=true") == {mine.pk}
    assert ids("status=queued") == {queued.pk}
    assert ids("category=crisis") == {queued.pk}
    assert ids("min_stakes=50&open=true") == {mine.pk, queued.pk}
    assert ids(f"customer={queued.customer_id}") == {queued.pk}
    assert ids("team=retention&owner=alice&open=false") - {mine.pk, queued.pk}


@pytest.mark.parametrize("rows", [5, 30])
def test_listing_cases_costs_the_same_queries_for_5_or_30_rows(as_alice, alice, retention, rows,
                                                               django_assert_max_num_queries):
    CaseFactory.create_batch(rows, team=retention, owner=alice)
    with django_assert_max_num_queries(5):
        response = as_alice.get("/api/v1/cases/?page_size=50")
    assert len(response.json()["results"]) == rows


def test_an_agent_opens_a_case_that_is_scored_and_routed(as_alice, retention):
    # given a customer of another system
    customer = CustomerFactory()
    # when alice opens a billing case through the API
    response = as_alice.post("/api/v1/cases/", case_payload(customer), format="json")
    # then it exists, is scored and queued, and the opening is audited
    assert response.status_code == 201, response.json()
    case = Case.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/v1/cases/{case.pk}/")
    assert response.json()["amount_at_stake"] == "89.90" and response.json()["reference"] == case.reference
    assert case.stakes_score > 0
    assert "case.opened" in audit_actions()


def test_an_integration_account_with_the_add_case_permission_may_open_cases(db):
    # given a service account with no role but the add_case permission
    crm = UserFactory(username="crm-bridge")
    crm.user_permissions.add(Permission.objects.get(codename="add_case"))
    customer = CustomerFactory()
    # when it opens a case
    response = client_for(crm).post("/api/v1/cases/", case_payload(customer, category="complaint"), format="json")
    # then the case is opened
    assert response.status_code == 201 and Case.objects.count() == 1


def test_an_auditor_cannot_open_a_case_and_nothing_changes(as_audrey):
    customer = CustomerFactory()
    before, events = state(), AuditEvent.objects.exclude(outcome="denied").count()
    response = as_audrey.post("/api/v1/cases/", case_payload(customer), format="json")
    assert_error_shape(response, 403, "permission_denied")
    assert state() == before and AuditEvent.objects.exclude(outcome="denied").count() == events


def test_opening_a_case_for_an_unknown_customer_names_the_field(as_alice):
    body = assert_error_shape(as_alice.post("/api/v1/cases/", case_payload(CustomerFactory.build(pk=4242)),
                                            format="json"), 400, "invalid")
    assert "customer" in body["details"] and not Case.objects.exists()


def test_bad_case_input_lists_every_bad_field(as_alice):
    response = as_alice.post("/api/v1/cases/", {"customer": 0, "subject": "", "category": "lost",
                                                "amount_at_stake": "-1", "currency": "XYZ"}, format="json")
    body = assert_error_shape(response, 400, "invalid")
    assert set(body["details"]) == {"customer", "subject", "category", "amount_at_stake", "currency"}


def test_an_agent_claims_a_queued_case_of_her_team(as_alice, alice, retention):
    queued = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED)
    response = as_alice.post(f"/api/v1/cases/{queued.pk}/claim/")
    assert response.status_code == 200, response.json()
    assert response.json()["owner"] == "alice" and response.json()["status"] == "owned"
    assert Case.objects.get(pk=queued.pk).owner == alice


def test_claiming_a_case_someone_owns_is_409_and_changes_nothing(as_bob, case_owned_by_alice):
    before = state()
    body = assert_error_shape(as_bob.post(f"/api/v1/cases/{case_owned_by_alice.pk}/claim/"), 409, "case_not_open")
    assert "alice" in body["message"]
    assert state() == before


def test_claiming_a_case_of_another_team_is_404_and_changes_nothing(as_alice, billing):
    queued = CaseFactory(team=billing, owner=None, status=CaseStatus.QUEUED)
    before = state()
    assert_error_shape(as_alice.post(f"/api/v1/cases/{queued.pk}/claim/"), 404, "not_found")
    assert state() == before


def test_the_owner_hands_a_case_over_with_a_note(as_alice, bob, case_owned_by_alice):
    response = as_alice.post(f"/api/v1/cases/{case_owned_by_alice.pk}/handover/",
                             {"to_user": "bob", "note": "Customer prefers email; refund pending billing."},
                             format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["owner"] == "bob"
    assert AuditEvent.objects.filter(action="case.handed_over").count() == 1


def test_handing_over_to_someone_unknown_or_outside_the_team_is_400_and_changes_nothing(as_alice,
                                                                                       case_owned_by_alice):
    UserFactory(username="zed", roles=[Role.AGENT])
    before = state()
    unknown = as_alice.post(f"/api/v1/cases/{case_owned_by_alice.pk}/handover/",
                            {"to_user": "nobody", "note": "x"}, format="json")
    outsider = as_alice.post(f"/api/v1/cases/{case_owned_by_alice.pk}/handover/",
                             {"to_user": "zed", "note": "x"}, format="json")
    assert "to_user" in assert_error_shape(unknown, 400, "invalid")["details"]
    assert "to_user" in assert_error_shape(outsider, 400, "invalid")["details"]
    assert state() == before


def test_a_colleague_who_does_not_own_the_case_cannot_hand_it_over(as_bob, bob, case_owned_by_alice):
    before = state()
    response = as_bob.post(f"/api/v1/cases/{case_owned_by_alice.pk}/handover/",
                           {"to_user": "bob", "note": "mine now"}, format="json")
    assert_error_shape(response, 403, "not_case_owner")
    assert state() == before


def test_the_owner_resolves_her_case(as_alice, case_owned_by_alice):
    response = as_alice.post(f"/api/v1/cases/{case_owned_by_alice.pk}/resolve/",
                             {"summary": "Refunded the double charge."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert response.json()["resolution_summary"] == "Refunded the double charge."


def test_a_colleague_cannot_resolve_someone_elses_case_and_nothing_changes(as_bob, case_owned_by_alice):
    before, events = state(), AuditEvent.objects.exclude(outcome="denied").count()
    response = as_bob.post(f"/api/v1/cases/{case_owned_by_alice.pk}/resolve/", {"summary": "done"}, format="json")
    assert_error_shape(response, 403, "not_case_owner")
    assert state() == before and AuditEvent.objects.exclude(outcome="denied").count() == events


def test_a_case_opened_through_the_api_starts_its_flow_in_the_same_step(as_alice, alice, retention):
    # given a customer of the Retention queue
    customer = CustomerFactory()
    # when an integrator (here alice) opens a complaint through the API
    response = as_alice.post("/api/v1/cases/", case_payload(customer, category="complaint"), format="json")
    # then the case's flow runs from intake: its ownership task waits in the team queue, no adoption needed
    assert response.status_code == 201
    process = CaseProcess.objects.get(case_id=response.json()["id"])
    assert not process.data.get("adopted")
    task = process.task_set.get(flow_task_type="HUMAN")
    assert task.owner_id is None and task.status == "NEW"


def test_a_claim_through_the_api_assigns_the_flows_ownership_task(as_alice, alice, retention):
    # given a complaint opened through the API, waiting in the Retention queue
    customer = CustomerFactory()
    case_id = as_alice.post("/api/v1/cases/", case_payload(customer, category="complaint"), format="json").json()["id"]
    # when alice claims it through the API
    response = as_alice.post(f"/api/v1/cases/{case_id}/claim/")
    # then the record and the process agree at once: she owns the case and its ownership task
    assert response.status_code == 200 and response.json()["owner"] == "alice"
    task = CaseProcess.objects.get(case_id=case_id).task_set.get(flow_task_type="HUMAN")
    assert task.owner == alice and task.status == "ASSIGNED"
