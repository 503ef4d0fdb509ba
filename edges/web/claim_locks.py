"""Claim locks: proof that the request holding an Idempotency-Key is still running.

A claim lock on (user, key) is held by whatever runs the request, for as long as it runs, and is
dropped by the operating system or the database the moment that runner dies, however it dies. So a
retry that can take the lock while the key's record is still in progress knows the first attempt is
gone (edges.api.idempotency uses this). One lock per database vendor:

- PostgreSQL: a session advisory lock, held by the request's database session (the server drops it
  when the session ends, which also covers a connection cut while its process lives on). It is an
  AdvisoryClaimLock: taken by the claim's own INSERT and dropped by the statement that stores or
  releases the record (edges.api.idempotency), so it costs no round trip of its own;
- SQLite: an exclusive `flock` on a lock file per key under VAR_DIR/locks/idempotency. A SQLite
  database lives on one machine, so a lock on that machine is exact; the kernel drops it when the
  process that holds it dies;
- elsewhere (Windows has no `fcntl`, and neither would another vendor): no lock, and a record left
  in progress is taken over after a timeout instead.

A lock file is removed by its holder as it releases it. A process killed while holding one leaves
the file behind; the next request with that key reuses it, and `claim_lock_files_purge` (run with
the daily retention purge) removes any nobody holds. Removing a lock file is safe because a locker
checks, once it holds the lock, that the file it locked is still the one at the path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

try:
    import fcntl
except ImportError:  # Windows: the project targets Linux and macOS; there the timeout applies
    fcntl = None

logger = logging.getLogger("h2h.api")

#: Yielded by a claim lock: True when this request holds it, False when another runner does, None
#: when there is no lock to take (the caller then relies on the in-progress timeout).
ClaimLock = AbstractContextManager[bool | None]


def claim_lock(*, user_id: int, key: str) -> ClaimLock:
    """Return the claim lock of a user's key for a database other than PostgreSQL; hold it with `with`.

    PostgreSQL's is an AdvisoryClaimLock, whose statements ride on the caller's.
    """
    if connection.vendor == "postgresql":
        raise ValueError("On PostgreSQL the claim lock is an AdvisoryClaimLock.")
    if connection.vendor == "sqlite" and fcntl is not None:
        return _file_lock(lock_file_path(user_id=user_id, key=key))
    return nullcontext(None)


# --- PostgreSQL ------------------------------------------------------------------------------


def advisory_lock_id(*, user_id: int, key: str) -> int:
    """Return the advisory lock number of a user's key: 64 bits of its digest, as PostgreSQL's signed bigint.

    Two keys sharing a number only make one wait for the other (a 409), never run together.
    """
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryClaimLock:
    """The claim lock of a user's key on PostgreSQL, taken and dropped inside statements the caller sends anyway.

    A keyed request sends a statement to claim the key and one to store or release it; the lock's
    own `SELECT pg_try_advisory_lock` and `SELECT pg_advisory_unlock` were two more round trips on
    every keyed request. The caller puts TAKE into its claim (with `number` as the parameter) and
    reports the outcome with `taken(held)`, and DROP into the statement that stores or releases
    the record, then calls `dropped()`. Whatever happens in between, `release()` (in a `finally`)
    drops a lock still held by a statement of its own.

    A lock dropped inside a statement is free a moment before that statement commits: a retry that
    takes it then can find the record still in progress. It is not abandoned; the retry's takeover
    is a conditional UPDATE that waits for the row and then finds it done or gone
    (edges.api.idempotency reads it again).
    """

    TAKE = "pg_try_advisory_lock(%s)"
    DROP = "pg_advisory_unlock(%s)"

    def __init__(self, *, user_id: int, key: str):
        self.number = advisory_lock_id(user_id=user_id, key=key)
        self.held = False

    def taken(self, held: bool) -> None:
        self.held = bool(held)

    def dropped(self) -> None:
        self.held = False

    def release(self) -> None:
        """Drop the lock if a statement has not dropped it already."""
        if self.held:
            self.held = False
            _advisory_unlock(self.number)


def _advisory_unlock(number: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [number])
    except DatabaseError:
        # The session is gone (and its lock with it), or unusable: close it so that a pooled
        # connection cannot keep the lock after this request.
        logger.warning("Could not release the idempotency lock; closing the connection", exc_info=True)
        connection.close()


# --- SQLite ----------------------------------------------------------------------------------


def lock_directory() -> Path:
    return Path(settings.VAR_DIR) / "locks" / "idempotency"


def lock_file_path(*, user_id: int, key: str) -> Path:
    """Return the lock file of a user's key in this database (hashed: keys are any printable text)."""
    digest = hashlib.sha256(f"{_database_identity()}\0idempotency:{user_id}:{key}".encode()).hexdigest()
    return lock_directory() / f"{digest}.lock"


def _database_identity() -> str:
    # Two databases sharing VAR_DIR must not share locks. An in-memory database belongs to its
    # process (test runs use one), so its locks are that process's alone.
    if connection.is_in_memory_db():
        return f"memory:{os.getpid()}"
    return str(Path(connection.settings_dict["NAME"]).resolve())


#: A lock file removed between our open and our lock is retried; more than this means something
#: else is going on, and the request goes on without the lock (the timeout applies).
_ATTEMPTS = 3
_BUSY = "busy"


@contextmanager
def _file_lock(path: Path) -> Iterator[bool | None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path, create=True)
    except OSError:
        logger.warning("Could not take the idempotency lock file %s; relying on the timeout", path, exc_info=True)
        fd = None
    if fd is _BUSY:
        yield False
        return
    if fd is None:
        yield None
        return
    try:
        yield True
    finally:
        _remove_and_unlock(path, fd)


def _try_lock(path: Path, *, create: bool) -> int | str | None:
    """Lock the file at `path` without waiting: its descriptor, _BUSY when another holds it, else None."""
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return _BUSY
        except BaseException:
            os.close(fd)
            raise
        if _still_at(path, fd):
            return fd
        # Its holder removed the file as it released it: the lock that counts is on the file there now.
        os.close(fd)
        if not create:
            return None
    return None


def _still_at(path: Path, fd: int) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def _remove_and_unlock(path: Path, fd: int) -> None:
    try:
        path.unlink(missing_ok=True)  # while we hold it: nobody else can be holding this file
    except OSError:
        logger.warning("Could not remove the idempotency lock file %s", path, exc_info=True)
    finally:
        os.close(fd)  # releases the lock


def claim_lock_files_purge() -> int:
    """Remove the lock files nobody holds (left by killed processes); return how many."""
    directory = lock_directory()
    if fcntl is None or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob("*.lock"):
        try:
            fd = _try_lock(path, create=False)
        except OSError:
            logger.warning("Could not check the idempotency lock file %s", path, exc_info=True)
            continue
        if fd is None or fd is _BUSY:
            continue
        _remove_and_unlock(path, fd)
        removed += 1
    return removed
