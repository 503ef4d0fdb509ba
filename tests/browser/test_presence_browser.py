"""Presence in two browsers: alice and maria see each other on the same case within 5 seconds, see
what the other is editing, and alice's page says when the case changed under it; a submit from the
stale page is refused. Maria's browser keeps the strict CSP: the heartbeat runs as a static script."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from h2h_core.models import Case, CaseStatus

from .conftest import VIEWPORT
from .test_accessibility_axe import log_in
from .test_customer_page_axe import violations_here

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WITHIN = 5_000  # ms: the bound for seeing each other


def test_two_people_on_one_case_see_each_other_and_a_stale_submit_is_refused(browser, live_server):
    # given the demo organisation and one of alice's open cases
    call_command("seed_demo", scale=0.2, verbosity=0)
    case = Case.objects.filter(owner__username="alice", status=CaseStatus.OWNED, team__slug="retention").first()
    url = f"/cases/{case.pk}/"
    # (alice's browser lets axe in at the end; maria's keeps the site's CSP)
    alice = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True).new_page()
    maria = browser.new_context(viewport=VIEWPORT, base_url=live_server.url).new_page()
    log_in(alice, "alice")
    log_in(maria, "maria")
    csp_errors = []
    maria.on("console", lambda message: csp_errors.append(message.text)
             if "Content Security Policy" in message.text else None)
    # when both open the case
    alice.goto(url)
    maria.goto(url)
    # then each sees the other within 5 seconds, in the polite live region
    expect(alice.locator("#presence-others")).to_have_text("maria is viewing this case", timeout=WITHIN)
    expect(maria.locator("#presence-others")).to_have_text("alice is viewing this case", timeout=WITHIN)
    assert alice.locator("#presence-others").get_attribute("aria-live") == "polite"
    # when maria starts writing a hand-over note, alice sees that too
    maria.get_by_label("Context note").fill("Maria takes it from here")
    expect(alice.locator("#presence-others")).to_have_text("maria is editing a hand-over", timeout=WITHIN)
    # when maria hands the case over to bob, alice's open page says what changed
    maria.get_by_label("New owner", exact=True).select_option(label="bob")
    maria.get_by_role("button", name="Hand over").click()
    maria.wait_for_load_state()
    expect(alice.locator("#presence-changed")).to_contain_text(
        "Since you opened this case: the owner changed from alice to bob", timeout=WITHIN)
    # and resolving from that page is refused with the same words; the case stays with bob
    alice.get_by_label("Summary for the customer and the record").fill("Refunded")
    alice.get_by_role("button", name="Resolve case").click()
    alice.wait_for_load_state()
    assert "the owner changed from alice to bob" in alice.content()
    case.refresh_from_db()
    assert case.owner.username == "bob" and case.status == CaseStatus.OWNED
    # and the page with presence and its notice has no serious accessibility violation; no CSP error
    alice.goto(url)
    expect(alice.locator("#presence-others")).to_have_text("maria is viewing this case", timeout=WITHIN)
    assert violations_here(alice) == []
    assert csp_errors == []
