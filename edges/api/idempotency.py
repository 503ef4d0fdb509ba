"""The Idempotency-Key header: a POST retried with the same key is answered once, never done twice.

A request with a key first inserts an in-progress IdempotencyRecord in its own short transaction.
The unique (user, key) constraint makes that insert the arbiter between concurrent retries:

- the insert succeeds: this request runs, and its outcome (a success, or a refusal by a domain
  rule) is stored on the record;
- the key exists with another payload or endpoint: 422 `idempotency_conflict`;
- the key exists and is done: the stored status and body are replayed (`Idempotent-Replayed: true`);
- the key exists and is still in progress: 409 `idempotency_in_progress` with Retry-After.

Whether "in progress" is still true must not depend on the request that claimed the key being
able to say otherwise: its process can be killed, or its database connection cut, after the claim
and before it stores or releases anything. The claim is therefore also a claim lock on (user, key)
(edges.web.claim_locks), taken before the record is inserted and held by what runs the request
until the record is stored or released: on PostgreSQL a session advisory lock, which the server
drops the moment the session ends; on SQLite an flock on a lock file, which the kernel drops the
moment the process dies. However the first attempt ends, a retry that gets the lock while the
record is still in progress knows that attempt is no longer running, and runs the request at once
(`held_by_session` marks the records a claim lock holds for). We chose such a lock over the two
alternatives: a row lock needs a transaction open for the whole request, which the durable
services and flow steps the views call cannot run inside; a lease renewed while running needs a
heartbeat beside every request and still guesses (a paused process outlives its lease and would
run twice). On PostgreSQL the session must be the request's own for its duration: behind a
connection pooler, use session pooling, not transaction pooling. There the lock costs no round trip
of its own: the claim's INSERT takes it and the statement that stores or releases the record drops
it (edges.web.claim_locks.AdvisoryClaimLock).

Without a claim lock (Windows has no flock), and for a record claimed without one, a record left
in progress is taken over after IN_PROGRESS_TIMEOUT. A taken-over request whose first attempt had
committed its effect before it died is not done twice: every service behind a keyed endpoint
(decisions, authority requests, opening a case, creating or changing a grant) stores the key on the
row it creates and answers a repeat of it with that row.

Outcomes that did not reach a domain rule (malformed input, an unknown case, a server error) are
not stored: the key is released and the client may retry with the same key.

On PostgreSQL the record's own statements commit without waiting for the WAL flush (asynchronous
commit, for that statement alone), except the store of a refusal. A keyed decision so waits for one
flush, its own, instead of three. No guarantee is weakened: what a crash (or a failover to a
standby) can take is the last fraction of a second of WAL, and only as a whole tail, never a record
from before a change that stays:
- a claim: the request it claimed cannot have committed anything, since that commit would have
  flushed the claim before it; the key is free again, as the client needs it to be;
- the release of a key: the record stays in progress with no claim lock, and a retry takes it over;
- the store of a success: likewise; the retry is answered from the row the service keyed (above),
  as after a process killed between its commit and its store. A refusal has no such row, so its
  store waits for its flush.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from authority.errors import IdempotencyConflict
from authority.models import IdempotencyRecord
from edges.api.errors import domain_error_body
from edges.web.claim_locks import AdvisoryClaimLock, claim_lock
from h2h_core.errors import DomainError
from h2h_core.prepared_writes import PreparedInsert
from h2h_core.services import MAX_IDEMPOTENCY_KEY_LENGTH

logger = logging.getLogger("h2h.api")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = MAX_IDEMPOTENCY_KEY_LENGTH  # the services store the same keys
IN_PROGRESS_TIMEOUT = timedelta(minutes=5)
REPLAY_HEADER = "Idempotent-Replayed"
#: A request runs for well under a second: ask for the retry soon, it gets the stored answer.
RETRY_AFTER_SECONDS = 1

KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (1-100 printable characters, e.g. a UUID) to make a retry safe: the same key "
        "with the same payload replays the first response; with another payload it is refused (422); "
        "while the first request still runs it is refused (409, with Retry-After in seconds)."
    ),
    pattern=r"^[\x21-\x7e][\x20-\x7e]{0,99}$",
)


class IdempotencyInProgress(DomainError):
    """The first request with this key has not finished yet."""

    code = "idempotency_in_progress"
    status = 409
    retry_after_seconds = RETRY_AFTER_SECONDS

    def __init__(self, message: str):
        super().__init__(message, retry_after_seconds=self.retry_after_seconds)


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


def _answer_existing(existing: IdempotencyRecord, *, endpoint: str, fingerprint: str) -> Response | None:
    """Return the stored response of a finished record; raise on a conflict; None while in progress."""
    if existing.fingerprint != fingerprint or existing.endpoint != endpoint:
        raise IdempotencyConflict(
            f"This {HEADER} was already used for a different request; use a new key for a new request.",
            endpoint=existing.endpoint,
        )
    if existing.state == IdempotencyRecord.State.DONE:
        response = Response(existing.response_body, status=existing.response_status)
        response[REPLAY_HEADER] = "true"
        return response
    return None


def _in_progress() -> IdempotencyInProgress:
    return IdempotencyInProgress(
        f"A request with this {HEADER} is still being processed; retry in a moment to get its result."
    )


_CHANGED = "changed"


def _take_over(existing: IdempotencyRecord, *, now, locked: bool) -> bool | str:
    """Claim a record left in progress by an attempt that is provably gone: True; False if it is not gone;
    _CHANGED if the record was stored, released or taken meanwhile (read it again).

    With the key's claim lock in hand, a record claimed under the lock is abandoned: its claimer
    (session or process) ended without storing or releasing it, or is committing its store or
    release right now (on PostgreSQL that statement drops the lock a moment before it commits: the
    conditional UPDATE below waits for it and finds the record changed). Any other record is
    abandoned once it is older than any request runs.
    """
    abandoned = (locked and existing.held_by_session) or existing.created_at <= now - IN_PROGRESS_TIMEOUT
    if not abandoned:
        return False
    taken = IdempotencyRecord.objects.filter(
        pk=existing.pk, state=IdempotencyRecord.State.IN_PROGRESS, created_at=existing.created_at
    ).update(created_at=now, held_by_session=locked)
    if not taken:
        return _CHANGED
    existing.created_at, existing.held_by_session = now, locked
    return True


def _own_transaction():
    """The claim commits on its own: outside any transaction the one INSERT is its own (autocommit: no BEGIN
    and COMMIT round trips); inside a test's wrapping transaction a savepoint, and inside any other it refuses."""
    if not transaction.get_connection().in_atomic_block:
        return contextlib.nullcontext()
    return transaction.atomic(durable=True)


# Written by every keyed request: compiled once per process (h2h_core.prepared_writes).
_NEW_RECORD = PreparedInsert(IdempotencyRecord)


def _claim(*, user, key: str, endpoint: str, fingerprint: str, locked: bool) -> IdempotencyRecord | Response:
    """Insert the in-progress record, or return the stored response to replay; raise on a conflict."""
    for _ in range(3):
        now = timezone.now()
        try:
            with _own_transaction():
                return _NEW_RECORD.create(user=user, key=key, endpoint=endpoint, fingerprint=fingerprint,
                                          created_at=now, held_by_session=locked)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try again
        stored = _answer_existing(existing, endpoint=endpoint, fingerprint=fingerprint)
        if stored is not None:
            return stored
        taken = _take_over(existing, now=now, locked=locked)
        if taken is True:
            return existing
        if taken is not _CHANGED:
            raise _in_progress()
    raise _in_progress()


def _refuse_while_running(*, user, key: str, endpoint: str, fingerprint: str) -> Response:
    """Answer a request whose key another session holds: its stored outcome if just done, a conflict, or 409."""
    existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
    stored = existing and _answer_existing(existing, endpoint=endpoint, fingerprint=fingerprint)
    if stored is not None:
        return stored
    raise _in_progress()


def _succeeded(response: Response) -> bool:
    return 200 <= response.status_code < 300


def _store(record: IdempotencyRecord, response: Response, *, lock: AdvisoryClaimLock | None = None) -> None:
    """Store the outcome on the record (and drop the PostgreSQL claim lock in the same statement)."""
    rendered = JSONRenderer().render(response.data) or b"null"
    if lock is None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            state=IdempotencyRecord.State.DONE, response_status=response.status_code, response_body=json.loads(rendered)
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_STORE_DROPPING_LOCK, {
            "done": IdempotencyRecord.State.DONE, "status": response.status_code, "body": rendered.decode(),
            "record": record.pk, "lock": lock.number, "wait": not _succeeded(response)})
    lock.dropped()


def _release(record: IdempotencyRecord, *, lock: AdvisoryClaimLock | None = None) -> None:
    """Delete the in-progress record so that the key can be used again (dropping the PostgreSQL claim lock with it)."""
    try:
        if lock is None:
            IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS).delete()
            return
        with connection.cursor() as cursor:
            cursor.execute(_RELEASE_DROPPING_LOCK, {
                "record": record.pk, "in_progress": IdempotencyRecord.State.IN_PROGRESS, "lock": lock.number,
                "wait": False})
        lock.dropped()
    except DatabaseError:
        # The connection died with the request: the record stays in progress, and a retry takes it
        # over (at once where a claim lock held it). The request's own error is the one to report.
        logger.warning("Could not release idempotency record %s", record.pk, exc_info=True)


# --- PostgreSQL: the claim lock rides on the record's own statements ---------------------------------------------
# A keyed request's claim, store and release each carry the claim lock's TAKE or DROP, so the lock
# costs no round trip of its own (AdvisoryClaimLock). A statement that fails takes or drops nothing
# that `release()` does not mend: a session advisory lock outlives the failed statement's rollback.

_TABLE = f'"{IdempotencyRecord._meta.db_table}"'

# Each of these statements is a transaction of its own (autocommit; _own_transaction), so a local
# setting lasts for that statement only. `wait` false commits it asynchronously (the docstring says why
# that is safe); true leaves the server's setting as it is.
_COMMIT_WAITS = ("set_config('synchronous_commit', "
                 "CASE WHEN %(wait)s THEN current_setting('synchronous_commit') ELSE 'off' END, true)")

_CLAIM_TAKING_LOCK = f"""
WITH claim_lock AS MATERIALIZED (SELECT {AdvisoryClaimLock.TAKE % "%(lock)s"} AS held, {_COMMIT_WAITS}),
claimed AS (
    INSERT INTO {_TABLE} ("user_id", "key", "endpoint", "fingerprint", "state", "created_at", "held_by_session")
    SELECT %(user)s, %(key)s, %(endpoint)s, %(fingerprint)s, %(in_progress)s, %(now)s, TRUE
    FROM claim_lock WHERE claim_lock.held
    ON CONFLICT DO NOTHING
    RETURNING "id"
)
SELECT claim_lock.held, claimed.id FROM claim_lock LEFT JOIN claimed ON TRUE
"""

# The lock is dropped after the row is written (the count waits for it), so that a retry taking the lock
# meets the row locked until this statement commits.
_STORE_DROPPING_LOCK = f"""
WITH stored AS (
    UPDATE {_TABLE} SET "state" = %(done)s, "response_status" = %(status)s, "response_body" = CAST(%(body)s AS jsonb)
    WHERE "id" = %(record)s
    RETURNING 1
)
SELECT {AdvisoryClaimLock.DROP % "%(lock)s"}, {_COMMIT_WAITS} FROM (SELECT count(*) FROM stored) AS written
"""

_RELEASE_DROPPING_LOCK = f"""
WITH released AS (DELETE FROM {_TABLE} WHERE "id" = %(record)s AND "state" = %(in_progress)s RETURNING 1)
SELECT {AdvisoryClaimLock.DROP % "%(lock)s"}, {_COMMIT_WAITS} FROM (SELECT count(*) FROM released) AS written
"""


def _claim_taking_lock(lock: AdvisoryClaimLock, *, user, key: str, endpoint: str,
                       fingerprint: str) -> IdempotencyRecord | None:
    """Take the claim lock and, if it was free, insert the in-progress record: one statement.

    Return the new record; None when the key is there already or the lock is another's (`lock.held` says which).
    """
    now = timezone.now()
    lock.taken(True)  # until the statement says otherwise: one that fails may have taken it, and release() mends that
    with _own_transaction(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_TAKING_LOCK, {
            "lock": lock.number, "user": user.pk, "key": key, "endpoint": endpoint, "fingerprint": fingerprint,
            "in_progress": IdempotencyRecord.State.IN_PROGRESS, "now": now, "wait": False})
        held, pk = cursor.fetchone()
    lock.taken(held)
    if pk is None:
        return None
    return IdempotencyRecord(pk=pk, user=user, key=key, endpoint=endpoint, fingerprint=fingerprint,
                             created_at=now, held_by_session=True)


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
        asked = {"user": request.user, "key": key, "endpoint": endpoint, "fingerprint": fingerprint}
        if connection.vendor == "postgresql":
            return _under_advisory_lock(handler, asked, view, request, *args, idempotency_key=key, **kwargs)
        with claim_lock(user_id=request.user.pk, key=key) as locked:
            if locked is False:
                return _refuse_while_running(**asked)
            claimed = _claim(**asked, locked=bool(locked))
            if isinstance(claimed, Response):
                return claimed
            return _run(handler, claimed, view, request, *args, idempotency_key=key, **kwargs)

    return wrapper


def _under_advisory_lock(handler, asked: dict, view, request, *args, **kwargs) -> Response:
    """The keyed request on PostgreSQL: claimed, run and stored with the claim lock riding on those statements."""
    lock = AdvisoryClaimLock(user_id=asked["user"].pk, key=asked["key"])
    try:
        claimed = _claim_taking_lock(lock, **asked)
        if not lock.held:
            return _refuse_while_running(**asked)
        if claimed is None:  # the key is there already: a replay, a conflict, or a record to take over
            claimed = _claim(**asked, locked=True)
            if isinstance(claimed, Response):
                return claimed
        return _run(handler, claimed, view, request, *args, lock=lock, **kwargs)
    finally:
        lock.release()  # unless the store or the release dropped it


def _run(handler, claimed: IdempotencyRecord, view, request, *args, lock: AdvisoryClaimLock | None = None,
         **kwargs) -> Response:
    """Run the claimed request; store its outcome if a domain rule or a success decided it, else release the key."""
    try:
        response = handler(view, request, *args, **kwargs)
    except DomainError as refused:
        response = Response(domain_error_body(refused), status=refused.status)
        _store(claimed, response, lock=lock)
        return response
    except BaseException:
        _release(claimed, lock=lock)
        raise
    if _succeeded(response):
        _store(claimed, response, lock=lock)
    else:
        _release(claimed, lock=lock)
    return response
