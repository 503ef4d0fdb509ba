"""Fixtures of the workflow tests: a Retention team with two agents and a manager, and a queued case."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from viewflow.workflow.models import Task

from h2h_core.models import Role
from tests.factories import CustomerFactory, UserFactory
from workflows import services


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def customer(db):
    return CustomerFactory(name="Acme Corp", email="billing@acme.example")


def open_case(actor, customer, *, hours_ago: float = 0, category: str = "complaint", amount="250") -> object:
    """Open a case through the workflow's intake, optionally as if it had come in hours ago."""
    opened_at = timezone.now() - timedelta(hours=hours_ago) if hours_ago else None
    return services.case_flow_open(actor=actor, customer=customer, subject="Charged twice", category=category,
                                   amount_at_stake=Decimal(amount), currency="EUR", opened_at=opened_at)


@pytest.fixture
def queued_case(alice, maria, customer):
    return open_case(alice, customer)


def task_states(case) -> dict[str, tuple[str, int | None]]:
    """Map node name to (status, owner id) for every task of the case's processes (latest per node)."""
    states = {}
    for task in Task.objects.filter(process__caseprocess__case=case).order_by("pk"):
        states[task.flow_task.name] = (task.status, task.owner_id)
    return states
