"""Receipts: the product's verifier and the standalone examples/verify_receipt.py give the same answers."""

import ast
import copy
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h2h_core.audit import audit_record, audit_seal, merkle
from h2h_core.audit.chain import GENESIS_HASH, HASHED_FIELDS, event_hash
from h2h_core.audit.checkpoint import public_key_pem
from h2h_core.audit.receipts import (
    checkpoint_message_v2,
    checkpoint_v2_sign,
    consistency_build,
    consistency_verify,
    receipt_build,
    receipt_verify,
)
from h2h_core.models import AuditEvent

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "verify_receipt.py"
SIGNED_AT = datetime(2026, 11, 30, 9, 0, 0, 120000, tzinfo=UTC)


def load_script():
    spec = importlib.util.spec_from_file_location("verify_receipt_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_events(count: int) -> list[dict]:
    """A chain of events as the sealer leaves them: fields, seq, prev_hash and hash."""
    events, prev_hash = [], GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "occurred_at": SIGNED_AT - timedelta(minutes=count - seq),
            "actor_id": 7 if seq % 3 else None,
            "actor_username": "zoë" if seq % 3 else "",
            "actor_roles": ["manager"] if seq % 3 else [],
            "action": "decision.executed",
            "object_type": "decision",
            "object_id": str(seq),
            "outcome": "success",
            "before": None,
            "after": {"amount": "120.50", "note": "≤ cap", "lines": [1, 2]},
            "reason": "",
            "ip": "2001:db8::1" if seq % 2 else None,
            "request_id": f"req-{seq}",
            "prev_hash": prev_hash,
        }
        fields["hash"] = prev_hash = event_hash(fields)
        events.append(fields)
    return events


class Log:
    """A sealed log in memory: its events, the stored subtrees, and checkpoints signed with a throwaway key."""

    def __init__(self, events: list[dict], key: Ed25519PrivateKey):
        self.events, self.key, self.nodes = events, key, {}
        for level, index, value in merkle.tree_append(0, [bytes.fromhex(e["hash"]) for e in events], self.subtree):
            self.nodes[level, index] = value

    def subtree(self, start: int, end: int) -> bytes:
        return self.nodes[merkle.node_key(start, end)]

    def checkpoint(self, size: int, key: Ed25519PrivateKey | None = None) -> dict:
        return checkpoint_v2_sign(
            private_key=key or self.key,
            seq=size,
            hash=self.events[size - 1]["hash"],
            tree_size=size,
            root_hash=merkle.root_from_subtrees(size, self.subtree).hex(),
            signed_at=SIGNED_AT + timedelta(hours=size),
        )

    def receipt(self, seq: int, size: int | None = None) -> dict:
        size = size or len(self.events)
        path = merkle.inclusion_proof(index=seq - 1, size=size, subtree=self.subtree)
        # A copy: tests alter receipts in place, and the log's own events must stay as sealed.
        return receipt_build(
            event=copy.deepcopy(self.events[seq - 1]), tree_size=size, inclusion_path=path,
            checkpoint=self.checkpoint(size),
        )

    def consistency(self, old_size: int, size: int) -> dict:
        proof = merkle.consistency_proof(old_size=old_size, size=size, subtree=self.subtree)
        return consistency_build(
            old_checkpoint=self.checkpoint(old_size), new_checkpoint=self.checkpoint(size), proof=proof
        )


@pytest.fixture(scope="module")
def log():
    return Log(make_events(13), Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def public_pem(log):
    return public_key_pem(log.key)


def tampered(document: dict, change) -> dict:
    document = copy.deepcopy(document)
    change(document)
    return document


def other_key_checkpoint(log, receipt):
    """The same statement signed by another key, claiming to be ours."""
    stranger = Ed25519PrivateKey.generate()
    forged = log.checkpoint(receipt["tree_size"], key=stranger)
    forged["key_fingerprint"] = receipt["checkpoint"]["key_fingerprint"]
    return forged


RECEIPT_TAMPERING = {
    "valid": lambda r, log: None,
    "changed event field": lambda r, log: r["event"]["after"].update(amount="12050.00"),
    "another event's hash": lambda r, log: r.update(event_hash=log.events[0]["hash"]),
    "changed leaf index": lambda r, log: r.update(leaf_index=r["leaf_index"] + 1),
    "changed path element": lambda r, log: r["inclusion_path"].__setitem__(0, "0" * 64),
    "truncated path": lambda r, log: r["inclusion_path"].pop(),
    "extra path element": lambda r, log: r["inclusion_path"].append("ab" * 32),
    "changed root": lambda r, log: r["checkpoint"].update(root_hash="cd" * 32),
    "changed signed_at": lambda r, log: r["checkpoint"].update(signed_at="2026-11-30T09:00:00.000000Z"),
    "changed tree size": lambda r, log: r.update(tree_size=r["tree_size"] - 1),
    "signed by another key": lambda r, log: r.update(checkpoint=other_key_checkpoint(log, r)),
    "checkpoint field missing": lambda r, log: r["checkpoint"].pop("root_hash"),
    "unknown format": lambda r, log: r.update(format="h2h-receipt/v9"),
    "uppercase hex": lambda r, log: r["inclusion_path"].__setitem__(0, r["inclusion_path"][0].upper()),
    "NaN in the event": lambda r, log: r["event"]["after"].update(amount=float("nan")),
}


@pytest.mark.parametrize("case", list(RECEIPT_TAMPERING))
def test_the_script_and_the_product_agree_on_every_receipt(log, public_pem, case):
    # given the receipt of entry 6 of 13, as produced, or tampered with in one way
    receipt = tampered(log.receipt(6), lambda r: RECEIPT_TAMPERING[case](r, log))
    # when both verifiers check it
    problems = receipt_verify(receipt, public_pem)
    script_problems = load_script().receipt_problems(receipt, load_script().load_key_pem(public_pem))
    # then they find the same problems, and only the untouched receipt has none
    assert script_problems == problems
    assert (problems == []) == (case == "valid"), problems


def test_every_leaf_of_every_tree_size_gets_a_valid_receipt(log, public_pem):
    script = load_script()
    key = script.load_key_pem(public_pem)
    for size in range(1, len(log.events) + 1):
        for seq in range(1, size + 1):
            receipt = log.receipt(seq, size)
            assert receipt_verify(receipt, public_pem) == []
            assert script.receipt_problems(receipt, key) == []


CONSISTENCY_TAMPERING = {
    "valid": lambda d: None,
    "changed old root": lambda d: d["old"].update(root_hash="ef" * 32),
    "changed proof element": lambda d: d["proof"].__setitem__(0, "12" * 32),
    "old and new swapped": lambda d: d.update(old=d["new"], new=d["old"]),
    "proof dropped": lambda d: d.update(proof=[]),
    "old signature broken": lambda d: d["old"].update(signature="00" * 64),
}


@pytest.mark.parametrize("case", list(CONSISTENCY_TAMPERING))
def test_the_script_and_the_product_agree_on_every_consistency_proof(log, public_pem, case):
    document = tampered(log.consistency(5, 13), CONSISTENCY_TAMPERING[case])
    problems = consistency_verify(document, public_pem)
    script = load_script()
    assert script.consistency_problems(document, script.load_key_pem(public_pem)) == problems
    assert (problems == []) == (case == "valid"), problems


def test_the_checkpoint_message_is_the_documented_one():
    message = checkpoint_message_v2(seq=12, hash="ab" * 32, tree_size=12, root_hash="cd" * 32, signed_at=SIGNED_AT)
    assert message == f"h2h-audit-checkpoint:v2:12:{'ab' * 32}:12:{'cd' * 32}:2026-11-30T09:00:00.120000Z".encode()
    assert (
        load_script().checkpoint_message(
            {
                "seq": 12,
                "hash": "ab" * 32,
                "tree_size": 12,
                "root_hash": "cd" * 32,
                "signed_at": "2026-11-30T09:00:00.120000Z",
            }
        )
        == message
    )


# --- The script as a command ------------------------------------------------------------------------


def run_script(tmp_path, receipt: dict, public_pem: str, consistency: dict | None = None):
    (tmp_path / "receipt.json").write_text(json.dumps(receipt, indent=2), encoding="utf-8")
    (tmp_path / "public_key.pem").write_text(public_pem, encoding="ascii")
    arguments = [sys.executable, "-I", str(SCRIPT), "receipt.json", "public_key.pem"]
    if consistency is not None:
        (tmp_path / "consistency.json").write_text(json.dumps(consistency), encoding="utf-8")
        arguments += ["--consistency", "consistency.json"]
    return subprocess.run(arguments, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)


def failures(output: str) -> list[str]:
    return [line.removeprefix("FAILED ") for line in output.splitlines() if line.startswith("FAILED ")]


def test_the_command_accepts_a_good_receipt_and_consistency_proof(log, public_pem, tmp_path):
    result = run_script(tmp_path, log.receipt(6), public_pem, consistency=log.consistency(5, 13))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK event: entry 6" in result.stdout
    assert "OK inclusion: its hash is leaf 5 of the tree of 13 entries" in result.stdout
    assert "OK consistency: the tree of 5 entries" in result.stdout
    assert result.stdout.rstrip().endswith("All checks passed.")


@pytest.mark.parametrize("case", ["changed event field", "changed path element", "signed by another key"])
def test_the_command_fails_a_tampered_receipt_with_the_products_reasons(log, public_pem, tmp_path, case):
    receipt = tampered(log.receipt(6), lambda r: RECEIPT_TAMPERING[case](r, log))
    result = run_script(tmp_path, receipt, public_pem)
    assert result.returncode == 1
    assert failures(result.stdout) == receipt_verify(receipt, public_pem) != []
    assert result.stdout.rstrip().endswith("check(s) failed.")


def test_the_command_fails_a_bad_consistency_proof_even_with_a_good_receipt(log, public_pem, tmp_path):
    document = tampered(log.consistency(5, 13), CONSISTENCY_TAMPERING["changed old root"])
    result = run_script(tmp_path, log.receipt(6), public_pem, consistency=document)
    assert result.returncode == 1
    assert failures(result.stdout) == consistency_verify(document, public_pem) != []


def test_the_command_refuses_another_public_key(log, tmp_path):
    stranger = public_key_pem(Ed25519PrivateKey.generate())
    result = run_script(tmp_path, log.receipt(6), stranger)
    assert result.returncode == 1
    assert failures(result.stdout) == receipt_verify(log.receipt(6), stranger) != []


def test_the_script_needs_nothing_of_the_product():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "argparse", "hashlib", "json", "sys", "cryptography"}


# --- Real events ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_receipts_of_recorded_events_verify(public_pem, log):
    # given events written by the product's own recorder (times, addresses and JSON as stored)
    for index in range(5):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index, after={"n": index})
    audit_seal()  # PostgreSQL links events after commit; SQLite at once
    rows = [
        {name: getattr(event, name) for name in (*HASHED_FIELDS, "hash")}
        for event in AuditEvent.objects.order_by("seq")
    ]
    sealed = Log(rows, log.key)
    # when each gets a receipt under a checkpoint of the whole log, then both verifiers accept it
    script = load_script()
    for row in rows:
        receipt = json.loads(json.dumps(sealed.receipt(row["seq"])))
        assert receipt_verify(receipt, public_pem) == []
        assert script.receipt_problems(receipt, script.load_key_pem(public_pem)) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_value_anywhere_in_a_receipt_is_a_problem_both_verifiers_name_alike(log, public_pem, data):
    # given a good receipt with one value, at any depth, replaced by arbitrary JSON
    receipt = log.receipt(6)
    holder, key = receipt, None
    while True:
        key = data.draw(st.sampled_from(sorted(holder) if isinstance(holder, dict) else range(len(holder))))
        if not isinstance(holder[key], dict | list) or not holder[key] or data.draw(st.booleans()):
            break
        holder = holder[key]
    original, holder[key] = holder[key], data.draw(json_values)
    # when both verifiers check it, then neither raises, they agree, and only an unchanged value passes
    script = load_script()
    problems = receipt_verify(receipt, public_pem)
    assert script.receipt_problems(receipt, script.load_key_pem(public_pem)) == problems
    if holder[key] != original:
        assert problems


def test_the_command_exits_2_when_a_file_cannot_be_read(log, public_pem, tmp_path):
    (tmp_path / "public_key.pem").write_text(public_pem, encoding="ascii")
    (tmp_path / "receipt.json").write_text("{not json", encoding="utf-8")
    arguments = [sys.executable, "-I", str(SCRIPT), "receipt.json", "public_key.pem"]
    result = subprocess.run(arguments, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("cannot read:")
