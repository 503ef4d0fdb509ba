"""The case list's search and the intake's customer picker in a real browser, by keyboard: a search
narrows the list, a saved view marks itself, the picker suggests customers as the agent types (and
works without JavaScript), and axe finds nothing serious on these pages."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from h2h_core.models import Case, Role
from tests.factories import CaseFactory, CustomerFactory, TeamFactory, UserFactory

from .conftest import VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


def serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{page.url}: {item['id']}: {item['help']}" for item in result["violations"]
            if item["impact"] in {"serious", "critical"}]


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("h2h-demo")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture
def workspace(db):
    retention = TeamFactory(name="Retention", slug="retention")
    alice = UserFactory(username="alice", roles=[Role.AGENT])
    retention.members.add(alice)
    now = timezone.now()
    late = CaseFactory(team=retention, owner=alice, subject="Router keeps rebooting",
                       resolution_due=now - timedelta(hours=3, minutes=5))
    CaseFactory(team=retention, owner=alice, subject="Invoice question", resolution_due=now + timedelta(days=1))
    CustomerFactory(name="Acme Corp", email="eu@acme.example")
    CustomerFactory(name="Acme Corporation", email="us@acme.example")
    return late


def test_search_saved_views_and_the_picker_by_keyboard(browser, live_server, workspace):
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, "alice")
    found = []
    # when alice searches the case list by keyboard
    page.goto("/cases/")
    page.get_by_role("textbox", name="Search").fill("router")
    page.get_by_role("textbox", name="Search").press("Enter")
    # then only the matching case shows, and its lateness is said in words
    results = page.locator("#results + table")
    expect(results).to_contain_text(workspace.reference)
    expect(results).not_to_contain_text("Invoice question")
    expect(results).to_contain_text("Overdue by 3")
    found += serious_violations(page)
    # and the "Overdue" saved view is a link that marks itself as the current view
    page.get_by_role("navigation", name="Saved views").get_by_role("link", name="Overdue").click()
    expect(page.get_by_role("link", name="Overdue")).to_have_attribute("aria-current", "page")
    expect(page.locator("#results + table")).to_contain_text(workspace.reference)
    found += serious_violations(page)
    # when she opens a case and submits an ambiguous name as typed
    page.goto("/cases/new/")
    found += serious_violations(page)
    page.get_by_label("Customer").fill("acme")
    # then it is a clear error listing the matches, and nothing typed is lost
    page.get_by_label("Subject").fill("Charged twice")
    page.get_by_role("button", name="Open the case").click()
    expect(page.get_by_text("Several customers match")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Charged twice")
    found += serious_violations(page)
    # when she picks the full name, the case opens for that customer
    page.get_by_label("Customer").fill("Acme Corporation")
    page.get_by_label("Amount at stake").fill("90")
    page.get_by_role("button", name="Open the case").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Charged twice")
    assert Case.objects.get(subject="Charged twice").customer.name == "Acme Corporation"
    context.close()
    assert found == []


def test_the_picker_suggests_customers_under_the_products_csp(browser, live_server, workspace):
    # given alice on the intake page, with the product's Content-Security-Policy in force
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, "alice")
    page.goto("/cases/new/")
    # when she types part of a customer's name
    page.get_by_label("Customer").press_sequentially("acme", delay=50)
    # then the suggestions come from the server, each naming the customer and its number
    options = page.locator("#customer-options option")
    expect(options).to_have_count(2)
    assert sorted(options.evaluate_all("nodes => nodes.map(n => n.value)"))[0].startswith("Acme Corp (#")
    context.close()
