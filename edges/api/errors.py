"""One error shape for every API response that is not a success: {"code", "message", "details"}.

`code` is a stable, machine-readable string (`invalid`, `not_found`, `authority_denied`, …),
`message` a sentence for people, `details` an object (field errors, the refusing verdict, …).
Domain errors keep the status and code their service gave them; a refused decision carries the
verdict's reasons and headroom.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from authority.errors import AuthorityDenied
from edges.web.contention import CONTENTION_CODE, CONTENTION_MESSAGE, RETRY_AFTER_SECONDS, is_contention, log_contention
from h2h_core.errors import DomainError

logger = logging.getLogger("h2h.api")

#: The headroom a refused verdict reports, lifted into `details` next to the reasons.
VERDICT_HEADROOM_FIELDS = (
    "per_case_limit",
    "per_case_used",
    "per_case_headroom",
    "period",
    "period_limit",
    "period_used",
    "period_headroom",
    "period_resets_at",
)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"code": code, "message": message, "details": details or {}}


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [text for value in detail.values() for text in _flatten(value)]
    if isinstance(detail, list):
        return [text for value in detail for text in _flatten(value)]
    return [str(detail)]


def _field_errors(detail) -> dict:
    """Return DRF's error detail as {field: [messages]}; errors about no one field go under `non_field_errors`."""
    if isinstance(detail, dict):
        return {str(field): _as_messages(value) for field, value in detail.items()}
    return {"non_field_errors": _as_messages(detail)}


def _as_messages(value):
    if isinstance(value, dict):
        return {str(key): _as_messages(item) for key, item in value.items()}
    if isinstance(value, list):
        if any(isinstance(item, dict | list) for item in value):
            return [_as_messages(item) for item in value]
        return [str(item) for item in value]
    return [str(value)]


def validation_message(fields: dict) -> str:
    texts = _flatten(fields)
    names = [name for name in fields if name != "non_field_errors"]
    if len(texts) == 1:
        return f"{names[0]}: {texts[0]}" if names else texts[0]
    return "Check these fields: " + ", ".join(names) + "." if names else " ".join(texts)


def refusal_details(error: AuthorityDenied) -> dict:
    """Return what a client needs to explain a refused decision: reasons, headroom, who could grant more."""
    verdict = error.verdict.as_dict()
    return {
        "reasons": verdict["reasons"],
        **{field: verdict.get(field) for field in VERDICT_HEADROOM_FIELDS},
        "approvers": verdict.get("approvers", []),
        "over_limit": error.verdict.over_limit,
        "verdict": verdict,
    }


def domain_error_body(error: DomainError) -> dict:
    if isinstance(error, AuthorityDenied):
        return error_body(error.code, error.message, refusal_details(error))
    from h2h_core.audit import snapshot_value

    return error_body(error.code, error.message, snapshot_value(error.details))


def _django_validation_fields(error: DjangoValidationError) -> dict:
    if hasattr(error, "error_dict"):
        return {str(field): [str(message) for message in messages] for field, messages in error.message_dict.items()}
    return {"non_field_errors": [str(message) for message in error.messages]}


def api_exception_handler(exc, context):
    """Turn any exception raised in an API view into a response in the one error shape.

    Installed as REST_FRAMEWORK["EXCEPTION_HANDLER"]. A service that lost a race for a lock (a
    deadlock, a serialization failure, a lock not available, SQLite busy) saved nothing: 409
    `contention` with Retry-After, so the client sends the same request again; so does a domain error
    that names `retry_after_seconds` (an Idempotency-Key still in progress). Anything unexpected
    is logged and answered with a 500 in the same shape, never with an HTML page or a traceback.
    """
    if isinstance(exc, DomainError):
        retry_after = getattr(exc, "retry_after_seconds", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return Response(domain_error_body(exc), status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        fields = _django_validation_fields(exc)
        return Response(error_body("invalid", validation_message(fields), fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, SuspiciousOperation):
        # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE, or too many fields
        return Response(error_body("bad_request", str(exc) or "The request cannot be processed."),
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound(str(exc) if str(exc) and isinstance(exc, Http404) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.APIException):
        return _api_exception_response(exc)
    if is_contention(exc):
        log_contention(exc, where=type(context.get("view")).__name__)
        return Response(error_body(CONTENTION_CODE, CONTENTION_MESSAGE, {"retry_after_seconds": RETRY_AFTER_SECONDS}),
                        status=status.HTTP_409_CONFLICT, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.exception("Unexpected error in %s", type(context.get("view")).__name__, exc_info=exc)
    return Response(
        error_body("server_error", "Something went wrong on our side; it has been logged. Try again later."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _api_exception_response(exc: exceptions.APIException) -> Response:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    details: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        details = _field_errors(exc.detail)
        message = validation_message(details)
        code = "invalid"
    else:
        message = " ".join(_flatten(exc.detail))
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait))
        details = {"retry_after_seconds": int(exc.wait)}
    if isinstance(exc, exceptions.MethodNotAllowed):
        code = "method_not_allowed"
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


@csrf_exempt  # it changes nothing; without this a POST here would get Django's HTML CSRF page
def not_found_json(request, *args, **kwargs):
    """Answer an unknown address under /api/ in the error shape (Django's own 404 is an HTML page)."""
    hint = ""
    if not request.path.endswith("/"):
        hint = " API addresses end with a slash."
    return JsonResponse(error_body("not_found", f"There is no API resource at {request.path}.{hint}"), status=404)
