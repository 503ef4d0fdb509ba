"""Every write of the authority domain."""

from .decisions import decision_execute, decision_snapshot
from .grants import (
    GrantTerms,
    exchange_rate_set,
    grant_change,
    grant_confirm,
    grant_create,
    grant_end,
    grant_reject,
    grant_snapshot,
)
from .requests import (
    authority_request_approve,
    authority_request_open,
    authority_request_reject,
    authority_requests_expire,
    one_off_grants_void,
)
from .reversals import decision_reverse
from .shadow import shadow_decision_record, shadow_decision_snapshot
from .usage import usage_consume

__all__ = [
    "GrantTerms",
    "authority_request_approve",
    "authority_request_open",
    "authority_request_reject",
    "authority_requests_expire",
    "decision_execute",
    "decision_reverse",
    "decision_snapshot",
    "exchange_rate_set",
    "grant_change",
    "grant_confirm",
    "grant_create",
    "grant_end",
    "grant_reject",
    "grant_snapshot",
    "one_off_grants_void",
    "shadow_decision_record",
    "shadow_decision_snapshot",
    "usage_consume",
]
