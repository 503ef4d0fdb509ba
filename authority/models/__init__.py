from .decisions import AuthorityRequest, Decision, OutboxMessage, RequestStatus
from .grants import AuthorityKind, Effect, ExchangeRate, Grant, GrantStatus, Period, Unit
from .usage import UsageCounter

__all__ = [
    "AuthorityKind",
    "AuthorityRequest",
    "Decision",
    "Effect",
    "ExchangeRate",
    "Grant",
    "GrantStatus",
    "OutboxMessage",
    "Period",
    "RequestStatus",
    "Unit",
    "UsageCounter",
]
