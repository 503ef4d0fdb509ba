"""Shared fixtures: a clean organisation cache, the database vendor, and the demo cast."""

import pytest
from django.db import connection

from h2h_core.models import Role
from h2h_core.organisation import forget_organisation

from .factories import CaseFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_organisation():
    forget_organisation()
    yield
    forget_organisation()


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def retention(db):
    return TeamFactory(name="Retention", slug="retention")


@pytest.fixture
def alice(retention):
    user = UserFactory(username="alice", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def maria(retention):
    from guardian.shortcuts import assign_perm

    user = UserFactory(username="maria", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, retention)
    return user


@pytest.fixture
def case_owned_by_alice(alice, retention):
    return CaseFactory(owner=alice, team=retention)
