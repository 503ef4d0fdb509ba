"""The admin shows every model and lets nobody write around the services."""

import pytest
from django.contrib import admin
from django.urls import reverse

from h2h_core.models import Case
from tests.factories import GrantFactory, UserFactory

SECRET = "whsec_" + "c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5"  # base64 of 30 key bytes


@pytest.mark.django_db
def test_every_domain_model_has_a_read_only_admin_page(client, case_owned_by_alice, alice):
    # given a superuser and some data
    GrantFactory(subject_user=alice)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    domain = [m for m in admin.site._registry if m._meta.app_label in ("h2h_core", "authority")]
    assert len(domain) >= 19
    for model in domain:
        opts = model._meta
        # when the superuser opens the changelist
        listing = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        # then it renders, and adding is impossible
        assert listing.status_code == 200, opts.label
        if opts.model_name != "webhookendpoint":  # integrators' endpoints are configured here
            assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403, opts.label


@pytest.mark.django_db
def test_admin_cannot_delete_a_case(client, case_owned_by_alice):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = reverse("admin:h2h_core_case_delete", args=[case_owned_by_alice.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Case.objects.filter(pk=case_owned_by_alice.pk).exists()


@pytest.mark.django_db
def test_adding_a_webhook_endpoint_in_the_admin_is_audited_without_the_secret(client):
    from authority.models import WebhookEndpoint
    from h2h_core.models import AuditEvent

    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(reverse("admin:authority_webhookendpoint_add"), {
        "name": "Billing", "url": "https://billing.example.com/hooks", "secret": SECRET,
        "topics": "[]", "active": "on"})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    event = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert event.object_id == str(endpoint.pk) and SECRET not in str(event.after)


@pytest.mark.django_db
def test_only_administrators_configure_webhook_endpoints():
    from authority.models import WebhookEndpoint
    from authority.services.integration import webhook_endpoint_save
    from h2h_core.errors import NotAllowed

    manager = UserFactory(username="not-root")
    with pytest.raises(NotAllowed):
        webhook_endpoint_save(actor=manager, endpoint=WebhookEndpoint(name="x", url="https://x.example.com/h",
                                                                      secret="s"), secret_changed=True)
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_the_admin_confirms_a_pending_grant_through_the_service(client, alice):
    from authority.models import GrantStatus
    from h2h_core.models import AuditEvent

    # given a pending grant proposed by someone else
    maker = UserFactory(username="maker", is_staff=True, is_superuser=True)
    pending = GrantFactory(subject_user=alice, status=GrantStatus.PENDING, granted_by=maker)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when the admin confirms it with the action
    client.post(reverse("admin:authority_grant_changelist"),
                {"action": "confirm_pending", "_selected_action": [pending.pk]})
    # then it is in force, confirmed by the admin, and audited
    pending.refresh_from_db()
    assert pending.status == GrantStatus.ACTIVE and pending.confirmed_by == root
    assert AuditEvent.objects.filter(action="grant.confirmed", object_id=str(pending.pk)).exists()
