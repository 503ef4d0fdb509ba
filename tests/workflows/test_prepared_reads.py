"""The reads every step makes, compiled once per process, answer exactly as the querysets they stand for."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from viewflow.workflow.models import Task
from viewflow.workflow.status import PROCESS, STATUS

from h2h_core.lock_objects import audit_head_locked, case_locked, case_qs_select_for_update
from h2h_core.models import AuditHead, Case
from workflows import services
from workflows.flows import CaseFlow
from workflows.lock_objects import process_locked_read
from workflows.models import CaseProcess
from workflows.process import FINISHED, active_tasks, current_process

from .conftest import open_case

pytestmark = pytest.mark.django_db


def test_a_locked_case_is_the_row_the_queryset_reads_with_its_relations_loaded(alice, customer):
    # given a case alice owns
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    with transaction.atomic():
        want = case_qs_select_for_update().select_related("customer", "owner").get(pk=case.pk)
        # when it is locked through the compiled query
        with CaptureQueriesContext(connection) as captured:
            got = case_locked(case.pk, related=("customer", "owner"))
            names = (got.customer.name, got.owner.username)
    # then the same row, its relations read in the one statement, locked on PostgreSQL
    assert (got.pk, got.status, got.owner_id, got.amount_at_stake) == (want.pk, want.status, want.owner_id,
                                                                       want.amount_at_stake)
    assert names == (customer.name, "alice")
    assert len(captured) == 1
    if connection.vendor == "postgresql":
        assert "FOR UPDATE OF" in captured[0]["sql"]


def test_locking_a_case_that_does_not_exist_fails_as_get_does(db):
    with transaction.atomic(), pytest.raises(Case.DoesNotExist):
        case_locked(987_654)


def test_the_running_process_and_its_active_tasks_are_what_the_querysets_find(alice, customer):
    # given a claimed case (its ownership task assigned, the intake's tasks done) and a resolved one
    claimed = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    resolved = services.case_flow_resolve(actor=alice, summary="Refunded",
                                          case=services.case_flow_claim(actor=alice, case=open_case(alice, customer)))
    for case in (claimed, resolved):
        # when the step's reads ask
        process = current_process(case)
        nodes = (CaseFlow.follow_up, CaseFlow.own)
        found = active_tasks(process, *nodes)
        # then they find what the ORM finds
        want = CaseProcess.objects.filter(case_id=case.pk, status=PROCESS.NEW).order_by("-pk").first()
        assert process.pk == want.pk and isinstance(process, CaseProcess) and process.case_id == case.pk
        tasks = Task.objects.filter(process_id=process.pk, flow_task__in=nodes).exclude(status__in=FINISHED)
        assert {node.name: task.pk for node, task in found.items()} == {t.flow_task.name: t.pk for t in tasks}
        assert all(task.process is process for task in found.values())
    assert set(active_tasks(current_process(claimed), CaseFlow.own)) == {CaseFlow.own}
    assert active_tasks(current_process(claimed), CaseFlow.own)[CaseFlow.own].status == STATUS.ASSIGNED
    assert set(active_tasks(current_process(resolved), CaseFlow.follow_up, CaseFlow.own)) == {CaseFlow.follow_up}


def test_a_case_without_a_running_process_has_none(alice, customer):
    case = open_case(alice, customer)
    CaseProcess.objects.filter(case_id=case.pk).update(status=PROCESS.DONE)
    assert current_process(case) is None


def test_a_locked_process_is_its_subclass_row_and_a_missing_one_fails_as_get_does(alice, customer):
    case = open_case(alice, customer)
    process = current_process(case)
    with transaction.atomic():
        got = process_locked_read(CaseProcess, process.pk)
        assert isinstance(got, CaseProcess) and (got.pk, got.case_id, got.status) == (process.pk, case.pk,
                                                                                     process.status)
        with pytest.raises(CaseProcess.DoesNotExist):
            process_locked_read(CaseProcess, 987_654)


def test_the_locked_audit_head_is_the_head_row(alice, customer):
    open_case(alice, customer)  # appends to the chain
    with transaction.atomic():
        head = audit_head_locked()
    want = AuditHead.objects.filter(pk=1).first()  # on PostgreSQL the sealer creates it, later
    assert (head and (head.pk, head.seq, head.hash)) == (want and (want.pk, want.seq, want.hash))
    if connection.vendor == "sqlite":  # linked at once: the head has moved
        assert head.seq >= 1
