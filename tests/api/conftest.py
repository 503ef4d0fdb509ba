"""API fixtures: the cast, a token client per person, and grants the stories need."""

import pytest
from guardian.shortcuts import assign_perm

from h2h_core.models import Role
from tests.factories import CaseFactory, UserFactory

from .helpers import client_for, grant_refund


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hash the cast's passwords cheaply: PBKDF2's deliberate slowness costs a second per test here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def as_alice(alice):
    return client_for(alice)


@pytest.fixture
def as_maria(maria):
    return client_for(maria)


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def as_bob(bob):
    return client_for(bob)


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


@pytest.fixture
def as_audrey(audrey):
    return client_for(audrey)


@pytest.fixture
def mona(retention):
    """A second manager of Retention (the checker in maker-checker)."""
    user = UserFactory(username="mona", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, retention)
    return user


@pytest.fixture
def as_mona(mona):
    return client_for(mona)


@pytest.fixture
def billing_case(billing):
    """A case of another team: alice may not see it."""
    carol = UserFactory(username="carol", roles=[Role.AGENT])
    billing.members.add(carol)
    return CaseFactory(owner=carol, team=billing)


@pytest.fixture
def alice_may_refund_500(alice):
    return grant_refund(alice)


@pytest.fixture
def maria_may_refund_5000(maria):
    return grant_refund(maria, per_case="5000", per_month="20000")
