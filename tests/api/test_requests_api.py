"""One-hop authority requests through the API: open, approve (then execute), reject, and who sees them."""

import pytest

from authority.models import AuthorityRequest, RequestStatus
from tests.factories import CaseFactory

from .helpers import assert_error_shape, audit_actions, client_for, state

pytestmark = pytest.mark.django_db

REQUESTS = "/api/v1/authority-requests/"


def ask(on_case, amount="1200.00", **overrides):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR",
            "justification": "Charged three times; long-standing customer", **overrides}


@pytest.fixture
def opened(as_alice, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000):
    response = as_alice.post(REQUESTS, ask(case_owned_by_alice), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_over_her_limit_an_agent_asks_the_team_manager_in_one_hop(opened, maria, case_owned_by_alice):
    assert opened["status"] == "open" and opened["requester"] == "alice"
    assert opened["pool"] == [maria.pk] and opened["amount"] == "1200.00"
    assert opened["verdict"]["allowed"] is False
    assert "authority_request.opened" in audit_actions()


def test_the_approver_sees_the_request_waiting_for_her(opened, as_maria):
    waiting = as_maria.get(f"{REQUESTS}?awaiting_me=true").json()["results"]
    assert [row["id"] for row in waiting] == [opened["id"]]


def test_approval_gives_a_one_off_grant_and_the_agent_then_executes(opened, as_maria, as_alice,
                                                                    case_owned_by_alice):
    # when maria approves
    response = as_maria.post(f"{REQUESTS}{opened['id']}/approve/", {"note": "Fine, once."}, format="json")
    # then the request is approved with a one-off grant
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "approved" and response.json()["one_off_grant"]
    # and alice can now execute the 1,200 on that case
    decision = as_alice.post("/api/v1/decisions/", {"case": case_owned_by_alice.pk, "kind": "refund",
                                                    "amount": "1200.00", "currency": "EUR",
                                                    "rationale": "Approved by maria"}, format="json")
    assert decision.status_code == 201, decision.json()
    assert decision.json()["request"] == opened["id"]


def test_the_requester_cannot_approve_her_own_request_and_nothing_changes(opened, as_alice):
    before = state()
    response = as_alice.post(f"{REQUESTS}{opened['id']}/approve/", {}, format="json")
    assert_error_shape(response, 403, "not_allowed")
    assert state() == before


def test_a_manager_outside_the_pool_cannot_see_or_approve_it(opened, billing):
    from guardian.shortcuts import assign_perm

    from h2h_core.models import Role
    from tests.factories import UserFactory

    outsider = UserFactory(username="otto", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", outsider, billing)
    before = state()
    response = client_for(outsider).post(f"{REQUESTS}{opened['id']}/approve/", {}, format="json")
    assert_error_shape(response, 404, "not_found")
    assert state() == before


def test_deciding_twice_is_409_and_changes_nothing(opened, as_maria):
    as_maria.post(f"{REQUESTS}{opened['id']}/reject/", {"note": "Not this time."}, format="json")
    before = state()
    response = as_maria.post(f"{REQUESTS}{opened['id']}/approve/", {}, format="json")
    body = assert_error_shape(response, 409, "already_decided")
    assert "rejected" in body["message"]
    assert state() == before


def test_rejection_needs_a_reason_and_records_it(opened, as_maria):
    before = state()
    missing = as_maria.post(f"{REQUESTS}{opened['id']}/reject/", {}, format="json")
    assert "note" in assert_error_shape(missing, 400, "invalid")["details"]
    assert state() == before
    response = as_maria.post(f"{REQUESTS}{opened['id']}/reject/", {"note": "Offer a voucher."}, format="json")
    assert response.status_code == 200 and response.json()["decision_note"] == "Offer a voucher."
    assert AuthorityRequest.objects.get().status == RequestStatus.REJECTED


def test_asking_for_what_is_within_authority_is_400(as_alice, case_owned_by_alice, alice_may_refund_500):
    response = as_alice.post(REQUESTS, ask(case_owned_by_alice, "100.00"), format="json")
    assert "amount" in assert_error_shape(response, 400, "invalid")["details"]
    assert not AuthorityRequest.objects.exists()


def test_the_agent_sees_her_request_and_another_team_does_not(opened, as_alice, billing_case):
    carol = billing_case.owner
    assert [row["id"] for row in as_alice.get(f"{REQUESTS}?mine=true").json()["results"]] == [opened["id"]]
    assert client_for(carol).get(REQUESTS).json()["count"] == 0
    assert_error_shape(client_for(carol).get(f"{REQUESTS}{opened['id']}/"), 404, "not_found")


@pytest.mark.parametrize("rows", [5, 30])
def test_listing_requests_costs_the_same_queries_for_5_or_30_rows(as_alice, as_maria, alice, retention, rows,
                                                                  alice_may_refund_500, maria_may_refund_5000,
                                                                  django_assert_max_num_queries):
    for case in CaseFactory.create_batch(rows, team=retention, owner=alice):
        assert as_alice.post(REQUESTS, ask(case, "600.00"), format="json").status_code == 201
    for client in (as_alice, as_maria):
        with django_assert_max_num_queries(8):
            response = client.get(f"{REQUESTS}?page_size=50")
        assert len(response.json()["results"]) == rows


# --- through the request's flow: the process layer is the only write path -------------------------


def approval_tasks(request_id) -> dict[str, str]:
    from workflows.models import RequestProcess

    process = RequestProcess.objects.get(request_id=request_id)
    return {"process": process.status,
            **{task.flow_task.name: task.status for task in process.task_set.order_by("pk")}}


def test_a_request_opened_through_the_api_starts_its_flow_at_once(opened):
    # then its process waits for the team's managers, with the team window armed: no timer run needed
    tasks = approval_tasks(opened["id"])
    assert tasks["process"] == "NEW"
    assert tasks["team_approval"] == "NEW" and tasks["team_approval__timeout"] == "SCHEDULED"


@pytest.mark.parametrize(("verb", "note"), [("approve", ""), ("reject", "Over policy")])
def test_deciding_through_the_api_ends_the_approval_wait_at_once(opened, as_maria, verb, note):
    # when maria decides the request
    response = as_maria.post(f"{REQUESTS}{opened['id']}/{verb}/", {"note": note}, format="json")
    assert response.status_code == 200, response.json()
    # then, without a timer run, the approval task is done, its timer cancelled, the process over
    tasks = approval_tasks(opened["id"])
    assert tasks["team_approval"] == "DONE" and tasks["team_approval__timeout"] == "CANCELED"
    assert tasks["process"] == "DONE"


def test_a_refused_decision_leaves_the_approval_wait_as_it_was(opened, as_alice):
    response = as_alice.post(f"{REQUESTS}{opened['id']}/approve/", {}, format="json")
    assert_error_shape(response, 403)
    tasks = approval_tasks(opened["id"])
    assert tasks["process"] == "NEW" and tasks["team_approval"] == "NEW"
