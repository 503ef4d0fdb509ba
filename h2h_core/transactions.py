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

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


def outermost() -> bool:
    """Return whether no transaction is open, a test case's wrapping transactions aside."""
    return all(getattr(block, "_from_testcase", False) for block in transaction.get_connection().atomic_blocks)


def service_atomic() -> transaction.Atomic:
    """Open a service's transaction: `atomic(savepoint=False)`, joining the caller's transaction if any."""
    return transaction.atomic(savepoint=outermost())


@contextmanager
def read_snapshot() -> Iterator[None]:
    """A read-only transaction that sees one consistent state and holds no writer up.

    PostgreSQL: REPEATABLE READ, READ ONLY. SQLite: every transaction here begins IMMEDIATE (it
    takes the write lock at once, so that read-then-write never fails: settings), which a long read
    such as verifying the audit chain must not do; this one begins DEFERRED, and in WAL mode a
    deferred reader keeps its snapshot while writers go on.
    """
    connection = transaction.get_connection()
    if connection.vendor != "sqlite":
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if not hasattr(connection, "transaction_mode"):
        connection.get_connection_params()  # sets the mode from the settings' OPTIONS
    mode = connection.transaction_mode
    connection.transaction_mode = "DEFERRED"
    try:
        with transaction.atomic():
            yield
    finally:
        connection.transaction_mode = mode
