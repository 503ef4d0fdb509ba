"""The agent's journey in a real browser: find the case by searching for the customer, claim, decide
within authority, ask for more while the approver looks at the same case in her own browser (each sees
the other), get it approved, follow the notification to execute, resolve, the customer rates the
outcome through the signed link, and the customer page shows it all."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from authority.models import AuthorityRequest, Decision, RequestStatus
from h2h_core.models import Case, CaseStatus, Role
from tests.factories import CustomerFactory, GrantFactory, TeamFactory, UserFactory
from workflows import services

# Committed data for the live server; serialized_rollback brings back what the migrations seeded
# (authority kinds, content types, permissions) after other transactional tests flushed it, and
# reset sequences keep the screenshots' references the same on every run (H2H-000001).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True, reset_sequences=True),
]
PASSWORD = "h2h-demo"
# Presence polls every 3 seconds; the bound is 5, and a loaded machine gets some slack.
PRESENCE_WAIT = 8_000


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def waiting_count(page) -> int:
    """The number on the "Waiting for me" link, as this page rendered it."""
    label = page.get_by_role("link", name=re.compile(r"^Waiting for me")).inner_text()
    return int(re.search(r"\((\d+)", label).group(1))


def headroom(page, kind: str) -> tuple[str, str]:
    row = page.locator(f"tr[data-kind='{kind}']")
    period = row.locator(".headroom-period").inner_text().split(" (resets")[0]
    return row.locator(".headroom-case").inner_text(), period


@pytest.fixture
def retention_desk(db):
    """The Retention team: alice (refunds up to 500 a case, 1,000 a month), bob, and maria (5,000)."""
    retention = TeamFactory(name="Retention", slug="retention")
    alice = UserFactory(username="alice", first_name="Alice", roles=[Role.AGENT])
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    maria = UserFactory(username="maria", roles=[Role.MANAGER])
    retention.members.add(alice, bob)
    assign_perm("h2h_core.manage_team", maria, retention)
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    lena = CustomerFactory(name="Lena Fischer GmbH", email="lena@fischer.example", tier="gold",
                           annual_value=Decimal("64000"))
    case = services.case_flow_open(actor=maria, customer=lena, subject="Charged twice for the annual plan",
                                   category="complaint", amount_at_stake=Decimal("1490"), currency="EUR",
                                   description="Two identical charges on the same day.")
    # a believable desk around it: two cases alice already owns, one more in the queue
    for name, subject, category, amount, hours in (
        ("Okafor & Sons", "Renewal price higher than quoted", "renewal", "2400", 30),
        ("Martina Rossi", "Promised call-back never came", "complaint", "300", 5),
    ):
        other = services.case_flow_open(actor=maria, customer=CustomerFactory(name=name), subject=subject,
                                        category=category, amount_at_stake=Decimal(amount), currency="EUR",
                                        opened_at=timezone.now() - timedelta(hours=hours))
        services.case_flow_claim(actor=alice, case=other)
    services.case_flow_open(actor=maria, customer=CustomerFactory(name="Brightside Ltd"),
                            subject="Service outage during launch", category="crisis",
                            amount_at_stake=Decimal("8000"), currency="EUR")
    return case


def test_alice_owns_decides_asks_gets_approval_executes_resolves_and_the_customer_rates(
    new_page, screenshot, retention_desk
):
    case = retention_desk
    page = new_page()

    # alice logs in and looks at her cases and her team's queue
    log_in(page, "alice")
    page.get_by_role("link", name="Cases").click()
    expect(page.get_by_role("heading", name="Team queue")).to_be_visible()
    screenshot(page, "1-cases")

    # she searches for the customer from the keyboard, and only that customer's case is listed
    search = page.get_by_role("textbox", name="Search")
    search.fill("Lena Fischer")
    search.press("Enter")
    results = page.locator("#results + table")
    expect(results).to_contain_text(case.reference)
    expect(results).to_contain_text("Charged twice for the annual plan")
    for other in ("Okafor & Sons", "Martina Rossi", "Brightside Ltd"):
        expect(results).not_to_contain_text(other)
    expect(search).to_have_value("Lena Fischer")
    screenshot(page, "6-search")

    # and claims the double-charge case from the results
    results.get_by_role("link", name=case.reference).click()
    page.get_by_role("button", name="Claim this case").click()
    expect(page.locator(".messages")).to_contain_text(f"You own {case.reference} now.")

    # the facts and her headroom are visible without scrolling at 1366x768
    for selector in (".case-head .facts", "section.authority"):
        box = page.locator(selector).bounding_box()
        assert box["y"] + box["height"] <= 768, selector
    expect(page.locator(".case-head .facts")).to_contain_text("Lena Fischer GmbH")
    expect(page.locator(".case-head .facts")).to_contain_text("resolution due")
    assert headroom(page, "refund") == ("500.00 EUR", "1,000.00 EUR")

    # she refunds 200: within her authority, confirmed on the review step
    page.get_by_label("Kind").select_option("refund")
    page.get_by_label("Amount").fill("200")
    page.get_by_label("Rationale").fill("Refund the duplicate charge")
    expect(page.locator("#dry-run")).to_contain_text("Within your authority")
    page.get_by_role("button", name="Review decision").click()
    expect(page.locator(".review")).to_contain_text("Lena Fischer GmbH")
    expect(page.locator(".review")).to_contain_text("200.00 EUR")
    expect(page.locator(".review")).to_contain_text("person grant #")
    expect(page.locator(".review")).to_contain_text("No within your authority")
    screenshot(page, "3-review")
    page.get_by_role("button", name="Execute refund of 200.00 EUR").click()
    expect(page.locator(".messages")).to_contain_text("Refund of 200.00 EUR executed")
    # and sees her headroom drop
    assert headroom(page, "refund") == ("300.00 EUR", "800.00 EUR")

    # she tries 1,200: the form says why not, and the button offers the one hop to maria
    page.get_by_label("Kind").select_option("refund")
    page.get_by_label("Amount").fill("1200")
    page.get_by_label("Rationale").fill("Goodwill: the customer lost a week")
    expect(page.locator("#dry-run")).to_contain_text(
        "900.00 EUR over your per-case limit of 500.00 EUR: 300.00 EUR left")
    request_button = page.get_by_role("button", name="Request approval from maria")
    expect(request_button).to_be_visible()
    screenshot(page, "2-case")
    request_button.click()
    expect(page.locator(".review")).to_contain_text("Yes over your authority")
    page.get_by_label("Justification for maria").fill("Gold customer, second incident this year")
    page.get_by_role("button", name="Request approval from maria").click()
    expect(page.locator(".messages")).to_contain_text("Asked maria.")
    waiting_before = waiting_count(page)

    # maria, in her own browser, sees the request in her inbox
    maria = new_page()
    log_in(maria, "maria")
    maria.get_by_role("link", name="Approvals").click()
    expect(maria.get_by_text("Gold customer, second incident this year")).to_be_visible()
    screenshot(maria, "4-approvals")
    # and opens the case while alice still has it open: each sees the other there
    maria.goto(f"/cases/{case.pk}/")
    expect(maria.locator("#presence-others")).to_contain_text("alice is viewing this case",
                                                              timeout=PRESENCE_WAIT)
    expect(page.locator("#presence-others")).to_contain_text("maria is viewing this case",
                                                             timeout=PRESENCE_WAIT)
    screenshot(page, "7-presence")

    # maria approves in her inbox
    maria.get_by_role("link", name="Approvals").click()
    maria.get_by_role("button", name="Approve").click()
    expect(maria.locator(".messages")).to_contain_text("Approved")
    log_out(maria)

    # alice's "Waiting for me" counts one more item: the approved request, to execute now
    page.get_by_role("link", name=re.compile(r"^Waiting for me")).click()
    assert waiting_count(page) == waiting_before + 1
    approved = page.get_by_role("region", name="Approved — execute now (1)")
    expect(approved).to_contain_text(case.reference)
    expect(approved).to_contain_text("approved by maria")
    screenshot(page, "8-waiting")

    # she follows it to the case, whose callout fills in the approved kind and amount
    approved.get_by_role("link", name=case.reference).click()
    callout = page.get_by_role("link", name="Fill in the decision: refund of 1,200.00 EUR")
    callout.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "kind=refund" in url)
    expect(page.get_by_label("Kind")).to_have_value("refund")
    expect(page.get_by_label("Amount")).to_have_value("1200")

    # alice executes the approved refund herself, then resolves the case
    page.get_by_label("Rationale").fill("Approved by maria")
    expect(page.locator("#dry-run")).to_contain_text("one-off grant")
    page.get_by_role("button", name="Review decision").click()
    page.get_by_role("button", name="Execute refund of 1,200.00 EUR").click()
    expect(page.locator(".messages")).to_contain_text("Refund of 1,200.00 EUR executed")
    page.get_by_label("Summary for the customer and the record").fill(
        "Refunded the duplicate charge and 1,200.00 EUR goodwill."
    )
    page.get_by_role("button", name="Resolve case").click()
    expect(page.locator(".messages")).to_contain_text(f"{case.reference} is resolved")
    rating_link = page.locator("#rating-link").get_attribute("href")
    assert re.match(r"^/cases/rate/[^/]+/$", rating_link)
    customer_link = page.get_by_role("link", name="The whole customer: every case, decision and rating you may see")

    # the customer opens the signed link, without logging in, and rates the outcome
    customer_page = new_page()
    customer_page.goto(rating_link)
    expect(customer_page.get_by_role("heading", name="How did we do?")).to_be_visible()
    expect(customer_page.get_by_role("button", name="Log out")).to_have_count(0)
    screenshot(customer_page, "5-rating")
    customer_page.get_by_label("5").check()
    customer_page.get_by_role("button", name="Send my rating").click()
    expect(customer_page.get_by_role("status")).to_contain_text("5 out of 5")

    # alice opens the customer page from her case: the outcome and the rating are there, and she
    # leaves an internal note for whoever talks to Lena Fischer GmbH next
    customer_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lena Fischer GmbH")
    page.get_by_role("textbox", name="Internal note").fill("Second double charge this year: check billing first.")
    page.get_by_role("button", name="Add note").click()
    notes = page.get_by_role("region", name="Internal notes")
    expect(notes).to_contain_text("Second double charge this year: check billing first.")
    cases = page.get_by_role("region", name="Cases (1)")
    expect(cases).to_contain_text(case.reference)
    expect(cases).to_contain_text("rated 5/5")
    # (scrolled so that the note just left shows under the cases and decisions)
    page.locator("#notes").evaluate("section => section.scrollIntoView({block: 'end'})")
    screenshot(page, "9-customer")
    log_out(page)

    # and the record agrees
    case = Case.objects.get(pk=case.pk)
    assert case.status == CaseStatus.RESOLVED and case.owner.username == "alice" and case.rating == 5
    assert sorted(Decision.objects.filter(case=case).values_list("amount", flat=True)) == [200, 1200]
    assert AuthorityRequest.objects.get(case=case).status == RequestStatus.APPROVED
