"""The consoles in a real browser: maria changes a team limit and mike confirms it, maria approves a
request, audrey follows a decision to the grant version that allowed it, verifies the chain and
downloads an export. Screenshots go to docs/screenshots/console-*.png."""

import csv
import io
from decimal import Decimal

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from authority.models import Grant, GrantStatus, RequestStatus
from authority.services import authority_request_open, decision_execute
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, TeamFactory, UserFactory, kind, role
from tests.jobs import run_jobs

# serialized_rollback restores the reference data (authority kinds, roles) that the flush removes.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PASSWORD = "h2h-demo"


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def ensure_authority_kinds() -> None:
    """The kinds come from a data migration; make sure a flush by an earlier test did not take them."""
    import importlib

    from authority.models import AuthorityKind

    for code, name, unit, threshold, topic in importlib.import_module(
            "authority.migrations.0002_authority_kinds").KINDS:
        AuthorityKind.objects.get_or_create(code=code, defaults={
            "name": name, "unit": unit, "confirmation_threshold": threshold, "outbox_topic": topic})


@pytest.fixture
def organisation(db):
    """Retention (alice, bob) and Billing (carol) managed by maria; Onboarding (erin) by mike; audrey audits."""
    ensure_authority_kinds()
    retention = TeamFactory(name="Retention", slug="retention")
    billing = TeamFactory(name="Billing", slug="billing")
    onboarding = TeamFactory(name="Onboarding", slug="onboarding")
    people = {}
    for username, first, last, team, roles in (
        ("alice", "Alice", "Novak", retention, [Role.AGENT]),
        ("bob", "Bob", "Keller", retention, [Role.AGENT, Role.SENIOR_AGENT]),
        ("carol", "Carol", "Jansen", billing, [Role.AGENT]),
        ("erin", "Erin", "Lindqvist", onboarding, [Role.AGENT]),
    ):
        people[username] = UserFactory(username=username, first_name=first, last_name=last, roles=roles)
        team.members.add(people[username])
    people["maria"] = UserFactory(username="maria", first_name="Maria", last_name="Costa", roles=[Role.MANAGER])
    people["mike"] = UserFactory(username="mike", first_name="Mike", last_name="Brennan", roles=[Role.MANAGER])
    people["audrey"] = UserFactory(username="audrey", first_name="Audrey", last_name="Fischer",
                                   roles=[Role.AUDITOR])
    for team in (retention, billing):
        assign_perm("h2h_core.manage_team", people["maria"], team)
    assign_perm("h2h_core.manage_team", people["mike"], onboarding)
    GrantFactory(subject_role=role(Role.AGENT), per_case_limit=Decimal("250"), period_limit=Decimal("1000"),
                 reason="Baseline refund authority for every agent.")
    GrantFactory(subject_team=retention, per_case_limit=Decimal("400"), period_limit=Decimal("1000"),
                 reason="Retention settles complaints on the spot.")
    GrantFactory(subject_role=role(Role.AGENT), kind=kind("goodwill_credit"), per_case_limit=Decimal("100"),
                 period_limit=Decimal("400"), reason="Baseline goodwill credits.")
    GrantFactory(subject_user=people["alice"], per_case_limit=Decimal("500"), period_limit=Decimal("1500"),
                 reason="Alice handles the key-account complaints.")
    for manager in ("maria", "mike"):
        GrantFactory(subject_user=people[manager], per_case_limit=Decimal("2000"), period_limit=Decimal("5000"),
                     period="week", reason="Approves refund requests.")
    people.update(retention=retention, billing=billing, onboarding=onboarding)
    return people


def test_maria_raises_a_team_refund_cap_and_mike_confirms_it(new_page, screenshot, organisation):
    baseline = Grant.objects.get(subject_team=organisation["retention"], kind__code="refund")
    page = new_page()

    # maria opens the matrix and changes Retention's monthly refund cap from 1,000 to 2,500
    log_in(page, "maria")
    page.get_by_role("link", name="Manager console").click()
    expect(page.get_by_role("heading", name="Authority matrix")).to_be_visible()
    screenshot(page, "console-1-matrix")
    page.get_by_role("link", name=f"Change refund grant #{baseline.lineage} v1 of Retention").click()
    page.get_by_label("Period cap").fill("2500")
    page.get_by_label("Reason").fill("Quarter-end backlog: agents settle more refunds without a hop.")
    page.get_by_role("button", name="Review the change").click()

    # she sees the difference before anything is saved, and that a second manager must confirm it
    changed = page.locator("tr.changed", has_text="Period cap")
    expect(changed).to_contain_text("1,000.00 EUR")
    expect(changed).to_contain_text("2,500.00 EUR")
    expect(page.get_by_text("Needs a second manager")).to_be_visible()
    screenshot(page, "console-2-preview")
    assert Grant.objects.filter(lineage=baseline.lineage).count() == 1
    page.get_by_role("button", name="Save version 2").click()
    expect(page.locator(".messages")).to_contain_text("waits for a second manager")
    expect(page.get_by_text("change to v2 waiting")).to_be_visible()
    log_out(page)

    # mike, a manager of another team and so a valid second pair of eyes, reviews and confirms it
    log_in(page, "mike")
    page.get_by_role("link", name="Manager console").click()
    page.get_by_role("link", name="Pending changes").first.click()
    expect(page.locator("tr.changed", has_text="Period cap")).to_contain_text("2,500.00 EUR")
    screenshot(page, "console-3-pending")
    page.get_by_role("button", name="Confirm grant").click()
    expect(page.locator(".messages")).to_contain_text("it is in force now")

    version_2 = Grant.objects.get(lineage=baseline.lineage, version=2)
    assert version_2.status == GrantStatus.ACTIVE and version_2.confirmed_by.username == "mike"
    assert version_2.period_limit == Decimal("2500")


def test_maria_approves_a_request_from_her_inbox(new_page, screenshot, organisation):
    alice = organisation["alice"]
    customer = CustomerFactory(name="Cobalt Pharma B.V.", tier="gold")
    case = CaseFactory(owner=alice, team=organisation["retention"], customer=customer,
                       subject="Outage stopped the web shop for a day")
    decision_execute(actor=alice, case=CaseFactory(owner=alice, team=organisation["retention"]),
                     kind=kind("refund"), amount="120", currency="EUR", rationale="late delivery")
    request = authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                     justification="Key account since 2016: refunding a month's fee keeps them.")
    page = new_page()

    log_in(page, "maria")
    page.get_by_role("link", name="Approvals").first.click()
    card = page.get_by_role("article", name="Refund of 1,200.00 EUR for Cobalt Pharma B.V.")
    expect(card).to_contain_text("Over the limit by")
    expect(card).to_contain_text("700.00 EUR")
    expect(card).to_contain_text("covers it")
    expect(card).to_contain_text("1 decision")
    screenshot(page, "console-4-approvals")
    card.get_by_role("button", name="Approve 1,200.00 EUR").click()
    expect(page.locator(".messages")).to_contain_text("Approved: alice can now execute it")
    expect(page.get_by_text("Nothing waits for you.")).to_be_visible()

    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_by.username == "maria"


def test_audrey_filters_opens_a_decision_sees_the_grant_verifies_and_exports(new_page, screenshot, organisation,
                                                                            settings, tmp_path):
    from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key

    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    alice, carol = organisation["alice"], organisation["carol"]
    for agent, team, amount in ((alice, "retention", "180"), (alice, "retention", "95"), (carol, "billing", "60")):
        decision_execute(actor=agent, case=CaseFactory(owner=agent, team=organisation[team]), kind=kind("refund"),
                         amount=amount, currency="EUR", rationale="charged twice")
    audit_checkpoint_create()
    alice_grant = Grant.objects.get(subject_user=alice)
    page = new_page()

    # audrey filters the decision log to alice's refunds over 100 EUR
    log_in(page, "audrey")
    page.get_by_role("link", name="Auditor console").click()
    page.get_by_label("Agent").fill("alice")
    page.get_by_label("Amount from").fill("100")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".result-count")).to_have_text("1 decision")
    screenshot(page, "console-5-decision-log")

    # she opens the decision and sees the exact grant version that allowed it
    page.locator("table.grid a", has_text="#").first.click()
    expect(page.get_by_role("heading", name="Why it was allowed")).to_be_visible()
    expect(page.get_by_text(f"#{alice_grant.lineage} v1").first).to_be_visible()
    screenshot(page, "console-6-decision")
    page.get_by_role("link", name=f"#{alice_grant.lineage} v1").first.click()
    expect(page.get_by_role("heading", name=f"Refund grant #{alice_grant.lineage} version 1")).to_be_visible()

    # she verifies the chain: a worker runs the verification, and the page shows its result
    page.get_by_role("link", name="Chain").first.click()
    page.get_by_role("button", name="Verify the chain now").click()
    expect(page.get_by_text("is queued; this page shows its result")).to_be_visible()
    total = AuditEvent.objects.count()
    run_jobs(queues="audit")
    page.get_by_role("link", name="reload now").click()
    expect(page.get_by_role("status")).to_contain_text(f"{total} of {total} entries verified")
    screenshot(page, "console-7-chain")

    # she downloads the filtered decisions as CSV
    page.get_by_role("link", name="Decision log").first.click()
    page.get_by_label("Agent").fill("alice")
    page.get_by_role("button", name="Filter").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert sorted(r["amount"] for r in rows) == ["180", "95"]
    assert AuditEvent.objects.filter(action="audit.exported", actor_username="audrey").exists()
