"""Adoption: processes for the work that reached the database without going through this layer.

A case or request that came in through an entry point that bypassed the workflow steps (the demo
seed, an import) gets its process on the first step taken on it, or at the next timer run
(UpkeepFlow), and the process is brought in line with the record.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from viewflow.workflow.status import PROCESS

from authority.models import AuthorityRequest, RequestStatus
from h2h_core.lock_objects import case_locked
from h2h_core.models import Case, CaseStatus
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.transactions import service_atomic

from .flows import CaseFlow
from .models import CaseProcess
from .process import catch_up, current_process, process_locked
from .steps.requests import request_flow_start

logger = logging.getLogger(__name__)

ADOPT_BATCH = 100


def case_flow_adopt(*, case: Case) -> CaseProcess | None:
    """Give a case that has no running process one, at the case's current state (joins a caller's transaction).

    The case row is locked first so that two adopters cannot both start a run. A closed case is
    left alone: it has nothing left to wait for.
    """
    with service_atomic():
        case = case_locked(case.pk)
        process = current_process(case)
        if process is not None or case.status == CaseStatus.CLOSED:
            return process
        if CaseProcess.objects.filter(case_id=case.pk).exists():  # its last run ended, then it was reopened
            process = CaseFlow.reopen.run(case=case)
        else:
            process = CaseFlow.intake.run(case=case, adopted=True)
        with process_locked(CaseFlow, process.pk):
            return catch_up(process, case)


def case_flow_sync(*, case: Case) -> CaseProcess | None:
    """Bring the case's process in line with the case (adopting it if needed), in a transaction of its own."""
    with transaction.atomic(durable=True):
        process = current_process(case)
        if process is None:
            return case_flow_adopt(case=case)
        with process_locked(CaseFlow, process.pk):
            return catch_up(process, case)


def unadopted_cases() -> QuerySet[Case]:
    """Cases not yet closed that have no running process."""
    return Case.objects.filter(status__in=[*OPEN_STATUSES, CaseStatus.RESOLVED]).exclude(
        processes__status=PROCESS.NEW
    )


def unadopted_requests() -> QuerySet[AuthorityRequest]:
    return AuthorityRequest.objects.filter(status=RequestStatus.OPEN, process__isnull=True)


def adopt_waiting_work() -> dict:
    """Adopt a batch of cases and requests (inside the upkeep flow's transaction); return the counts."""
    return {
        "cases": _adopt_each(unadopted_cases(), lambda case: case_flow_adopt(case=case), "case"),
        "requests": _adopt_each(unadopted_requests(), lambda request: request_flow_start(request=request),
                                "authority request"),
    }


def _adopt_each(waiting: QuerySet, adopt, name: str) -> int:
    """Adopt up to a batch of `waiting`, each in a savepoint: one that fails is logged and left for the next run."""
    adopted = 0
    for item in waiting.order_by("pk")[:ADOPT_BATCH]:
        try:
            with transaction.atomic():
                adopt(item)
            adopted += 1
        except Exception:
            logger.exception("Could not adopt %s %s", name, item.pk)
    return adopted
