"""The admin shows every model and lets nobody write around the services."""

import pytest
from django.contrib import admin
from django.urls import reverse

from h2h_core.models import Case
from tests.factories import GrantFactory, UserFactory


@pytest.mark.django_db
def test_every_domain_model_has_a_read_only_admin_page(client, case_owned_by_alice, alice):
    # given a superuser and some data
    GrantFactory(subject_user=alice)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    domain = [m for m in admin.site._registry if m._meta.app_label in ("h2h_core", "authority")]
    assert len(domain) >= 14
    for model in domain:
        opts = model._meta
        # when the superuser opens the changelist
        listing = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        # then it renders, and adding is impossible
        assert listing.status_code == 200, opts.label
        assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403, opts.label


@pytest.mark.django_db
def test_admin_cannot_delete_a_case(client, case_owned_by_alice):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = reverse("admin:h2h_core_case_delete", args=[case_owned_by_alice.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Case.objects.filter(pk=case_owned_by_alice.pk).exists()
