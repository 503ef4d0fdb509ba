#!/usr/bin/env python3
"""Check an H2H audit receipt offline: this event is in the audit log the holder of the key signed.

    python3 verify_receipt.py receipt.json public_key.pem
    python3 verify_receipt.py receipt.json public_key.pem --consistency consistency.json

A receipt ("h2h-receipt/v1", downloaded from a decision's page or the API) holds one audit event,
its hash, an RFC 9162 inclusion proof and the signed checkpoint of the tree it is in. This script
recomputes the event's hash from its fields, walks the proof from that hash to the signed root,
and checks the checkpoint's Ed25519 signature and key fingerprint against the public key you were
given (not one taken from the receipt). With --consistency it also checks an "h2h-consistency/v1"
document: two signed checkpoints and the proof that the older tree is a prefix of the newer one,
i.e. that nothing signed before was changed or removed since.

Needs Python 3.10+ and the `cryptography` package, nothing of H2H: the few lines of RFC 9162 and
of the event's canonical form are repeated here on purpose (docs/audit.md describes both). The
product's h2h_core.audit.receipts gives the same answers, and its tests hold the two together.
Prints every check; exits 0 when all hold, 1 when any fails (2 for a file that cannot be read).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

RECEIPT_FORMAT = "h2h-receipt/v1"
CONSISTENCY_FORMAT = "h2h-consistency/v1"
RECEIPT_FIELDS = {"format", "event", "event_hash", "leaf_index", "tree_size", "inclusion_path", "checkpoint"}
CHECKPOINT_FIELDS = ("seq", "hash", "tree_size", "root_hash", "signed_at", "signature", "key_fingerprint")
EVENT_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_roles",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "before",
    "after",
    "reason",
    "ip",
    "request_id",
    "prev_hash",
)


# --- RFC 9162 §2.1: hashing and the two verification algorithms -------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, with `leaf` the leaf's hash."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, size: int, old_root: bytes, root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2; equal sizes need an empty proof and equal roots, and the empty tree is a prefix of all."""
    if not 0 <= old_size <= size:
        return False
    if old_size == size:
        return not path and old_root == root
    if old_size == 0:
        return not path and old_root == hashlib.sha256(b"").digest()
    if not path:
        return False
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == root and sn == 0


# --- The receipt -------------------------------------------------------------------------------------


def event_hash(body: dict) -> str:
    """SHA-256 of the event's canonical JSON: keys sorted, no whitespace, UTF-8, no NaN."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def checkpoint_message(c: dict) -> bytes:
    return (
        f"h2h-audit-checkpoint:v2:{c['seq']}:{c['hash']}:{c['tree_size']}:{c['root_hash']}:{c['signed_at']}"
    ).encode()


def hash_bytes(value) -> bytes | None:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def hash_list(value) -> list[bytes] | None:
    hashes = [hash_bytes(node) for node in value] if isinstance(value, list) else [None]
    return None if None in hashes else hashes


def count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def checkpoint_problems(c, key: Ed25519PublicKey, name: str = "checkpoint") -> list[str]:
    if not isinstance(c, dict) or set(c) != set(CHECKPOINT_FIELDS):
        return [f"{name}: not a v2 checkpoint (fields {', '.join(CHECKPOINT_FIELDS)})"]
    problems = []
    if not (count(c["seq"]) and count(c["tree_size"])):
        problems.append(f"{name}: seq and tree_size must be whole numbers")
    elif c["tree_size"] > c["seq"]:
        problems.append(f"{name}: its tree has more entries ({c['tree_size']}) than its chain ({c['seq']})")
    if hash_bytes(c["hash"]) is None or hash_bytes(c["root_hash"]) is None:
        problems.append(f"{name}: hash and root_hash must be 64 lowercase hex digits")
    raw = key.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    if c["key_fingerprint"] != hashlib.sha256(raw).hexdigest():
        problems.append(f"{name}: signed by key {c['key_fingerprint']}, not by the public key given")
    if problems:
        return problems
    try:
        key.verify(bytes.fromhex(str(c["signature"])), checkpoint_message({**c, "signed_at": str(c["signed_at"])}))
    except (InvalidSignature, ValueError):
        problems.append(f"{name}: its signature does not verify")
    return problems


def event_problems(receipt: dict) -> list[str]:
    body, checkpoint = receipt["event"], receipt["checkpoint"]
    if not isinstance(body, dict) or set(body) != set(EVENT_FIELDS):
        return [f"event: not an audit event body (fields {', '.join(EVENT_FIELDS)})"]
    try:
        computed = event_hash(body)
    except ValueError:
        computed = "nothing (not canonical JSON)"
    if computed != receipt["event_hash"]:
        return [f"event: its fields hash to {computed}, not to the receipt's event_hash"]
    if not count(body["seq"]) or receipt["leaf_index"] != body["seq"] - 1:
        return ["event: leaf_index is not the event's seq - 1"]
    if body["seq"] == checkpoint["seq"] and receipt["event_hash"] != checkpoint["hash"]:
        return ["event: it is the checkpoint's head entry, but the checkpoint signs another hash"]
    return []


def inclusion_problems(receipt: dict) -> list[str]:
    size, signed_size = receipt["tree_size"], receipt["checkpoint"]["tree_size"]
    if size != signed_size:
        return [f"inclusion: the path is for a tree of {size} entries, the checkpoint signs one of {signed_size}"]
    path, leaf = hash_list(receipt["inclusion_path"]), hash_bytes(receipt["event_hash"])
    root, index = hash_bytes(receipt["checkpoint"]["root_hash"]), receipt["leaf_index"]
    if path is None or leaf is None or root is None or not count(index) or not count(size):
        return ["inclusion: event_hash and inclusion_path must be hex hashes, leaf_index and tree_size numbers"]
    if not verify_inclusion(leaf_hash(leaf), index, size, path, root):
        return [f"inclusion: the path does not lead from leaf {index} to the signed root of {size} entries"]
    return []


def receipt_problems(receipt, key: Ed25519PublicKey) -> list[str]:
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT or set(receipt) != RECEIPT_FIELDS:
        return [f"receipt: not an {RECEIPT_FORMAT} receipt (fields {', '.join(sorted(RECEIPT_FIELDS))})"]
    problems = checkpoint_problems(receipt["checkpoint"], key)
    if problems and "not a v2 checkpoint" in problems[0]:
        return problems
    return event_problems(receipt) + inclusion_problems(receipt) + problems


def consistency_problems(document, key: Ed25519PublicKey) -> list[str]:
    if (
        not isinstance(document, dict)
        or document.get("format") != CONSISTENCY_FORMAT
        or set(document) != {"format", "old", "new", "proof"}
    ):
        return [f"consistency: not an {CONSISTENCY_FORMAT} document (fields format, old, new, proof)"]
    problems = checkpoint_problems(document["old"], key, "old checkpoint")
    problems += checkpoint_problems(document["new"], key, "new checkpoint")
    if problems:
        return problems
    old, new, proof = document["old"], document["new"], hash_list(document["proof"])
    if proof is None:
        return ["consistency: the proof must be a list of hex hashes"]
    if old["tree_size"] > new["tree_size"]:
        return [f"consistency: the old tree ({old['tree_size']} entries) is larger than the new ({new['tree_size']})"]
    roots = bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"])
    if not verify_consistency(old["tree_size"], new["tree_size"], *roots, proof):
        return [f"consistency: the tree of {old['tree_size']} entries is not proven a prefix of the new one"]
    return []


# --- The command -------------------------------------------------------------------------------------


def load_key_pem(text: str | bytes) -> Ed25519PublicKey | None:
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def load_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def report_receipt(receipt, key: Ed25519PublicKey) -> list[str]:
    """Check a receipt; print each part that holds (the caller prints the problems)."""
    problems = receipt_problems(receipt, key)
    failed = {problem.split(":")[0] for problem in problems}
    if failed & {"receipt", "key"} or any("not a v2 checkpoint" in problem for problem in problems):
        return problems
    event, checkpoint = receipt["event"], receipt["checkpoint"]
    if "event" not in failed:
        print(
            f"OK event: entry {event['seq']} ({event['action']} on {event['object_type']} {event['object_id']}, "
            f"{event['occurred_at']}) hashes to {receipt['event_hash']}"
        )
    if "inclusion" not in failed:
        print(
            f"OK inclusion: its hash is leaf {receipt['leaf_index']} of the tree of {receipt['tree_size']} entries "
            f"with root {checkpoint['root_hash']}"
        )
    if "checkpoint" not in failed:
        print(
            f"OK checkpoint: that root and chain head {checkpoint['seq']} ({checkpoint['hash']}) were signed "
            f"{checkpoint['signed_at']} by key {checkpoint['key_fingerprint']}"
        )
    return problems


def report_consistency(document, key: Ed25519PublicKey) -> list[str]:
    problems = consistency_problems(document, key)
    if not problems:
        old, new = document["old"], document["new"]
        print(
            f"OK consistency: the tree of {old['tree_size']} entries signed {old['signed_at']} is a prefix of "
            f"the tree of {new['tree_size']} signed {new['signed_at']}; both signatures valid"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check an H2H audit receipt with nothing but the public key.")
    parser.add_argument("receipt", help="the receipt (JSON, h2h-receipt/v1)")
    parser.add_argument("public_key", help="the audit public key (PEM), as published by the operator")
    parser.add_argument("--consistency", metavar="PROOF", help="also check a consistency proof (h2h-consistency/v1)")
    args = parser.parse_args(argv)
    try:
        with open(args.public_key, "rb") as handle:
            key = load_key_pem(handle.read())
        receipt = load_json(args.receipt)
        document = load_json(args.consistency) if args.consistency else None
    except (OSError, ValueError) as error:
        print(f"cannot read: {error}", file=sys.stderr)
        return 2
    if key is None:
        problems = ["key: not an Ed25519 public key in PEM"]
    else:
        problems = report_receipt(receipt, key)
        if document is not None:
            problems += report_consistency(document, key)
    for problem in problems:
        print(f"FAILED {problem}")
    print(f"NOT VALID: {len(problems)} check(s) failed." if problems else "All checks passed.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
