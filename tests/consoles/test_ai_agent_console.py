"""The manager console's AI agents: a manager registers one, sets its routing, issues its token and
suspends it in one click; a suspension stops its token at once and hands its open cases to people."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import ShadowDecision
from h2h_core.ai_agents import ai_agent_issue_token, ai_agent_suspend
from h2h_core.models import AiAgent, ApiToken, AuditEvent, CaseStatus, HandOff, HandOffReason
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind, successful_audit_events
from workflows.steps.ai_agents import ai_agent_flow_suspend

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def settings_form(**fields):
    form = {"model_name": "support-llm", "model_version": "2026-11", "route_categories": ["billing_error"],
            "max_stakes": "40", "hand_off_negative_sentiment": "on", "min_confidence": "0.700", "description": ""}
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def everything():
    """What a refused page must leave untouched."""
    return (list(AiAgent.objects.order_by("pk").values_list("pk", "model_version", "route_categories", "max_stakes",
                                                             "suspended_at")),
            list(User.objects.order_by("pk").values_list("pk", "is_active")), ApiToken.objects.count(),
            HandOff.objects.count(), successful_audit_events())


def busy_ai(team, username):
    """An AI agent with two decisions, a shadow decision and a hand-off."""
    agent = ai_agent(team, username)
    for _ in range(2):
        DecisionFactory(case=CaseFactory(owner=agent.user, team=team), agent=agent.user)
    case = CaseFactory(owner=None, team=team, status=CaseStatus.QUEUED)
    ShadowDecision.objects.create(case=case, agent=agent.user, kind=kind("refund"), amount=Decimal("20"),
                                  currency="EUR", allowed=True, verdict={}, rationale="would refund",
                                  created_at=timezone.now())
    HandOff.objects.create(case=case, from_agent=agent.user, reason=HandOffReason.OUTSIDE_ROUTING,
                           reason_text="Complaint cases go to a person.", created_at=timezone.now())
    return agent


# --- the list ------------------------------------------------------------------------------------------


def test_the_list_shows_the_ai_agents_of_my_teams_with_what_they_did(client, cast):
    # given an AI agent in Retention (maria's) that worked, and one in Onboarding (mike's)
    busy_ai(cast["retention"], "ai-retention")
    ai_agent(cast["onboarding"], "ai-onboarding")
    client.force_login(cast["maria"])
    # when maria opens the list
    page = client.get(reverse("authority:ai_agents")).text
    # then she sees her team's AI agent and its counts, not mike's
    assert "ai-retention" in page and "ai-onboarding" not in page
    row = page[page.index("ai-retention"):page.index("</tr>", page.index("ai-retention"))]
    assert "<td>2</td>" in row and row.count("<td>1</td>") == 2 and "support-llm 2026-11" in row


def test_the_list_costs_the_same_queries_for_two_or_ten_ai_agents(client, cast, django_assert_max_num_queries):
    for index in range(2):
        busy_ai(cast["retention"], f"ai-first{index}")
    client.force_login(cast["maria"])
    client.get(reverse("authority:ai_agents"))
    with CaptureQueriesContext(connection) as two:
        client.get(reverse("authority:ai_agents"))
    for index in range(8):
        busy_ai(cast["billing"], f"ai-more{index}")
    with django_assert_max_num_queries(len(two.captured_queries)):
        page = client.get(reverse("authority:ai_agents"))
    assert "ai-more7" in page.text
    assert len(two.captured_queries) <= 12, [q["sql"][:80] for q in two.captured_queries]


def test_agents_and_auditors_cannot_open_or_post_to_the_ai_agent_pages(client, cast):
    agent = ai_agent(cast["retention"], "ai-x")
    before = everything()
    for user in (cast["alice"], cast["audrey"]):
        client.force_login(user)
        assert client.get(reverse("authority:ai_agents")).status_code == 403
        assert client.post(reverse("authority:ai_agent_new"), {"username": "ai-y", "team": cast["retention"].pk,
                                                               **settings_form()}).status_code == 403
        assert client.post(reverse("authority:ai_agent_suspend", args=[agent.pk]),
                           {"suspend-reason": "x"}).status_code == 403
        assert client.post(reverse("authority:ai_agent_token", args=[agent.pk])).status_code == 403
    assert everything() == before


def test_a_manager_of_another_team_finds_no_such_ai_agent_and_changes_nothing(client, cast):
    # given an AI agent of Onboarding, which maria does not manage
    agent = ai_agent(cast["onboarding"], "ai-onboarding")
    before = everything()
    client.force_login(cast["maria"])
    # then its pages are 404 to her, and her posts change nothing
    assert client.get(reverse("authority:ai_agent", args=[agent.pk])).status_code == 404
    assert client.post(reverse("authority:ai_agent", args=[agent.pk]), settings_form(max_stakes="90")).status_code \
        == 404
    assert client.post(reverse("authority:ai_agent_suspend", args=[agent.pk]),
                       {"suspend-reason": "mine now"}).status_code == 404
    assert client.post(reverse("authority:ai_agent_token", args=[agent.pk])).status_code == 404
    # nor may she register one in that team
    response = client.post(reverse("authority:ai_agent_new"), {"username": "ai-sneaky", "team": cast["onboarding"].pk,
                                                               **settings_form()})
    assert response.status_code == 200 and "Select a valid choice" in response.text
    assert everything() == before


# --- register and change -------------------------------------------------------------------------------


def test_a_manager_registers_an_ai_agent_from_the_console(client, cast):
    client.force_login(cast["maria"])
    response = client.post(reverse("authority:ai_agent_new"), {
        "username": "ai-billing", "team": cast["billing"].pk,
        **settings_form(route_categories=["billing_error", "other"], route_tiers=["standard"], max_stakes="30")},
        follow=True)
    agent = AiAgent.objects.get(user__username="ai-billing")
    assert response.redirect_chain[-1][0] == reverse("authority:ai_agent", args=[agent.pk])
    assert (agent.team, agent.route_categories, agent.route_tiers, agent.max_stakes) == (
        cast["billing"], ["billing_error", "other"], ["standard"], 30)
    assert "Registered AI agent ai-billing in Billing" in response.text
    assert AuditEvent.objects.get(action="ai_agent.registered").actor_username == "maria"


def test_bad_registration_input_is_shown_on_the_form_and_nothing_changes(client, cast):
    client.force_login(cast["maria"])
    before = everything()
    response = client.post(reverse("authority:ai_agent_new"), {
        "username": "ai-billing", "team": cast["billing"].pk,
        **settings_form(max_stakes="101", min_confidence="1.5", route_categories=["gossip"])})
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 100" in response.text
    assert "gossip is not one of the available choices" in response.text
    assert everything() == before
    # a confidence out of range is the service's to refuse, shown on its field
    response = client.post(reverse("authority:ai_agent_new"), {
        "username": "ai-billing", "team": cast["billing"].pk, **settings_form(min_confidence="1.5")})
    assert "The minimum confidence is a number from 0 to 1" in response.text
    assert everything() == before


def test_a_manager_changes_the_routing_rules_on_the_detail_page(client, cast):
    agent = ai_agent(cast["retention"], "ai-x", categories=["billing_error"], max_stakes=40)
    client.force_login(cast["maria"])
    response = client.post(reverse("authority:ai_agent", args=[agent.pk]),
                           settings_form(route_categories=["billing_error", "renewal"], max_stakes="25",
                                         model_version="2026-12"), follow=True)
    agent.refresh_from_db()
    # categories are kept in their usual order
    assert (agent.route_categories, agent.max_stakes, agent.model_version) == (["renewal", "billing_error"], 25,
                                                                               "2026-12")
    assert "Saved:" in response.text
    event = AuditEvent.objects.get(action="ai_agent.updated")
    assert event.before["max_stakes"] == 40 and event.after["max_stakes"] == 25


# --- token, suspension, reinstatement ------------------------------------------------------------------


def test_the_token_key_is_shown_once_and_opens_the_api(client, cast):
    agent = ai_agent(cast["retention"], "ai-x")
    client.force_login(cast["maria"])
    # when maria issues a token
    page = client.post(reverse("authority:ai_agent_token", args=[agent.pk]), follow=True)
    # then the page shows its key, uncached, once
    token = ApiToken.objects.get(user=agent.user)
    assert "New API token for ai-x" in page.text and page["Cache-Control"] == "no-store"
    key = page.text.split('id="new-key" type="text" readonly value="')[1].split('"')[0]
    assert key.startswith(token.prefix)
    assert key not in client.get(reverse("authority:ai_agent", args=[agent.pk])).text
    # and the key opens the API as the AI agent
    client.logout()
    me = client.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Token {key}")
    assert me.status_code == 200 and me.json()["username"] == "ai-x"
    assert AuditEvent.objects.get(action="api_token.created").actor_username == "maria"


def test_suspending_stops_the_token_and_hands_the_open_cases_to_people(client, cast):
    # given an AI agent of Retention that owns two open cases and holds a working token
    agent = ai_agent(cast["retention"], "ai-x")
    key = ai_agent_issue_token(actor=cast["maria"], ai_agent=agent).key
    first = CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.OWNED)
    second = CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.OWNED)
    resolved = CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.RESOLVED)
    assert client.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    # when maria suspends it, in one click
    client.force_login(cast["maria"])
    page = client.post(reverse("authority:ai_agent_suspend", args=[agent.pk]),
                       {"suspend-reason": "refunds look wrong"}, follow=True)
    # then it is suspended and says so
    agent.refresh_from_db()
    assert agent.is_suspended and agent.suspension_reason == "refunds look wrong"
    assert "Suspended ai-x: its API tokens no longer work." in page.text
    # and its token is refused at once
    client.logout()
    refused = client.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 401
    # and each open case now has a person of the team as its one owner, with the reason
    for case in (first, second):
        case.refresh_from_db()
        assert case.owner in (cast["alice"], cast["bob"]) and case.status == CaseStatus.OWNED
        hand_off = HandOff.objects.get(case=case)
        assert hand_off.reason == HandOffReason.SUSPENDED and hand_off.from_agent == agent.user
        assert "was suspended by maria: refunds look wrong" in hand_off.reason_text
        assert AuditEvent.objects.filter(action="case.handed_off", object_id=str(case.pk),
                                         actor_username="maria").exists()
    # the resolved case stays as it was
    resolved.refresh_from_db()
    assert resolved.owner == agent.user and not HandOff.objects.filter(case=resolved).exists()


def test_a_suspension_without_a_reason_is_refused_on_the_page_and_nothing_changes(client, cast):
    agent = ai_agent(cast["retention"], "ai-x")
    CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.OWNED)
    client.force_login(cast["maria"])
    before = everything()
    response = client.post(reverse("authority:ai_agent_suspend", args=[agent.pk]), {"suspend-reason": ""})
    assert response.status_code == 200 and "This field is required" in response.text
    assert everything() == before


def test_with_nobody_to_receive_them_the_cases_wait_in_the_team_queue(cast):
    # given an AI agent of Onboarding, whose only person is erin, and erin is away (inactive)
    agent = ai_agent(cast["onboarding"], "ai-onboarding")
    User.objects.filter(pk=cast["erin"].pk).update(is_active=False)
    case = CaseFactory(owner=agent.user, team=cast["onboarding"], status=CaseStatus.OWNED)
    # when mike suspends it
    result = ai_agent_flow_suspend(actor=cast["mike"], ai_agent=agent, reason="model drift")
    # then the case waits unowned in the team's queue, with its hand-off
    case.refresh_from_db()
    assert case.owner is None and case.status == CaseStatus.QUEUED
    assert [h.case_id for h in result.hand_offs] == [case.pk] and result.left == ()


def test_a_manager_reinstates_a_suspended_ai_agent(client, cast):
    agent = ai_agent(cast["retention"], "ai-x")
    ai_agent_suspend(actor=cast["maria"], ai_agent=agent, reason="paused")
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:ai_agent", args=[agent.pk])).text
    assert "Suspended" in page and "Issue an API token" not in page
    response = client.post(reverse("authority:ai_agent_reinstate", args=[agent.pk]),
                           {"reinstate-reason": "prompt fixed"}, follow=True)
    agent.refresh_from_db()
    assert not agent.is_suspended and User.objects.get(pk=agent.user_id).is_active
    assert "Reinstated ai-x" in response.text


def test_the_detail_page_shows_recent_decisions_shadow_decisions_and_hand_offs(client, cast):
    agent = busy_ai(cast["retention"], "ai-x")
    GrantFactory(subject_user=agent.user, per_case_limit=Decimal("50"))
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:ai_agent", args=[agent.pk])).text
    assert "would refund" in page and "Complaint cases go to a person." in page
    assert page.count("customer was double charged") == 2
    assert "Suspend ai-x" in page and "Issue an API token" in page


def test_the_manager_nav_links_to_the_ai_agents(client, cast):
    client.force_login(cast["maria"])
    assert f'href="{reverse("authority:ai_agents")}"' in client.get(reverse("authority:approvals")).text


def test_cases_a_suspended_ai_agent_still_owns_are_handed_off_from_its_page(client, cast):
    # given an AI agent suspended without its cases moving (as a suspension that found a case busy leaves it)
    agent = ai_agent(cast["retention"], "ai-x")
    case = CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.OWNED)
    ai_agent_suspend(actor=cast["maria"], ai_agent=agent, reason="paused")
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:ai_agent", args=[agent.pk])).text
    assert case.reference in page and "Hand these cases to people" in page
    # when maria hands them off from its page
    response = client.post(reverse("authority:ai_agent_hand_off_cases", args=[agent.pk]), follow=True)
    # then the case has a person as its owner
    case.refresh_from_db()
    assert case.owner in (cast["alice"], cast["bob"])
    assert f"Handed to people: {case.reference} to {case.owner.username}." in response.text


def test_an_active_ai_agents_cases_are_not_handed_off_from_its_page(client, cast):
    agent = ai_agent(cast["retention"], "ai-x")
    case = CaseFactory(owner=agent.user, team=cast["retention"], status=CaseStatus.OWNED)
    client.force_login(cast["maria"])
    before = everything()
    response = client.post(reverse("authority:ai_agent_hand_off_cases", args=[agent.pk]), follow=True)
    assert "ai-x is not suspended: it hands off its own cases." in response.text
    case.refresh_from_db()
    assert case.owner == agent.user and everything() == before


def test_every_control_on_the_ai_agent_pages_has_a_name(client, cast):
    from .test_accessibility import Controls

    # given an active AI agent whose token was just issued, and a suspended one that still owns a case
    active = busy_ai(cast["retention"], "ai-x")
    suspended = ai_agent(cast["billing"], "ai-y")
    CaseFactory(owner=suspended.user, team=cast["billing"], status=CaseStatus.OWNED)
    ai_agent_suspend(actor=cast["maria"], ai_agent=suspended, reason="paused")
    client.force_login(cast["maria"])
    client.post(reverse("authority:ai_agent_token", args=[active.pk]))
    problems = []
    for url in (reverse("authority:ai_agents"), reverse("authority:ai_agent_new"),
                reverse("authority:ai_agent", args=[active.pk]), reverse("authority:ai_agent", args=[suspended.pk])):
        response = client.get(url)
        assert response.status_code == 200, url
        parser = Controls()
        parser.feed(response.text)
        problems += [f"{url}: unnamed {tag} {attrs}" for tag, attrs in parser.unnamed()]
        problems += [f"{url}: {problem}" for problem in parser.problems]
    assert not problems, "\n".join(problems)
