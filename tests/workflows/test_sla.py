"""Service levels: timers flag a missed first response or resolution and notify owner and managers;
ownership never moves."""

import pytest
from django.core.management import call_command

from h2h_core import services as case_services
from h2h_core.models import AuditEvent, CaseEvent, CaseStatus
from tests.jobs import run_jobs
from workflows import services

from .conftest import open_case, task_states


def run_timers(capture) -> None:
    with capture(execute=True):
        call_command("workflow_timers")


@pytest.mark.django_db
def test_an_unclaimed_case_past_its_first_response_due_is_flagged_and_the_manager_told(
    alice, maria, customer, mailoutbox, django_capture_on_commit_callbacks
):
    # given a complaint (first response within 4 h) that came in 6 h ago and nobody claimed
    case = open_case(alice, customer, hours_ago=6)
    # when the timers run
    run_timers(django_capture_on_commit_callbacks)
    run_jobs()  # the mail is queued with the breach and sent by its job
    # then the case is flagged, the manager is notified on the case, in the audit log and by mail
    case.refresh_from_db()
    assert case.sla_breached and case.owner is None and case.status == CaseStatus.QUEUED
    event = case.events.get(kind=CaseEvent.Kind.SLA)
    assert event.text.startswith("First response was due") and "Notified: maria" in event.text
    audit = AuditEvent.objects.get(action="case.sla_breached")
    assert audit.after["target"] == "first_response" and audit.after["notified"] == [maria.pk]
    assert [m.to for m in mailoutbox] == [[maria.email]] and case.reference in mailoutbox[0].subject


@pytest.mark.django_db
def test_a_resolution_breach_notifies_owner_and_manager_and_ownership_stays(
    alice, maria, customer, mailoutbox, django_capture_on_commit_callbacks
):
    # given alice claimed a complaint 80 h after it came in (resolution within 72 h)
    case = open_case(alice, customer, hours_ago=80)
    services.case_flow_claim(actor=alice, case=case)
    # when the timers run
    run_timers(django_capture_on_commit_callbacks)
    run_jobs()
    # then both service levels were missed, alice still owns the case and its task
    case.refresh_from_db()
    assert case.sla_breached and case.owner == alice
    assert task_states(case)["own"] == ("ASSIGNED", alice.pk)
    targets = sorted(a.after["target"] for a in AuditEvent.objects.filter(action="case.sla_breached"))
    assert targets == ["first_response", "resolution"]
    resolution = AuditEvent.objects.get(action="case.sla_breached", after__target="resolution")
    assert resolution.after["notified"] == [alice.pk, maria.pk]
    assert sorted(sorted(m.to) for m in mailoutbox) == [[alice.email, maria.email], [alice.email, maria.email]]


@pytest.mark.django_db
def test_timers_record_a_breach_once(alice, maria, customer, django_capture_on_commit_callbacks):
    case = open_case(alice, customer, hours_ago=6)
    run_timers(django_capture_on_commit_callbacks)
    run_timers(django_capture_on_commit_callbacks)
    assert case.events.filter(kind=CaseEvent.Kind.SLA).count() == 1
    assert AuditEvent.objects.filter(action="case.sla_breached").count() == 1


@pytest.mark.django_db
def test_a_case_claimed_in_time_has_no_first_response_breach(alice, maria, customer,
                                                             django_capture_on_commit_callbacks):
    # given a case claimed as soon as it came in
    case = open_case(alice, customer)
    services.case_flow_claim(actor=alice, case=case)
    # when the timers run (nothing is due yet)
    run_timers(django_capture_on_commit_callbacks)
    # then nothing is flagged
    case.refresh_from_db()
    assert not case.sla_breached and not case.events.filter(kind=CaseEvent.Kind.SLA).exists()


@pytest.mark.django_db
def test_the_breach_service_refuses_nothing_it_should_not_flag(alice, customer):
    # given a case well within its service levels
    case = open_case(alice, customer)
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when the breach service is asked anyway
    notified = case_services.case_sla_breach(case=case, target="resolution")
    # then it flags nothing
    case.refresh_from_db()
    assert notified == [] and not case.sla_breached and AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_a_case_resolved_outside_the_workflow_is_not_flagged_and_its_process_catches_up(
    alice, maria, customer, django_capture_on_commit_callbacks
):
    # given a case claimed and resolved through the case services directly (an API bypassing the flow)
    case = open_case(alice, customer, hours_ago=80)
    case_services.case_claim(actor=alice, case=case)
    case_services.case_resolve(actor=alice, case=case, summary="Refunded")
    # when the timers run past its due times
    run_timers(django_capture_on_commit_callbacks)
    # then no breach is recorded for the resolved case, and its process moved on to the follow-up
    case.refresh_from_db()
    assert not case.events.filter(kind=CaseEvent.Kind.SLA, text__startswith="Resolution").exists()
    states = task_states(case)
    assert states["own"] == ("DONE", alice.pk) and states["follow_up"][0] == "NEW"
