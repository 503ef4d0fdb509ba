from .decisions import AuthorityRequest, Decision, OutboxMessage, RequestStatus, ShadowDecision
from .grants import AuthorityKind, Effect, ExchangeRate, Grant, GrantStatus, Period, Unit
from .integration import DeliveryStatus, IdempotencyRecord, WebhookDelivery, WebhookEndpoint
from .oversight import Delegation, ReviewFlag
from .usage import UsageCounter

__all__ = [
    "AuthorityKind",
    "AuthorityRequest",
    "Decision",
    "Delegation",
    "DeliveryStatus",
    "IdempotencyRecord",
    "ReviewFlag",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Effect",
    "ExchangeRate",
    "Grant",
    "GrantStatus",
    "OutboxMessage",
    "Period",
    "RequestStatus",
    "ShadowDecision",
    "Unit",
    "UsageCounter",
]
