"""Every workflow step and the process reads the edges use, in one place to import them from.

The steps live in `workflows.steps.cases` and `workflows.steps.requests`, adoption in
`workflows.adoption`, and what the steps share in `workflows.process`.
"""

from .adoption import adopt_waiting_work, case_flow_adopt, case_flow_sync, unadopted_cases, unadopted_requests
from .process import FINISHED, active_task, current_process
from .steps.cases import (
    case_flow_claim,
    case_flow_handover,
    case_flow_open,
    case_flow_rate,
    case_flow_reopen,
    case_flow_resolve,
    case_for_rating_token,
    rating_token,
    rating_url,
)
from .steps.requests import (
    authority_request_flow_approve,
    authority_request_flow_open,
    authority_request_flow_reject,
    authority_request_offer_fallback,
    request_flow_start,
)

__all__ = [
    "FINISHED",
    "active_task",
    "adopt_waiting_work",
    "authority_request_flow_approve",
    "authority_request_flow_open",
    "authority_request_flow_reject",
    "authority_request_offer_fallback",
    "case_flow_adopt",
    "case_flow_claim",
    "case_flow_handover",
    "case_flow_open",
    "case_flow_rate",
    "case_flow_reopen",
    "case_flow_resolve",
    "case_flow_sync",
    "case_for_rating_token",
    "current_process",
    "rating_token",
    "rating_url",
    "request_flow_start",
    "unadopted_cases",
    "unadopted_requests",
]
