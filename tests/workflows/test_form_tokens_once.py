"""The one-time token of web forms: a submission still running, a POST without a token, the purge."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from edges.models import FormToken
from edges.web import once
from h2h_core.models import AuditEvent
from tests.factories import GrantFactory
from workflows import services

from .conftest import open_case


@pytest.fixture
def alices_case(alice, maria, customer):
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    return services.case_flow_claim(actor=alice, case=open_case(alice, customer))


@pytest.mark.django_db
def test_a_second_submission_while_the_first_still_runs_acts_not(client, alice, alices_case, monkeypatch):
    # given a token the first submission claimed and has not finished with
    client.force_login(alice)
    monkeypatch.setattr(once, "WAIT_FOR_FIRST_SECONDS", 0)
    token = once.new_token()
    FormToken.objects.create(token=token, user=alice, created_at=timezone.now())
    before = AuditEvent.objects.count()
    # when the second arrives
    response = client.post(reverse("cases:resolve", args=[alices_case.pk]),
                           {"summary": "Refunded", "once_token": token},
                           HTTP_REFERER="http://testserver" + reverse("cases:detail", args=[alices_case.pk]))
    # then it is sent back to the page it came from, and nothing changed
    assert response.status_code == 302 and response["Location"].endswith(reverse("cases:detail",
                                                                                  args=[alices_case.pk]))
    assert "already submitted and is still being processed" in client.get(response["Location"]).text
    alices_case.refresh_from_db()
    assert alices_case.is_open and AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_post_without_a_token_runs_as_before(client, alice, alices_case):
    client.force_login(alice)
    response = client.post(reverse("cases:resolve", args=[alices_case.pk]), {"summary": "Refunded"})
    alices_case.refresh_from_db()
    assert response.status_code == 302 and not alices_case.is_open and not FormToken.objects.exists()


@pytest.mark.django_db
def test_the_purge_deletes_form_tokens_older_than_a_week(alice):
    # given a token claimed ten days ago and one an hour ago
    now = timezone.now()
    FormToken.objects.create(token=once.new_token(), user=alice, created_at=now - timedelta(days=10))
    recent = FormToken.objects.create(token=once.new_token(), user=alice, created_at=now - timedelta(hours=1))
    # when the daily purge runs
    call_command("purge_idempotency_keys")
    # then only the recent one is kept
    assert list(FormToken.objects.values_list("pk", flat=True)) == [recent.pk]
