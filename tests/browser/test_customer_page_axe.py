"""axe-core finds no serious or critical violation on the customer page and the case's customer
panel, as an agent sees them (with the note form, a note and a refused note) and as an auditor."""

import pytest
from django.core.management import call_command

from h2h_core.models import Case, CaseStatus

from .conftest import VIEWPORT
from .test_accessibility_axe import AXE, BLOCKING, log_in, violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def violations_here(page) -> list[str]:
    """axe on the page as it is now (a form's answer), without loading it again."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{page.url}: {item['id']} ({item['impact']}): {item['help']}"
            for item in result["violations"] if item["impact"] in BLOCKING]


def test_the_customer_page_and_panel_have_no_serious_accessibility_violations(browser, live_server):
    # given the demo organisation and one of alice's cases
    call_command("seed_demo", scale=0.2, verbosity=0)
    case = Case.objects.filter(owner__username="alice", status=CaseStatus.OWNED).first()
    customer_url, case_url = f"/customers/{case.customer_id}/", f"/cases/{case.pk}/"
    found = []
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    log_in(page, "alice")
    # when alice adds a note from her case's panel, by keyboard
    page.goto(case_url)
    page.get_by_role("textbox", name="Internal note").fill("Prefers e-mail.")
    page.get_by_role("button", name="Add note").press("Enter")
    page.wait_for_url(lambda url: url.endswith("#customer-notes"))
    assert "Prefers e-mail." in page.content()
    found += violations_here(page)
    # and sends a too long one from the customer page (the browser's maxlength removed, as a crafted post)
    found += violations(page, customer_url)
    page.eval_on_selector("#customer-note-text", "el => el.removeAttribute('maxlength')")
    page.get_by_role("textbox", name="Internal note").fill("x" * 2001)
    page.get_by_role("button", name="Add note").click()
    page.wait_for_load_state()
    assert "at most 2000 characters" in page.content()
    found += violations_here(page)
    context.close()
    # and the auditor reads the customer page
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    log_in(page, "audrey")
    found += violations(page, customer_url)
    context.close()
    # then nothing serious or critical is found
    assert found == []
