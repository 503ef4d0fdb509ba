"""The flows' tasks are written through statements compiled once, leaving the rows Django's save() leaves."""

import pytest
from django.db.models.signals import pre_save
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS
from viewflow.workflow.token import Token

from workflows.flows import CaseFlow, RequestFlow, UpkeepFlow
from workflows.models import CaseProcess, FlowTask

from .conftest import open_case

pytestmark = pytest.mark.django_db


def stored(task) -> dict:
    return {**Task.objects.values().get(pk=task.pk), "id": None}


def new_task(process, cls=FlowTask):
    task = cls(process=process, flow_task=CaseFlow.own, token=Token("start"))
    task.data = {"note": "ünïcode", "list": [1, 2]}
    return task


@pytest.fixture
def process(alice, customer):
    case = open_case(alice, customer)
    return CaseProcess.objects.get(case=case)


def test_every_flow_writes_its_tasks_as_flow_tasks(alice, customer):
    # given the three flows, when a case is opened
    case = open_case(alice, customer)
    # then each flow's task class is the prepared one, and the case's tasks were made as such
    assert CaseFlow.task_class is RequestFlow.task_class is UpkeepFlow.task_class is FlowTask
    process = CaseProcess.objects.get(case=case)
    assert FlowTask.objects.filter(process=process).count() == Task.objects.filter(process=process).count() > 0


def test_a_new_task_is_inserted_as_django_inserts_it(process, django_assert_num_queries):
    # given two identical new tasks, one saved by Django's own save()
    by_django, prepared = new_task(process, cls=Task), new_task(process)
    by_django.save()
    prepared.save()  # compiles the statements of this test's database
    again = new_task(process)
    # when one is saved through the prepared INSERT, in one statement
    with django_assert_num_queries(1):
        again.save()
    # then it has its key and the stored rows match field for field (the creation time aside)
    assert again.pk and not again._state.adding
    assert {**stored(again), "created": None} == {**stored(by_django), "created": None}
    assert stored(again)["flow_task_type"] == "HUMAN"  # set as viewflow's save sets it


def test_a_stored_task_is_updated_whole_in_one_statement(process, alice, django_assert_num_queries):
    # given a stored task and a copy of it that Django's save() will write
    task = new_task(process)
    task.save()
    twin = new_task(process, cls=Task)
    twin.save()
    # when both change the same way and are saved, the prepared one in one statement
    for each in (task, twin):
        each.status, each.owner, each.data = STATUS.ASSIGNED, alice, {"changed": True}
    twin.save()
    with django_assert_num_queries(1):
        task.save()
    # then both rows hold the same
    assert {**stored(task), "created": None} == {**stored(twin), "created": None}
    assert stored(task)["status"] == STATUS.ASSIGNED and stored(task)["owner_id"] == alice.pk


def test_a_receiver_of_the_save_signal_makes_django_save_the_task(process):
    # given a receiver of the tasks' pre_save signal
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    pre_save.connect(receiver, sender=FlowTask)
    try:
        # when a task is saved, then Django's save runs and sends the signal
        task = new_task(process)
        task.save()
        task.status = STATUS.CANCELED
        task.save()
    finally:
        pre_save.disconnect(receiver, sender=FlowTask)
    assert seen == [None, task.pk]
    assert stored(task)["status"] == STATUS.CANCELED


def test_a_task_read_with_deferred_fields_is_saved_by_django(process):
    # given a task read without its data
    task = new_task(process)
    task.save()
    partial = FlowTask.objects.only("id", "status").get(pk=task.pk)
    # when its status changes and it is saved
    partial.status = STATUS.CANCELED
    partial.save()
    # then the status is written and the data it never read is left as it was
    assert stored(task)["status"] == STATUS.CANCELED
    assert stored(task)["data"] == {"note": "ünïcode", "list": [1, 2]}


def test_a_task_whose_row_is_gone_is_written_again_as_django_would(process):
    # given a stored task whose row was deleted behind its back
    task = new_task(process)
    task.save()
    Task.objects.filter(pk=task.pk).delete()
    # when it is saved, then the prepared UPDATE finds no row and Django's save inserts it again
    task.save()
    assert Task.objects.filter(pk=task.pk).exists()


def test_a_save_with_arguments_is_django_s(process):
    # given a stored task changed in two fields
    task = new_task(process)
    task.save()
    task.status, task.data = STATUS.CANCELED, {"changed": True}
    # when only the status is saved, then only the status is written
    task.save(update_fields=["status"])
    assert stored(task)["status"] == STATUS.CANCELED
    assert stored(task)["data"] == {"note": "ünïcode", "list": [1, 2]}



def test_a_task_with_an_expression_as_a_value_is_saved_by_django(process):
    # given a stored task with an expression as one of its values (the column's own value again)
    from django.db.models import F

    task = new_task(process)
    task.save()
    task.external_task_id = F("external_task_id")
    task.status = STATUS.CANCELED
    # when it is saved, then Django's save writes it (the compiled UPDATE cannot carry an expression)
    task.save()
    assert stored(task)["status"] == STATUS.CANCELED


def test_a_new_task_with_an_expression_as_a_value_is_inserted_by_django(process):
    # given a new task with an expression as one of its values
    from django.db.models import Value

    task = new_task(process)
    task.external_task_id = Value("ext-1")
    # when it is saved, then Django's save inserts it, expression evaluated
    task.save()
    assert stored(task)["external_task_id"] == "ext-1"
