"""Reversing a decision (issue 12): managers of the case's team, never the decider, once, with a reason.

The usage a reversed decision consumed stays consumed. The reversal publishes its own outbox
message ("<topic>.reversed"); the decision's own message is left as it was.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from guardian.shortcuts import assign_perm

from authority.errors import AlreadyDecided, AuthorityDenied, NotAllowed
from authority.models import Decision, OutboxMessage, UsageCounter
from authority.services import decision_execute, decision_reverse
from h2h_core.models import AuditEvent, CaseEvent, Role
from h2h_core.models.audit import Outcome
from tests.api.helpers import assert_error_shape, client_for
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def bella(billing):
    """A manager of another team."""
    user = UserFactory(username="bella", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, billing)
    return user


@pytest.fixture
def decision(alice, retention):
    """alice (500 per case, 1,000 a month) refunded 500.00 EUR on her case: all of her per-case limit."""
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    case = CaseFactory(owner=alice, team=retention)
    return decision_execute(actor=alice, case=case, kind=kind("refund"), amount="500", currency="EUR",
                            rationale="Charged twice")


def state():
    """Everything a reversal could change."""
    return {
        "decisions": list(Decision.objects.order_by("pk").values_list(
            "pk", "reversed_at", "reversed_by_id", "reversal_reason")),
        "outbox": list(OutboxMessage.objects.order_by("pk").values_list("pk", "topic", "payload")),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case_events": CaseEvent.objects.count(),
        # A refusal is itself audited (outcome denied); nothing that succeeded may appear.
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


# --- the service -----------------------------------------------------------------------------------


def test_a_manager_of_the_team_reverses_a_decision_and_the_usage_stays_consumed(alice, maria, decision):
    # given alice's refund of 500.00 EUR, which used all of her per-case limit
    counters = dict(UsageCounter.objects.values_list("key", "used"))
    outbox = list(OutboxMessage.objects.values_list("pk", "topic", "payload"))
    # when maria, a manager of the case's team, reverses it
    reversed_ = decision_reverse(actor=maria, decision=decision, reason="  Customer was not charged twice  ")
    # then the decision records who reversed it, when and why
    stored = Decision.objects.get(pk=decision.pk)
    assert stored.reversed_at is not None and stored.reversed_by_id == maria.pk
    assert stored.reversal_reason == "Customer was not charged twice" == reversed_.reversal_reason
    # and the case's timeline and the audit chain say so
    event = CaseEvent.objects.filter(case_id=decision.case_id, kind=CaseEvent.Kind.DECISION).latest("id")
    assert event.actor_id == maria.pk and "maria reversed the refund of 500.00 EUR decided by alice" in event.text
    audit = AuditEvent.objects.get(action="decision.reversed")
    assert audit.object_id == str(decision.pk) and audit.reason == "Customer was not charged twice"
    assert audit.before["reversed_at"] is None and audit.after["reversed_by_id"] == maria.pk
    # and the usage it consumed stays consumed; its outbox message is as it was, and one more tells
    # the billing system to take the refund back
    assert dict(UsageCounter.objects.values_list("key", "used")) == counters
    messages = list(OutboxMessage.objects.order_by("pk").values_list("pk", "topic", "payload"))
    assert messages[:-1] == outbox
    reversal = OutboxMessage.objects.latest("pk")
    assert reversal.decision_id == decision.pk and reversal.topic == f"{decision.kind.outbox_topic}.reversed"
    assert reversal.payload["reversal_reason"] == "Customer was not charged twice"
    assert reversal.payload["case_reference"] == decision.case.reference
    # so a reversal makes no room: another refund on the case is still over her per-case limit
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=alice, case=decision.case, kind=kind("refund"), amount="1", currency="EUR",
                         rationale="Again")


def test_a_superuser_may_reverse(decision):
    admin = UserFactory(username="root", is_superuser=True)
    decision_reverse(actor=admin, decision=decision, reason="Fraud")
    assert Decision.objects.get(pk=decision.pk).reversed_by_id == admin.pk


@pytest.mark.parametrize(
    ("who", "message"),
    [
        pytest.param("alice", "Nobody reverses their own decision", id="the-decider"),
        pytest.param("bob", "Only a manager of the case's team", id="an-agent-of-the-team"),
        pytest.param("bella", "Only a manager of the case's team", id="a-manager-of-another-team"),
    ],
)
def test_only_a_manager_of_the_team_other_than_the_decider_reverses_and_a_refusal_changes_nothing(
    request, decision, bob, bella, who, message
):
    actor = request.getfixturevalue(who)
    before = state()
    # when someone else tries to reverse alice's decision
    with pytest.raises(NotAllowed) as refused:
        decision_reverse(actor=actor, decision=decision, reason="Not needed")
    # then they are told why, nothing changed, and the refusal is on the record
    assert message in refused.value.message
    assert state() == before
    refusal = AuditEvent.objects.get(action="decision.reverse.refused")
    assert refusal.outcome == Outcome.DENIED and refusal.actor_username == who


def test_a_manager_does_not_reverse_their_own_decision(maria, retention):
    # given maria decided on a case of her team herself
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case = CaseFactory(owner=maria, team=retention)
    own = decision_execute(actor=maria, case=case, kind=kind("refund"), amount="100", currency="EUR",
                           rationale="Goodwill")
    before = state()
    # when she tries to reverse it
    with pytest.raises(NotAllowed):
        decision_reverse(actor=maria, decision=own, reason="Changed my mind")
    # then nothing changed
    assert state() == before


def test_a_decision_is_reversed_once(maria, decision):
    # given maria reversed the decision
    decision_reverse(actor=maria, decision=decision, reason="Not charged twice")
    before = state()
    # when she (or anyone) reverses it again
    with pytest.raises(AlreadyDecided) as refused:
        decision_reverse(actor=maria, decision=decision, reason="Again")
    # then it is refused, naming the first reversal, and nothing changed
    assert "already reversed by maria" in refused.value.message and "Not charged twice" in refused.value.message
    assert state() == before


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 2001])
def test_a_reversal_needs_a_reason_and_a_bad_one_changes_nothing(maria, decision, reason):
    before = state()
    with pytest.raises(ValidationError) as refused:
        decision_reverse(actor=maria, decision=decision, reason=reason)
    assert "reason" in refused.value.message_dict
    assert state() == before


# --- the API ------------------------------------------------------------------------------------------


def test_the_api_reverses_a_decision_and_reads_it_back(maria, decision):
    as_maria = client_for(maria)
    # when maria reverses alice's decision through the API
    response = as_maria.post(f"/api/v1/decisions/{decision.pk}/reverse/", {"reason": "Duplicate"}, format="json")
    # then the decision comes back reversed, by her, with the reason
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == decision.pk and body["reversed_by"] == "maria" and body["reversal_reason"] == "Duplicate"
    assert body["reversed_at"] is not None
    # and reading it shows the same
    read = as_maria.get(f"/api/v1/decisions/{decision.pk}/").json()
    assert (read["reversed_by"], read["reversal_reason"]) == ("maria", "Duplicate")


def test_the_api_shows_a_decision_not_reversed(alice, decision):
    read = client_for(alice).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert (read["reversed_at"], read["reversed_by"], read["reversal_reason"]) == (None, None, "")


def test_the_api_refuses_the_decider_and_a_missing_reason_and_changes_nothing(alice, maria, decision):
    before = state()
    # the decider herself: 403
    response = client_for(alice).post(f"/api/v1/decisions/{decision.pk}/reverse/", {"reason": "Oops"},
                                      format="json")
    assert_error_shape(response, 403, "not_allowed")
    # no reason: 400 naming the field
    response = client_for(maria).post(f"/api/v1/decisions/{decision.pk}/reverse/", {}, format="json")
    assert "reason" in assert_error_shape(response, 400)["details"]
    assert state() == before


def test_the_api_refuses_a_second_reversal_with_409(maria, decision):
    as_maria = client_for(maria)
    as_maria.post(f"/api/v1/decisions/{decision.pk}/reverse/", {"reason": "Duplicate"}, format="json")
    before = state()
    response = as_maria.post(f"/api/v1/decisions/{decision.pk}/reverse/", {"reason": "Again"}, format="json")
    assert_error_shape(response, 409, "already_decided")
    assert state() == before


def test_the_api_hides_a_decision_the_caller_may_not_see(bella, decision):
    before = state()
    response = client_for(bella).post(f"/api/v1/decisions/{decision.pk}/reverse/", {"reason": "x"}, format="json")
    assert_error_shape(response, 404)
    assert state() == before


# --- the case page ---------------------------------------------------------------------------------


def test_the_case_page_offers_reverse_to_a_manager_of_the_team_only(client, alice, maria, decision):
    url = reverse("cases:detail", args=[decision.case_id])
    form_action = reverse("cases:reverse", args=[decision.case_id, decision.pk])
    # the decider sees no form
    client.force_login(alice)
    assert form_action not in client.get(url).content.decode()
    # maria, a manager of the team, does, with a one-time token
    client.force_login(maria)
    page = client.get(url).content.decode()
    assert f'action="{form_action}"' in page and 'name="once_token"' in page.split(form_action)[1][:400]


def test_reversing_from_the_case_page(client, maria, decision):
    client.force_login(maria)
    response = client.post(reverse("cases:reverse", args=[decision.case_id, decision.pk]), {"reason": "Duplicate"})
    assert response.status_code == 302
    assert Decision.objects.get(pk=decision.pk).reversal_reason == "Duplicate"
    page = client.get(reverse("cases:detail", args=[decision.case_id])).content.decode()
    assert "reversed</strong> by maria" in page and "“Duplicate”" in page


def test_a_refused_reversal_from_the_case_page_says_why_and_changes_nothing(client, alice, decision):
    client.force_login(alice)
    before = state()
    response = client.post(reverse("cases:reverse", args=[decision.case_id, decision.pk]), {"reason": "Oops"},
                           follow=True)
    assert "Nobody reverses their own decision" in response.content.decode()
    assert state() == before


def test_the_auditors_decision_page_shows_the_reversal_and_offers_it_to_a_superuser_only(client, maria, decision):
    form_action = reverse("cases:reverse", args=[decision.case_id, decision.pk])
    url = reverse("audit:decision", args=[decision.pk])
    # an auditor reads the decision but may not reverse it
    client.force_login(UserFactory(username="audrey", roles=[Role.AUDITOR]))
    assert form_action not in client.get(url).content.decode()
    # a superuser may
    client.force_login(UserFactory(username="root", is_superuser=True))
    assert f'action="{form_action}"' in client.get(url).content.decode()
    # once reversed, the page says by whom and why, and offers it no more
    decision_reverse(actor=maria, decision=decision, reason="Duplicate")
    page = client.get(url).content.decode()
    assert "reversed</span> by maria" in page and "“Duplicate”" in page and form_action not in page


def test_an_endpoint_subscribed_to_a_topic_hears_of_its_reversals_and_no_other_topic(maria, decision):
    # given one endpoint subscribed to refunds and one to goodwill credits
    from authority.models import WebhookDelivery, WebhookEndpoint

    refunds = WebhookEndpoint.objects.create(name="billing", url="https://billing.example/hook",
                                             secret="whsec_" + "a" * 32, topics=[decision.kind.outbox_topic])
    WebhookEndpoint.objects.create(name="crm", url="https://crm.example/hook", secret="whsec_" + "b" * 32,
                                   topics=["crm.goodwill_credit"])
    # when maria reverses the refund
    decision_reverse(actor=maria, decision=decision, reason="Charged once after all")
    # then the reversal is delivered to the refunds endpoint only
    reversal = OutboxMessage.objects.get(topic=f"{decision.kind.outbox_topic}.reversed")
    assert list(WebhookDelivery.objects.filter(message=reversal).values_list("endpoint_id", flat=True)) == [refunds.pk]
