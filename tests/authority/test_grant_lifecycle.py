"""The grant lifecycle after a checker's answer: a rejected change leaves the grant changeable, an ended
grant takes its pending change with it, and nothing brings ended authority back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from authority import selectors
from authority.errors import AlreadyDecided
from authority.models import Grant
from authority.services import GrantTerms, grant_change, grant_confirm, grant_create, grant_end, grant_reject
from h2h_core.audit import audit_seal
from h2h_core.models import AuditEvent
from tests.factories import GrantFactory, kind, team_manager

pytestmark = pytest.mark.django_db

JUST = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def zoe(retention):
    """A second manager of Retention: the checker."""
    return team_manager(retention, "zoe")


def refund(per_case: str) -> GrantTerms:
    return GrantTerms(per_case_limit=Decimal(per_case), currency="EUR")


def in_force(agent, at) -> list[int]:
    return [grant.pk for grant in selectors.grants_in_force(at=at, user=agent)]


def state():
    return {
        "grants": list(Grant.objects.order_by("pk").values_list("pk", "status", "superseded_at", "confirmed_by_id")),
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


# --- a rejected change leaves the grant changeable ------------------------------------------------


def test_after_a_rejected_change_the_grant_can_be_changed_again_and_confirmed(alice, maria, zoe):
    # given maria gave alice 500 per case, proposed 5,000, and zoe rejected that
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund("500"), reason="start", user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=refund("5000"), reason="big raise")
    v2 = grant_reject(actor=zoe, grant=v2, reason="too much at once")
    # when maria proposes 3,000 instead, and zoe confirms it
    v3 = grant_change(actor=maria, grant=v1, terms=refund("3000"), reason="a smaller raise")
    assert (v3.status, v3.version, v3.lineage, v3.supersedes_id) == ("pending", 3, v1.lineage, v1.pk)
    v3 = grant_confirm(actor=zoe, grant=v3)
    # then version 3 is in force from its confirmation, version 1 until then, version 2 never
    v1.refresh_from_db()
    assert v3.status == "active" and v1.superseded_at == v3.confirmed_at
    assert in_force(alice, v1.valid_from) == [v1.pk]
    assert in_force(alice, v2.created_at) == [v1.pk]
    assert in_force(alice, v2.confirmed_at) == [v1.pk]
    assert in_force(alice, v3.created_at) == [v1.pk]
    assert in_force(alice, v3.confirmed_at - JUST) == [v1.pk]
    assert in_force(alice, v3.confirmed_at) == [v3.pk]
    assert in_force(alice, v3.confirmed_at + timedelta(days=400)) == [v3.pk]
    # and the current version can be changed in turn
    v4 = grant_change(actor=maria, grant=v3, terms=refund("800"), reason="back to normal")
    assert (v4.status, v4.version, v4.supersedes_id) == ("active", 4, v3.pk)


def test_after_a_rejection_still_only_one_change_waits_at_a_time(alice, maria, zoe):
    # given a rejected change of alice's grant, then a new pending one
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund("500"), reason="start", user=alice)
    grant_reject(actor=zoe, grant=grant_change(actor=maria, grant=v1, terms=refund("5000"), reason="raise"),
                 reason="no")
    grant_change(actor=maria, grant=v1, terms=refund("3000"), reason="smaller raise")
    before = state()
    # when maria proposes yet another change
    with pytest.raises(AlreadyDecided) as refused:
        grant_change(actor=maria, grant=v1, terms=refund("4000"), reason="or this")
    # then she is refused, and nothing changed
    assert "already waiting" in refused.value.message
    assert state() == before


def test_the_database_allows_rejected_siblings_but_only_one_live_successor(alice):
    # given version 1 of alice's grant with a rejected and a pending change
    v1 = GrantFactory(subject_user=alice)
    GrantFactory(subject_user=alice, lineage=v1.lineage, version=2, supersedes=v1, status="rejected")
    GrantFactory(subject_user=alice, lineage=v1.lineage, version=3, supersedes=v1, status="pending")
    # when a second live successor is written past the services
    # then the database refuses it
    with pytest.raises(IntegrityError), transaction.atomic():
        GrantFactory(subject_user=alice, lineage=v1.lineage, version=4, supersedes=v1, status="active")
    assert Grant.objects.filter(supersedes=v1).count() == 2


# --- ending a grant voids its pending change -------------------------------------------------------


def test_ending_a_grant_voids_its_pending_change_and_records_why(alice, maria, zoe):
    # given alice's grant with a change to 5,000 waiting for confirmation
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund("500"), reason="start", user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=refund("5000"), reason="big raise")
    # when maria ends the grant
    v1 = grant_end(actor=maria, grant=v1, reason="left the team")
    audit_seal()  # when the sealer has run (PostgreSQL; SQLite links at once)
    # then the change is voided in the same step, and the audit log says why
    v2.refresh_from_db()
    assert v2.status == "voided"
    voided = AuditEvent.objects.get(action="grant.voided")
    assert (voided.object_type, voided.object_id, voided.actor_username) == ("grant", str(v2.pk), "maria")
    assert voided.reason == "the grant was ended"
    assert voided.before["status"] == "pending" and voided.after["status"] == "voided"
    ended = AuditEvent.objects.get(action="grant.ended")
    assert ended.seq < voided.seq and ended.reason == "left the team"
    # and confirming it is refused: the ended authority stays ended
    before = state()
    with pytest.raises(AlreadyDecided):
        grant_confirm(actor=zoe, grant=v2)
    assert state() == before
    assert in_force(alice, timezone.now()) == []
    assert in_force(alice, v1.superseded_at - JUST) == [v1.pk]


def test_a_change_whose_grant_has_ended_is_never_confirmed(alice, maria, zoe):
    # given a change of alice's grant left pending when the grant ended (as before ending voided it)
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund("500"), reason="start", user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=refund("5000"), reason="big raise")
    Grant.objects.filter(pk=v1.pk).update(superseded_at=timezone.now())
    before = state()
    # when zoe confirms the change
    with pytest.raises(AlreadyDecided) as refused:
        grant_confirm(actor=zoe, grant=v2)
    # then she is told why, nothing changed, and alice has no refund authority
    assert "has ended" in refused.value.message
    assert state() == before
    assert in_force(alice, timezone.now()) == []
    # and the refusal is on the record
    assert AuditEvent.objects.filter(action="grant.confirm.refused", object_id=str(v2.pk)).exists()


def test_ending_a_grant_after_a_rejected_change_voids_nothing_else(alice, maria, zoe):
    # given a rejected change of alice's grant
    v1 = grant_create(actor=maria, kind=kind("refund"), terms=refund("500"), reason="start", user=alice)
    v2 = grant_reject(actor=zoe, grant=grant_change(actor=maria, grant=v1, terms=refund("5000"), reason="r"),
                      reason="no")
    # when maria ends the grant
    grant_end(actor=maria, grant=v1, reason="left the team")
    # then the rejected change stays rejected, and nothing was voided
    v2.refresh_from_db()
    assert v2.status == "rejected"
    assert not AuditEvent.objects.filter(action="grant.voided").exists()
