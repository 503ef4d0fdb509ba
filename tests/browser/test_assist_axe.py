"""The case page's assist panel: axe-core finds no serious or critical violation, and its suggestion
prefills the decision form by keyboard alone, executing nothing."""

from decimal import Decimal

import pytest

from authority.models import Decision
from authority.services import decision_execute
from h2h_core.models import Case, CaseStatus, Role
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, TeamFactory, UserFactory, kind

from .conftest import VIEWPORT
from .test_accessibility_axe import log_in, violations
from .test_customer_page_axe import violations_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_assist_panel_is_accessible_and_its_suggestion_prefills_the_form_by_keyboard(browser, live_server):
    # given alice's case about a double charge, and three such cases her team mate resolved with a credit
    retention = TeamFactory(name="Retention", slug="retention")
    alice, bob = (UserFactory(username=name, roles=[Role.AGENT]) for name in ("alice", "bob"))
    retention.members.add(alice, bob)
    for agent in (alice, bob):
        GrantFactory(subject_user=agent, kind=kind("goodwill_credit"), per_case_limit=Decimal("100"),
                     period_limit=Decimal("1000"))
    for credit in ("50", "50", "70"):
        done = CaseFactory(customer=CustomerFactory(), team=retention, owner=bob, subject="Subscription charged twice",
                           description="This is awful: charged twice for the subscription.")
        decision_execute(actor=bob, case=done, kind=kind("goodwill_credit"), amount=credit, currency="EUR",
                         rationale="Sorry for the trouble")
        Case.objects.filter(pk=done.pk).update(status=CaseStatus.RESOLVED, rating=4)
    case = CaseFactory(customer=CustomerFactory(), team=retention, owner=alice, status=CaseStatus.OWNED,
                       subject="Charged twice for my subscription",
                       description="This is terrible, I am furious: you charged me twice again!")
    decisions = Decision.objects.count()
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    log_in(page, "alice")
    # when axe checks her case page with the panel
    found = violations(page, f"/cases/{case.pk}/")
    assert "Customer sounds upset" in page.content() and "you can do it now" in page.content()
    # and she follows the suggestion by keyboard
    page.get_by_role("link", name="Prefill the decision form").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "kind=goodwill_credit" in url)
    found += violations_here(page)
    # then the form holds the suggestion for her to review, nothing was executed, and axe found nothing
    assert page.locator("#id_kind").input_value() == "goodwill_credit"
    assert page.locator("#id_amount").input_value() == "50"
    assert Decision.objects.count() == decisions
    context.close()
    assert found == []
