"""Who may open a case: one rule, asked by the intake service, the web page and the API alike."""

import pytest
from django.contrib.auth.models import Permission

from h2h_core.access import may_open_cases
from h2h_core.errors import NotAllowed
from h2h_core.models import AuditEvent, Case, Role
from h2h_core.services import case_open
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def intake(actor, customer):
    return case_open(actor=actor, customer=customer, subject="Charged twice for March", category="billing_error",
                     amount_at_stake="89.90", currency="EUR")


def test_an_auditor_may_not_open_a_case_through_the_service_and_nothing_is_written():
    # given an auditor, who reads everything and changes nothing
    audrey = UserFactory(username="audrey", roles=[Role.AUDITOR])
    customer = CustomerFactory()
    # when she calls the intake service directly (as any edge would)
    with pytest.raises(NotAllowed) as refused:
        intake(audrey, customer)
    # then it is refused for the rule's reason, and no case and no successful event exist
    assert refused.value.message == may_open_cases(audrey).reason
    assert not Case.objects.exists()
    assert not AuditEvent.objects.exclude(outcome="denied").filter(action__startswith="case.").exists()


def test_agents_managers_and_integration_accounts_may_open_cases():
    customer = CustomerFactory()
    integration = UserFactory(username="crm")
    integration.user_permissions.add(Permission.objects.get(codename="add_case", content_type__app_label="h2h_core"))
    for actor in (UserFactory(username="ann", roles=[Role.AGENT]), UserFactory(username="max", roles=[Role.MANAGER]),
                  integration, None):
        assert intake(actor, customer).pk


def test_the_web_intake_page_refuses_an_auditor_with_the_rules_reason(client):
    # given an auditor signed in
    audrey = UserFactory(username="audrey", roles=[Role.AUDITOR])
    client.force_login(audrey)
    # when she opens the intake page
    response = client.get("/cases/new/")
    # then she is refused with the reason the service would give
    assert response.status_code == 403
    assert may_open_cases(audrey).reason in response.content.decode()


def test_an_opening_with_a_key_is_repeated_once_by_a_person_and_by_the_system():
    # given a person and the system (no user) who each open a case with the same idempotency key
    customer = CustomerFactory()
    ann = UserFactory(username="ann", roles=[Role.AGENT])
    for actor in (ann, None):
        first = case_open(actor=actor, customer=customer, subject="Charged twice", category="billing_error",
                          amount_at_stake="89.90", currency="EUR", idempotency_key="import:42")
        # when each sends the same opening again
        again = case_open(actor=actor, customer=customer, subject="Charged twice", category="billing_error",
                          amount_at_stake="89.90", currency="EUR", idempotency_key="import:42")
        # then each gets back the case their first opening made, and no other
        assert again.pk == first.pk
    assert Case.objects.count() == 2
