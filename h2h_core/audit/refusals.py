"""Record refused attempts (rule 7: denials are audited too), outside the refused transaction."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.db import connection, transaction

from h2h_core.errors import DomainError
from h2h_core.models.audit import Outcome

from .record import audit_record


def audits_refusals(action: str, *, object_type: str, object_from: Callable[[dict], object] | None = None):
    """Decorate a service so a DomainError it raises is committed as a `<action>.refused` event.

    The service's own transaction has rolled back by then, so the refusal is written in a new one.
    Only the outermost refused service records: inside a caller's transaction (a composed workflow
    step) the caller's own decorator does, once. `object_from(kwargs)` names the object.
    """

    def decorate(service):
        @functools.wraps(service)
        def wrapper(*args, **kwargs):
            try:
                return service(*args, **kwargs)
            except DomainError as error:
                if not _outermost():
                    raise
                target = object_from(kwargs) if object_from else None
                with transaction.atomic():
                    audit_record(
                        actor=kwargs.get("actor"),
                        action=f"{action}.refused",
                        object_type=object_type,
                        object_id=getattr(target, "pk", target) if target is not None else "",
                        outcome=Outcome.DENIED,
                        after={"error": error.code},
                        reason=error.message,
                    )
                raise

        return wrapper

    return decorate


def _outermost() -> bool:
    """True when no transaction is open, test-case wrappers aside (as Django's durability check)."""
    return all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def case_of(kwargs: dict):
    return kwargs.get("case")


def grant_of(kwargs: dict):
    return kwargs.get("grant")


def request_of(kwargs: dict):
    return kwargs.get("request")
