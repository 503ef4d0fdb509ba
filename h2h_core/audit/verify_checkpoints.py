"""Check signed checkpoints: their signatures, the chain's hashes, and the chain's record of them.

Each checkpoint is checked three ways: its Ed25519 signature (with the configured public key when
it was signed by that key, else with the key stored beside it, which earns a warning), the hash
the chain has now at its sequence number (a chain rewritten and rehashed from some entry on), and
the `audit.checkpoint_signed` event its signing appended to the chain. That event makes deleting
or altering checkpoint rows evident: the chain still names the checkpoint, with its hash and key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db.models import OuterRef, Q, Subquery

from h2h_core.models import AuditCheckpoint, AuditEvent
from h2h_core.models.audit import checkpoint_message

from .chain import GENESIS_HASH, format_instant
from .checkpoint import CHECKPOINT_EVENT, SigningKeyError, key_fingerprint, load_public_key, public_key_pem


@dataclass(frozen=True)
class CheckpointResult:
    """What one signed checkpoint says and whether its signature, the chain and its record agree."""

    id: int | None
    seq: int
    hash: str
    signed_at: datetime | None
    key_fingerprint: str
    signature_valid: bool
    matches_chain: bool
    current_key: bool | None  # None when no public key is configured to compare with
    message: str
    event_seq: int | None = None  # the chain's entry recording its signing (None: there is none)
    recorded: bool = True  # that entry exists and agrees with the row
    stored: bool = True  # false: the chain recorded a checkpoint whose row is gone

    @property
    def ok(self) -> bool:
        return self.stored and self.recorded and self.signature_valid and self.matches_chain

    def as_dict(self) -> dict:
        """Return the result as JSON-ready values (kept with a chain verification)."""
        values = asdict(self)
        values["signed_at"] = format_instant(self.signed_at) if self.signed_at else None
        values["ok"] = self.ok
        return values


@dataclass(frozen=True)
class VerificationKey:
    """The configured public key, or why there is none."""

    pem: str | None
    fingerprint: str | None
    problem: str = ""

    @classmethod
    def load(cls) -> VerificationKey:
        try:
            key = load_public_key()
        except SigningKeyError as error:
            return cls(None, None, str(error))
        return cls(public_key_pem(key), key_fingerprint(key))


def format_utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def label(seq, signed_at: datetime | None) -> str:
    return f"checkpoint at entry {seq} signed {format_utc(signed_at)}"


def checkpoints_with_chain_hash():
    """Checkpoint rows annotated with the hash the chain has now at their sequence number."""
    chain_hashes = AuditEvent.objects.filter(seq=OuterRef("seq")).values("hash")[:1]
    return AuditCheckpoint.objects.annotate(chain_hash=Subquery(chain_hashes))


def check_signature(row: AuditCheckpoint, key: VerificationKey, problems: list[str]) -> tuple[bool, bool | None]:
    """Return (signature valid, signed by the configured key); append what is wrong to `problems`."""
    signed_by_configured = key.fingerprint is not None and row.key_fingerprint == key.fingerprint
    valid = verify_checkpoint_signature(
        public_key_pem=key.pem if signed_by_configured else row.public_key,
        seq=row.seq, hash=row.hash, signed_at=row.signed_at, signature=row.signature, root_hash=row.root_hash,
    )
    if not valid:
        problems.append("its signature does not verify (forged or altered)")
    try:
        stored_fingerprint = key_fingerprint(row.public_key)
    except ValueError:
        stored_fingerprint = None
    if stored_fingerprint != row.key_fingerprint:
        valid = False
        problems.append("its key fingerprint does not belong to its public key")
    return valid, None if key.fingerprint is None else signed_by_configured


def check_chain_hash(row, problems: list[str]) -> bool:
    chain_hash = GENESIS_HASH if row.seq == 0 else row.chain_hash
    if chain_hash is None:
        problems.append(f"entry {row.seq}, which it signed, is no longer in the log")
    elif chain_hash != row.hash:
        problems.append(f"the chain's hash at entry {row.seq} is not the signed one: "
                        f"the log was rewritten up to entry {row.seq}")
    return chain_hash == row.hash


def _recorded_values(row: AuditCheckpoint) -> dict:
    values = {"seq": row.seq, "hash": row.hash, "signed_at": format_instant(row.signed_at),
              "key_fingerprint": row.key_fingerprint}
    if row.root_hash:  # v2: the signed Merkle root is recorded too
        values["root_hash"] = row.root_hash
    return values


def _checked(row, key: VerificationKey, record: tuple[int, dict] | None, warnings: list[str],
             chain_root: str | None = None) -> CheckpointResult:
    """`chain_root`: the root of the Merkle tree over the chain's entries 1..row.seq, as the walk computed it
    (None when the walk did not reach it: a break before it, or an incremental run's earlier entries)."""
    problems: list[str] = []
    signature_valid, current_key = check_signature(row, key, problems)
    matches_chain = check_chain_hash(row, problems)
    if row.root_hash and chain_root is not None and chain_root != row.root_hash:
        matches_chain = False
        problems.append(f"the Merkle root it signed is not the root of the chain's entries 1 to {row.seq}")
    event_seq, recorded = None, False
    if record is None:
        problems.append("the chain has no record of its signing: it was stored behind the chain's back")
    else:
        event_seq, values = record
        altered = [name for name, value in _recorded_values(row).items() if values.get(name) != value]
        recorded = not altered
        if altered:
            problems.append(f"it does not match the chain's record of its signing (entry {event_seq}): "
                            f"its {' and '.join(altered)} {'was' if len(altered) == 1 else 'were'} altered")
    if current_key is False and signature_valid:
        warnings.append(f"{label(row.seq, row.signed_at)} was signed by key {row.key_fingerprint[:16]}…, "
                        "not the configured one")
    message = f"{label(row.seq, row.signed_at)}: " + (
        "; ".join(problems) if problems else "signature valid, matches the chain")
    return CheckpointResult(
        id=row.pk, seq=row.seq, hash=row.hash, signed_at=row.signed_at, key_fingerprint=row.key_fingerprint,
        signature_valid=signature_valid, matches_chain=matches_chain, current_key=current_key, message=message,
        event_seq=event_seq, recorded=recorded,
    )


def _missing(object_id: str, event_seq: int, values: dict) -> CheckpointResult:
    seq = values.get("seq") if isinstance(values.get("seq"), int) else event_seq
    try:
        signed_at = datetime.fromisoformat(values.get("signed_at"))
    except (TypeError, ValueError):
        signed_at = None
    return CheckpointResult(
        id=int(object_id) if object_id.isdigit() else None, seq=seq, hash=str(values.get("hash") or ""),
        signed_at=signed_at, key_fingerprint=str(values.get("key_fingerprint") or ""), signature_valid=False,
        matches_chain=False, current_key=None, event_seq=event_seq, stored=False,
        message=(f"{label(seq, signed_at)}: it is missing (deleted); "
                 f"the chain recorded its signing as entry {event_seq}"),
    )


def verify_checkpoints(
    key: VerificationKey, *, after_seq: int | None = None, roots: dict[int, str] | None = None
) -> tuple[list[CheckpointResult], list[str]]:
    """Check the checkpoints against their signatures, the chain and the chain's record of them.

    `after_seq` (an incremental run): only the signing records after that entry, and the checkpoints
    at or after it (the one it names included) or named by those records.
    """
    warnings: list[str] = []
    records = AuditEvent.objects.filter(action=CHECKPOINT_EVENT, seq__isnull=False)
    # A checkpoint whose signing is not sealed into the chain yet is checked by a later run.
    sealing = {int(object_id) for object_id in AuditEvent.objects.filter(action=CHECKPOINT_EVENT, seq__isnull=True)
               .values_list("object_id", flat=True) if object_id.isdigit()}
    rows = checkpoints_with_chain_hash().exclude(pk__in=sealing)
    if after_seq is not None:
        records = records.filter(seq__gt=after_seq)
    recorded: dict[str, tuple[int, dict]] = {}
    for event_seq, object_id, values in records.order_by("seq").values_list("seq", "object_id", "after"):
        recorded.setdefault(object_id, (event_seq, values if isinstance(values, dict) else {}))
    if after_seq is not None:
        named = [int(object_id) for object_id in recorded if object_id.isdigit()]
        rows = rows.filter(Q(seq__gte=after_seq) | Q(pk__in=named))
    results = [_checked(row, key, recorded.pop(str(row.pk), None), warnings, (roots or {}).get(row.seq))
               for row in rows.order_by("seq", "id").iterator()]
    results += [_missing(object_id, event_seq, values) for object_id, (event_seq, values) in recorded.items()]
    results.sort(key=lambda result: (result.seq, result.event_seq or 0))
    if sealing:
        warnings.append(f"{len(sealing)} checkpoint(s) not checked yet: the record of their signing is not "
                        "sealed into the chain yet.")
    if key.fingerprint is None and results:
        warnings.insert(0, f"{key.problem} Checkpoints were checked only against the public keys stored with them.")
    return results, warnings


def verify_checkpoint_signature(
    *, public_key_pem: str | bytes, seq: int, hash: str, signed_at: datetime | str, signature: str,
    root_hash: str = "",
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
        public_key.verify(bytes.fromhex(signature),
                          checkpoint_message(seq=seq, hash=hash, signed_at=signed_at, root_hash=root_hash))
    except (InvalidSignature, ValueError, TypeError, UnicodeError):
        return False
    return True
