"""Every write of the authority domain."""

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

__all__ = [
    "GrantTerms",
    "exchange_rate_set",
    "grant_change",
    "grant_confirm",
    "grant_create",
    "grant_end",
    "grant_reject",
    "grant_snapshot",
]
