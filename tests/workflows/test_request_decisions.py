"""Deciding a request in the approvals inbox goes through the workflow step: the approval wait ends at once,
without a timer run (the API's twin of this is in tests/api/test_requests_api.py)."""

from decimal import Decimal

import pytest
from django.urls import reverse
from viewflow.workflow.status import PROCESS

from authority.models import RequestStatus
from tests.factories import GrantFactory, kind
from workflows import services
from workflows.models import RequestProcess

from .conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_waiting(alice, maria, customer):
    """alice (500 per case) asked maria's team pool (5,000) for 1,200 through the workflow."""
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    return services.authority_request_flow_open(actor=alice, case=case, kind=kind("refund"), amount="1200",
                                                currency="EUR", justification="Key account, churn risk")


def approval_tasks(request) -> dict[str, str]:
    process = RequestProcess.objects.get(request=request)
    return {"process": process.status, **{task.flow_task.name: task.status for task in process.task_set.all()}}


@pytest.mark.parametrize(("verb", "status"), [("approve", RequestStatus.APPROVED),
                                              ("reject", RequestStatus.REJECTED)])
def test_deciding_in_the_approvals_inbox_ends_the_approval_wait_at_once(client, maria, request_waiting, verb,
                                                                        status):
    # given the request's flow waits for the team's managers
    assert approval_tasks(request_waiting)["team_approval"] == "NEW"
    # when maria decides it in her inbox
    client.force_login(maria)
    client.post(reverse(f"authority:{verb}", args=[request_waiting.pk]), {"note": "Seen"})
    # then the request is decided and, without a timer run, its approval task is done and the process over
    request_waiting.refresh_from_db()
    assert request_waiting.status == status
    tasks = approval_tasks(request_waiting)
    assert tasks["team_approval"] == "DONE" and tasks["team_approval__timeout"] == "CANCELED"
    assert tasks["process"] == PROCESS.DONE

