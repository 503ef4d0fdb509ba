"""A service's transaction: the whole transaction when called alone, part of its caller's when nested.

Every domain service opens `service_atomic()`, which is Django's `transaction.atomic(savepoint=False)`
(as Zulip's actions do): called alone, it is the transaction; called inside one a caller opened (a
workflow step, viewflow's around a timer or a flow handler, the admin's change form), it joins it
without a savepoint, so a refusal aborts the caller's whole unit of work.

The one thing Django does not do for us: directly inside a test case's wrapping transaction, a block
without a savepoint would leave that transaction unusable after a refusal, which a service called
alone never does. There `service_atomic()` takes a savepoint, as Django's own durability check treats
those wrappers as "no transaction open". `outermost()` is that check, which the refusal audit asks too.
"""

from __future__ import annotations

from django.db import transaction


def outermost() -> bool:
    """Return whether no transaction is open, a test case's wrapping transactions aside."""
    return all(getattr(block, "_from_testcase", False) for block in transaction.get_connection().atomic_blocks)


def service_atomic() -> transaction.Atomic:
    """Open a service's transaction: `atomic(savepoint=False)`, joining the caller's transaction if any."""
    return transaction.atomic(savepoint=outermost())
