"""A form submitted several times at once (a double click reaching two app servers) executes once, and
every submission is shown the same result. PostgreSQL only: it needs real concurrent connections."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from h2h_core.models import AuditEvent, Case

from .test_concurrency import run_together

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency tests need PostgreSQL (set DATABASE_URL to a PostgreSQL server)",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_an_intake_form_sent_three_times_at_once_opens_one_case_and_all_see_it(alice, maria, customer):
    # given alice's intake form, with its one-time token
    browser = Client()
    browser.force_login(alice)
    token = re.search(r'name="once_token" value="([^"]+)"', browser.get(reverse("cases:new")).text).group(1)
    form = {"customer": customer.pk, "subject": "Charged twice", "category": "complaint", "amount_at_stake": "90",
            "currency": "EUR", "description": "", "once_token": token}

    def submit():
        client = Client()
        client.cookies = browser.cookies  # the same browser session: three clicks on one button
        return client.post(reverse("cases:new"), form)

    # when the form arrives three times at once
    results = run_together([submit, submit, submit])
    # then one case was opened, audited once, and every submission is sent to it
    assert [status for status, _ in results] == ["ok"] * 3, results
    case = Case.objects.get(customer=customer)
    assert {response["Location"] for _, response in results} == {reverse("cases:detail", args=[case.pk])}
    assert AuditEvent.objects.filter(action="case.opened").count() == 1
