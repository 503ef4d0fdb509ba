"""The hand-off from an AI agent to a person, in a real browser: the AI agent takes a customer's
case, tries a goodwill credit over its authority, and the case arrives in alice's "Waiting for me"
with the conversation, what the AI tried and why it stopped; she picks it up and decides it
herself. axe-core finds no serious or critical violation on the pages she uses."""

from decimal import Decimal

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from authority.models import Decision
from h2h_core.models import Case, CaseCategory, HandOff, Role
from tests.factories import CustomerFactory, GrantFactory, TeamFactory, UserFactory, ai_agent, kind, role
from workflows import services
from workflows.steps.ai import ai_case_decide, ai_case_take

from .conftest import VIEWPORT
from .test_accessibility_axe import log_in, violations

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True, reset_sequences=True),
]

TRANSCRIPT = [
    {"from": "customer",
     "text": "You charged me twice for March and I want the fee back plus something for the hassle."},
    {"from": "ai", "text": "I can see the duplicate charge. Let me see what I can offer."},
    {"from": "customer", "text": "Sixty euros would cover my bank's fees."},
]


@pytest.fixture
def ai_desk(db):
    """Billing: alice (goodwill credits up to 200 a case), maria (its manager), ava-bot (25 a case)."""
    retention = TeamFactory(name="Billing", slug="billing")
    alice = UserFactory(username="alice", first_name="Alice", roles=[Role.AGENT])
    maria = UserFactory(username="maria", roles=[Role.MANAGER])
    retention.members.add(alice)
    assign_perm("h2h_core.manage_team", maria, retention)
    credit = kind("goodwill_credit")
    GrantFactory(subject_user=alice, kind=credit, per_case_limit=Decimal("200"), period_limit=Decimal("1000"))
    bot = ai_agent(retention, "ava-bot", categories=[CaseCategory.BILLING_ERROR])
    GrantFactory(subject_role=role(Role.AI_AGENT), kind=credit, per_case_limit=Decimal("25"),
                 period_limit=Decimal("200"))
    jonas = CustomerFactory(name="Jonas Weber", email="jonas@example.test")
    case = services.case_flow_open(actor=maria, customer=jonas, subject="Charged twice for March",
                                   category="billing_error",
                                   amount_at_stake=Decimal("59.90"), currency="EUR",
                                   description="Two identical charges for March.")
    assert ai_case_take(actor=bot.user, case=case, idempotency_key="take-1").outcome == "owned"
    outcome = ai_case_decide(actor=bot.user, case=case, kind=credit, amount="60", currency="EUR",
                             rationale="Cover the bank's fees for the double charge", confidence="0.82",
                             idempotency_key="decide-1", transcript=TRANSCRIPT,
                             summary="Double charge for March confirmed; the customer asks for 60 EUR.")
    assert outcome.outcome == "handed_off"
    return case


def test_an_ai_hand_off_arrives_in_alices_queue_with_its_context_and_she_owns_it_from_there(
    browser, live_server, screenshot, ai_desk
):
    case = ai_desk
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    found = []

    # alice logs in: the hand-off waits for her
    log_in(page, "alice")
    found += violations(page, "/cases/waiting/")
    handed = page.get_by_role("region", name="Handed to a person by an AI agent (1)")
    expect(handed).to_contain_text(case.reference)
    expect(handed).to_contain_text("handed to you by ava-bot")

    # she follows it to the case: who handed it over, why, what the customer said and what the AI tried
    handed.get_by_role("link", name=case.reference).click()
    panel = page.get_by_role("region", name="Handed to you by AI agent ava-bot", exact=False)
    expect(panel).to_contain_text("Over the AI agent's authority")
    expect(panel).to_contain_text("Sixty euros would cover my bank's fees.")
    expect(panel).to_contain_text("refused")
    found += violations(page, f"/cases/{case.pk}/")
    screenshot(page, "10-hand-off")

    # she picks it up, by keyboard
    pick_up = page.get_by_role("button", name="Pick up: I own this case from here")
    pick_up.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("region", name="Came from AI agent ava-bot", exact=False)).to_contain_text(
        "Picked up by alice")

    # and decides the credit herself, within her own authority
    page.get_by_label("Kind").select_option("goodwill_credit")
    page.get_by_label("Amount").fill("60")
    page.get_by_label("Rationale").fill("Bank fees for the double charge, as the customer asked")
    page.get_by_role("button", name="Review decision").click()
    page.get_by_role("button", name="Execute goodwill credit of 60.00 EUR").click()
    expect(page.locator(".messages")).to_contain_text("executed")
    context.close()

    # then the case has one owner, alice, and the record tells the whole story
    case = Case.objects.get(pk=case.pk)
    assert case.owner.username == "alice"
    hand_off = HandOff.objects.get(case=case)
    assert hand_off.to_user.username == "alice" and hand_off.picked_up_by.username == "alice"
    assert [(d.agent.username, d.amount, d.by_ai_agent) for d in Decision.objects.filter(case=case)] == [
        ("alice", Decimal("60.00"), False)]
    assert found == []
