"""The case flow: intake and triage, the ownership task in the team queue, handover, resolution,
follow-up, close and reopen. Every step changes the case and its process in one transaction."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from viewflow.workflow.status import PROCESS

from h2h_core.errors import CaseNotOpen, NotAllowed, NotCaseOwner
from h2h_core.models import AuditEvent, CaseEvent, CaseStatus, Role
from tests.factories import CaseFactory, UserFactory
from workflows import services
from workflows.models import CaseProcess

from .conftest import open_case, task_states


def audit_actions(case) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="case", object_id=str(case.pk)).order_by("seq")
                .values_list("action", flat=True))


@pytest.mark.django_db
def test_intake_opens_the_case_and_queues_the_ownership_task_for_its_team(alice, customer):
    # when a complaint comes in through the workflow's intake
    case = open_case(alice, customer, category="complaint")
    # then case_open triaged it (stakes, due times, team) and its process waits in the Retention queue
    assert case.status == CaseStatus.QUEUED and case.team.slug == "retention"
    process = services.current_process(case)
    assert process.case_id == case.pk and process.status == PROCESS.NEW
    assert process.data["first_response_due"] == case.first_response_due.isoformat()
    states = task_states(case)
    assert states["intake"][0] == "DONE" and states["triage"][0] == "DONE"
    assert states["own"] == ("NEW", None)
    assert states["own__timeout"][0] == "SCHEDULED" and states["own__timeout_2"][0] == "SCHEDULED"
    assert audit_actions(case) == ["case.opened"]


@pytest.mark.django_db
def test_claim_assigns_the_ownership_task_to_the_claimer(alice, queued_case):
    # when alice claims the queued case
    services.case_flow_claim(actor=alice, case=queued_case)
    # then she owns the case and its ownership task, and the claim is on the record
    queued_case.refresh_from_db()
    assert queued_case.owner == alice and queued_case.status == CaseStatus.OWNED
    assert task_states(queued_case)["own"] == ("ASSIGNED", alice.pk)
    assert audit_actions(queued_case) == ["case.opened", "case.claimed"]


@pytest.mark.django_db
def test_an_agent_outside_the_team_cannot_claim_and_nothing_changes(queued_case):
    # given zed, an agent of no team of this case
    zed = UserFactory(username="zed", roles=[Role.AGENT])
    events, audit = CaseEvent.objects.count(), AuditEvent.objects.exclude(outcome="denied").count()
    # when he claims it
    with pytest.raises(NotAllowed):
        services.case_flow_claim(actor=zed, case=queued_case)
    # then the case and its task are still in the queue, and nothing was written
    queued_case.refresh_from_db()
    assert queued_case.owner is None and queued_case.status == CaseStatus.QUEUED
    assert task_states(queued_case)["own"] == ("NEW", None)
    assert (CaseEvent.objects.count(), AuditEvent.objects.exclude(outcome="denied").count()) == (events, audit)


@pytest.mark.django_db
def test_a_claimed_case_cannot_be_claimed_again(alice, bob, queued_case):
    # given alice claimed the case
    services.case_flow_claim(actor=alice, case=queued_case)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when bob claims it too
    with pytest.raises(CaseNotOpen, match="no longer in the queue"):
        services.case_flow_claim(actor=bob, case=queued_case)
    # then alice keeps it
    queued_case.refresh_from_db()
    assert queued_case.owner == alice and task_states(queued_case)["own"] == ("ASSIGNED", alice.pk)
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_handover_reassigns_the_task_with_the_note_on_the_record(alice, bob, queued_case):
    # given alice owns the case
    services.case_flow_claim(actor=alice, case=queued_case)
    # when she hands it over to bob with a note
    services.case_flow_handover(actor=alice, case=queued_case, to_user=bob, note="Prefers e-mail; refund promised")
    # then bob owns the case and the task, and the note is on the timeline and in the audit log
    queued_case.refresh_from_db()
    assert queued_case.owner == bob and task_states(queued_case)["own"] == ("ASSIGNED", bob.pk)
    assert queued_case.events.filter(kind=CaseEvent.Kind.HANDOVER, text="Prefers e-mail; refund promised").exists()
    handover = AuditEvent.objects.get(action="case.handed_over")
    assert handover.reason == "Prefers e-mail; refund promised" and handover.after["owner_id"] == bob.pk


@pytest.mark.django_db
def test_handover_without_a_note_is_refused_and_nothing_changes(alice, bob, queued_case):
    services.case_flow_claim(actor=alice, case=queued_case)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when alice hands over without a note
    with pytest.raises(ValidationError):
        services.case_flow_handover(actor=alice, case=queued_case, to_user=bob, note="  ")
    # then she still owns the case and the task
    queued_case.refresh_from_db()
    assert queued_case.owner == alice and task_states(queued_case)["own"] == ("ASSIGNED", alice.pk)
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_only_the_owner_or_a_team_manager_hands_over(alice, bob, maria, queued_case):
    services.case_flow_claim(actor=alice, case=queued_case)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when bob, a teammate who does not own it, tries to take it over
    with pytest.raises(NotCaseOwner):
        services.case_flow_handover(actor=bob, case=queued_case, to_user=bob, note="mine now")
    # then nothing moved
    queued_case.refresh_from_db()
    assert queued_case.owner == alice and AuditEvent.objects.exclude(outcome="denied").count() == audit
    # and maria, the team's manager, may move it
    services.case_flow_handover(actor=maria, case=queued_case, to_user=bob, note="alice is away")
    assert task_states(queued_case)["own"] == ("ASSIGNED", bob.pk)


@pytest.mark.django_db
def test_resolve_completes_ownership_and_starts_the_follow_up_timer(alice, queued_case, settings):
    # given a follow-up period of 5 days, and alice owns the case
    settings.H2H_FOLLOW_UP_DAYS = 5
    services.case_flow_claim(actor=alice, case=queued_case)
    # when she resolves it
    case = services.case_flow_resolve(actor=alice, case=queued_case, summary="Refunded the double charge")
    # then the ownership task is done, its SLA timers are cancelled and the follow-up waits 5 days
    states = task_states(case)
    assert states["own"] == ("DONE", alice.pk)
    assert states["own__timeout"][0] == "CANCELED" and states["own__timeout_2"][0] == "CANCELED"
    assert states["follow_up"][0] == "NEW"
    timer = CaseProcess.objects.get(case=case).task_set.get(flow_task_type="TIMER", status="SCHEDULED")
    assert (timer.scheduled - case.resolved_at).days == 5


@pytest.mark.django_db
def test_only_the_owner_resolves(alice, bob, queued_case):
    services.case_flow_claim(actor=alice, case=queued_case)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    with pytest.raises(NotCaseOwner):
        services.case_flow_resolve(actor=bob, case=queued_case, summary="done")
    queued_case.refresh_from_db()
    assert queued_case.status == CaseStatus.OWNED and task_states(queued_case)["own"] == ("ASSIGNED", alice.pk)
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_the_timer_closes_the_case_when_the_follow_up_period_ends(alice, queued_case, settings):
    # given a resolved case
    services.case_flow_claim(actor=alice, case=queued_case)
    services.case_flow_resolve(actor=alice, case=queued_case, summary="Refunded")
    # when the timers run before the follow-up period (7 days) is over
    call_command("workflow_timers")
    # then it stays resolved
    queued_case.refresh_from_db()
    assert queued_case.status == CaseStatus.RESOLVED
    # and when the period is set to 0 days for the next resolution, the timers close it
    settings.H2H_FOLLOW_UP_DAYS = 0
    services.case_flow_reopen(actor=alice, case=queued_case, reason="Charged again")
    services.case_flow_resolve(actor=alice, case=queued_case, summary="Refunded both")
    call_command("workflow_timers")
    queued_case.refresh_from_db()
    assert queued_case.status == CaseStatus.CLOSED
    assert services.current_process(queued_case) is None
    assert AuditEvent.objects.filter(action="case.closed", actor_id=None).count() == 1


@pytest.mark.django_db
def test_reopening_during_follow_up_gives_the_task_back_to_the_owner(alice, queued_case):
    services.case_flow_claim(actor=alice, case=queued_case)
    services.case_flow_resolve(actor=alice, case=queued_case, summary="Refunded")
    # when alice reopens the case
    services.case_flow_reopen(actor=alice, case=queued_case, reason="The refund bounced")
    # then the same run goes back to ownership, assigned to her, and the reopen is recorded
    queued_case.refresh_from_db()
    assert queued_case.status == CaseStatus.OWNED
    states = task_states(queued_case)
    assert states["follow_up"][0] == "DONE" and states["follow_up__timeout"][0] == "CANCELED"
    assert states["own"] == ("ASSIGNED", alice.pk)
    assert CaseProcess.objects.filter(case=queued_case).count() == 1
    assert AuditEvent.objects.get(action="case.reopened").reason == "The refund bounced"


@pytest.mark.django_db
def test_reopening_a_closed_case_starts_a_new_run_for_the_last_owner(alice, queued_case, settings):
    settings.H2H_FOLLOW_UP_DAYS = 0
    services.case_flow_claim(actor=alice, case=queued_case)
    services.case_flow_resolve(actor=alice, case=queued_case, summary="Refunded")
    call_command("workflow_timers")
    # when the closed case is reopened
    services.case_flow_reopen(actor=alice, case=queued_case, reason="Customer wrote back")
    # then a second run holds the ownership task, assigned to alice
    runs = list(CaseProcess.objects.filter(case=queued_case).order_by("pk"))
    assert [run.status for run in runs] == [PROCESS.DONE, PROCESS.NEW]
    assert runs[1].task_set.get(flow_task_type="HUMAN").owner == alice


@pytest.mark.django_db
def test_a_step_is_one_transaction_when_the_flow_cannot_advance_nothing_is_written(alice, queued_case, monkeypatch):
    # given the process cannot be advanced (a fault in the workflow layer)
    def broken(process, case, **how):
        raise RuntimeError("flow fault")

    monkeypatch.setattr("workflows.steps.cases.catch_up", broken)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when alice claims the case
    with pytest.raises(RuntimeError):
        services.case_flow_claim(actor=alice, case=queued_case)
    # then the claim was rolled back with it
    queued_case.refresh_from_db()
    assert queued_case.owner is None and queued_case.status == CaseStatus.QUEUED
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_a_step_nested_by_accident_in_another_transaction_is_an_error(alice, queued_case):
    # when a workflow step is called inside a transaction someone else opened
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        services.case_flow_claim(actor=alice, case=queued_case)
    # then it refused to run there, and nothing changed
    queued_case.refresh_from_db()
    assert queued_case.owner is None and queued_case.status == CaseStatus.QUEUED


@pytest.mark.django_db
def test_a_step_refused_by_its_case_service_is_recorded_once_and_changes_nothing(alice, queued_case):
    # given alice owns the case, which is still open
    services.case_flow_claim(actor=alice, case=queued_case)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when she reopens it through the step (the case service inside it refuses)
    with pytest.raises(CaseNotOpen):
        services.case_flow_reopen(actor=alice, case=queued_case, reason="Charged again")
    # then the refusal is on the record once: the service left it to the step, its outermost caller
    assert AuditEvent.objects.filter(action="case.reopen.refused", object_id=str(queued_case.pk)).count() == 1
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit
    assert task_states(queued_case)["own"] == ("ASSIGNED", alice.pk)


@pytest.mark.django_db
def test_a_case_opened_outside_the_workflow_is_adopted_by_its_first_step(alice, retention):
    # given a queued case that reached the database without a process (an import, the seed)
    case = CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED)
    assert services.current_process(case) is None
    # when alice claims it
    services.case_flow_claim(actor=alice, case=case)
    # then it has a run, marked adopted, with the ownership task assigned to her
    process = services.current_process(case)
    assert process.data["adopted"] is True
    assert task_states(case)["own"] == ("ASSIGNED", alice.pk)


@pytest.mark.django_db
def test_the_timer_run_adopts_open_work_once(alice, retention):
    # given an owned and a resolved case without processes, and a closed one
    owned = CaseFactory(team=retention, owner=alice, status=CaseStatus.OWNED)
    resolved = CaseFactory(team=retention, owner=alice, status=CaseStatus.RESOLVED)
    closed = CaseFactory(team=retention, owner=alice, status=CaseStatus.CLOSED)
    # when the timers run, twice
    call_command("workflow_timers")
    call_command("workflow_timers")
    # then each open case got exactly one run, at its state; the closed one none
    assert task_states(owned)["own"] == ("ASSIGNED", alice.pk)
    assert task_states(resolved)["follow_up"][0] == "NEW"
    assert CaseProcess.objects.filter(case__in=[owned, resolved]).count() == 2
    assert not CaseProcess.objects.filter(case=closed).exists()


@pytest.mark.django_db
def test_the_ownership_task_permissions_follow_the_policy(alice, bob, maria, queued_case):
    from workflows.flows import CaseFlow

    outsider = UserFactory(username="zed", roles=[Role.AGENT])
    task = CaseProcess.objects.get(case=queued_case).task_set.get(flow_task_type="HUMAN")
    # in the queue: agents of the team may claim, others may not
    assert CaseFlow.own.can_assign(alice, task) and not CaseFlow.own.can_assign(outsider, task)
    assert not CaseFlow.own.can_assign(maria, task)  # a manager is not an agent
    services.case_flow_claim(actor=alice, case=queued_case)
    task.refresh_from_db()
    # owned: the owner executes; owner and team manager may reassign; a teammate may not
    assert CaseFlow.own.can_execute(alice, task) and not CaseFlow.own.can_execute(bob, task)
    assert CaseFlow.own.can_unassign(maria, task) and not CaseFlow.own.can_unassign(bob, task)


@pytest.mark.django_db
def test_intake_refuses_bad_input_and_starts_nothing(alice, customer):
    with pytest.raises(ValidationError):
        services.case_flow_open(actor=alice, customer=customer, subject=" ", category="complaint",
                                amount_at_stake=Decimal("10"), currency="EUR")
    assert not CaseProcess.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_processes_are_read_only_in_the_admin(client, queued_case):
    # given a superuser and a case with its process
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    process = services.current_process(queued_case)
    # then the lists and the process render, and nobody adds or deletes one there
    for model in ("caseprocess", "requestprocess"):
        assert client.get(f"/admin/workflows/{model}/").status_code == 200
        assert client.get(f"/admin/workflows/{model}/add/").status_code == 403
    assert client.get(f"/admin/workflows/caseprocess/{process.pk}/change/").status_code == 200
    assert client.post(f"/admin/workflows/caseprocess/{process.pk}/delete/", {"post": "yes"}).status_code == 403
    assert CaseProcess.objects.filter(pk=process.pk).exists()
