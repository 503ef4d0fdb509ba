"""Prove the audit chain intact, or name the first entry that is not.

The events are streamed in sequence order in chunks, so memory stays flat however long the log
is. Each entry must carry the next sequence number, link to its predecessor's hash, and hash to
its own stored hash; the last one must be the chain head. Signed checkpoints are then checked
against their signatures, the chain, and the chain's record of their signing (verify_checkpoints).

A full run starts at entry 1. An incremental run starts after a checkpoint that an earlier run
proved (`since`): that checkpoint's signature is checked again and the chain must still have its
hash there, but the entries before it are not read again. That is the trade-off: an entry before
it that was rewritten in place since the earlier run (by someone who can bypass the database's
triggers) is found only by the next full run, so full runs are scheduled too (daily).

Only sealed entries are in the chain. Events the sealer has not linked yet (PostgreSQL: their
transaction had not ended when it last ran) are reported as pending, with the oldest one's age,
never as a break: the next run of the sealer links them.

On PostgreSQL a long walk is shared between several processes (verify_segments), which can only
ever prove the chain intact; anything else is decided by the one-process walk here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count, Min

from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead
from h2h_core.transactions import read_snapshot

from . import verify_segments
from .chain import GENESIS_HASH
from .stream import SealedRow, sealed_rows
from .tree import TreeAccumulator
from .verify_checkpoints import (  # noqa: F401  (checkpoint_message, verify_checkpoint_signature: re-exported)
    CheckpointResult,
    VerificationKey,
    check_chain_hash,
    check_signature,
    checkpoint_message,
    checkpoints_with_chain_hash,
    format_utc,
    verify_checkpoint_signature,
    verify_checkpoints,
)


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint an earlier verification proved: an incremental run starts after it."""

    id: int
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verify_chain: intact, or the first bad entry and what is wrong with it."""

    ok: bool
    count: int  # entries verified intact by this run (on failure: those before the first bad one)
    total: int  # entries in the log
    first_bad_seq: int | None
    message: str
    last_seq: int  # the last entry verified intact (0: none)
    last_hash: str
    last_time: datetime | None
    chain_intact: bool = True  # every entry hashes and links; false when the break is in the chain itself
    checkpoints: list[CheckpointResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    from_seq: int = 1  # the first entry this run read
    processes: int = 1  # how many processes walked the chain (verify_segments)
    anchor: CheckpointResult | None = None  # an incremental run: the proven checkpoint it started after
    pending: int = 0  # events not sealed into the chain yet (not verified, not a break)
    pending_since: datetime | None = None  # when the oldest of them was written

    def summary(self) -> str:
        """Return the one-line verdict shown by `manage.py verify_audit` and the auditor's page."""
        verdict = self._verdict()
        if self.pending:
            verdict += (f"; {self.pending} newer entr{'y' if self.pending == 1 else 'ies'} waiting to be sealed "
                        f"(oldest written {format_utc(self.pending_since)})")
        return verdict

    def _verdict(self) -> str:
        if not self.ok:
            return f"Audit chain BROKEN at entry {self.first_bad_seq}: {self.message}"
        if self.anchor is not None:
            proven = f"the checkpoint at entry {self.anchor.seq}, which an earlier verification proved"
            if self.count == 0:
                return f"Audit chain intact up to entry {self.last_seq}: no entries after {proven}"
            return (
                f"Audit chain intact: {self.count} new entries verified, {self.from_seq} to {self.last_seq}"
                f" ({format_utc(self.last_time)}), after {proven}; {self.total} entries in all"
            )
        if self.total == 0:
            return "Audit chain intact: 0 of 0 entries verified (the log is empty)"
        return (
            f"Audit chain intact: {self.count} of {self.total} entries verified up to {self.last_seq}"
            f" ({format_utc(self.last_time)})"
        )


class _Broken(Exception):
    def __init__(self, seq: int, message: str):
        super().__init__(message)
        self.seq = seq
        self.message = message


def _entries(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first} to {last} are"


def verify_chain(*, chunk_size: int = 2000, since: TrustedCheckpoint | None = None,
                 processes: int | None = None) -> ChainReport:
    """Recompute the chain (all of it, or after `since`) and check the signed checkpoints against it.

    Runs in one read-only snapshot (`h2h_core.transactions.read_snapshot`) when called outside a
    transaction, so events appended meanwhile neither hide nor fake a break. Inside a caller's
    transaction its isolation applies: on PostgreSQL's default READ COMMITTED, a concurrent writer
    can then make the head and the events disagree, so call it outside one where writers are busy.
    When `since` no longer verifies, the whole chain is verified instead, and a warning says why.

    `processes`: how many processes may share a long walk (PostgreSQL, outside a transaction, from
    verify_segments.PARALLEL_FROM entries on); None: one per core (up to four), 1: this one only.
    """
    if connection.in_atomic_block:
        return _verify(chunk_size, since, processes=1)
    if processes is None:
        processes = verify_segments.default_processes()
    with read_snapshot():
        return _verify(chunk_size, since, processes=processes)


def _verify(chunk_size: int, since: TrustedCheckpoint | None, *, processes: int) -> ChainReport:
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    key = VerificationKey.load()
    anchor, start_time, fallback = _anchor(since, key) if since is not None else (None, None, "")
    sealed = AuditEvent.objects.filter(seq__isnull=False)
    start_seq = anchor.seq if anchor is not None else 0
    # The root of the Merkle tree at every signed tree's size, computed along the walk.
    roots_at = set(AuditCheckpoint.objects.filter(seq__gt=start_seq).exclude(root_hash="")
                   .values_list("seq", flat=True))

    def walk() -> _ChainWalk:
        state = _ChainWalk(head) if anchor is None else _ChainWalk(head, start=(anchor.seq, anchor.hash))
        state.roots_at = roots_at
        state.tree = TreeAccumulator() if anchor is None else TreeAccumulator.from_store(anchor.seq)
        return state

    after_seq = anchor.seq if anchor is not None else None
    state, shared = walk(), 0
    try:
        if (processes > 1 and connection.vendor == "postgresql" and head is not None
                and head[0] - start_seq >= verify_segments.PARALLEL_FROM):
            # The first segment is walked here with the one-process walk, so a break in it raises as
            # below; any verdict but intact from the other segments means walking again, here.
            shared = verify_segments.walk_in_segments(state, after_seq=after_seq, head_seq=head[0],
                                                      processes=processes, chunk_size=chunk_size)
            if not shared:
                state = walk()
        if not shared:
            for row in sealed_rows(after_seq=after_seq, chunk_size=chunk_size):
                state.check(row)
        state.finish()
    except _Broken as broken:
        first_bad, message, chain_intact = broken.seq, broken.message, False
        total = sealed.count() if anchor is None else state.head_seq
    else:
        first_bad, message, chain_intact = None, "", True
        total = state.count if anchor is None else state.head_seq
    last_time = (AuditEvent.objects.filter(seq=state.last_seq).values_list("occurred_at", flat=True).first()
                 if state.last_seq > start_seq else start_time)
    checkpoints, warnings = verify_checkpoints(key, after_seq=anchor.seq if anchor else None, roots=state.roots)
    if fallback:
        warnings.insert(0, fallback)
    pending = AuditEvent.objects.filter(seq__isnull=True).aggregate(count=Count("id"), oldest=Min("occurred_at"))
    failed = [result for result in checkpoints if not result.ok]
    if first_bad is None and failed:
        first_bad, message = failed[0].seq, failed[0].message
    return ChainReport(
        ok=first_bad is None,
        count=state.count,
        total=total,
        first_bad_seq=first_bad,
        message=message,
        last_seq=state.last_seq,
        last_hash=state.last_hash,
        last_time=last_time,
        chain_intact=chain_intact,
        checkpoints=checkpoints,
        warnings=warnings,
        from_seq=state.start_seq + 1,
        anchor=anchor,
        pending=pending["count"],
        pending_since=pending["oldest"],
        processes=shared or 1,
    )


def _anchor(since: TrustedCheckpoint, key: VerificationKey) -> tuple[CheckpointResult | None, datetime | None, str]:
    """Check the checkpoint an incremental run starts after; (None, None, why not) when it no longer holds."""
    instead = "the whole chain was verified instead"
    row = checkpoints_with_chain_hash().filter(pk=since.id).first()
    if row is None:
        return None, None, (f"The checkpoint at entry {since.seq} that the last verification proved is gone "
                            f"(deleted): {instead}.")
    problems: list[str] = []
    if (row.seq, row.hash) != (since.seq, since.hash):
        problems.append("it is not the one the last verification proved (altered)")
    signature_valid, current_key = check_signature(row, key, problems)
    if current_key is False:
        problems.append("it was not signed by the configured key")
    matches_chain = check_chain_hash(row, problems)
    if row.root_hash and TreeAccumulator.from_store(row.seq).root() != row.root_hash:
        problems.append("the stored Merkle tree up to it does not give the root it signed")
    if problems:
        return None, None, (f"The checkpoint at entry {since.seq} that the last verification proved no longer "
                            f"holds ({'; '.join(problems)}): {instead}.")
    time = AuditEvent.objects.filter(seq=row.seq).values_list("occurred_at", flat=True).first()
    result = CheckpointResult(
        id=row.pk, seq=row.seq, hash=row.hash, signed_at=row.signed_at, key_fingerprint=row.key_fingerprint,
        signature_valid=signature_valid, matches_chain=matches_chain, current_key=current_key,
        message=f"checkpoint at entry {row.seq} signed {format_utc(row.signed_at)}: signature valid, matches the chain",
    )
    return result, time, ""


class _ChainWalk:
    """The state carried from one entry to the next while streaming the chain."""

    def __init__(self, head: tuple[int, str] | None, start: tuple[int, str] = (0, GENESIS_HASH)):
        self.head_missing = head is None
        self.head_seq, self.head_hash = head if head is not None else (0, GENESIS_HASH)
        self.start_seq = start[0]
        self.count = 0
        self.last_seq, self.last_hash = start
        self.last_prev_hash: str | None = None
        self.before_last: tuple[int, str] = start
        self.tree = TreeAccumulator()
        self.roots_at: set[int] = set()
        self.roots: dict[int, str] = {0: self.tree.root()} if self.start_seq == 0 else {}

    def check(self, entry: SealedRow) -> None:
        seq, expected = entry.seq, self.last_seq + 1
        if self.head_missing:
            raise _Broken(seq, "the chain head (the AuditHead row) is missing, yet the log has entries")
        if seq < 1:
            raise _Broken(seq, f"entry {seq} has an impossible sequence number (they start at 1): "
                               "a row was inserted behind the chain's back")
        if seq < expected:  # rows come ordered by seq, so this is the previous number again
            raise _Broken(seq, f"entry {seq} appears twice: a row was inserted behind the chain's back")
        if seq > self.head_seq:
            raise _Broken(seq, f"entry {seq} lies beyond the chain head (entry {self.head_seq}): "
                               "it was inserted behind the chain's back")
        if seq > expected:
            raise _Broken(expected, f"{_entries(expected, seq - 1)} missing (removed)")
        if entry.prev_hash != self.last_hash:
            if self.count and entry.prev_hash == self.last_prev_hash:
                raise _Broken(self.last_seq, f"entry {self.last_seq} was inserted behind the chain's back: "
                                             f"entry {seq} links to the entry before it")
            if seq == 1:
                raise _Broken(seq, "entry 1 does not start from the genesis hash: it was altered")
            raise _Broken(seq, f"entry {seq} does not link to entry {self.last_seq}: its previous-hash is not "
                               f"entry {self.last_seq}'s hash (entry {seq} was altered or inserted, "
                               f"or entry {self.last_seq} was rewritten)")
        if not entry.content_intact:
            raise _Broken(seq, f"entry {seq} was altered: its hash does not match its content")
        self.count += 1
        self.before_last = (self.last_seq, self.last_hash)
        self.last_seq, self.last_hash, self.last_prev_hash = seq, entry.hash, entry.prev_hash
        self.tree.append(entry.hash)
        if seq in self.roots_at:
            self.roots[seq] = self.tree.root()

    def finish(self) -> None:
        if self.last_seq < self.head_seq:
            raise _Broken(self.last_seq + 1, f"{_entries(self.last_seq + 1, self.head_seq)} missing (removed): "
                                             f"the chain head is at entry {self.head_seq}")
        if self.last_hash != self.head_hash:
            if self.last_seq == 0:
                raise _Broken(0, "the log is empty but the chain head's hash is not the genesis hash")
            bad = self.last_seq
            if self.count:  # the head does not vouch for the last entry after all: not verified intact
                self.count -= 1
                self.roots.pop(bad, None)
                self.last_seq, self.last_hash = self.before_last
            raise _Broken(bad, f"entry {bad} does not match the chain head: it was rewritten (or the head was)")
