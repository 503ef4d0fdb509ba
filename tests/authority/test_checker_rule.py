"""Who may check a pending grant change: one predicate (`may_check`, `may_confirm`) and its queryset form
(`pending_changes_checkable_by`) always agree."""

from decimal import Decimal

import pytest
from django.utils import timezone

from authority import policy
from authority.models import Grant, GrantStatus
from h2h_core.models import Role
from tests.factories import GrantFactory, TeamFactory, UserFactory, role, team_manager

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(alice, maria, retention):
    onboarding = TeamFactory(name="Onboarding", slug="onboarding")
    mona = team_manager(retention, "mona")
    retention.members.add(mona)  # a team lead who also works Retention's cases
    return {
        "alice": alice,
        "maria": maria,
        "mona": mona,
        "mike": team_manager(onboarding, "mike"),
        "root": UserFactory(username="root", is_superuser=True, is_staff=True),
        "audrey": UserFactory(username="audrey", roles=[Role.AUDITOR]),
        "onboarding": onboarding,
    }


@pytest.fixture
def changes(people, retention):
    """Pending changes of every kind of subject, by several makers, and some that are not pending."""
    maria, mike, root = people["maria"], people["mike"], people["root"]
    pending = {"status": GrantStatus.PENDING, "per_case_limit": Decimal("3000")}
    return {
        "alice-by-maria": GrantFactory(subject_user=people["alice"], granted_by=maria, **pending),
        "retention-by-maria": GrantFactory(subject_team=retention, granted_by=maria, **pending),
        "onboarding-by-mike": GrantFactory(subject_team=people["onboarding"], granted_by=mike, **pending),
        "agents-by-mike": GrantFactory(subject_role=role(Role.AGENT), granted_by=mike, **pending),
        "managers-by-root": GrantFactory(subject_role=role(Role.MANAGER), granted_by=root, **pending),
        "mike-by-root": GrantFactory(subject_user=mike, granted_by=root, **pending),
        "alice-by-nobody": GrantFactory(subject_user=people["alice"], granted_by=None, **pending),
        "active": GrantFactory(subject_user=people["alice"], granted_by=maria),
        "rejected": GrantFactory(subject_user=people["alice"], granted_by=maria, status=GrantStatus.REJECTED,
                                 confirmed_at=timezone.now()),
    }


@pytest.mark.parametrize("who", ["alice", "maria", "mona", "mike", "root", "audrey"])
def test_the_checkable_list_is_exactly_what_the_predicate_allows(people, changes, who):
    # given pending changes of people, teams and roles by several makers
    checker = people[who]
    # when the list of changes the person may check is read, and the predicate asked of each change
    listed = set(policy.pending_changes_checkable_by(checker).values_list("pk", flat=True))
    allowed = {grant.pk for grant in Grant.objects.all() if policy.may_check(checker, grant)}
    # then both answers are the same
    assert listed == allowed


@pytest.mark.parametrize(
    ("who", "change", "reason"),
    [
        ("maria", "alice-by-maria", "The maker of a change cannot also confirm it"),
        ("mona", "retention-by-maria", "Nobody changes their own authority"),
        ("mike", "managers-by-root", "Nobody changes their own authority"),
        ("mike", "mike-by-root", "Nobody changes their own authority"),
        ("alice", "agents-by-mike", "Nobody changes their own authority"),
        ("audrey", "alice-by-maria", "Only managers"),
        ("mike", "rejected", "was rejected already"),
    ],
)
def test_the_predicate_says_why_a_change_is_not_yours_to_check(people, changes, who, change, reason):
    permission = policy.may_confirm(people[who], changes[change])
    assert not permission and reason in permission.reason


@pytest.mark.parametrize(("who", "change"), [("mike", "alice-by-maria"), ("mike", "retention-by-maria"),
                                             ("maria", "onboarding-by-mike"), ("root", "alice-by-maria"),
                                             ("maria", "alice-by-nobody")])
def test_any_other_manager_may_confirm(people, changes, who, change):
    assert policy.may_confirm(people[who], changes[change])


def test_a_change_of_an_ended_grant_may_be_rejected_but_not_confirmed(people, alice, maria):
    # given a pending change whose grant has ended
    v1 = GrantFactory(subject_user=alice, superseded_at=timezone.now())
    v2 = GrantFactory(subject_user=alice, lineage=v1.lineage, version=2, supersedes=v1, granted_by=maria,
                      status=GrantStatus.PENDING)
    # then mike may reject it, and may not confirm it
    assert policy.may_check(people["mike"], v2)
    refused = policy.may_confirm(people["mike"], v2)
    assert not refused and "has ended" in refused.reason
