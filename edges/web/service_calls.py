"""Helpers for web views: turn domain and validation errors into messages, never into a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError

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
    """Call a service; on a refusal add an error message and return (False, the error)."""
    try:
        return True, call()
    except (ValidationError, DomainError) as error:
        messages.error(request, error_text(error))
        return False, error
