"""Prove the audit chain intact, or name the first entry that is not.

The events are streamed in sequence order in chunks, so memory stays flat however long the log
is. Each entry must carry the next sequence number, link to its predecessor's hash, and hash to
its own stored hash; the last one must be the chain head. Signed checkpoints are then checked
twice: the signature against the public key stored with it, and the signed hash against the hash
the chain has now at that sequence number (which catches a chain rewritten and rehashed from some
entry on, the one change the hashes alone cannot reveal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery

from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead

from .chain import GENESIS_HASH, HASHED_FIELDS, event_hash

_STREAMED_FIELDS = (*HASHED_FIELDS, "hash")


@dataclass(frozen=True)
class CheckpointResult:
    """What one signed checkpoint says and whether the signature and the chain agree with it."""

    id: int
    seq: int
    hash: str
    signed_at: datetime
    key_fingerprint: str
    signature_valid: bool
    matches_chain: bool
    current_key: bool | None  # None when no signing key is configured to compare with
    message: str

    @property
    def ok(self) -> bool:
        return self.signature_valid and self.matches_chain


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verify_chain: intact, or the first bad entry and what is wrong with it."""

    ok: bool
    count: int  # entries verified intact (on failure: those before the first bad one)
    total: int  # entries in the log
    first_bad_seq: int | None
    message: str
    last_seq: int  # the last entry verified intact (0: none)
    last_hash: str
    last_time: datetime | None
    chain_intact: bool = True  # every entry hashes and links; false when the break is in the chain itself
    checkpoints: list[CheckpointResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return the one-line verdict shown by `manage.py verify_audit` and the auditor's page."""
        if not self.ok:
            return f"Audit chain BROKEN at entry {self.first_bad_seq}: {self.message}"
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


def format_utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def _entries(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first} to {last} are"


def verify_chain(*, chunk_size: int = 2000) -> ChainReport:
    """Recompute the whole chain and check every signed checkpoint against it.

    Runs in one read-only snapshot (REPEATABLE READ on PostgreSQL) when called outside a
    transaction, so events appended meanwhile neither hide nor fake a break. Inside a caller's
    transaction its isolation applies: on PostgreSQL's default READ COMMITTED, a concurrent writer
    can then make the head and the events disagree, so call it outside one where writers are busy.
    """
    if connection.in_atomic_block:
        return _verify(chunk_size)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _verify(chunk_size)


def _verify(chunk_size: int) -> ChainReport:
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    state = _ChainWalk(head)
    try:
        rows = AuditEvent.objects.order_by("seq", "id").values_list(*_STREAMED_FIELDS)
        for row in rows.iterator(chunk_size=chunk_size):
            state.check(dict(zip(_STREAMED_FIELDS, row, strict=True)))
        state.finish()
    except _Broken as broken:
        first_bad, message, chain_intact = broken.seq, broken.message, False
        total = AuditEvent.objects.count()
    else:
        first_bad, message, chain_intact, total = None, "", True, state.count
    checkpoints, warnings = _verify_checkpoints()
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
        last_time=state.last_time,
        chain_intact=chain_intact,
        checkpoints=checkpoints,
        warnings=warnings,
    )


class _ChainWalk:
    """The state carried from one entry to the next while streaming the chain."""

    def __init__(self, head: tuple[int, str] | None):
        self.head_missing = head is None
        self.head_seq, self.head_hash = head if head is not None else (0, GENESIS_HASH)
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        self.last_prev_hash: str | None = None
        self.last_time: datetime | None = None
        self.before_last: tuple[int, str, datetime | None] = (0, GENESIS_HASH, None)

    def check(self, entry: dict) -> None:
        seq, expected = entry["seq"], self.last_seq + 1
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
        if entry["prev_hash"] != self.last_hash:
            if self.last_seq and entry["prev_hash"] == self.last_prev_hash:
                raise _Broken(self.last_seq, f"entry {self.last_seq} was inserted behind the chain's back: "
                                             f"entry {seq} links to the entry before it")
            if seq == 1:
                raise _Broken(seq, "entry 1 does not start from the genesis hash: it was altered")
            raise _Broken(seq, f"entry {seq} does not link to entry {self.last_seq}: its previous-hash is not "
                               f"entry {self.last_seq}'s hash (entry {seq} was altered or inserted, "
                               f"or entry {self.last_seq} was rewritten)")
        try:
            computed = event_hash(entry)
        except (TypeError, ValueError, AttributeError, KeyError):
            computed = None
        if computed != entry["hash"]:
            raise _Broken(seq, f"entry {seq} was altered: its hash does not match its content")
        self.count += 1
        self.before_last = (self.last_seq, self.last_hash, self.last_time)
        self.last_seq, self.last_hash, self.last_prev_hash = seq, entry["hash"], entry["prev_hash"]
        self.last_time = entry["occurred_at"]

    def finish(self) -> None:
        if self.last_seq < self.head_seq:
            raise _Broken(self.last_seq + 1, f"{_entries(self.last_seq + 1, self.head_seq)} missing (removed): "
                                             f"the chain head is at entry {self.head_seq}")
        if self.last_hash != self.head_hash:
            if self.last_seq == 0:
                raise _Broken(0, "the log is empty but the chain head's hash is not the genesis hash")
            bad = self.last_seq  # the head does not vouch for it after all: not verified intact
            self.count -= 1
            self.last_seq, self.last_hash, self.last_time = self.before_last
            raise _Broken(bad, f"entry {bad} does not match the chain head: it was rewritten (or the head was)")


def _verify_checkpoints() -> tuple[list[CheckpointResult], list[str]]:
    from .checkpoint import configured_key_fingerprint, key_fingerprint

    configured = configured_key_fingerprint()
    warnings = []
    if configured is None and AuditCheckpoint.objects.exists():
        warnings.append("No audit signing key is configured: checkpoints were checked only against "
                        "the public keys stored with them.")
    results = []
    chain_hashes = AuditEvent.objects.filter(seq=OuterRef("seq")).values("hash")[:1]
    checkpoints = AuditCheckpoint.objects.annotate(chain_hash=Subquery(chain_hashes)).order_by("seq", "id")
    for checkpoint in checkpoints.iterator():
        problems = []
        signature_valid = verify_checkpoint_signature(
            public_key_pem=checkpoint.public_key,
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            signed_at=checkpoint.signed_at,
            signature=checkpoint.signature,
        )
        if not signature_valid:
            problems.append("its signature does not verify (forged or altered)")
        try:
            stored_fingerprint = key_fingerprint(checkpoint.public_key)
        except ValueError:
            stored_fingerprint = None
        if stored_fingerprint != checkpoint.key_fingerprint:
            signature_valid = False
            problems.append("its key fingerprint does not belong to its public key")
        chain_hash = GENESIS_HASH if checkpoint.seq == 0 else checkpoint.chain_hash
        matches_chain = chain_hash == checkpoint.hash
        if chain_hash is None:
            problems.append(f"entry {checkpoint.seq}, which it signed, is no longer in the log")
        elif not matches_chain:
            problems.append(f"the chain's hash at entry {checkpoint.seq} is not the signed one: "
                            f"the log was rewritten up to entry {checkpoint.seq}")
        current_key = None if configured is None else checkpoint.key_fingerprint == configured
        if current_key is False and signature_valid:
            warnings.append(f"checkpoint at entry {checkpoint.seq} ({format_utc(checkpoint.signed_at)}) was "
                            f"signed by key {checkpoint.key_fingerprint[:16]}…, not the configured signing key")
        label = f"checkpoint at entry {checkpoint.seq} signed {format_utc(checkpoint.signed_at)}"
        message = f"{label}: " + ("; ".join(problems) if problems else "signature valid, matches the chain")
        results.append(
            CheckpointResult(
                id=checkpoint.pk,
                seq=checkpoint.seq,
                hash=checkpoint.hash,
                signed_at=checkpoint.signed_at,
                key_fingerprint=checkpoint.key_fingerprint,
                signature_valid=signature_valid,
                matches_chain=matches_chain,
                current_key=current_key,
                message=message,
            )
        )
    return results, warnings


def checkpoint_message(*, seq: int, hash: str, signed_at: datetime | str) -> bytes:
    """Return the bytes a checkpoint's signature covers (AuditCheckpoint.signed_message)."""
    if isinstance(signed_at, datetime):
        signed_at = signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"h2h-audit-checkpoint:v1:{seq}:{hash}:{signed_at}".encode()


def verify_checkpoint_signature(
    *, public_key_pem: str | bytes, seq: int, hash: str, signed_at: datetime | str, signature: str
) -> bool:
    """Check one checkpoint with nothing but its public key: no database, no settings.

    `signed_at` is a datetime or its UTC text form "YYYY-MM-DDTHH:MM:SS.ffffffZ"; `signature` is
    the hex text stored with the checkpoint.
    """
    try:
        data = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
        public_key = serialization.load_pem_public_key(data)
        if not isinstance(public_key, Ed25519PublicKey):
            return False
        public_key.verify(bytes.fromhex(signature), checkpoint_message(seq=seq, hash=hash, signed_at=signed_at))
    except (InvalidSignature, ValueError, TypeError, UnicodeError):
        return False
    return True
