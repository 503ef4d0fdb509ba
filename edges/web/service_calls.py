"""Helpers for web views: turn domain and validation errors, and lock contention, into messages, never into a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError

from edges.web.contention import CONTENTION_MESSAGE, is_contention, log_contention
from h2h_core.errors import DomainError


def error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        if hasattr(error, "message_dict"):
            return " ".join(f"{msg}" for msgs in error.message_dict.values() for msg in msgs)
        return " ".join(error.messages)
    if isinstance(error, DomainError):
        return error.message
    return str(error)


def run_service(request, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Call a service; on a refusal add an error message and return (False, the error).

    A service that lost a race for a lock (edges.web.contention) saved nothing: the person is told
    to try again, and (False, the error) is returned as for a refusal.
    """
    try:
        return True, call()
    except (ValidationError, DomainError) as error:
        messages.error(request, error_text(error))
        return False, error
    except Exception as error:
        if not is_contention(error):
            raise
        log_contention(error, where=request.path)
        messages.warning(request, CONTENTION_MESSAGE)
        return False, error
