"""Webhook requests are signed in the Standard Webhooks format, checked here by an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import pkgutil
import time
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from authority import migrations
from authority.models import Period, WebhookEndpoint
from authority.services import decision_execute
from authority.standard_webhooks import secret_generate, verify
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind
from tests.jobs import run_jobs
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The spec, written out: v1, base64 of HMAC-SHA256 keyed with the decoded secret over id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivered_request(alice, retention, secret: str) -> dict:
    """Execute a refund and deliver it to a local receiver; return the request it got."""
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"), period=Period.MONTH)
    with Receiver() as receiver:
        WebhookEndpoint.objects.create(name="billing", url=receiver.url, secret=secret)
        decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                         amount="25.00", currency="EUR", rationale="double charge")
        run_jobs()
    (request,) = receiver.received
    return request


def test_a_delivery_carries_a_standard_webhooks_signature_that_an_independent_check_accepts(alice, retention):
    secret = secret_generate()
    request = delivered_request(alice, retention, secret)
    headers = request["headers"]
    # the three headers of the spec, and none of the old scheme
    assert headers["webhook-id"] and abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert not any(name.startswith("x-h2h") for name in headers)
    # the signature is exactly the HMAC the spec defines
    assert headers["webhook-signature"] == expected_signature(secret, headers["webhook-id"],
                                                              headers["webhook-timestamp"], request["body"])
    # and the receiver-side helper accepts it
    assert verify(secret=secret, headers=headers, body=request["body"])


def test_a_tampered_body_a_stale_timestamp_or_another_secret_is_rejected(alice, retention):
    secret = secret_generate()
    request = delivered_request(alice, retention, secret)
    headers, body = request["headers"], request["body"]
    sent = int(headers["webhook-timestamp"])
    assert verify(secret=secret, headers=headers, body=body)
    # a changed body
    assert not verify(secret=secret, headers=headers, body=body.replace(b"25", b"95"))
    # the same request replayed six minutes later, or stamped six minutes ahead
    assert not verify(secret=secret, headers=headers, body=body, now=sent + 6 * 60)
    assert not verify(secret=secret, headers=headers, body=body, now=sent - 6 * 60)
    assert verify(secret=secret, headers=headers, body=body, now=sent + 4 * 60)
    # another endpoint's secret, a changed id, a changed timestamp (re-signed body not possible)
    assert not verify(secret=secret_generate(), headers=headers, body=body)
    assert not verify(secret=secret, headers={**headers, "webhook-id": "999999"}, body=body)
    assert not verify(secret=secret, headers={**headers, "webhook-timestamp": str(sent + 1)}, body=body)
    assert not verify(secret=secret, headers={**headers, "webhook-signature": ""}, body=body)


def test_during_a_rotation_both_secrets_sign_and_a_receiver_with_either_accepts(alice, retention):
    new, old = secret_generate(), secret_generate()
    request = delivered_request(alice, retention, f"{new} {old}")
    headers = request["headers"]
    signatures = headers["webhook-signature"].split(" ")
    assert signatures == [expected_signature(key, headers["webhook-id"], headers["webhook-timestamp"],
                                             request["body"]) for key in (new, old)]
    assert verify(secret=old, headers=headers, body=request["body"])
    assert verify(secret=new, headers=headers, body=request["body"])


def test_a_new_endpoint_gets_a_generated_secret_and_the_admin_refuses_a_malformed_one(client):
    # a new endpoint's secret: whsec_ and 32 random bytes
    assert len(base64.b64decode(WebhookEndpoint().secret.removeprefix("whsec_"))) == 32
    assert WebhookEndpoint().secret != WebhookEndpoint().secret
    # the admin refuses a secret that is not whsec_<base64>, with a message, and saves nothing
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(reverse("admin:authority_webhookendpoint_add"), {
        "name": "Billing", "url": "https://billing.example.com/hooks", "secret": "s3cr3t-value",
        "topics": "[]", "active": "on"})
    assert response.status_code == 200 and "whsec_" in response.text
    assert not WebhookEndpoint.objects.exists()


def test_the_migration_keeps_an_old_secrets_key_bytes_in_the_new_form():
    # given an endpoint whose secret predates the format (its UTF-8 bytes were the HMAC key)
    WebhookEndpoint.objects.create(name="old", url="https://old.example.test/h", secret=secret_generate())
    WebhookEndpoint.objects.update(secret="an old shared secret")
    converted = secret_generate()
    WebhookEndpoint.objects.create(name="new", url="https://new.example.test/h", secret=converted)
    # when the data migration runs
    (name,) = [m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name.endswith("_webhook_jobs")]
    importlib.import_module(f"authority.migrations.{name}").forwards(apps, None)
    # then the old one is whsec_ + base64 of the same bytes, and a new-format secret is untouched
    old = WebhookEndpoint.objects.get(name="old")
    assert old.secret == "whsec_" + base64.b64encode(b"an old shared secret").decode()
    assert WebhookEndpoint.objects.get(name="new").secret == converted
