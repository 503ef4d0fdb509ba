"""Record refused attempts (rule 7: denials are audited too), outside the refused transaction."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.db import transaction

from h2h_core.errors import DomainError
from h2h_core.models.audit import Outcome
from h2h_core.transactions import outermost

from .record import audit_record


def audits_refusals(action: str, *, object_type: str, object_from: Callable[[dict], object] | None = None):
    """Decorate a service so a DomainError it raises is committed as a `<action>.refused` event.

    Called alone, the service's transaction has rolled back by then, so the refusal is written in a
    new one. Called inside a caller's transaction (a workflow step, the admin's form), the refusal
    aborts that transaction too, so only the outermost caller records it, once: the step's own
    decorator, or the edge that opened the transaction. `object_from(kwargs)` names the object.
    """

    def decorate(service):
        @functools.wraps(service)
        def wrapper(*args, **kwargs):
            if not outermost():
                return service(*args, **kwargs)
            try:
                return service(*args, **kwargs)
            except DomainError as error:
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


def case_of(kwargs: dict):
    return kwargs.get("case")


def grant_of(kwargs: dict):
    return kwargs.get("grant")


def request_of(kwargs: dict):
    return kwargs.get("request")
