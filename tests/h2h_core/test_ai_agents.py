"""AI agents: managers of its team register, change, suspend and reinstate one; the routing rules say
which cases it may own; a suspended AI agent cannot act, and its token stops opening the API."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from authority.policy.ai_agents import ai_agent_of, ai_may_act, ai_may_own, may_manage_ai_agents
from h2h_core.ai_agents import (
    AiAgentNotSuspended,
    AiAgentSuspended,
    ai_agent_issue_token,
    ai_agent_register,
    ai_agent_reinstate,
    ai_agent_suspend,
    ai_agent_update,
)
from h2h_core.api_tokens import ApiTokenRejected, api_token_authenticate
from h2h_core.errors import NotAllowed
from h2h_core.models import AiAgent, ApiToken, AuditEvent, CaseCategory, CustomerTier, Role
from tests.factories import CaseFactory, CustomerFactory, UserFactory, ai_agent, successful_audit_events

pytestmark = pytest.mark.django_db

User = get_user_model()


def register(actor, team, username="ai-refunds", **fields):
    return ai_agent_register(actor=actor, username=username, team=team, model_name="support-llm",
                             model_version="2026-11", **fields)


def state(agent=None):
    """What a refused change must leave as it was."""
    rows = list(AiAgent.objects.order_by("pk").values_list(
        "pk", "model_name", "model_version", "route_categories", "route_tiers", "max_stakes", "min_confidence",
        "hand_off_negative_sentiment", "suspended_at", "suspension_reason"))
    users = list(User.objects.order_by("pk").values_list("pk", "username", "is_active"))
    return rows, users, ApiToken.objects.count(), successful_audit_events()


# --- register ----------------------------------------------------------------------------------------


def test_a_manager_registers_an_ai_agent_of_their_team_with_its_account_and_routing(maria, retention):
    # when maria registers an AI agent for Retention that may own billing errors up to stakes 30
    agent = register(maria, retention, route_categories=[CaseCategory.BILLING_ERROR], max_stakes=30,
                     min_confidence="0.85", description="  refunds bot  ")
    # then it has an account in the AI agent role, with no password, in the team
    user = agent.user
    assert list(user.groups.values_list("name", flat=True)) == [Role.AI_AGENT]
    assert not user.has_usable_password() and user.is_active and not user.is_staff
    assert retention.members.filter(pk=user.pk).exists()
    assert (agent.team, agent.registered_by, agent.max_stakes, agent.min_confidence, agent.description) == (
        retention, maria, 30, Decimal("0.850"), "refunds bot")
    assert agent.route_categories == ["billing_error"] and agent.route_tiers == []
    # and the registration is audited, by maria
    event = AuditEvent.objects.get(action="ai_agent.registered")
    assert event.actor_username == "maria" and event.object_id == str(agent.pk)
    assert event.after["model_name"] == "support-llm" and event.after["route_categories"] == ["billing_error"]
    assert AuditEvent.objects.filter(action="user.created", object_id=str(user.pk), actor_username="maria").exists()


def test_a_superuser_registers_an_ai_agent_of_any_team(billing):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert register(admin, billing).team == billing


def test_an_agent_cannot_register_an_ai_agent_and_nothing_changes(alice, retention):
    # given the state before
    before = state()
    # when alice, an agent of Retention, tries to register one
    with pytest.raises(NotAllowed, match="Only managers of Retention"):
        register(alice, retention)
    # then nothing changed, and the refusal is on the record
    assert state() == before
    assert AuditEvent.objects.filter(action="ai_agent.register.refused", actor_username="alice").exists()


def test_a_manager_of_another_team_cannot_register_an_ai_agent_there(maria, billing):
    before = state()
    with pytest.raises(NotAllowed, match="Only managers of Billing"):
        register(maria, billing)
    assert state() == before


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"route_categories": ["complaint", "gossip"]}, "route_categories", "Unknown case categories: gossip"),
    ({"route_tiers": ["diamond"]}, "route_tiers", "Unknown customer tiers: diamond"),
    ({"route_categories": "complaint"}, "route_categories", "as a list"),
    ({"max_stakes": 101}, "max_stakes", "from 0 to 100"),
    ({"max_stakes": -1}, "max_stakes", "from 0 to 100"),
    ({"max_stakes": "40"}, "max_stakes", "whole number"),
    ({"min_confidence": "1.5"}, "min_confidence", "from 0 to 1"),
    ({"min_confidence": "0.7777"}, "min_confidence", "at most 3 decimal places"),
    ({"min_confidence": "-0.1"}, "min_confidence", "not a plain number"),
    ({"model_name": "  "}, "model_name", "Give the model name"),
    ({"model_version": ""}, "model_version", "Give the model version"),
    ({"hand_off_negative_sentiment": "yes"}, "hand_off_negative_sentiment", "true or false"),
])
def test_bad_settings_are_refused_with_a_clear_error_and_nothing_changes(maria, retention, fields, field, message):
    before = state()
    values = {"model_name": "support-llm", "model_version": "2026-11", **fields}
    with pytest.raises(ValidationError) as refused:
        ai_agent_register(actor=maria, username="ai-x", team=retention, **values)
    assert message in " ".join(refused.value.message_dict[field])
    assert state() == before


def test_a_taken_user_name_is_refused_plainly(maria, retention, alice):
    before = state()
    with pytest.raises(ValidationError, match="already exists"):
        register(maria, retention, username="alice")
    assert state() == before


# --- update ------------------------------------------------------------------------------------------


def test_a_manager_changes_the_routing_and_the_audit_keeps_before_and_after_of_what_changed(maria, retention):
    # given an AI agent of Retention
    agent = register(maria, retention, route_categories=["billing_error"], max_stakes=30)
    # when maria widens its routing and records a new model version
    changed = ai_agent_update(actor=maria, ai_agent=agent, route_categories=["other", "billing_error"],
                              max_stakes=30, model_version="2026-12", route_tiers=["gold"])
    # then the stored agent has the new settings (categories in their usual order)
    agent.refresh_from_db()
    assert changed.route_categories == agent.route_categories == ["billing_error", "other"]
    assert (agent.model_version, agent.route_tiers, agent.max_stakes) == ("2026-12", ["gold"], 30)
    # and the audit event names only what changed, before and after
    event = AuditEvent.objects.get(action="ai_agent.updated")
    assert event.before == {"route_categories": ["billing_error"], "model_version": "2026-11", "route_tiers": []}
    assert event.after == {"route_categories": ["billing_error", "other"], "model_version": "2026-12",
                           "route_tiers": ["gold"]}


def test_an_update_that_changes_nothing_writes_nothing(maria, retention):
    agent = register(maria, retention, max_stakes=30)
    before = state()
    ai_agent_update(actor=maria, ai_agent=agent, max_stakes=30, model_name="support-llm")
    assert state() == before


def test_a_manager_of_another_team_cannot_change_an_ai_agent_and_nothing_changes(maria, retention, billing):
    agent = register(maria, retention)
    mike = UserFactory(username="mike", roles=[Role.MANAGER])
    from guardian.shortcuts import assign_perm
    assign_perm("h2h_core.manage_team", mike, billing)
    before = state()
    with pytest.raises(NotAllowed):
        ai_agent_update(actor=mike, ai_agent=agent, max_stakes=90)
    assert state() == before
    assert AuditEvent.objects.filter(action="ai_agent.update.refused", actor_username="mike").exists()


def test_an_unknown_setting_is_a_programming_error(maria, retention):
    agent = register(maria, retention)
    with pytest.raises(TypeError, match="team"):
        ai_agent_update(actor=maria, ai_agent=agent, team=None)


# --- suspend and reinstate ---------------------------------------------------------------------------


def test_suspension_stops_the_ai_agent_and_revokes_its_tokens_and_reinstating_needs_a_new_one(maria, retention):
    # given an AI agent with an API token that opens the API
    agent = register(maria, retention, route_categories=["billing_error"])
    issued = ai_agent_issue_token(actor=maria, ai_agent=agent)
    assert api_token_authenticate(key=issued.key).user == agent.user
    # when maria suspends it
    ai_agent_suspend(actor=maria, ai_agent=agent, reason="refunds look wrong")
    # then it is suspended, by maria, its account deactivated, and the token revoked (audited)
    agent.refresh_from_db()
    assert agent.is_suspended and agent.suspended_by == maria and agent.suspension_reason == "refunds look wrong"
    assert not User.objects.get(pk=agent.user_id).is_active
    with pytest.raises(ApiTokenRejected, match="Invalid token"):
        api_token_authenticate(key=issued.key)
    assert AuditEvent.objects.get(action="api_token.revoked").reason == "AI agent suspended"
    assert not ai_may_act(User.objects.get(pk=agent.user_id))
    event = AuditEvent.objects.get(action="ai_agent.suspended")
    assert event.reason == "refunds look wrong" and event.after["account_active"] is False
    # when she reinstates it
    ai_agent_reinstate(actor=maria, ai_agent=agent, reason="fixed the prompt")
    # then it acts again, with a new token only: the revoked one stays revoked
    agent.refresh_from_db()
    assert not agent.is_suspended and agent.suspension_reason == "" and agent.suspended_by is None
    with pytest.raises(ApiTokenRejected, match="Invalid token"):
        api_token_authenticate(key=issued.key)
    assert api_token_authenticate(key=ai_agent_issue_token(actor=maria, ai_agent=agent).key).user.is_active
    assert ai_may_act(User.objects.get(pk=agent.user_id))
    assert AuditEvent.objects.get(action="ai_agent.reinstated").before["suspension_reason"] == "refunds look wrong"


def test_a_suspension_needs_a_reason(maria, retention):
    agent = register(maria, retention)
    before = state()
    with pytest.raises(ValidationError, match="Give the reason for the suspension"):
        ai_agent_suspend(actor=maria, ai_agent=agent, reason="   ")
    assert state() == before


def test_an_agent_cannot_suspend_an_ai_agent_and_nothing_changes(maria, retention, alice):
    agent = register(maria, retention)
    before = state()
    with pytest.raises(NotAllowed):
        ai_agent_suspend(actor=alice, ai_agent=agent, reason="I do not like it")
    assert state() == before
    assert AuditEvent.objects.filter(action="ai_agent.suspend.refused", actor_username="alice").exists()


def test_suspending_twice_or_reinstating_an_active_one_is_refused(maria, retention):
    agent = register(maria, retention)
    with pytest.raises(AiAgentNotSuspended):
        ai_agent_reinstate(actor=maria, ai_agent=agent, reason="why")
    ai_agent_suspend(actor=maria, ai_agent=agent, reason="first")
    before = state()
    with pytest.raises(AiAgentSuspended, match="already suspended: first"):
        ai_agent_suspend(actor=maria, ai_agent=agent, reason="second")
    assert state() == before


def test_a_suspended_ai_agent_gets_no_token(maria, retention):
    agent = register(maria, retention)
    ai_agent_suspend(actor=maria, ai_agent=agent, reason="paused")
    before = state()
    with pytest.raises(AiAgentSuspended, match="reinstate it"):
        ai_agent_issue_token(actor=maria, ai_agent=agent)
    assert state() == before


# --- tokens ------------------------------------------------------------------------------------------


def test_a_manager_issues_the_ai_agents_token_the_key_never_reaches_the_audit(maria, retention):
    agent = register(maria, retention)
    issued = ai_agent_issue_token(actor=maria, ai_agent=agent)
    assert issued.token.user == agent.user
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor_username == "maria" and event.object_id == str(agent.user_id)
    assert issued.key not in str(event.after) and event.after["key_prefix"] == issued.token.prefix


def test_an_agent_of_the_team_cannot_issue_the_ai_agents_token(maria, retention, alice):
    agent = register(maria, retention)
    before = state()
    with pytest.raises(NotAllowed):
        ai_agent_issue_token(actor=alice, ai_agent=agent)
    assert state() == before


# --- who may -----------------------------------------------------------------------------------------


def test_may_manage_ai_agents_names_the_team(maria, retention, billing, alice):
    assert may_manage_ai_agents(maria, retention)
    refused = may_manage_ai_agents(maria, billing)
    assert not refused and refused.reason == "Only managers of Billing register, change or suspend its AI agents."
    assert not may_manage_ai_agents(alice, retention)


def test_ai_may_act_only_for_a_registered_active_ai_agent(maria, retention, alice):
    agent = register(maria, retention)
    assert ai_may_act(agent.user)
    refused = ai_may_act(alice)
    assert not refused and "not a registered AI agent" in refused.reason
    # an administrator reactivating the account does not lift the suspension
    ai_agent_suspend(actor=maria, ai_agent=agent, reason="paused")
    User.objects.filter(pk=agent.user_id).update(is_active=True)
    refused = ai_may_act(User.objects.get(pk=agent.user_id))
    assert not refused and refused.reason == "AI agent ai-refunds is suspended: paused"


def test_ai_agent_of_is_cached_on_the_user(maria, retention, alice, django_assert_num_queries):
    agent = register(maria, retention)
    user = User.objects.get(pk=agent.user_id)
    with django_assert_num_queries(1):
        assert ai_agent_of(user) == agent
        assert ai_agent_of(user) == agent
    with django_assert_num_queries(1):
        assert ai_agent_of(alice) is None
        assert ai_agent_of(alice) is None


# --- routing -----------------------------------------------------------------------------------------


@pytest.fixture
def router(retention):
    """An AI agent that owns billing errors and other cases of standard and silver customers up to stakes 40."""
    return ai_agent(retention, "ai-router", categories=["billing_error", "other"], max_stakes=40,
                    route_tiers=["standard", "silver"], hand_off_negative_sentiment=True)


def routed_case(team, **fields):
    fields.setdefault("category", CaseCategory.BILLING_ERROR)
    fields.setdefault("stakes_score", 20)
    fields.setdefault("description", "I was charged twice for my subscription this month.")
    customer = CustomerFactory(tier=fields.pop("tier", CustomerTier.STANDARD))
    return CaseFactory(team=team, customer=customer, owner=None, **fields)


def test_a_routine_case_is_the_ai_agents_to_own(router, retention):
    assert ai_may_own(router, routed_case(retention))


def test_a_category_the_ai_agent_does_not_own_goes_to_a_person(router, retention):
    refused = ai_may_own(router, routed_case(retention, category=CaseCategory.COMPLAINT))
    assert not refused and refused.reason == "Complaint cases go to a person."


def test_with_no_category_listed_the_ai_agent_owns_no_case(retention):
    agent = ai_agent(retention, "ai-none", categories=[])
    assert not ai_may_own(agent, routed_case(retention))


def test_a_tier_not_listed_goes_to_a_person_and_an_empty_list_takes_every_tier(router, retention):
    refused = ai_may_own(router, routed_case(retention, tier=CustomerTier.PLATINUM))
    assert not refused and refused.reason == "Platinum customers go to a person."
    router.route_tiers = []
    assert ai_may_own(router, routed_case(retention, tier=CustomerTier.PLATINUM))


def test_stakes_above_the_ai_agents_highest_go_to_a_person(router, retention):
    assert ai_may_own(router, routed_case(retention, stakes_score=40))
    refused = ai_may_own(router, routed_case(retention, stakes_score=82))
    assert not refused and refused.reason == "Case stakes 82 is above this AI agent's 40."


def test_a_case_of_another_team_is_not_the_ai_agents(router, billing):
    refused = ai_may_own(router, routed_case(billing))
    assert not refused and "belongs to Billing" in refused.reason


def test_a_negative_customer_message_goes_to_a_person_when_the_ai_agent_hands_those_off(router, retention):
    # given a customer who writes angrily
    case = routed_case(retention, description="This is outrageous. You stole my money, worst service ever, "
                                              "I am furious and disgusted.")
    # then the case goes to a person, saying how negative it read
    refused = ai_may_own(router, case)
    assert not refused and refused.reason.startswith("The customer's message reads negative (compound -0.")
    # unless the AI agent is set to take those too
    router.hand_off_negative_sentiment = False
    assert ai_may_own(router, case)


def test_without_a_description_the_subject_is_read(router, retention):
    case = routed_case(retention, description="", subject="Furious: you stole my money, terrible awful service")
    assert "reads negative" in ai_may_own(router, case).reason


def test_a_suspended_ai_agent_owns_nothing(router, retention, maria):
    ai_agent_suspend(actor=maria, ai_agent=router, reason="paused")
    refused = ai_may_own(router, routed_case(retention))
    assert not refused and refused.reason == "AI agent ai-router is suspended: paused"
