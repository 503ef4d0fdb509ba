"""The Merkle tree over the sealed chain: signed with every checkpoint, proven by receipts and
consistency proofs that check offline, and cross-checked by the chain's verification."""

import pytest
from django.db import transaction

from h2h_core.audit import audit_record, audit_seal, merkle
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key, public_key_pem
from h2h_core.audit.receipts import consistency_verify, receipt_verify
from h2h_core.audit.tree import checkpoint_consistency, event_receipt
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead, AuditTreeNode


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


def record(n: int, *, start: int = 0) -> None:
    """Record `n` events, each in its own transaction, and let the sealer link them (PostgreSQL)."""
    for index in range(start, start + n):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index,
                         after={"text": f"note {index} «ü»"})
    audit_seal()


def leaves(size: int) -> list[bytes]:
    return [bytes.fromhex(h) for h in AuditEvent.objects.filter(seq__lte=size).order_by("seq")
            .values_list("hash", flat=True)]


@pytest.mark.django_db
def test_a_checkpoint_signs_the_root_of_the_tree_over_the_whole_chain(signing_key):
    # given 13 sealed events (a size that is no power of two)
    record(13)
    # when a checkpoint is signed
    checkpoint = audit_checkpoint_create()
    # then it signs the RFC 9162 root over exactly the entries 1..seq, and the tree has grown to the head
    assert checkpoint.root_hash == merkle.mth(leaves(checkpoint.seq)).hex()
    head = AuditHead.objects.get(pk=1)  # the signing's own event: in the tree on PostgreSQL (sealed), not yet on SQLite
    assert checkpoint.seq <= head.tree_size <= head.seq
    assert AuditTreeNode.objects.filter(level=0).count() == head.tree_size
    assert checkpoint.signed_message().startswith(b"h2h-audit-checkpoint:v2:")
    assert verify_chain().ok


@pytest.mark.django_db
def test_every_event_receipt_verifies_offline_and_a_changed_one_does_not(signing_key):
    # given a signed tree over 9 events
    record(9)
    audit_checkpoint_create()
    pem = public_key_pem(signing_key)
    # when each event's receipt is built
    for event in AuditEvent.objects.filter(action="case.note_added"):
        receipt = event_receipt(event=event)
        # then it verifies with the public key alone
        assert receipt_verify(receipt, pem) == [], event.seq
    # and a receipt whose event was changed does not
    receipt = event_receipt(event=AuditEvent.objects.get(seq=3))
    receipt["event"]["reason"] = "something else"
    assert receipt_verify(receipt, pem) != []


@pytest.mark.django_db
def test_no_receipt_before_a_signed_tree_includes_the_event(signing_key):
    # given a checkpoint, then a later event
    record(2)
    audit_checkpoint_create()
    record(1, start=100)
    later = AuditEvent.objects.filter(object_id="100").get()
    # then no receipt is given for it until the next checkpoint
    assert event_receipt(event=later) is None
    audit_checkpoint_create()
    assert receipt_verify(event_receipt(event=AuditEvent.objects.get(pk=later.pk)), public_key_pem(signing_key)) == []


@pytest.mark.django_db
def test_a_later_tree_is_proven_to_extend_an_earlier_one(signing_key):
    # given two checkpoints with events between them
    record(5)
    old = audit_checkpoint_create()
    record(6, start=10)
    new = audit_checkpoint_create()
    pem = public_key_pem(signing_key)
    # when the consistency proof between them is built
    document = checkpoint_consistency(old=old, new=new)
    # then it verifies, and fails once the old root is changed
    assert consistency_verify(document, pem) == []
    document["old"]["root_hash"] = "00" * 32
    assert consistency_verify(document, pem) != []


@pytest.mark.django_db
def test_verification_names_a_checkpoint_whose_root_is_not_the_chains(signing_key, bypass_audit_triggers):
    # given a signed tree, then a checkpoint row whose root was rewritten (bypassing the triggers)
    record(4)
    checkpoint = audit_checkpoint_create()
    with bypass_audit_triggers():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(root_hash="ab" * 32)
    # when the chain is verified
    report = verify_chain()
    # then the checkpoint is named
    assert not report.ok
    assert report.first_bad_seq == checkpoint.seq


@pytest.mark.django_db
def test_tree_nodes_are_append_only(signing_key, audit_refusal):
    # given a signed tree
    record(3)
    audit_checkpoint_create()
    node = AuditTreeNode.objects.first()
    # when a node is changed or deleted, then the database refuses
    with audit_refusal(), transaction.atomic():
        AuditTreeNode.objects.filter(pk=node.pk).update(hash="00" * 32)
    with audit_refusal(), transaction.atomic():
        AuditTreeNode.objects.filter(pk=node.pk).delete()
    assert AuditTreeNode.objects.get(pk=node.pk).hash == node.hash
