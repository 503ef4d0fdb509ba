"""Shadow mode in the manager console and the API: the shadow page, shadow grants in the grant form,
the matrix and the API, and the evidence a promotion shows to the second manager."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import Decision, Grant, GrantStatus, Period, ShadowDecision
from h2h_core.models import CaseStatus
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind

from .conftest import audit_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def ava(cast):
    """An AI agent of Retention (maria's team)."""
    return ai_agent(cast["retention"], "ava-bot", model_name="support-llm", model_version="2026-11")


@pytest.fixture
def otto(cast):
    """An AI agent of Onboarding (mike's team, not maria's)."""
    return ai_agent(cast["onboarding"], "otto-bot")


def shadowed(ai, case, amount, *, at, code="refund"):
    return ShadowDecision.objects.create(case=case, agent=ai.user, kind=kind(code), amount=Decimal(amount),
                                         currency="EUR", allowed=True, verdict={}, rationale="would refund",
                                         ai_model=ai.model_name, ai_model_version=ai.model_version, created_at=at)


def decided(case, agent, amount, *, at, code="refund"):
    grant = Grant.objects.filter(subject_user=agent, kind__code=code).first() or GrantFactory(
        subject_user=agent, kind=kind(code))
    return Decision.objects.create(case=case, agent=agent, kind=kind(code), amount=Decimal(amount), currency="EUR",
                                   counted_amount=Decimal(amount), counted_currency="EUR", grant=grant, verdict={},
                                   rationale="decided", executed_at=at)


def compared(ai, team, person, *, shadow="80", human=None, resolved=False, at=None):
    """A case an AI agent shadowed and `person` then owned (and decided `human`, if given)."""
    at = at or timezone.now() - timedelta(hours=5)
    case = CaseFactory(owner=person, team=team, status=CaseStatus.RESOLVED if resolved else CaseStatus.OWNED)
    shadowed(ai, case, shadow, at=at)
    if human is not None:
        decided(case, person, human, at=at + timedelta(hours=1))
    return case


def shadow_grant(ai, *, per_case="100"):
    return GrantFactory(subject_user=ai.user, shadow=True, per_case_limit=Decimal(per_case),
                        period_limit=Decimal("500"), period=Period.MONTH)


# --- the shadow decisions page --------------------------------------------------------------------


def test_the_shadow_page_shows_my_ai_agents_beside_people_with_outcome_and_agreement(client, cast, ava, otto):
    # given ava-bot (Retention) shadowed three cases that people then decided or closed, and otto-bot one
    alice = cast["alice"]
    agreed = compared(ava, cast["retention"], alice, human="80")
    differed = compared(ava, cast["retention"], alice, human="40")
    declined = compared(ava, cast["retention"], alice, resolved=True)
    hidden = compared(otto, cast["onboarding"], cast["erin"], human="80")
    client.force_login(cast["maria"])
    # when maria, who manages Retention and Billing, opens the shadow page
    page = client.get(reverse("authority:shadow"))
    # then she sees ava-bot's shadow decisions beside what alice decided, and the agreement rate
    assert page.status_code == 200
    text = page.text
    assert "ava-bot" in text and "support-llm 2026-11" in text
    for case in (agreed, differed, declined):
        assert case.reference in text
    assert "40.00 EUR by alice" in text and "80.00 EUR by alice" in text
    for outcome in ("agreed", "differed", "declined"):
        assert f">{outcome}</span>" in text
    assert "<strong>33 %</strong>" in text
    # and nothing of otto-bot, whose team she does not manage
    assert "otto-bot" not in text and hidden.reference not in text


def test_the_shadow_page_filters_by_ai_agent_and_kind_and_ignores_unknown_values(client, cast, ava):
    # given ava-bot shadowed a refund and a goodwill credit
    alice = cast["alice"]
    refund_case = compared(ava, cast["retention"], alice, human="80")
    credit_case = CaseFactory(owner=alice, team=cast["retention"])
    shadowed(ava, credit_case, "20", at=timezone.now() - timedelta(hours=2), code="goodwill_credit")
    client.force_login(cast["maria"])
    # when maria shows goodwill credits only, then the refund is not listed
    only_credit = client.get(reverse("authority:shadow"), {"agent": "ava-bot", "kind": "goodwill_credit"}).text
    assert credit_case.reference in only_credit and refund_case.reference not in only_credit
    # when the filters name nothing known, then everything is shown, never an error
    anything = client.get(reverse("authority:shadow"), {"agent": "nobody", "kind": "no-such-kind"})
    assert anything.status_code == 200
    assert credit_case.reference in anything.text and refund_case.reference in anything.text


def test_the_shadow_page_costs_the_same_queries_with_more_rows_and_ai_agents(client, cast, ava,
                                                                             django_assert_max_num_queries):
    # given one shadow decision, measured
    alice = cast["alice"]
    compared(ava, cast["retention"], alice, human="80")
    client.force_login(cast["maria"])
    client.get(reverse("authority:shadow"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("authority:shadow")).status_code == 200
    # given more AI agents, kinds and shadow decisions of every outcome
    for index in range(3):
        more = ai_agent(cast["billing"], f"bot-{index}")
        compared(more, cast["billing"], cast["carol"], human="80")
        compared(more, cast["billing"], cast["carol"], human="10")
        compared(more, cast["billing"], cast["carol"], resolved=True)
        case = CaseFactory(owner=cast["carol"], team=cast["billing"])
        shadowed(more, case, "5", at=timezone.now() - timedelta(hours=1), code="goodwill_credit")
    # then the page costs no more
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("authority:shadow"))
    assert page.status_code == 200 and "bot-2" in page.text
    assert len(few.captured_queries) <= 12, [q["sql"][:100] for q in few.captured_queries]


# --- shadow grants in the grant form and the matrix ----------------------------------------------


def terms(**overrides):
    data = {"effect": "permit", "per_case_limit": "100", "period_limit": "500", "period": "month",
            "currency": "EUR", "reason": "trial in shadow"}
    data.update(overrides)
    return data


def test_a_manager_gives_a_shadow_grant_from_the_form_and_the_matrix_labels_it(client, cast, ava):
    client.force_login(cast["maria"])
    url = reverse("authority:grant_new")
    subject = {"subject": f"user-{ava.user.pk}", "kind": "refund"}
    # the form offers the shadow checkbox, with what it means
    form = client.get(url, subject).text
    assert 'name="shadow"' in form and "Shadow (log only)" in form and "nothing executes" in form
    # when maria previews a shadow grant, then the review says so
    preview = client.post(url, {**subject, **terms(shadow="on"), "step": "preview"}).text
    assert re.search(r'<th scope="row">Mode</th><td>shadow \(log only\)</td>', preview)
    assert "Takes effect on saving" in preview
    assert Grant.objects.filter(subject_user=ava.user).count() == 0
    # when she saves it, then it is a shadow grant in force, and the matrix labels it in words
    saved = client.post(url, {**subject, **terms(shadow="True"), "step": "save"})
    assert saved.status_code == 302
    grant = Grant.objects.get(subject_user=ava.user)
    assert grant.shadow and grant.status == GrantStatus.ACTIVE
    matrix = client.get(reverse("authority:matrix")).text
    line = re.search(rf'<tr id="line-user-{ava.user.pk}"(.*?)</tr>', matrix, re.S)
    assert line and ">shadow</span>" in line.group(1)


def test_a_shadow_suspension_is_refused_in_the_form_and_nothing_is_saved(client, cast, ava):
    # when maria saves a suspension ticked shadow, then the form says why and nothing is saved
    client.force_login(cast["maria"])
    before = (Grant.objects.count(), audit_count())
    page = client.post(reverse("authority:grant_new"), {
        "subject": f"user-{ava.user.pk}", "kind": "refund", "purpose": "suspend",
        **terms(effect="forbid", per_case_limit="", period_limit="", period="none", shadow="on"), "step": "save"})
    assert page.status_code == 200 and "cannot be shadow" in page.text
    assert (Grant.objects.count(), audit_count()) == before


def test_a_promotion_waits_for_a_second_manager_who_sees_the_evidence(client, cast, ava):
    # given ava-bot's shadow refund grant (far below the threshold), and its record against alice's decisions
    grant = shadow_grant(ava)
    alice = cast["alice"]
    compared(ava, cast["retention"], alice, human="80")
    compared(ava, cast["retention"], alice, human="80")
    compared(ava, cast["retention"], alice, human="50")
    rated = compared(ava, cast["retention"], alice, resolved=True)
    rated.rating = 4
    rated.save()
    client.force_login(cast["maria"])
    url = reverse("authority:grant_edit", args=[grant.pk])
    # the edit form starts from the shadow grant as it is
    assert re.search(r'<input type="checkbox" name="shadow"[^>]*checked', client.get(url).text)
    # when maria promotes it to live with the same limits
    preview = client.post(url, {**terms(reason="agrees with people"), "step": "preview"}).text
    assert "Needs a second manager" in preview and "promotion from shadow to live" in preview
    assert re.search(r'<th scope="row">Mode</th><td>shadow \(log only\)</td><td>live</td>', preview)
    client.post(url, {**terms(reason="agrees with people"), "step": "save"})
    # then the change waits, and the shadow version stays in force
    promoted = Grant.objects.get(supersedes=grant)
    assert promoted.status == GrantStatus.PENDING and not promoted.shadow
    # when mike, the second manager, opens the pending changes
    client.force_login(cast["mike"])
    page = client.get(reverse("authority:pending")).text
    # then he sees the promotion with its evidence: agreement, reversals, CSAT, period
    article = re.search(rf'<article class="card" aria-labelledby="pending-{promoted.pk}">(.*?)</article>', page,
                        re.S).group(1)
    assert "Promotion" in article and "Evidence: ava-bot and refund" in article
    assert "50 % agreed" in article and "2 agreed, 1 differed, 1 declined of 4 decided" in article
    assert "0 of 0 executed decisions reversed" in article
    assert "4.00 out of 5 on average, 1 rated case" in article
    # when he confirms it, then it is live
    client.post(reverse("authority:confirm", args=[promoted.pk]))
    promoted.refresh_from_db()
    assert promoted.status == GrantStatus.ACTIVE


def test_a_change_that_does_not_flip_shows_no_evidence(client, cast, ava):
    # given a live grant raised above the threshold (pending, but no change of mode)
    grant = GrantFactory(subject_user=ava.user, per_case_limit=Decimal("100"))
    client.force_login(cast["maria"])
    client.post(reverse("authority:grant_edit", args=[grant.pk]),
                {**terms(per_case_limit="3000", period_limit="3000"), "step": "save"})
    assert Grant.objects.get(supersedes=grant).status == GrantStatus.PENDING
    # when mike opens the pending changes, then no evidence is shown for it
    client.force_login(cast["mike"])
    page = client.get(reverse("authority:pending")).text
    assert "Evidence:" not in page and "Promotion" not in page


def test_the_pending_page_costs_the_same_queries_with_more_promotions(client, cast, ava,
                                                                      django_assert_max_num_queries):
    def promotions(count):
        for index in range(count):
            robot = ai_agent(cast["retention"], f"robot-{Grant.objects.count()}-{index}")
            shadow = shadow_grant(robot)
            GrantFactory(subject_user=robot.user, supersedes=shadow, lineage=shadow.lineage, version=2,
                         status=GrantStatus.PENDING, granted_by=cast["maria"], per_case_limit=Decimal("100"))
            compared(robot, cast["retention"], cast["alice"], human="80")

    # given one promotion waiting, measured; when five more wait, then the page costs no more
    promotions(1)
    client.force_login(cast["mike"])
    client.get(reverse("authority:pending"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("authority:pending"))
    promotions(5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("authority:pending"))
    assert page.text.count("Evidence: robot-") == 6


# --- the API --------------------------------------------------------------------------------------


def test_the_api_gives_and_shows_shadow_grants_and_a_promotion_waits(client, cast, ava):
    # when maria gives ava-bot a shadow grant through the API, then it says shadow
    client.force_login(cast["maria"])
    created = client.post(reverse("api:grant-list"), {
        "kind": "refund", "subject_user": "ava-bot", "per_case_limit": "100", "period_limit": "500",
        "period": "month", "currency": "EUR", "reason": "trial", "shadow": True}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["shadow"] is True
    grant_id = created.json()["id"]
    # a change that does not say the mode keeps it
    kept = client.post(reverse("api:grant-change", args=[grant_id]), {
        "per_case_limit": "120", "period_limit": "500", "period": "month", "currency": "EUR",
        "reason": "wider"}, content_type="application/json")
    assert kept.status_code == 201, kept.content
    assert kept.json()["shadow"] is True and kept.json()["status"] == "active"
    # a promotion waits for a second manager
    promoted = client.post(reverse("api:grant-change", args=[kept.json()["id"]]), {
        "per_case_limit": "120", "period_limit": "500", "period": "month", "currency": "EUR",
        "reason": "agrees", "shadow": False}, content_type="application/json")
    assert promoted.status_code == 201, promoted.content
    assert promoted.json()["shadow"] is False and promoted.json()["status"] == "pending"
    listed = client.get(reverse("api:grant-list"), {"subject_user": "ava-bot"}).json()
    assert {row["id"]: row["shadow"] for row in listed["results"]} == {
        grant_id: True, kept.json()["id"]: True, promoted.json()["id"]: False}


def test_the_api_refuses_a_shadow_suspension(client, cast, ava):
    # when a shadow suspension is posted, then it is a 400 saying why, and nothing is saved
    client.force_login(cast["maria"])
    before = Grant.objects.count()
    refused = client.post(reverse("api:grant-list"), {
        "kind": "refund", "subject_user": "ava-bot", "effect": "forbid", "reason": "stop", "shadow": True},
        content_type="application/json")
    assert refused.status_code == 400 and "cannot be shadow" in refused.text
    assert Grant.objects.count() == before
