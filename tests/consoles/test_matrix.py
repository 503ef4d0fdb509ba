"""The manager console's authority matrix: read as the rules of who may change whose authority."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authority import policy, selectors
from authority.models import Effect, Grant, GrantStatus
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, GrantFactory, kind, loaded_case, role

from .conftest import member

pytestmark = pytest.mark.django_db


def grants_state():
    return (list(Grant.objects.order_by("pk").values_list("pk", "status", "superseded_at", "per_case_limit",
                                                          "period_limit", "confirmed_by_id")),
            AuditEvent.objects.exclude(outcome="denied").count())


def terms(**overrides):
    data = {"effect": "permit", "per_case_limit": "500", "period_limit": "1500", "period": "month",
            "currency": "EUR", "reason": "more complaints this quarter"}
    data.update(overrides)
    return data


def alice_refund(alice):
    return Grant.objects.get(subject_user=alice, kind__code="refund", superseded_at__isnull=True)


def test_the_matrix_shows_roles_my_teams_and_their_people_with_limits_scope_and_validity(client, cast):
    # given maria manages Retention and Billing, and carol has a temporary raise
    GrantFactory(subject_user=cast["carol"], per_case_limit=Decimal("1200"), period_limit=Decimal("2000"),
                 valid_until=timezone.now() + timedelta(days=10))
    client.force_login(cast["maria"])
    # when she opens the matrix
    page = client.get(reverse("authority:matrix"))
    # then she sees the roles, her teams and their people, with their terms, and not Onboarding
    assert page.status_code == 200
    text = page.text
    for expected in ("Agent", "Retention", "Billing", "alice", "bob", "carol", "dave",
                     "500.00 EUR per case · 1,500.00 EUR per month", "Suspended", "until "):
        assert expected in text, expected
    assert "Onboarding" not in text and "erin" not in text


def test_my_own_lines_offer_no_edit_controls(client, cast):
    # given maria holds the Manager role and manages Retention
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:matrix")).text
    manager_role = role(Role.MANAGER)
    # then the Manager role (hers) is marked as her own line, without any control
    for key in (f"role-{manager_role.pk}",):
        line = re.search(rf'<tr id="line-{key}" class="own">(.*?)</tr>', page, re.S)
        assert line, key
        assert "grants/new" not in line.group(1) and "/edit/" not in line.group(1)
    # and other lines have them
    assert f"subject=role-{role(Role.AGENT).pk}&amp;kind=refund" in page
    assert f"subject=user-{cast['alice'].pk}&amp;kind=refund&amp;purpose=temporary" in page


def test_changing_a_grant_shows_the_difference_first_then_writes_a_new_version(client, cast):
    alice = cast["alice"]
    current = alice_refund(alice)
    client.force_login(cast["maria"])
    url = reverse("authority:grant_edit", args=[current.pk])
    assert "500" in client.get(url).text
    before = grants_state()
    # when maria proposes 700 per case
    preview = client.post(url, {**terms(per_case_limit="700"), "step": "preview"})
    # then she sees the difference, and nothing is saved yet
    assert preview.status_code == 200
    assert re.search(r'<tr class="changed"><th scope="row">Per case</th><td>500.00 EUR</td><td>700.00 EUR</td>',
                     preview.text)
    assert "Takes effect on saving" in preview.text
    assert grants_state() == before
    # when she saves
    saved = client.post(url, {**terms(per_case_limit="700"), "step": "save"})
    # then a version 2 is in force and version 1 is closed
    assert saved.status_code == 302
    new = alice_refund(alice)
    assert (new.version, new.per_case_limit, new.supersedes_id, new.status) == (2, Decimal("700"), current.pk,
                                                                             GrantStatus.ACTIVE)
    current.refresh_from_db()
    assert current.superseded_at is not None
    assert AuditEvent.objects.filter(action="grant.changed", object_id=str(new.pk)).exists()


def test_going_back_from_the_preview_keeps_what_was_typed(client, cast):
    current = alice_refund(cast["alice"])
    client.force_login(cast["maria"])
    page = client.post(reverse("authority:grant_edit", args=[current.pk]), {**terms(per_case_limit="650"),
                                                                          "step": "edit"})
    assert page.status_code == 200 and 'value="650"' in page.text
    assert alice_refund(cast["alice"]).pk == current.pk


def test_a_raise_above_the_threshold_waits_and_a_second_manager_confirms_it(client, cast):
    # given the Agent role may refund 250 per case and 1,000 a month
    agent_role = role(Role.AGENT)
    baseline = Grant.objects.get(subject_role=agent_role, kind__code="refund")
    client.force_login(cast["maria"])
    # when maria raises the monthly cap to 2,500 (above the 2,000 confirmation threshold)
    url = reverse("authority:grant_edit", args=[baseline.pk])
    preview = client.post(url, {**terms(per_case_limit="250", period_limit="2500"), "step": "preview"})
    assert "Needs a second manager" in preview.text
    client.post(url, {**terms(per_case_limit="250", period_limit="2500"), "step": "save"})
    pending = Grant.objects.get(supersedes=baseline)
    # then it waits: the old version still decides, the matrix and the pending list say so
    assert pending.status == GrantStatus.PENDING
    assert "change to v2 waiting" in client.get(reverse("authority:matrix")).text
    her_view = client.get(reverse("authority:pending")).text
    assert "Your change" in her_view and reverse("authority:confirm", args=[pending.pk]) not in her_view
    # when she tries to confirm it herself anyway
    client.post(reverse("authority:confirm", args=[pending.pk]))
    pending.refresh_from_db()
    assert pending.status == GrantStatus.PENDING
    # when mike, another manager, confirms it
    client.force_login(cast["mike"])
    his_view = client.get(reverse("authority:pending")).text
    assert "1,000.00 EUR" in his_view and "2,500.00 EUR" in his_view
    confirmed = client.post(reverse("authority:confirm", args=[pending.pk]), follow=True)
    # then version 2 is in force, confirmed by mike
    assert "it is in force now" in confirmed.text
    pending.refresh_from_db()
    baseline.refresh_from_db()
    assert pending.status == GrantStatus.ACTIVE and pending.confirmed_by == cast["mike"]
    assert baseline.superseded_at is not None


def test_a_second_manager_can_reject_a_pending_change_with_a_reason(client, cast):
    baseline = Grant.objects.get(subject_role=role(Role.AGENT), kind__code="refund")
    client.force_login(cast["maria"])
    client.post(reverse("authority:grant_edit", args=[baseline.pk]),
                {**terms(per_case_limit="3000"), "step": "save"})
    pending = Grant.objects.get(supersedes=baseline)
    client.force_login(cast["mike"])
    before = grants_state()
    client.post(reverse("authority:reject_grant", args=[pending.pk]), {"note": ""})
    assert grants_state() == before
    client.post(reverse("authority:reject_grant", args=[pending.pk]), {"note": "too generous"})
    pending.refresh_from_db()
    assert pending.status == GrantStatus.REJECTED
    assert Grant.objects.get(pk=baseline.pk).superseded_at is None


def test_a_temporary_raise_shows_its_end_and_expires_by_itself(client, cast):
    alice = cast["alice"]
    client.force_login(cast["maria"])
    form = client.get(reverse("authority:grant_new"), {"subject": f"user-{alice.pk}", "kind": "refund",
                                                       "purpose": "temporary"})
    assert "Raise refund temporarily" in form.text and 'name="valid_until" value="' in form.text
    ends = timezone.localtime(timezone.now() + timedelta(days=7), policy_tz()).strftime("%Y-%m-%dT%H:%M")
    saved = client.post(reverse("authority:grant_new"), {
        **terms(per_case_limit="1000", period_limit="2000", valid_until=ends, reason="backlog week"),
        "subject": f"user-{alice.pk}", "kind": "refund", "step": "save"})
    assert saved.status_code == 302
    raise_ = Grant.objects.get(subject_user=alice, per_case_limit=Decimal("1000"))
    assert raise_.valid_until is not None
    assert "until " in client.get(reverse("authority:matrix")).text
    case = loaded_case(CaseFactory(owner=alice, team=cast["retention"]))
    assert policy.evaluate(agent=alice, kind=kind("refund"), amount="900", currency="EUR", case=case).allowed
    later = raise_.valid_until + timedelta(minutes=1)
    assert raise_ not in selectors.grants_in_force(at=later, user=alice)
    assert not policy.evaluate(agent=alice, kind=kind("refund"), amount="900", currency="EUR", case=case,
                               at=later).allowed


def test_a_manager_suspends_and_lifts_a_persons_authority(client, cast):
    bob = cast["bob"]
    case = loaded_case(CaseFactory(owner=bob, team=cast["retention"]))
    client.force_login(cast["maria"])
    form = client.get(reverse("authority:grant_new"), {"subject": f"user-{bob.pk}", "kind": "refund",
                                                       "purpose": "suspend"})
    assert '<option value="forbid" selected>' in form.text
    client.post(reverse("authority:grant_new"), {
        **terms(effect="forbid", per_case_limit="", period_limit="", period="none", currency="",
                reason="refunds under review"), "subject": f"user-{bob.pk}", "kind": "refund", "step": "save"})
    suspension = Grant.objects.get(subject_user=bob, effect=Effect.FORBID)
    assert policy.evaluate(agent=bob, kind=kind("refund"), amount="10", currency="EUR", case=case).suspended
    client.post(reverse("authority:grant_end", args=[suspension.pk]), {"reason": "review done"})
    assert not policy.evaluate(agent=bob, kind=kind("refund"), amount="10", currency="EUR", case=case).suspended


def test_nobody_edits_their_own_line_even_by_hand(client, cast):
    # given maria holds the Manager role: its line counts as her own
    client.force_login(cast["maria"])
    before = grants_state()
    subject = f"role-{role(Role.MANAGER).pk}"
    # when she opens or posts a grant for it anyway
    opened = client.get(reverse("authority:grant_new"), {"subject": subject, "kind": "refund"}, follow=True)
    posted = client.post(reverse("authority:grant_new"), {**terms(), "subject": subject, "kind": "refund",
                                                          "step": "save"}, follow=True)
    # then she is told why, and nothing changed
    assert "Nobody changes their own authority" in opened.text
    assert "Nobody changes their own authority" in posted.text
    assert grants_state() == before


def test_nobody_edits_their_own_personal_grant(client, cast):
    own = Grant.objects.get(subject_user=cast["maria"])
    client.force_login(cast["maria"])
    before = grants_state()
    response = client.post(reverse("authority:grant_edit", args=[own.pk]), {**terms(per_case_limit="9000"),
                                                                           "step": "save"})
    assert response.status_code in (302, 404)
    assert grants_state() == before


def test_a_manager_cannot_reach_other_teams_authority(client, cast):
    # given erin is in Onboarding, which mike manages, not maria
    erin_grant = GrantFactory(subject_user=cast["erin"])
    client.force_login(cast["maria"])
    before = grants_state()
    # when maria tries to open, change, end or add to erin's authority
    responses = [
        client.get(reverse("authority:grant_edit", args=[erin_grant.pk])),
        client.post(reverse("authority:grant_edit", args=[erin_grant.pk]), {**terms(), "step": "save"}),
        client.post(reverse("authority:grant_end", args=[erin_grant.pk]), {"reason": "x"}),
        client.post(reverse("authority:grant_new"), {**terms(), "subject": f"user-{cast['erin'].pk}",
                                                     "kind": "refund", "step": "save"}),
        client.post(reverse("authority:grant_new"), {**terms(), "subject": f"team-{cast['onboarding'].pk}",
                                                     "kind": "refund", "step": "save"}),
    ]
    # then none of it exists for her, and nothing changed
    assert [r.status_code for r in responses] == [404] * 5
    assert grants_state() == before


def test_bad_terms_come_back_as_form_errors_and_save_nothing(client, cast):
    current = alice_refund(cast["alice"])
    client.force_login(cast["maria"])
    before = grants_state()
    for bad in ({"per_case_limit": "abc"}, {"per_case_limit": "-5"}, {"per_case_limit": "12.345"},
                {"period": "none", "period_limit": "100"}, {"reason": ""}, {"currency": ""}):
        page = client.post(reverse("authority:grant_edit", args=[current.pk]), {**terms(**bad), "step": "save"})
        assert page.status_code == 200, bad
        assert 'class="errorlist' in page.text, bad
    assert grants_state() == before


def test_the_matrix_costs_the_same_queries_for_two_or_ten_people(client, cast, django_assert_max_num_queries):
    client.force_login(cast["maria"])
    client.get(reverse("authority:matrix"))  # warm the per-process caches (organisation)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("authority:matrix"))
    for index in range(8):
        person = member(cast["retention"], f"agent{index}")
        GrantFactory(subject_user=person)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("authority:matrix"))
    assert "agent7" in page.text


def policy_tz():
    from h2h_core.organisation import current_organisation

    return current_organisation().tz


@pytest.mark.parametrize("who", ["maria", "mike", "admin"])
def test_the_lines_the_matrix_offers_are_exactly_those_the_services_accept(cast, who):
    # given the lines a manager's matrix shows, and the ones it marks as their own
    from authority.errors import NotAllowed
    from authority.policy.permissions import console_people, console_roles, console_teams, own_lines
    from authority.services.grants import require_may_grant

    actor = cast[who]
    if who == "admin":  # a superuser who belongs to a team: that team's line is theirs
        cast["retention"].members.add(actor)
    own = own_lines(actor)
    lines = ([("role", r) for r in console_roles()] + [("team", t) for t in console_teams(actor)]
             + [("user", p) for p in console_people(actor)])
    assert lines
    for kind_of_subject, subject in lines:
        # when the service is asked whether the actor may change that line
        try:
            require_may_grant(actor, **{kind_of_subject: subject})
            accepted = True
        except NotAllowed:
            accepted = False
        # then the matrix offers controls exactly where the service accepts
        assert accepted == (subject.pk not in own[kind_of_subject]), (who, kind_of_subject, str(subject))
