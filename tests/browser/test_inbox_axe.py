"""What waits for me and "Approved — execute now": axe-core finds no serious or critical violation, and
the callout fills in the decision form by keyboard alone, executing nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from authority.models import Decision
from authority.services import authority_request_approve, authority_request_open, authority_request_reject
from h2h_core.models import CaseStatus, Role
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, TeamFactory, UserFactory, kind

from .conftest import VIEWPORT
from .test_accessibility_axe import log_in, violations
from .test_customer_page_axe import violations_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_waiting_list_and_the_approved_callout_are_accessible_and_prefill_by_keyboard(browser, live_server):
    # given alice (500 per case) and maria, Retention's manager (5,000)
    retention = TeamFactory(name="Retention", slug="retention")
    alice = UserFactory(username="alice", roles=[Role.AGENT])
    retention.members.add(alice)
    maria = UserFactory(username="maria", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", maria, retention)
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    cases = [CaseFactory(customer=CustomerFactory(), team=retention, owner=alice, status=CaseStatus.OWNED)
             for _ in range(4)]
    asked = [authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                    justification="Key account") for case in cases[:3]]
    # one approved, one rejected, one waiting for maria; and one case past its due time
    authority_request_approve(actor=maria, request=asked[0], note="Go ahead")
    authority_request_reject(actor=maria, request=asked[1], note="Too much for this tier")
    cases[3].resolution_due = timezone.now() - timedelta(hours=2)
    cases[3].save(update_fields=["resolution_due"])
    decisions = Decision.objects.count()
    found = []
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    log_in(page, "maria")
    # when axe checks maria's list
    found += violations(page, "/cases/waiting/")
    assert "Requests to approve (1)" in page.content()
    context.close()
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    log_in(page, "alice")
    # and alice's list, then her case with the callout
    found += violations(page, "/cases/waiting/")
    assert "Approved — execute now (1)" in page.content() and "Overdue cases you own (1)" in page.content()
    assert "Rejected requests (1)" in page.content()
    found += violations(page, f"/cases/{cases[0].pk}/")
    # and she follows the callout by keyboard
    page.get_by_role("link", name="Fill in the decision: refund of 1,200.00 EUR").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "kind=refund" in url)
    found += violations_here(page)
    # then the form holds the approved kind and amount for her to review, and nothing was executed
    assert page.locator("#id_kind").input_value() == "refund"
    assert page.locator("#id_amount").input_value() == "1200"
    assert page.locator("#id_currency").input_value() == "EUR"
    assert Decision.objects.count() == decisions
    context.close()
    assert found == []
