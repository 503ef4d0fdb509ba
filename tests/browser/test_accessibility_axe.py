"""axe-core (vendored, MPL-2.0, v4.14) finds no serious or critical violation on the main pages, and no
target smaller than 24 px (its WCAG 2.2 target-size rule).

The pages are checked as each persona sees them on the seeded demo. Playwright injects axe into the
page; the context bypasses the CSP for that one inline script (the product itself keeps its CSP).
"""

from pathlib import Path

import pytest
from django.core.management import call_command

from authority.models import AuthorityRequest, Decision, RequestStatus
from h2h_core.models import Case, CaseStatus

from .conftest import VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
BLOCKING = {"serious", "critical"}


def violations(page, url: str) -> list[str]:
    """axe's serious and critical findings, and every target smaller than 24 px (WCAG 2.2, 2.5.8)."""
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    # target-size is off by default (a WCAG 2.2 rule): it is asked for by name, and any finding counts.
    result = page.evaluate("""async () => await axe.run(document, {
        resultTypes: ['violations'], rules: {'target-size': {enabled: true}}})""")
    return [
        f"{url}: {item['id']} ({item['impact']}): {item['help']} — "
        f"{[(node['target'], node.get('failureSummary')) for node in item['nodes']][:3]}"
        for item in result["violations"]
        if item["impact"] in BLOCKING or item["id"] == "target-size"
    ]


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("h2h-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def test_main_pages_have_no_serious_accessibility_violations(browser, live_server):
    # given the demo organisation
    call_command("seed_demo", scale=0.2, verbosity=0)
    alices_case = Case.objects.filter(owner__username="alice", status=CaseStatus.OWNED).first()
    decision = Decision.objects.order_by("pk").first()
    request = AuthorityRequest.objects.filter(status=RequestStatus.OPEN).first()
    pages = {
        None: ["/login/"],
        "alice": ["/cases/", "/cases/waiting/", f"/cases/{alices_case.pk}/", "/authority/",
                  "/cases/?q=a&status=open&sort=stakes", "/cases/?status=lost&waiting=1", "/cases/new/"],
        "maria": ["/authority/approvals/", "/cases/waiting/", "/authority/matrix/", "/authority/pending/",
                  "/authority/people/", "/authority/what-if/", "/authority/dashboard/", "/authority/delegations/"],
        "audrey": ["/audit/", "/audit/decisions/", f"/audit/decisions/{decision.pk}/", "/audit/chain/",
                   "/audit/changes/", "/audit/review/", "/audit/authority/",
                   f"/customers/{alices_case.customer_id}/"],
    }
    assert request is not None
    found = []
    for username, urls in pages.items():
        context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
        page = context.new_page()
        if username:
            log_in(page, username)
        for url in urls:
            # when axe checks the page
            found += violations(page, url)
        context.close()
    # then nothing serious or critical is found
    assert found == []
