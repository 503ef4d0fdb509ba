"""What waits for me: the list per persona, the navigation's counts, and "Approved — execute now" on the case."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from authority.errors import AuthorityDenied
from authority.models import AuthorityRequest, Grant
from authority.services import decision_execute
from h2h_core.models import Case, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind
from workflows import services
from workflows.inbox import WaitingCounts, inbox_for, waiting_counts

from .conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def grants(alice, bob, maria):
    """alice and bob may refund 500 per case; maria, the Retention manager, 5,000."""
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=bob, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))


@pytest.fixture
def alices_case(alice, customer, grants):
    return services.case_flow_claim(actor=alice, case=open_case(alice, customer))


def ask(actor, case, amount="1200") -> AuthorityRequest:
    return services.authority_request_flow_open(actor=actor, case=case, kind=kind("refund"), amount=amount,
                                                currency="EUR", justification="Key account, churn risk")


@pytest.fixture
def request_waiting(alice, alices_case):
    return ask(alice, alices_case)


@pytest.fixture
def approved(maria, request_waiting):
    return services.authority_request_flow_approve(actor=maria, request=request_waiting, note="Go ahead")


@pytest.fixture
def billing_manager(billing):
    user = UserFactory(username="bea", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, billing)
    GrantFactory(subject_user=user, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    return user


def nav_counts(client, user, url_name="cases:list") -> str:
    client.force_login(user)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    return response.content.decode()


# --- the approver --------------------------------------------------------------------------------


def test_an_approver_sees_the_request_in_her_pool_and_its_count_on_approvals(client, maria, request_waiting):
    # given alice asked the Retention pool (maria) for 1,200
    # when maria looks at what waits for her
    inbox = inbox_for(maria)
    # then the request is there, and both navigation counts say so
    assert inbox.approvals == [request_waiting]
    assert waiting_counts(maria, with_approvals=True).approvals == 1
    page = nav_counts(client, maria)
    assert 'Approvals <span class="nav-count">(1<span class="sr-only"> waiting</span>)' in page
    assert 'Waiting for me <span class="nav-count">(1<span class="sr-only"> waiting</span>)' in page
    # and the list names it
    page = nav_counts(client, maria, "cases:waiting")
    assert "Requests to approve (1)" in page and request_waiting.case.reference in page


def test_another_teams_requests_are_never_counted(client, maria, billing_manager, billing, carol, customer,
                                                  request_waiting):
    # given carol of Billing asked the Billing pool (bea), and alice asked Retention's (maria)
    GrantFactory(subject_user=carol, per_case_limit=Decimal("100"))
    billing_case = CaseFactory(owner=carol, team=billing, customer=customer)
    theirs = ask(carol, billing_case, amount="300")
    # when each manager looks
    # then each counts only her own team's request
    assert inbox_for(maria).approvals == [request_waiting]
    assert inbox_for(billing_manager).approvals == [theirs]
    assert waiting_counts(maria, with_approvals=True).approvals == 1
    assert waiting_counts(billing_manager, with_approvals=True).approvals == 1
    # and maria's list shows nothing of Billing's
    assert billing_case.reference not in nav_counts(client, maria, "cases:waiting")


def test_a_decided_or_expired_request_no_longer_waits_for_the_approver(maria, request_waiting):
    # given the request is past its expiry, not yet swept by the timers
    AuthorityRequest.objects.filter(pk=request_waiting.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    # then it waits for nobody: it can no longer be approved
    assert inbox_for(maria).approvals == []
    assert waiting_counts(maria, with_approvals=True) == WaitingCounts(total=0, approvals=0)


def test_an_agent_without_the_approvals_page_gets_no_approvals_count(client, alice, request_waiting):
    # when alice (an agent) opens a page
    page = nav_counts(client, alice)
    # then there is no Approvals link, and her own open request is not "waiting for her"
    assert "Approvals" not in page
    assert 'Waiting for me <span class="nav-count">(0' in page
    assert inbox_for(alice).count == 0


def test_anonymous_visitors_get_no_counts(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(0):
        response = client.get(reverse("login"))
    assert "Waiting for me" not in response.content.decode()


# --- the agent -----------------------------------------------------------------------------------


def test_a_handover_waits_for_the_new_owner_until_she_acts_on_the_case(alice, bob, alices_case):
    # given alice hands her case over to bob
    services.case_flow_handover(actor=alice, case=alices_case, to_user=bob, note="Customer prefers mail")
    # then it waits for bob, not for alice
    assert [case.pk for case in inbox_for(bob).handovers] == [alices_case.pk]
    assert waiting_counts(bob, with_approvals=False).total == 1
    assert inbox_for(alice).handovers == []
    # when bob acts on the case (a refund within his authority)
    decision_execute(actor=bob, case=Case.objects.get(pk=alices_case.pk), kind=kind("refund"), amount="50",
                     currency="EUR", rationale="Goodwill")
    # then it no longer waits for him
    assert inbox_for(bob).handovers == []
    assert waiting_counts(bob, with_approvals=False).total == 0


def test_a_claimed_case_is_not_a_handover(alice, alices_case):
    assert inbox_for(alice).handovers == []


def test_an_overdue_case_waits_for_its_owner_only(alice, bob, alices_case):
    # given alice's case passed its resolution due time
    Case.objects.filter(pk=alices_case.pk).update(resolution_due=timezone.now() - timedelta(hours=1))
    # then it waits for alice, and not for bob of the same team
    assert [case.pk for case in inbox_for(alice).overdue] == [alices_case.pk]
    assert inbox_for(bob).overdue == []
    # and once resolved it waits for nobody
    services.case_flow_resolve(actor=alice, case=Case.objects.get(pk=alices_case.pk), summary="Refunded")
    assert inbox_for(alice).overdue == []


def test_the_waiting_page_says_overdue_in_text(client, alice, alices_case):
    Case.objects.filter(pk=alices_case.pk).update(sla_breached=True)
    page = nav_counts(client, alice, "cases:waiting")
    assert "Overdue cases you own (1)" in page and "<strong>overdue</strong>" in page
    assert "SLA breached" in page


def test_an_approved_request_waits_until_executed(alice, approved):
    # given maria approved alice's 1,200
    inbox = inbox_for(alice)
    assert inbox.approved == [approved]
    assert inbox.approved[0].left == Decimal("1200")
    assert waiting_counts(alice, with_approvals=False).total == 1
    # when alice executes it
    decision_execute(actor=alice, case=Case.objects.get(pk=approved.case_id), kind=kind("refund"), amount="1200",
                     currency="EUR", rationale="As approved")
    # then nothing waits any more
    assert inbox_for(alice).approved == []
    assert waiting_counts(alice, with_approvals=False).total == 0


def test_a_rejected_request_waits_until_the_agent_acts_on_the_case(alice, maria, request_waiting):
    # given maria rejected alice's request
    services.authority_request_flow_reject(actor=maria, request=request_waiting, note="Too much for this tier")
    # then it waits for alice
    assert inbox_for(alice).rejected == [request_waiting]
    assert waiting_counts(alice, with_approvals=False).total == 1
    # when alice acts on the case (asks again, lower)
    ask(alice, request_waiting.case, amount="800")
    # then the rejection no longer waits for her
    assert inbox_for(alice).rejected == []


# --- "Approved — execute now" on the case page -----------------------------------------------------


def test_the_owner_sees_approved_execute_now_with_kind_and_amount_prefilled(client, alice, approved):
    # when alice opens her case
    client.force_login(alice)
    response = client.get(reverse("cases:detail", args=[approved.case_id]))
    page = response.content.decode()
    # then the callout names the approval and links to the prefilled decision form
    assert "Approved — execute now: refund of 1,200.00 EUR" in page
    link = f'{reverse("cases:detail", args=[approved.case_id])}?kind=refund&amp;amount=1200&amp;currency=EUR#decide-h'
    assert f'href="{link}"' in page
    # when she follows it
    response = client.get(reverse("cases:detail", args=[approved.case_id]),
                          {"kind": "refund", "amount": str(approved.amount), "currency": "EUR"})
    form = response.context["decision_form"]
    # then the decision form is filled in with that kind and amount
    assert form.initial["kind"] == "refund"
    assert Decimal(form.initial["amount"]) == Decimal("1200")
    assert form.initial["currency"] == "EUR"
    assert 'value="refund" selected' in response.content.decode()


def test_the_callout_is_shown_to_the_owner_only(client, maria, approved):
    client.force_login(maria)
    page = client.get(reverse("cases:detail", args=[approved.case_id])).content.decode()
    assert "Approved — execute now" not in page


def test_the_callout_disappears_after_execution(client, alice, approved):
    decision_execute(actor=alice, case=Case.objects.get(pk=approved.case_id), kind=kind("refund"), amount="1200",
                     currency="EUR", rationale="As approved")
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[approved.case_id])).content.decode()
    assert "Approved — execute now" not in page


def test_the_callout_keeps_the_exact_amount_after_a_partial_execution_is_refused(client, alice, approved):
    # given alice tried to execute 700 of the approved 1,200 (beyond her own 500): an approval covers
    # exactly its amount, so that was refused (issue 12: action-bound approvals)
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=alice, case=Case.objects.get(pk=approved.case_id), kind=kind("refund"),
                         amount="700", currency="EUR", rationale="First part")
    # then the callout still offers exactly the amount approved
    client.force_login(alice)
    response = client.get(reverse("cases:detail", args=[approved.case_id]))
    [item] = response.context["approved_to_execute"]
    assert item["left"] == Decimal("1200") and item["amount"] == "1200"
    assert "refund of 1,200.00 EUR" in response.content.decode()


def test_the_callout_disappears_after_the_one_off_grant_expires(client, alice, approved):
    Grant.objects.filter(pk=approved.one_off_grant_id).update(valid_until=timezone.now() - timedelta(minutes=1))
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[approved.case_id])).content.decode()
    assert "Approved — execute now" not in page
    assert inbox_for(alice).approved == []


def test_a_prefill_does_not_replace_a_form_shown_again_with_errors(client, alice, approved):
    # when a review fails validation, the typed values come back, not the link's
    client.force_login(alice)
    response = client.post(reverse("cases:review", args=[approved.case_id]) + "?kind=refund&amount=1200",
                           {"kind": "refund", "amount": "abc", "currency": "EUR", "rationale": "x"})
    assert response.context["decision_form"].data["amount"] == "abc"


# --- query counts ----------------------------------------------------------------------------------


def queries_of(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_navigation_counts_cost_the_same_whatever_the_number_of_requests(client, maria, alice, bob, customer,
                                                                              grants,
                                                                              django_assert_max_num_queries):
    # given one request waiting for maria
    client.force_login(maria)
    ask(alice, services.case_flow_claim(actor=alice, case=open_case(alice, customer)))
    url = reverse("authority:mine")
    one = queries_of(client, url)
    # when four more wait, from two agents
    for agent in (alice, bob, alice, bob):
        ask(agent, services.case_flow_claim(actor=agent, case=open_case(agent, customer)))
    # then the page costs the same number of queries
    assert queries_of(client, url) == one
    assert waiting_counts(maria, with_approvals=True).approvals == 5
    with django_assert_max_num_queries(one):
        client.get(url)


def test_the_waiting_list_costs_the_same_whatever_the_number_of_items(client, alice, maria, bob, customer, grants,
                                                                       django_assert_max_num_queries):
    def items_for_alice():
        case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
        Case.objects.filter(pk=case.pk).update(resolution_due=timezone.now() - timedelta(hours=1))
        services.authority_request_flow_approve(actor=maria, request=ask(alice, case), note="")
        mine = services.case_flow_claim(actor=bob, case=open_case(bob, customer))
        services.case_flow_handover(actor=bob, case=mine, to_user=alice, note="Over to you")
        rejected_case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
        services.authority_request_flow_reject(actor=maria, request=ask(alice, rejected_case), note="No")

    items_for_alice()
    client.force_login(alice)
    url = reverse("cases:waiting")
    one = queries_of(client, url)
    items_for_alice()
    items_for_alice()
    inbox = inbox_for(alice)
    assert (len(inbox.approved), len(inbox.handovers), len(inbox.overdue), len(inbox.rejected)) == (3, 3, 3, 3)
    with django_assert_max_num_queries(one):
        assert client.get(url).status_code == 200
