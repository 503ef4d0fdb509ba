"""Maker-checker for authority changes: rule 6 of DESIGN.md, and versioned grants, read as tests."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from guardian.shortcuts import assign_perm

from authority import policy
from authority.errors import AlreadyDecided, NotAllowed
from authority.models import Grant, GrantStatus, Period
from authority.services import (
    GrantTerms,
    decision_execute,
    grant_change,
    grant_confirm,
    grant_create,
    grant_end,
    grant_reject,
)
from h2h_core.models import AuditEvent, Case, Role
from tests.factories import UserFactory, kind, role

pytestmark = pytest.mark.django_db

BELOW_THRESHOLD = GrantTerms(per_case_limit=Decimal("500"), period_limit=Decimal("1000"), period=Period.MONTH,
                             currency="EUR")
ABOVE_THRESHOLD = GrantTerms(per_case_limit=Decimal("3000"), period_limit=Decimal("10000"), period=Period.MONTH,
                             currency="EUR")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def mona(retention):
    """A second manager of Retention: the checker."""
    user = UserFactory(username="mona", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, retention)
    return user


@pytest.fixture
def refund():
    return kind("refund")


def state():
    return {
        "grants": list(Grant.objects.order_by("pk").values_list(
            "pk", "status", "superseded_at", "confirmed_by_id", "per_case_limit", "period_limit")),
        # A refusal is itself audited (outcome denied); nothing that succeeded may appear.
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


def may_refund(agent, case, amount):
    case = Case.objects.select_related("customer").get(pk=case.pk)
    return policy.evaluate(agent=agent, kind=kind("refund"), amount=amount, currency="EUR", case=case)


def create_for(actor, *, terms=BELOW_THRESHOLD, reason="onboarding", **subject):
    return grant_create(actor=actor, kind=kind("refund"), terms=terms, reason=reason, **subject)


# --- nobody grants to themselves ---------------------------------------------------------------


@pytest.mark.parametrize("subject", ["person", "team", "role"])
def test_nobody_grants_authority_to_themselves(maria, retention, subject):
    # given maria is a manager of Retention, and (as its team lead) a member of it
    retention.members.add(maria)
    subjects = {"person": {"user": maria}, "team": {"team": retention}, "role": {"role": role(Role.MANAGER)}}
    before = state()
    # when she grants refunds to herself, to her own team, or to her own role
    with pytest.raises(NotAllowed) as refused:
        create_for(maria, **subjects[subject])
    # then she is refused, and nothing changed
    assert "Nobody changes their own authority" in refused.value.message
    assert state() == before


def test_nobody_grants_to_a_team_they_belong_to(retention):
    # given a superuser (who may otherwise grant anywhere) is a member of Retention
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    retention.members.add(root)
    before = state()
    # when they grant refunds to Retention
    with pytest.raises(NotAllowed) as refused:
        create_for(root, team=retention)
    # then they are refused, and nothing changed
    assert "Nobody changes their own authority" in refused.value.message
    assert state() == before


def test_not_even_a_superuser_grants_to_themselves():
    # given a superuser
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    before = state()
    # when they grant refunds to themselves
    with pytest.raises(NotAllowed):
        create_for(root, user=root)
    # then nothing changed
    assert state() == before


def test_an_agent_cannot_grant_authority(alice, retention):
    # given alice is an agent, and carol another agent of her team
    carol = UserFactory(username="carol", roles=[Role.AGENT])
    retention.members.add(carol)
    before = state()
    # when alice grants refunds to carol
    with pytest.raises(NotAllowed) as refused:
        create_for(alice, user=carol)
    # then only managers may
    assert "Only managers" in refused.value.message
    assert state() == before


def test_a_manager_cannot_grant_outside_her_teams(maria):
    # given dave is not in any team maria manages
    dave = UserFactory(username="dave", roles=[Role.AGENT])
    before = state()
    # when maria grants refunds to dave
    with pytest.raises(NotAllowed):
        create_for(maria, user=dave)
    # then nothing changed
    assert state() == before


# --- below and above the confirmation threshold ------------------------------------------------


def test_a_grant_within_the_threshold_is_in_force_at_once(alice, maria, case_owned_by_alice):
    # given refunds need a second manager above 2,000
    assert kind("refund").confirmation_threshold == Decimal("2000")
    # when maria gives alice 500 per case
    grant = create_for(maria, user=alice)
    # then it is active at once, and alice may refund
    assert grant.status == GrantStatus.ACTIVE and grant.lineage == grant.pk and grant.version == 1
    assert may_refund(alice, case_owned_by_alice, "400").allowed
    # and the creation is audited, with the version as its after
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.object_id) == ("grant.created", maria.pk, str(grant.pk))
    assert event.before is None and event.after["per_case_limit"] == "500" and event.after["status"] == "active"


def test_a_grant_above_the_threshold_waits_for_a_second_manager(alice, maria, mona, case_owned_by_alice):
    # given maria gives alice 3,000 per case (above the 2,000 threshold)
    grant = create_for(maria, user=alice, terms=ABOVE_THRESHOLD)
    # then it is pending and not in force
    assert grant.status == GrantStatus.PENDING
    assert may_refund(alice, case_owned_by_alice, "2500").allowed is False
    pending_event = AuditEvent.objects.get()
    assert pending_event.action == "grant.pending" and pending_event.after["status"] == "pending"
    # when mona confirms it
    confirmed = grant_confirm(actor=mona, grant=grant)
    # then it is in force, confirmed by mona
    assert confirmed.status == GrantStatus.ACTIVE and confirmed.confirmed_by_id == mona.pk
    assert may_refund(alice, case_owned_by_alice, "2500").allowed
    event = AuditEvent.objects.get(action="grant.confirmed")
    assert event.actor_id == mona.pk and event.after["status"] == "active"
    assert event.after["confirmed_by_id"] == mona.pk


def test_a_grant_without_any_limit_waits_for_a_second_manager(alice, maria):
    # when maria gives alice unlimited refunds
    grant = create_for(maria, user=alice, terms=GrantTerms(currency="EUR"))
    # then it is pending
    assert grant.status == GrantStatus.PENDING


def test_the_maker_cannot_confirm_their_own_grant(alice, maria, case_owned_by_alice):
    # given maria made a grant above the threshold
    grant = create_for(maria, user=alice, terms=ABOVE_THRESHOLD)
    before = state()
    # when she confirms it herself
    with pytest.raises(NotAllowed) as refused:
        grant_confirm(actor=maria, grant=grant)
    # then she is refused, and it stays pending and out of force
    assert "second manager" in refused.value.message
    assert state() == before
    assert may_refund(alice, case_owned_by_alice, "2500").allowed is False


def test_the_subject_cannot_confirm_a_grant_for_themselves(mona):
    # given a superuser proposed 3,000 per case for mona, a manager
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    grant = create_for(root, user=mona, terms=ABOVE_THRESHOLD)
    before = state()
    # when mona confirms her own raise
    with pytest.raises(NotAllowed) as refused:
        grant_confirm(actor=mona, grant=grant)
    # then she is refused
    assert "Nobody changes their own authority" in refused.value.message
    assert state() == before


def test_an_agent_cannot_confirm(alice, maria, retention):
    # given maria proposed a raise for carol
    carol = UserFactory(username="carol", roles=[Role.AGENT])
    retention.members.add(carol)
    grant = create_for(maria, user=carol, terms=ABOVE_THRESHOLD)
    before = state()
    # when alice (an agent) confirms it
    with pytest.raises(NotAllowed):
        grant_confirm(actor=alice, grant=grant)
    # then nothing changed
    assert state() == before


# --- changes write new versions ----------------------------------------------------------------


def test_a_change_writes_a_new_version_and_supersedes_the_old_one(alice, maria, case_owned_by_alice):
    # given alice may refund 500 per case
    v1 = create_for(maria, user=alice)
    # when maria raises it to 800 (within the threshold)
    v2 = grant_change(actor=maria, grant=v1, reason="more experience",
                      terms=GrantTerms(per_case_limit=Decimal("800"), period_limit=Decimal("2000"),
                                       period=Period.MONTH, currency="EUR"))
    # then a new version of the same lineage is in force, and the old one is closed, not edited
    v1.refresh_from_db()
    assert (v2.lineage, v2.version, v2.supersedes_id) == (v1.lineage, 2, v1.pk)
    assert v2.status == GrantStatus.ACTIVE
    assert v1.superseded_at is not None and v1.per_case_limit == Decimal("500")
    assert may_refund(alice, case_owned_by_alice, "700").deciding_grant_id == v2.pk
    # and the change is audited with the old version as before and the new one as after
    event = AuditEvent.objects.get(action="grant.changed")
    assert event.before["id"] == v1.pk and event.before["per_case_limit"] == "500"
    assert event.after["id"] == v2.pk and event.after["per_case_limit"] == "800" and event.after["version"] == 2
    # and a decision is tied to the exact version that allowed it
    decision = decision_execute(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="700",
                                currency="EUR", rationale="double charge")
    assert decision.grant_id == v2.pk


def test_a_change_above_the_threshold_keeps_the_old_version_in_force_until_confirmed(alice, maria, mona,
                                                                                     case_owned_by_alice):
    # given alice may refund 500 per case
    v1 = create_for(maria, user=alice)
    # when maria raises it to 3,000
    v2 = grant_change(actor=maria, grant=v1, terms=ABOVE_THRESHOLD, reason="key accounts")
    # then the new version is pending, and the old one still decides
    assert v2.status == GrantStatus.PENDING and v2.version == 2 and v2.lineage == v1.lineage
    v1.refresh_from_db()
    assert v1.superseded_at is None
    assert may_refund(alice, case_owned_by_alice, "400").deciding_grant_id == v1.pk
    assert may_refund(alice, case_owned_by_alice, "2500").allowed is False
    pending = AuditEvent.objects.get(action="grant.change_pending")
    assert pending.before["id"] == v1.pk and pending.after["id"] == v2.pk and pending.after["status"] == "pending"
    # when mona confirms
    grant_confirm(actor=mona, grant=v2)
    # then the new version decides and the old one is closed
    v1.refresh_from_db()
    assert v1.superseded_at is not None
    assert may_refund(alice, case_owned_by_alice, "2500").deciding_grant_id == v2.pk
    confirmed = AuditEvent.objects.get(action="grant.confirmed")
    assert confirmed.before["id"] == v1.pk and confirmed.after["id"] == v2.pk
    assert confirmed.after["status"] == "active"


def test_rejecting_a_change_keeps_the_old_version_in_force(alice, maria, mona, case_owned_by_alice):
    # given maria proposed raising alice's 500 to 3,000
    v1 = create_for(maria, user=alice)
    v2 = grant_change(actor=maria, grant=v1, terms=ABOVE_THRESHOLD, reason="key accounts")
    # when mona rejects it
    rejected = grant_reject(actor=mona, grant=v2, reason="not before her training")
    # then the proposal is rejected, and the old version is still in force, unchanged
    assert rejected.status == GrantStatus.REJECTED
    v1.refresh_from_db()
    assert v1.superseded_at is None and v1.status == GrantStatus.ACTIVE
    assert may_refund(alice, case_owned_by_alice, "400").deciding_grant_id == v1.pk
    assert may_refund(alice, case_owned_by_alice, "2500").allowed is False
    # and the rejection is audited with before and after and the reason
    event = AuditEvent.objects.get(action="grant.rejected")
    assert event.actor_id == mona.pk and event.reason == "not before her training"
    assert event.before["status"] == "pending" and event.after["status"] == "rejected"
    # and a rejected proposal cannot be confirmed afterwards
    with pytest.raises(AlreadyDecided):
        grant_confirm(actor=mona, grant=v2)


def test_rejecting_needs_a_reason(alice, maria, mona):
    # given maria proposed a raise for alice
    grant = create_for(maria, user=alice, terms=ABOVE_THRESHOLD)
    before = state()
    # when mona rejects it without a reason
    with pytest.raises(ValidationError):
        grant_reject(actor=mona, grant=grant, reason="  ")
    # then nothing changed
    assert state() == before


def test_the_maker_cannot_reject_their_own_proposal_either(alice, maria):
    # given maria proposed a raise for alice
    grant = create_for(maria, user=alice, terms=ABOVE_THRESHOLD)
    before = state()
    # when she rejects it herself
    with pytest.raises(NotAllowed):
        grant_reject(actor=maria, grant=grant, reason="changed my mind")
    # then nothing changed
    assert state() == before


def test_only_the_current_version_can_be_changed(alice, maria):
    # given alice's grant was changed once
    v1 = create_for(maria, user=alice)
    grant_change(actor=maria, grant=v1, terms=BELOW_THRESHOLD, reason="same again")
    before = state()
    # when maria changes the old version again
    with pytest.raises(AlreadyDecided):
        grant_change(actor=maria, grant=v1, terms=BELOW_THRESHOLD, reason="stale form")
    # then nothing changed
    assert state() == before


def test_one_pending_change_at_a_time(alice, maria):
    # given a change to alice's grant is waiting for confirmation
    v1 = create_for(maria, user=alice)
    grant_change(actor=maria, grant=v1, terms=ABOVE_THRESHOLD, reason="key accounts")
    before = state()
    # when maria proposes another
    with pytest.raises(AlreadyDecided):
        grant_change(actor=maria, grant=v1, terms=BELOW_THRESHOLD, reason="something else")
    # then nothing changed
    assert state() == before


def test_nobody_changes_their_own_grant(mona):
    # given a superuser gave mona authority
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    grant = create_for(root, user=mona)
    before = state()
    # when mona changes or ends it herself
    with pytest.raises(NotAllowed):
        grant_change(actor=mona, grant=grant, terms=ABOVE_THRESHOLD, reason="I deserve it")
    with pytest.raises(NotAllowed):
        grant_end(actor=mona, grant=grant, reason="I am done")
    # then nothing changed
    assert state() == before


def test_ending_a_grant_closes_it_and_is_audited(alice, maria, case_owned_by_alice):
    # given alice may refund 500 per case
    grant = create_for(maria, user=alice)
    # when maria ends it
    grant_end(actor=maria, grant=grant, reason="moved to another team")
    # then alice may no longer refund, and the end is audited with before and after
    assert may_refund(alice, case_owned_by_alice, "10").allowed is False
    event = AuditEvent.objects.get(action="grant.ended")
    assert event.before["superseded_at"] is None and event.after["superseded_at"] is not None


def test_a_manager_sets_authority_for_the_team_she_manages_but_does_not_belong_to(maria, retention, alice):
    # given maria manages Retention without being a member of it
    # when she grants the team refunds
    grant = create_for(maria, team=retention)
    # then the grant exists and alice, a member, may use it
    assert grant.subject_team == retention and grant.status == GrantStatus.ACTIVE


def test_any_other_manager_may_confirm_a_pending_change(maria, retention, refund):
    # given maria proposes a team grant above the threshold and mike manages another team
    mike = UserFactory(username="mike", roles=[Role.MANAGER])
    pending = grant_create(actor=maria, kind=refund, team=retention, reason="peak season",
                           terms=GrantTerms(per_case_limit=Decimal("5000"), currency="EUR"))
    assert pending.status == GrantStatus.PENDING
    # when mike confirms it
    confirmed = grant_confirm(actor=mike, grant=pending)
    # then it is in force
    assert confirmed.status == GrantStatus.ACTIVE and confirmed.confirmed_by == mike


def test_a_refused_grant_change_is_itself_audited(maria):
    # when maria tries to grant herself refunds
    with pytest.raises(NotAllowed):
        create_for(maria, user=maria)
    # then the refusal is on the record, as a denial
    event = AuditEvent.objects.get()
    assert (event.action, event.outcome, event.actor_username) == ("grant.create.refused", "denied", "maria")
