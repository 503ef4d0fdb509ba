"""Seal committed audit events into the hash chain, after their transactions have ended (PostgreSQL).

`audit_record` writes an event in its change's transaction without the chain link, so writers
never queue behind one head row. `audit_seal` adds the link later: one sealer at a time across
all machines (a transaction-scoped advisory lock, so a crashed sealer releases it), holding the
head row, takes the unsealed events it can see, in id order, a batch at a time, gives them the
next sequence numbers and hashes (the same `event_hash`), and moves the head, in one transaction.

Which events are final: under READ COMMITTED each statement sees exactly the transactions that
had committed when it began, all of a transaction's rows or none, and a committed transaction
adds no more rows. So every event the sealer sees is final; an event of a transaction still
running (or committed after the statement began) is invisible to it and sealed by a later run:
none is lost or skipped, and each is sealed once (the UPDATE requires seq IS NULL, and the
triggers allow only that one change). A rolled-back transaction's events never existed. The
caller's own uncommitted events are visible to it too: a test, or the checkpoint signing, seals
what it wrote itself, and that sealing commits or rolls back with it.

Why not "transaction id below the snapshot's xmin": xmin is the whole cluster's oldest running
writer, so one long transaction anywhere (another database, a data import) would stop sealing
for its duration; visibility waits only for the events' own transactions.

SQLite runs one writer at a time: there `audit_record` links each event at once, as before, and
`audit_seal` has nothing to do. `sealed_after_commit` is the one place that decides.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from h2h_core.lock_objects import audit_head_qs_select_for_update
from h2h_core.models import AuditEvent, AuditHead

from .chain import GENESIS_HASH, HASHED_FIELDS, event_hash
from .tree import audit_tree_extend

# pg_try_advisory_xact_lock's key: "h2h_seal" as a 64-bit number. Nothing else takes it.
SEALER_LOCK = int.from_bytes(b"h2h_seal", "big")
_READ = ("id", *(name for name in HASHED_FIELDS if name not in ("seq", "prev_hash")))


def sealed_after_commit() -> bool:
    """Whether events get their chain link after commit, from the sealer (PostgreSQL), or at once (SQLite)."""
    return transaction.get_connection().vendor == "postgresql"


def unsealed():
    """The events without their chain link that this statement sees, in the order they are sealed."""
    return AuditEvent.objects.filter(seq__isnull=True).order_by("id")


def audit_seal(*, limit: int = 20_000, batch: int = 1000) -> int:
    """Seal up to `limit` committed events into the chain, a batch per statement; return how many were sealed.

    Returns 0 at once when another sealer is running (it will take these events) and on SQLite.
    """
    if not sealed_after_commit():
        return 0
    sealed = 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        head = _head()
        seq, last_hash = head.seq, head.hash
        while sealed < limit:
            rows = list(unsealed().values_list(*_READ)[: min(batch, limit - sealed)])
            if not rows:
                break
            values = []
            for row in rows:
                fields = dict(zip(_READ, row, strict=True))
                seq += 1
                fields["seq"], fields["prev_hash"] = seq, last_hash
                last_hash = event_hash(fields)
                values.append((fields["id"], seq, fields["prev_hash"], last_hash))
            _write(values)
            sealed += len(values)
        if sealed:
            AuditHead.objects.filter(pk=1).update(seq=seq, hash=last_hash)
            head.seq, head.hash = seq, last_hash
        audit_tree_extend(head=head)  # the Merkle tree follows the chain, in the same transaction
    return sealed


def _head() -> AuditHead:
    head = audit_head_qs_select_for_update().filter(pk=1).first()
    if head is None:  # an emptied database (tests flush it); the first sealer recreates the head
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = audit_head_qs_select_for_update().get(pk=1)
    return head


def _write(values: list[tuple[int, int, str, str]]) -> None:
    """Link one batch with one UPDATE; every row must still be unsealed, or nothing of the run is kept."""
    table = AuditEvent._meta.db_table
    rows = ", ".join(["(%s::bigint, %s::bigint, %s, %s)"] * len(values))
    params = [value for row in values for value in row]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS e SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, sealed_at = %s"
            f" FROM (VALUES {rows}) AS v(id, seq, prev_hash, hash) WHERE e.id = v.id AND e.seq IS NULL",
            [timezone.now(), *params],
        )
        if cursor.rowcount != len(values):
            raise RuntimeError(f"the audit sealer linked {cursor.rowcount} of {len(values)} events: "
                               "another sealer ran without the lock; nothing was sealed")
