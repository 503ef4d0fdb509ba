"""Presence on the case page: who else has the case open, reported by the heartbeat every 3 s.

State lives in the database (one CasePresence row per case and person), so every app server
answers the same; a row older than 15 s counts as gone.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from h2h_core.case_views import case_view_version
from h2h_core.models import AuditEvent, CasePresence
from h2h_core.presence import case_presence_beat, case_presence_others, case_presence_purge
from tests.factories import UserFactory
from workflows import services

from .conftest import open_case


@pytest.fixture
def case(alice, maria, customer):
    return open_case(alice, customer)


def beat(client, case, **data):
    return client.post(reverse("cases:presence", args=[case.pk]), data)


@pytest.mark.django_db
def test_each_sees_the_other_within_one_heartbeat(client, alice, maria, bob, case):
    # given alice has the case open
    client.force_login(alice)
    assert beat(client, case).json()["others"] == []
    # when maria opens it too, and bob starts typing a decision on it
    client.force_login(maria)
    maria_sees = beat(client, case).json()["others"]
    client.force_login(bob)
    beat(client, case, editing="decision")
    # then maria's first heartbeat already names alice, and alice's next names both
    assert [person["text"] for person in maria_sees] == ["alice is viewing this case"]
    client.force_login(alice)
    others = beat(client, case).json()["others"]
    assert [person["text"] for person in others] == ["maria is viewing this case", "bob is editing a decision"]
    assert others[1]["username"] == "bob" and others[1]["editing"] == "decision" and others[1]["since"]
    # and a heartbeat decides nothing: it is not on the audit record
    assert not AuditEvent.objects.filter(action__icontains="presence").exists()


@pytest.mark.django_db
def test_the_case_page_names_who_is_here_and_loads_the_heartbeat(client, alice, maria, case):
    case_presence_beat(actor=maria, case=case)
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[case.pk])).text
    assert 'aria-live="polite">maria is viewing this case</p>' in page
    assert "h2h/presence.js" in page and f'data-presence-url="{reverse("cases:presence", args=[case.pk])}"' in page


@pytest.mark.django_db
def test_someone_who_may_not_see_the_case_gets_404_and_leaves_no_trace(client, carol, case):
    # carol is an agent of Billing; the case is in Retention's queue
    client.force_login(carol)
    response = beat(client, case)
    assert response.status_code == 404
    assert not CasePresence.objects.exists()


@pytest.mark.django_db
def test_the_heartbeat_is_a_logged_in_post(client, alice, case):
    assert beat(client, case).status_code == 302  # to the login page
    client.force_login(alice)
    assert client.get(reverse("cases:presence", args=[case.pk])).status_code == 405
    assert not CasePresence.objects.exists()


@pytest.mark.django_db
def test_the_heartbeat_needs_the_csrf_token(alice, case):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("cases:presence", args=[case.pk])).status_code == 403
    assert not CasePresence.objects.exists()


@pytest.mark.django_db
def test_someone_not_seen_for_15_seconds_is_gone(alice, maria, case):
    now = timezone.now()
    case_presence_beat(actor=maria, case=case, now=now - timedelta(seconds=16))
    assert case_presence_others(case=case, user=alice, now=now) == []
    case_presence_beat(actor=maria, case=case, now=now - timedelta(seconds=14))
    assert [p.username for p in case_presence_others(case=case, user=alice, now=now)] == ["maria"]


@pytest.mark.django_db
def test_since_is_kept_while_present_and_starts_again_after_leaving(alice, maria, case):
    start = timezone.now() - timedelta(minutes=5)
    case_presence_beat(actor=maria, case=case, now=start)
    case_presence_beat(actor=maria, case=case, now=start + timedelta(seconds=3))
    assert CasePresence.objects.get().since == start
    back = start + timedelta(minutes=2)
    case_presence_beat(actor=maria, case=case, now=back)
    row = CasePresence.objects.get()
    assert row.since == back and row.last_seen == back and CasePresence.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_editing_value_counts_as_viewing(client, alice, maria, case):
    client.force_login(maria)
    beat(client, case, editing="<script>")
    assert CasePresence.objects.get().editing == ""


@pytest.mark.django_db
def test_the_heartbeat_says_when_the_case_changed_since_the_page_was_opened(client, alice, bob, case):
    client.force_login(alice)
    seen = case_view_version(case)
    body = beat(client, case, seen_version=seen).json()
    assert body["version"] == seen and body["changed"] == ""
    services.case_flow_claim(actor=bob, case=case)
    body = beat(client, case, seen_version=seen).json()
    assert body["version"] != seen
    assert body["changed"].startswith("Since you opened this case: the owner changed from nobody to bob")


@pytest.mark.django_db
def test_the_heartbeat_costs_the_same_however_many_are_present(client, alice, retention, case,
                                                                django_assert_max_num_queries):
    client.force_login(alice)
    beat(client, case)  # session and user loaded once, as on every later beat

    def others_present(count):
        for n in range(count):
            user = UserFactory(username=f"agent{count}-{n}")
            retention.members.add(user)
            case_presence_beat(actor=user, case=case)

    # session, user, roles; the visible case with its version; the upsert; who else is here
    others_present(1)
    with django_assert_max_num_queries(6):
        assert len(beat(client, case).json()["others"]) == 1
    others_present(10)
    with django_assert_max_num_queries(6):
        assert len(beat(client, case).json()["others"]) == 11


@pytest.mark.django_db
def test_the_purge_deletes_only_rows_nobody_refreshed_for_a_minute(alice, maria, case):
    now = timezone.now()
    case_presence_beat(actor=maria, case=case, now=now - timedelta(minutes=2))
    case_presence_beat(actor=alice, case=case, now=now - timedelta(seconds=30))
    assert case_presence_purge(now=now) == {"deleted": 1}
    assert list(CasePresence.objects.values_list("user__username", flat=True)) == ["alice"]
