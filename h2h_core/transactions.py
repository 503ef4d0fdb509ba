"""Service transactions that stay durable on their own and compose when a caller asks for it.

A top-level service runs in `transaction.atomic(durable=True)`: called from an edge (a view, the
API, a command) it is the whole transaction, and nesting it by accident inside another atomic
block is an error rather than a silent loss of durability. A workflow step, though, must change
the case *and* advance its process in one transaction. `composed()` opens that one durable
transaction and lets the services called inside it join it; `joined()` does the same inside a
transaction someone else opened on purpose (viewflow's, around a timer or a flow handler).
Composition is explicit: only code that says so can nest a service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_composing: ContextVar[bool] = ContextVar("h2h_composing", default=False)


@contextmanager
def service_atomic() -> Iterator[None]:
    """Open a service's transaction: durable, unless the caller composes services."""
    if _composing.get():
        # Join the caller's transaction. No savepoint: a refusal aborts the whole unit of work,
        # which is what a composed step wants, and it saves two statements under the locks.
        with transaction.atomic(savepoint=False):
            yield
    else:
        with transaction.atomic(durable=True):
            yield


@contextmanager
def _composition() -> Iterator[None]:
    token = _composing.set(True)
    try:
        yield
    finally:
        _composing.reset(token)


@contextmanager
def composed() -> Iterator[None]:
    """Run several services in one durable transaction: all of them commit, or none."""
    with transaction.atomic(durable=True), _composition():
        yield


@contextmanager
def joined() -> Iterator[None]:
    """Let services join the transaction that is already open (a workflow engine's)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("joined() needs an open transaction; use composed() to start one")
    with _composition():
        yield
