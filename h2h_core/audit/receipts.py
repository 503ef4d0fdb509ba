"""Receipts: one audit event, proven to be in the signed log with nothing but the public key.

A receipt ("h2h-receipt/v1", JSON) holds the event's canonical body (the fifteen hashed fields as
`chain.event_body` gives them), its hash, its leaf index (seq - 1) and the tree size, the inclusion
path (hex, RFC 9162 order) and the v2 checkpoint that signs the tree's root. A consistency proof
("h2h-consistency/v1") holds two v2 checkpoints and the RFC 9162 proof that the older tree is a
prefix of the newer one. examples/verify_receipt.py checks both outside the product; docs/audit.md
describes the format.

The v2 checkpoint message adds the tree to what v1 signs (see `checkpoint_message_v2`). Pure:
no database, no settings; the storage (sealer, checkpoint rows) hands in plain values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from h2h_core.models.audit import checkpoint_message

from . import merkle
from .chain import HASHED_FIELDS, canonical_json, event_body, format_instant

RECEIPT_FORMAT = "h2h-receipt/v1"
CONSISTENCY_FORMAT = "h2h-consistency/v1"
RECEIPT_FIELDS = frozenset({"format", "event", "event_hash", "leaf_index", "tree_size", "inclusion_path", "checkpoint"})
CHECKPOINT_FIELDS = ("seq", "hash", "tree_size", "root_hash", "signed_at", "signature", "key_fingerprint")


def checkpoint_message_v2(*, seq: int, hash: str, tree_size: int, root_hash: str, signed_at: datetime | str) -> bytes:
    """Return the bytes a v2 checkpoint's signature covers: the chain head and the Merkle tree's root.

    `h2h-audit-checkpoint:v2:{seq}:{hash}:{tree_size}:{root_hash}:{signed_at}`, hashes as lowercase
    hex, signed_at in UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ (as v1).
    """
    if not root_hash:
        raise ValueError("a v2 checkpoint signs a Merkle root")
    return checkpoint_message(seq=seq, hash=hash, signed_at=signed_at, root_hash=root_hash, tree_size=tree_size)


def checkpoint_document(
    *,
    seq: int,
    hash: str,
    tree_size: int,
    root_hash: str,
    signed_at: datetime | str,
    signature: str,
    key_fingerprint: str,
) -> dict:
    """Return a signed v2 checkpoint as the receipt carries it (signature: hex, as checkpoint.py stores it)."""
    return {
        "seq": seq,
        "hash": hash,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "signed_at": signed_at if isinstance(signed_at, str) else format_instant(signed_at),
        "signature": signature,
        "key_fingerprint": key_fingerprint,
    }


def checkpoint_v2_sign(
    *, private_key: Ed25519PrivateKey, seq: int, hash: str, tree_size: int, root_hash: str, signed_at: datetime
) -> dict:
    """Sign a chain head and the root of the tree over its first `tree_size` entries; return the document."""
    message = checkpoint_message_v2(seq=seq, hash=hash, tree_size=tree_size, root_hash=root_hash, signed_at=signed_at)
    raw = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return checkpoint_document(
        seq=seq,
        hash=hash,
        tree_size=tree_size,
        root_hash=root_hash,
        signed_at=signed_at,
        signature=private_key.sign(message).hex(),
        key_fingerprint=hashlib.sha256(raw).hexdigest(),
    )


def receipt_build(*, event: dict, tree_size: int, inclusion_path: Sequence[bytes], checkpoint: dict) -> dict:
    """Return the receipt of an event (a mapping of its fields, `hash` included) under a checkpoint.

    `inclusion_path` is `merkle.inclusion_proof(index=seq - 1, size=tree_size, ...)` for the tree the
    checkpoint signs (`checkpoint_document`), so `tree_size` must be the checkpoint's.
    """
    return {
        "format": RECEIPT_FORMAT,
        "event": event_body(event),
        "event_hash": event["hash"],
        "leaf_index": event["seq"] - 1,
        "tree_size": tree_size,
        "inclusion_path": [node.hex() for node in inclusion_path],
        "checkpoint": checkpoint,
    }


def consistency_build(*, old_checkpoint: dict, new_checkpoint: dict, proof: Sequence[bytes]) -> dict:
    """Return the consistency document between two checkpoints (`merkle.consistency_proof` between their trees)."""
    return {
        "format": CONSISTENCY_FORMAT,
        "old": old_checkpoint,
        "new": new_checkpoint,
        "proof": [node.hex() for node in proof],
    }


# --- Verification: the checks examples/verify_receipt.py repeats, with the same messages ------------


def _public_key(public_key_pem: str | bytes) -> Ed25519PublicKey | None:
    data = public_key_pem.encode("ascii", "replace") if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def _hash_bytes(value) -> bytes | None:
    """Return 32 bytes from lowercase hex text, None for anything else."""
    if not isinstance(value, str) or len(value) != 2 * merkle.HASH_SIZE or value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _hash_list(value) -> list[bytes] | None:
    hashes = [_hash_bytes(node) for node in value] if isinstance(value, list) else [None]
    return None if None in hashes else hashes


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def checkpoint_problems(checkpoint, public_key: Ed25519PublicKey, name: str = "checkpoint") -> list[str]:
    """Return what is wrong with a v2 checkpoint document: its shape, its key, its signature."""
    if not isinstance(checkpoint, dict) or set(checkpoint) != set(CHECKPOINT_FIELDS):
        return [f"{name}: not a v2 checkpoint (fields {', '.join(CHECKPOINT_FIELDS)})"]
    seq, tree_size = checkpoint["seq"], checkpoint["tree_size"]
    problems = []
    if not (_count(seq) and _count(tree_size)):
        problems.append(f"{name}: seq and tree_size must be whole numbers")
    elif tree_size > seq:
        problems.append(f"{name}: its tree has more entries ({tree_size}) than its chain ({seq})")
    if _hash_bytes(checkpoint["hash"]) is None or _hash_bytes(checkpoint["root_hash"]) is None:
        problems.append(f"{name}: hash and root_hash must be 64 lowercase hex digits")
    raw = public_key.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    if checkpoint["key_fingerprint"] != hashlib.sha256(raw).hexdigest():
        problems.append(f"{name}: signed by key {checkpoint['key_fingerprint']}, not by the public key given")
    if problems:
        return problems
    message = checkpoint_message_v2(
        seq=seq,
        hash=checkpoint["hash"],
        tree_size=tree_size,
        root_hash=checkpoint["root_hash"],
        signed_at=str(checkpoint["signed_at"]),
    )
    try:
        public_key.verify(bytes.fromhex(str(checkpoint["signature"])), message)
    except (InvalidSignature, ValueError):
        problems.append(f"{name}: its signature does not verify")
    return problems


def _event_problems(receipt: dict) -> list[str]:
    body, checkpoint = receipt["event"], receipt["checkpoint"]
    if not isinstance(body, dict) or set(body) != set(HASHED_FIELDS):
        return [f"event: not an audit event body (fields {', '.join(HASHED_FIELDS)})"]
    try:
        computed = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    except ValueError:  # NaN or an infinity, which json.loads accepts and no event holds
        computed = "nothing (not canonical JSON)"
    if computed != receipt["event_hash"]:
        return [f"event: its fields hash to {computed}, not to the receipt's event_hash"]
    if not _count(body["seq"]) or receipt["leaf_index"] != body["seq"] - 1:
        return ["event: leaf_index is not the event's seq - 1"]
    if body["seq"] == checkpoint["seq"] and receipt["event_hash"] != checkpoint["hash"]:
        return ["event: it is the checkpoint's head entry, but the checkpoint signs another hash"]
    return []


def _inclusion_problems(receipt: dict) -> list[str]:
    size, signed_size = receipt["tree_size"], receipt["checkpoint"]["tree_size"]
    if size != signed_size:
        return [f"inclusion: the path is for a tree of {size} entries, the checkpoint signs one of {signed_size}"]
    path, leaf = _hash_list(receipt["inclusion_path"]), _hash_bytes(receipt["event_hash"])
    root, index = _hash_bytes(receipt["checkpoint"]["root_hash"]), receipt["leaf_index"]
    if path is None or leaf is None or root is None or not _count(index) or not _count(size):
        return ["inclusion: event_hash and inclusion_path must be hex hashes, leaf_index and tree_size numbers"]
    if not merkle.verify_inclusion(leaf_hash=merkle.leaf_hash(leaf), index=index, size=size, proof=path, root=root):
        return [f"inclusion: the path does not lead from leaf {index} to the signed root of {size} entries"]
    return []


def receipt_verify(receipt: dict, public_key_pem: str) -> list[str]:
    """Return what is wrong with a receipt (empty when it proves its event is in the signed log).

    Checks that the event's fields hash to its hash, that the inclusion path leads from that hash
    (leaf seq - 1) to the checkpoint's root, and that the checkpoint is signed by `public_key_pem`.
    """
    public_key = _public_key(public_key_pem)
    if public_key is None:
        return ["key: not an Ed25519 public key in PEM"]
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT or set(receipt) != RECEIPT_FIELDS:
        return [f"receipt: not an {RECEIPT_FORMAT} receipt (fields {', '.join(sorted(RECEIPT_FIELDS))})"]
    problems = checkpoint_problems(receipt["checkpoint"], public_key)
    if problems and "not a v2 checkpoint" in problems[0]:
        return problems
    return _event_problems(receipt) + _inclusion_problems(receipt) + problems


def consistency_verify(document: dict, public_key_pem: str) -> list[str]:
    """Return what is wrong with a consistency document (empty when the old tree is a prefix of the new)."""
    public_key = _public_key(public_key_pem)
    if public_key is None:
        return ["key: not an Ed25519 public key in PEM"]
    if (
        not isinstance(document, dict)
        or document.get("format") != CONSISTENCY_FORMAT
        or set(document) != {"format", "old", "new", "proof"}
    ):
        return [f"consistency: not an {CONSISTENCY_FORMAT} document (fields format, old, new, proof)"]
    problems = checkpoint_problems(document["old"], public_key, "old checkpoint")
    problems += checkpoint_problems(document["new"], public_key, "new checkpoint")
    if problems:
        return problems
    old, new, proof = document["old"], document["new"], _hash_list(document["proof"])
    if proof is None:
        return ["consistency: the proof must be a list of hex hashes"]
    if old["tree_size"] > new["tree_size"]:
        return [f"consistency: the old tree ({old['tree_size']} entries) is larger than the new ({new['tree_size']})"]
    if not merkle.verify_consistency(
        old_size=old["tree_size"],
        size=new["tree_size"],
        old_root=bytes.fromhex(old["root_hash"]),
        root=bytes.fromhex(new["root_hash"]),
        proof=proof,
    ):
        return [f"consistency: the tree of {old['tree_size']} entries is not proven a prefix of the new one"]
    return []
