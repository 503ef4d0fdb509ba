"""Authority at any past instant can be shown: the versions in force then, and only those."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from authority import selectors
from authority.models import GrantStatus
from authority.services import GrantTerms, grant_change, grant_confirm, grant_create, grant_end, grant_reject
from h2h_core.models import Role
from tests.factories import GrantFactory, TeamFactory, UserFactory, kind, role, team_manager

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T3 = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
JUST = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def history(alice, retention):
    """Build a change history with explicit instants; return the versions by name.

    alice:     p1 [T0, T1) -> p2 [T1, T2) -> p3 [T2, ...), each new version keeping the original start
               (as an edit that only changes limits does); a goodwill grant g1 [T0, T3) then ended.
    retention: t1 a temporary raise valid [T0, T2); t2 written at T1 but pending, then confirmed at T2;
               t3 rejected.
    Agent:     r1 from T1 on.
    Noise:     grants of bob and of another team, in force throughout.
    """
    p1 = GrantFactory(subject_user=alice, valid_from=T0, superseded_at=T1, per_case_limit=Decimal("100"))
    p2 = GrantFactory(subject_user=alice, valid_from=T0, superseded_at=T2, per_case_limit=Decimal("200"),
                      lineage=p1.lineage, version=2, supersedes=p1, created_at=T1)
    p3 = GrantFactory(subject_user=alice, valid_from=T0, per_case_limit=Decimal("300"),
                      lineage=p1.lineage, version=3, supersedes=p2, created_at=T2)
    g1 = GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), valid_from=T0, superseded_at=T3)
    t1 = GrantFactory(subject_team=retention, valid_from=T0, valid_until=T2)
    t2 = GrantFactory(subject_team=retention, valid_from=T1, confirmed_at=T2, created_at=T1)
    t3 = GrantFactory(subject_team=retention, valid_from=T0, status=GrantStatus.REJECTED, confirmed_at=T1)
    r1 = GrantFactory(subject_role=role(Role.AGENT), valid_from=T1)
    GrantFactory(subject_user=UserFactory(username="bob"), valid_from=T0)
    GrantFactory(subject_team=TeamFactory(name="Sales", slug="sales"), valid_from=T0)
    return {"p1": p1, "p2": p2, "p3": p3, "g1": g1, "t1": t1, "t2": t2, "t3": t3, "r1": r1}


@pytest.mark.parametrize(
    ("at", "person", "team", "agent_role"),
    [
        pytest.param(T0 - JUST, [], [], [], id="before-anything"),
        pytest.param(T0, ["p1", "g1"], ["t1"], [], id="at-the-start"),
        pytest.param(T1 - JUST, ["p1", "g1"], ["t1"], [], id="just-before-the-first-change"),
        pytest.param(T1, ["p2", "g1"], ["t1"], ["r1"], id="at-the-first-change"),
        pytest.param(T2 - JUST, ["p2", "g1"], ["t1"], ["r1"], id="just-before-the-second-change"),
        pytest.param(T2, ["p3", "g1"], ["t2"], ["r1"], id="at-the-second-change-and-confirmation"),
        pytest.param(T3 - JUST, ["p3", "g1"], ["t2"], ["r1"], id="just-before-the-end"),
        pytest.param(T3, ["p3"], ["t2"], ["r1"], id="after-the-end"),
    ],
)
def test_grants_in_force_are_exactly_the_versions_of_that_instant(alice, retention, history, at, person, team,
                                                                  agent_role):
    # given a change history of alice's, her team's and her role's grants
    # when the grants in force at a past instant are read per subject
    mine = selectors.grants_in_force(at=at, user=alice)
    ours = selectors.grants_in_force(at=at, team=retention)
    agents = selectors.grants_in_force(at=at, role=role(Role.AGENT))
    # then exactly the versions in force then come back, old versions before a change, new ones from it
    names = {grant.pk: name for name, grant in history.items()}
    assert sorted(names[g.pk] for g in mine) == sorted(person)
    assert sorted(names[g.pk] for g in ours) == sorted(team)
    assert sorted(names[g.pk] for g in agents) == sorted(agent_role)


@pytest.fixture
def zoe(retention):
    return team_manager(retention, "zoe")


def refund_terms(per_case: str, **fields) -> GrantTerms:
    return GrantTerms(per_case_limit=Decimal(per_case), currency="EUR", **fields)


def in_force(alice, at):
    return [grant.pk for grant in selectors.grants_in_force(at=at, user=alice)]


@pytest.mark.parametrize(
    "keep_start",
    [pytest.param(False, id="new-version-starts-now"), pytest.param(True, id="new-version-keeps-the-old-start")],
)
def test_versions_written_by_the_services_never_overlap(alice, maria, keep_start):
    # given maria gave alice 500 per case, then changed it twice (optionally keeping the original start)
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund_terms("500"), reason="start", user=alice)
    start = {"valid_from": v1.valid_from} if keep_start else {}
    v2 = grant_change(actor=maria, grant=v1, terms=refund_terms("800", **start), reason="raise")
    v3 = grant_change(actor=maria, grant=v2, terms=refund_terms("600", **start), reason="lower")
    v1.refresh_from_db()
    v2.refresh_from_db()
    first_change, second_change = v1.superseded_at, v2.superseded_at
    # when the grants in force around each change are read
    # then each instant shows exactly one version: the old one before the change, the new one from it
    assert in_force(alice, v1.valid_from) == [v1.pk]
    assert in_force(alice, first_change - JUST) == [v1.pk]
    assert in_force(alice, first_change) == [v2.pk]
    assert in_force(alice, second_change - JUST) == [v2.pk]
    assert in_force(alice, second_change) == [v3.pk]
    assert in_force(alice, second_change + timedelta(days=365)) == [v3.pk]


def test_a_change_waiting_for_confirmation_takes_over_when_confirmed(alice, maria, zoe):
    # given alice's 500, and maria's change to 5,000 (above the threshold: it waits for a second manager)
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund_terms("500"), reason="start", user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=refund_terms("5000"), reason="big raise")
    assert v2.status == GrantStatus.PENDING
    # when zoe confirms it
    v2 = grant_confirm(actor=zoe, grant=v2)
    # then v1 was in force until the confirmation and v2 from it, never both
    confirmed = v2.confirmed_at
    assert in_force(alice, confirmed - JUST) == [v1.pk]
    assert in_force(alice, confirmed) == [v2.pk]


def test_a_rejected_change_is_never_in_force_and_an_ended_grant_stops(alice, maria, zoe):
    # given maria's rejected change of alice's grant, and then the grant ended
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund_terms("500"), reason="start", user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=refund_terms("5000"), reason="big raise")
    v2 = grant_reject(actor=zoe, grant=v2, reason="too much")
    v1 = grant_end(actor=maria, grant=v1, reason="left the team")
    # when the grants in force are read around the end
    # then only v1 was ever in force, until it ended
    assert in_force(alice, v2.confirmed_at) == [v1.pk]
    assert in_force(alice, v1.superseded_at - JUST) == [v1.pk]
    assert in_force(alice, v1.superseded_at) == []
