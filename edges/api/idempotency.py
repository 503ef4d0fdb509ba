"""The Idempotency-Key header: a POST retried with the same key is answered once, never done twice.

A request with a key first inserts an in-progress IdempotencyRecord in its own short transaction.
The unique (user, key) constraint makes that insert the arbiter between concurrent retries:

- the insert succeeds: this request runs, and its outcome (a success, or a refusal by a domain
  rule) is stored on the record;
- the key exists with another payload or endpoint: 422 `idempotency_conflict`;
- the key exists and is done: the stored status and body are replayed (`Idempotent-Replayed: true`);
- the key exists and is still in progress: 409 `idempotency_in_progress`. A record left in progress
  by a process that died is taken over after IN_PROGRESS_TIMEOUT; the services that create
  decisions and requests also know the key, so a takeover never executes twice.

Outcomes that did not reach a domain rule (malformed input, an unknown case, a server error) are
not stored: the key is released and the client may retry with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from authority.errors import IdempotencyConflict
from authority.models import IdempotencyRecord
from edges.api.errors import domain_error_body
from h2h_core.errors import DomainError

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 100
IN_PROGRESS_TIMEOUT = timedelta(minutes=5)
REPLAY_HEADER = "Idempotent-Replayed"

KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (1-100 printable characters, e.g. a UUID) to make a retry safe: the same key "
        "with the same payload replays the first response; with another payload it is refused (422); "
        "while the first request still runs it is refused (409)."
    ),
    pattern=r"^[\x21-\x7e][\x20-\x7e]{0,99}$",
)


class IdempotencyInProgress(DomainError):
    """The first request with this key has not finished yet."""

    code = "idempotency_in_progress"
    status = 409


class InvalidIdempotencyKey(DomainError):
    code = "invalid"
    status = 400


def validate_key(key: str) -> str:
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable characters.",
            **{HEADER: [f"Use 1 to {MAX_KEY_LENGTH} printable characters."]},
        )
    return key


def fingerprint_of(*, endpoint: str, body) -> str:
    """Return a digest of what was asked: the endpoint and the request body, keys sorted."""
    text = json.dumps({"endpoint": endpoint, "body": _plain(body)}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(body):
    if hasattr(body, "lists"):  # a QueryDict from a form body
        return {key: values for key, values in body.lists()}
    return body


def _claim(*, user, key: str, endpoint: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Insert the in-progress record, or return the stored response to replay; raise on a conflict."""
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic(durable=True):
                return IdempotencyRecord.objects.create(user=user, key=key, endpoint=endpoint,
                                                        fingerprint=fingerprint, created_at=now)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try again
        if existing.fingerprint != fingerprint or existing.endpoint != endpoint:
            raise IdempotencyConflict(
                f"This {HEADER} was already used for a different request; use a new key for a new request.",
                endpoint=existing.endpoint,
            )
        if existing.state == IdempotencyRecord.State.DONE:
            response = Response(existing.response_body, status=existing.response_status)
            response[REPLAY_HEADER] = "true"
            return response
        stale = existing.created_at <= now - IN_PROGRESS_TIMEOUT
        if stale and IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_PROGRESS, created_at=existing.created_at
        ).update(created_at=now):
            existing.created_at = now
            return existing
        raise IdempotencyInProgress(
            f"A request with this {HEADER} is still being processed; retry in a moment to get its result."
        )
    raise IdempotencyInProgress(f"A request with this {HEADER} is being processed; retry in a moment.")


def _store(record: IdempotencyRecord, response: Response) -> None:
    body = json.loads(JSONRenderer().render(response.data) or b"null")
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE, response_status=response.status_code, response_body=body
    )


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS).delete()


def idempotent(handler):
    """Decorate a view method that creates something so that it honours the Idempotency-Key header.

    The decorated method receives the key as `idempotency_key` (None without the header) so it can
    pass it on to the service.
    """

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, idempotency_key=None, **kwargs)
        key = validate_key(key)
        endpoint = f"{request.method} {request.path}"[:200]
        fingerprint = fingerprint_of(endpoint=endpoint, body=request.data)
        claimed = _claim(user=request.user, key=key, endpoint=endpoint, fingerprint=fingerprint)
        if isinstance(claimed, Response):
            return claimed
        try:
            response = handler(view, request, *args, idempotency_key=key, **kwargs)
        except DomainError as refused:
            response = Response(domain_error_body(refused), status=refused.status)
            _store(claimed, response)
            return response
        except BaseException:
            _release(claimed)
            raise
        if 200 <= response.status_code < 300:
            _store(claimed, response)
        else:
            _release(claimed)
        return response

    return wrapper
