"""The demo cast for the console tests: three teams, their agents, two managers, an auditor, an admin."""

from decimal import Decimal

import pytest
from guardian.shortcuts import assign_perm

from authority.models import Effect, Period
from h2h_core.models import AuditEvent, Role
from tests.factories import GrantFactory, TeamFactory, UserFactory, kind, role


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashing "h2h-demo" properly for every test user is most of a test's time; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def member(team, username, *roles):
    user = UserFactory(username=username, roles=list(roles) or [Role.AGENT])
    team.members.add(user)
    return user


def manager_of(username, *teams, roles=(Role.MANAGER,)):
    user = UserFactory(username=username, roles=list(roles))
    for team in teams:
        assign_perm("h2h_core.manage_team", user, team)
    return user


@pytest.fixture
def billing(db):
    return TeamFactory(name="Billing", slug="billing")


@pytest.fixture
def onboarding(db):
    return TeamFactory(name="Onboarding", slug="onboarding")


@pytest.fixture
def bob(retention):
    return member(retention, "bob", Role.AGENT, Role.SENIOR_AGENT)


@pytest.fixture
def carol(billing):
    return member(billing, "carol")


@pytest.fixture
def dave(billing):
    return member(billing, "dave")


@pytest.fixture
def erin(onboarding):
    return member(onboarding, "erin")


@pytest.fixture
def maria(retention, billing):
    """Manager of Retention and Billing (overrides the root fixture, which manages Retention only)."""
    return manager_of("maria", retention, billing)


@pytest.fixture
def mike(onboarding):
    return manager_of("mike", onboarding)


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


@pytest.fixture
def admin(db):
    return UserFactory(username="admin", is_superuser=True, is_staff=True)


@pytest.fixture
def cast(alice, bob, carol, dave, erin, maria, mike, audrey, admin, retention, billing, onboarding):
    """Everyone, with authority much like the demo's: role baselines, a team grant, personal grants."""
    GrantFactory(subject_user=None, subject_role=role(Role.AGENT), per_case_limit=Decimal("250"),
                 period_limit=Decimal("1000"))
    GrantFactory(subject_user=None, subject_team=retention, kind=kind("goodwill_credit"),
                 per_case_limit=Decimal("200"), period_limit=Decimal("800"))
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"),
                 period=Period.WEEK)
    GrantFactory(subject_user=mike, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"),
                 period=Period.WEEK)
    GrantFactory(subject_user=dave, kind=kind("goodwill_credit"), effect=Effect.FORBID, per_case_limit=None,
                 period_limit=None, period=Period.NONE, currency="", reason="under review")
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin, "maria": maria, "mike": mike,
            "audrey": audrey, "admin": admin, "retention": retention, "billing": billing, "onboarding": onboarding}


def audit_count() -> int:
    return AuditEvent.objects.exclude(outcome="denied").count()
