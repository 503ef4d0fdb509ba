"""The hand-off on the person's side: the case page's panel and its pickup, the customer's AI
conversations, "Waiting for me", and the managers' hand-off figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from authority.reports.hand_offs import hand_off_metrics, pickup_times
from edges.web import once
from h2h_core.hand_offs import case_hand_off
from h2h_core.models import AuditEvent, CaseCategory, HandOff, HandOffReason
from tests.factories import CaseFactory, CustomerFactory, ai_agent
from workflows.inbox import inbox_for, waiting_counts

from .conftest import manager_of, member

pytestmark = pytest.mark.django_db

TRANSCRIPT = [{"from": "customer", "text": "I was charged twice for October."},
              {"from": "ai", "text": "I see two charges of 120 EUR; a refund that size needs a person."}]
ATTEMPTS = [{"kind": "refund", "amount": "120.00", "currency": "EUR", "outcome": "refused",
             "reasons": ["Over the per-case limit of 50.00 EUR."]}]


@pytest.fixture
def alice(retention):
    return member(retention, "alice")


@pytest.fixture
def maria(retention):
    return manager_of("maria", retention)


@pytest.fixture
def bot(retention):
    return ai_agent(retention, "ava-bot")


@pytest.fixture
def customer(db):
    return CustomerFactory(name="Acme Corp")


def handed(bot, case, to_user, **extra):
    fields = {"reason": HandOffReason.OVER_AUTHORITY, "reason_text": "Refund of 120 EUR is over my authority.",
              "summary": "Double charge in October.", "transcript": TRANSCRIPT, "attempts": ATTEMPTS, **extra}
    return case_hand_off(actor=bot.user, case=case, to_user=to_user, **fields)


@pytest.fixture
def to_alice(bot, alice, retention, customer):
    return handed(bot, CaseFactory(owner=bot.user, team=retention, customer=customer, subject="Double charge"),
                  alice)


def post_once(client, url):
    return client.post(url, {once.FIELD: once.new_token()})


def test_the_case_page_shows_who_handed_it_over_why_what_was_tried_and_the_conversation(client, alice, to_alice):
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[to_alice.case_id])).content.decode()
    assert 'id="hand-off"' in page and "Handed to you by AI agent ava-bot" in page
    assert "Over the AI agent&#x27;s authority — Refund of 120 EUR is over my authority." in page
    assert "Double charge in October." in page
    assert "120.00 EUR" in page and "Over the per-case limit of 50.00 EUR." in page
    assert "<strong>Customer:</strong> I was charged twice for October." in page
    assert "<strong>AI:</strong> I see two charges" in page
    # a short conversation is open in the panel; the receiver has the pick-up button
    panel = page.split('id="hand-off"')[1].split("</section>")[0]
    assert "<h3>The conversation</h3>" in panel and "<details>" not in panel
    assert "Pick up: I own this case from here" in page


def test_a_long_conversation_is_folded(client, alice, bot, retention):
    long = [{"from": "customer" if n % 2 else "ai", "text": f"line {n}"} for n in range(12)]
    hand_off = handed(bot, CaseFactory(owner=bot.user, team=retention), alice, transcript=long)
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[hand_off.case_id])).content.decode()
    assert "<details><summary>The conversation (12 lines)</summary>" in page


def test_the_receiver_picks_up_once_from_the_case_page(client, alice, to_alice):
    client.force_login(alice)
    url = reverse("cases:hand-off-pick-up", args=[to_alice.case_id, to_alice.pk])
    # when alice picks up, and then sends the form again from an old tab
    assert post_once(client, url).status_code == 302
    assert post_once(client, url).status_code == 302
    # then the pickup was recorded once, and the page says so without the button
    to_alice.refresh_from_db()
    assert to_alice.picked_up_by == alice
    assert AuditEvent.objects.filter(action="hand_off.picked_up").count() == 1
    page = client.get(reverse("cases:detail", args=[to_alice.case_id])).content.decode()
    assert "Picked up by alice" in page and "Pick up: I own this case from here" not in page


def test_a_colleague_sees_the_panel_but_cannot_pick_up(client, retention, to_alice):
    bob = member(retention, "bob")
    client.force_login(bob)
    page = client.get(reverse("cases:detail", args=[to_alice.case_id])).content.decode()
    assert "Handed to alice by AI agent ava-bot" in page and "Pick up: I own" not in page
    # and posting anyway changes nothing, with a message instead of an error page
    response = post_once(client, reverse("cases:hand-off-pick-up", args=[to_alice.case_id, to_alice.pk]))
    assert response.status_code == 302
    assert HandOff.objects.get().picked_up_at is None


def test_someone_who_may_not_see_the_case_gets_a_404(client, billing, to_alice):
    carol = member(billing, "carol")
    client.force_login(carol)
    response = post_once(client, reverse("cases:hand-off-pick-up", args=[to_alice.case_id, to_alice.pk]))
    assert response.status_code == 404 and HandOff.objects.get().picked_up_at is None


def test_the_customer_page_shows_ai_conversations_only_of_cases_the_viewer_may_see(client, alice, to_alice,
                                                                                   billing, customer):
    # given the same customer's billing case was handed off too, to carol
    carol = member(billing, "carol")
    billing_bot = ai_agent(billing, "sam-bot")
    handed(billing_bot, CaseFactory(owner=billing_bot.user, team=billing, customer=customer,
                                    subject="Invoice dispute"), carol,
           transcript=[{"from": "customer", "text": "Billing secret"}])
    client.force_login(alice)
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    # then alice reads the conversation of her team's case, not the billing one
    assert "AI conversation" in page and "I was charged twice for October." in page
    assert "Billing secret" not in page and "Invoice dispute" not in page
    # and the case page's customer panel shows the same context
    panel = client.get(reverse("cases:detail", args=[to_alice.case_id])).content.decode()
    assert 'id="ai-conversations-panel"' in panel and "Billing secret" not in panel


def test_waiting_for_me_lists_hand_offs_to_me_and_unowned_ones_in_my_queue_oldest_first(
        client, alice, bot, retention, to_alice):
    # given an older unowned hand-off waiting in the Retention queue
    queued = handed(bot, CaseFactory(owner=bot.user, team=retention, subject="Waiting case"), None)
    HandOff.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(hours=2))
    # then both wait for alice, the older first
    assert [h.pk for h in inbox_for(alice).hand_offs] == [queued.pk, to_alice.pk]
    assert waiting_counts(alice, with_approvals=False).total == 2
    client.force_login(alice)
    page = client.get(reverse("cases:waiting")).content.decode()
    assert "Handed to a person by an AI agent (2)" in page and "waiting in the Retention queue: claim it" in page
    # and an AI agent of the team is shown none
    assert inbox_for(bot.user).hand_offs == []
    # when alice picks hers up, it no longer waits
    post_once(client, reverse("cases:hand-off-pick-up", args=[to_alice.case_id, to_alice.pk]))
    assert [h.pk for h in inbox_for(alice).hand_offs] == [queued.pk]


def test_the_waiting_page_costs_the_same_whatever_the_number_of_hand_offs(client, alice, bot, retention,
                                                                         django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    handed(bot, CaseFactory(owner=bot.user, team=retention), alice)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("cases:waiting"))
    for _ in range(5):
        handed(bot, CaseFactory(owner=bot.user, team=retention), alice)
        handed(bot, CaseFactory(owner=bot.user, team=retention), None)
    with django_assert_max_num_queries(len(one)):
        page = client.get(reverse("cases:waiting")).content.decode()
    assert "Handed to a person by an AI agent (11)" in page


def test_managers_see_hand_offs_per_moment_and_reason_with_time_to_pickup(client, maria, alice, bot, retention,
                                                                          billing):
    now = timezone.now()
    for minutes, category, reason in ((10, CaseCategory.COMPLAINT, HandOffReason.OVER_AUTHORITY),
                                      (30, CaseCategory.COMPLAINT, HandOffReason.OUTSIDE_ROUTING),
                                      (None, CaseCategory.RENEWAL, HandOffReason.OVER_AUTHORITY)):
        hand_off = handed(bot, CaseFactory(owner=bot.user, team=retention, category=category), alice, reason=reason)
        if minutes is not None:
            HandOff.objects.filter(pk=hand_off.pk).update(picked_up_at=hand_off.created_at + timedelta(minutes=minutes),
                                                          picked_up_by=alice)
    # and one of another team, which maria does not manage
    carol = member(billing, "carol")
    other = ai_agent(billing, "sam-bot")
    handed(other, CaseFactory(owner=other.user, team=billing), carol)
    metrics = hand_off_metrics(team_ids=[retention.pk], since=now - timedelta(days=1))
    assert (metrics.total, metrics.waiting, metrics.pickup.picked_up) == (3, 1, 2)
    assert metrics.pickup.median_seconds == pytest.approx(20 * 60, abs=2)
    assert metrics.pickup.p90_seconds == pytest.approx(30 * 60, abs=2)
    by_category = {row.key: (row.total, row.waiting) for row in metrics.by_category}
    assert by_category == {"complaint": (2, 0), "renewal": (1, 1)}
    assert {row.key: row.total for row in metrics.by_reason} == {"over_authority": 2, "outside_routing": 1}
    client.force_login(maria)
    page = client.get(reverse("authority:hand_offs")).content.decode()
    assert "Hand-offs from AI agents" in page and "Outside the AI agent&#x27;s routing rules" in page
    assert "20 min" in page and "30 min" in page


def test_percentiles_are_median_and_nearest_rank_p90():
    assert pickup_times([]).median_seconds is None
    times = pickup_times([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert (times.median_seconds, times.p90_seconds) == (55, 90)
    assert pickup_times([5]).p90_seconds == 5


def test_the_hand_off_figures_are_for_managers_at_a_fixed_query_cost(client, maria, alice, bot, retention,
                                                                      django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    handed(bot, CaseFactory(owner=bot.user, team=retention), alice)
    client.force_login(maria)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("authority:hand_offs")).status_code == 200
    for category in (CaseCategory.RENEWAL, CaseCategory.CRISIS, CaseCategory.ONBOARDING):
        handed(bot, CaseFactory(owner=bot.user, team=retention, category=category), alice,
               reason=HandOffReason.ASKED)
    with django_assert_max_num_queries(len(one)):
        client.get(reverse("authority:hand_offs"))
    # and an agent may not open it
    client.force_login(alice)
    assert client.get(reverse("authority:hand_offs")).status_code == 403
