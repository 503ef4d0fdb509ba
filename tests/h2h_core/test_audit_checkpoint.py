"""Signed checkpoints: made from the committed head, checkable with nothing but the public key."""

import stat
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from h2h_core.audit import audit_record, audit_seal, event_hash
from h2h_core.audit.chain import HASHED_FIELDS
from h2h_core.audit.checkpoint import (
    audit_checkpoint_create,
    generate_signing_key,
    key_fingerprint,
    load_signing_key,
    public_key_pem,
)
from h2h_core.audit.verify import checkpoint_message, verify_chain, verify_checkpoint_signature
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead


@pytest.fixture
def key_path(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "keys" / "audit_signing_key.pem"
    return settings.H2H_AUDIT_SIGNING_KEY


@pytest.fixture
def signing_key(key_path):
    return generate_signing_key(key_path)


def record(n: int) -> None:
    """Record `n` events, and let the sealer link them into the chain (PostgreSQL; SQLite links at once)."""
    for index in range(n):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index)
    audit_seal()


def verify_audit() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- The key ----------------------------------------------------------------------------------------


def test_keygen_writes_a_key_only_its_owner_can_read(key_path):
    # given no key yet, not even its directory
    assert not key_path.parent.exists()
    # when audit_keygen runs
    out = StringIO()
    call_command("audit_keygen", stdout=out)
    # then the key is written 0600 and its public half printed and written for the web servers
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = load_signing_key()
    assert public_key_pem(key) in out.getvalue()
    assert key_fingerprint(key.public_key()) in out.getvalue()
    public_path = key_path.with_suffix(".pub.pem")
    assert public_path.read_text() == public_key_pem(key)
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644


def test_keygen_refuses_to_overwrite_a_key_without_force(signing_key, key_path):
    # given a key
    original = key_path.read_bytes()
    # when audit_keygen runs again without --force
    with pytest.raises(CommandError, match="--force"):
        call_command("audit_keygen", stdout=StringIO())
    # then the key is unchanged
    assert key_path.read_bytes() == original


def test_keygen_if_missing_keeps_an_existing_key_and_writes_its_missing_public_key(signing_key, key_path):
    # given a key without its public key file
    original = key_path.read_bytes()
    public_path = key_path.with_suffix(".pub.pem")
    assert not public_path.exists()
    # when audit_keygen --if-missing runs
    out = StringIO()
    call_command("audit_keygen", "--if-missing", stdout=out)
    # then the key is unchanged and its public half is written beside it
    assert key_path.read_bytes() == original
    assert public_path.read_text() == public_key_pem(signing_key)
    assert f"written to {public_path}" in out.getvalue()
    # and a second run has nothing to do
    again = StringIO()
    call_command("audit_keygen", "--if-missing", stdout=again)
    assert "nothing to do" in again.getvalue() and key_path.read_bytes() == original


def test_keygen_if_missing_creates_a_missing_key(key_path):
    # given no key
    # when audit_keygen --if-missing runs
    call_command("audit_keygen", "--if-missing", stdout=StringIO())
    # then a key exists
    assert isinstance(load_signing_key(), Ed25519PrivateKey)


def test_keygen_force_replaces_the_key(signing_key, key_path):
    # given a key
    old_fingerprint = key_fingerprint(signing_key.public_key())
    # when audit_keygen --force runs
    call_command("audit_keygen", "--force", stdout=StringIO())
    # then a different key is in its place, still 0600
    assert key_fingerprint(load_signing_key().public_key()) != old_fingerprint
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


# --- Signing -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_checkpoint_signs_the_committed_head_then_records_itself(signing_key):
    # given three events
    record(3)
    head = AuditHead.objects.get(pk=1)
    # when a checkpoint is made with the command
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    # then it signs entry 3 and its hash with the configured key
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seq, checkpoint.hash) == (3, head.hash)
    assert checkpoint.key_fingerprint == key_fingerprint(signing_key.public_key())
    signing_key.public_key().verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_message())
    assert "Checkpoint signed at entry 3" in out.getvalue()
    assert head.hash in out.getvalue() and checkpoint.key_fingerprint in out.getvalue()
    # and the signing itself is the next event, after what the checkpoint covers
    event = AuditEvent.objects.get(seq=4)
    assert (event.action, event.object_id) == ("audit.checkpoint_signed", str(checkpoint.pk))
    assert event.after["seq"] == 3 and event.after["hash"] == head.hash


@pytest.mark.django_db
def test_a_checkpoint_without_a_key_is_a_clear_error_and_changes_nothing(key_path):
    # given no key file
    record(1)
    # when a checkpoint is asked for
    with pytest.raises(CommandError, match="audit_keygen"):
        call_command("audit_checkpoint", stdout=StringIO())
    # then nothing was written
    assert not AuditCheckpoint.objects.exists()
    assert AuditHead.objects.get(pk=1).seq == 1


@pytest.mark.django_db
def test_a_checkpoint_of_an_empty_log_signs_the_genesis_hash(signing_key):
    # given no events
    # when a checkpoint is made
    checkpoint = audit_checkpoint_create()
    # then it signs entry 0 and verifies
    assert (checkpoint.seq, checkpoint.hash) == (0, "0" * 64)
    report = verify_chain()
    assert report.ok, report.message
    assert [result.ok for result in report.checkpoints] == [True]


# --- Verifying -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_audit_reports_a_valid_checkpoint(signing_key):
    # given a signed checkpoint at entry 2
    record(2)
    audit_checkpoint_create()
    # when the chain is verified
    code, out, err = verify_audit()
    # then the chain (now 3 entries) and the checkpoint are both fine
    assert (code, err) == (0, "")
    assert "Audit chain intact: 3 of 3 entries verified up to 3" in out
    assert "OK checkpoint at entry 2 signed" in out and "signature valid, matches the chain" in out
    assert "Warning" not in out


@pytest.mark.django_db
def test_a_checkpoint_verifies_with_only_the_public_key_and_cryptography(signing_key):
    # given a checkpoint and the public key, as an outsider would receive them
    record(2)
    checkpoint = audit_checkpoint_create()
    pem = public_key_pem(signing_key).encode()
    signed_at = checkpoint.signed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # when the outsider rebuilds the signed message by hand (v2: the head and the Merkle root over
    # entries 1..seq) and checks it with cryptography alone
    message = (f"h2h-audit-checkpoint:v2:{checkpoint.seq}:{checkpoint.hash}:{checkpoint.seq}:{checkpoint.root_hash}:"
               f"{signed_at}").encode()
    serialization.load_pem_public_key(pem).verify(bytes.fromhex(checkpoint.signature), message)
    # then it verifies (verify() raised nothing), and the product's standalone check agrees
    assert message == checkpoint.signed_message() == checkpoint_message(
        seq=checkpoint.seq, hash=checkpoint.hash, signed_at=checkpoint.signed_at, root_hash=checkpoint.root_hash)
    assert verify_checkpoint_signature(public_key_pem=pem, seq=checkpoint.seq, hash=checkpoint.hash,
                                       signed_at=signed_at, signature=checkpoint.signature,
                                       root_hash=checkpoint.root_hash)
    assert not verify_checkpoint_signature(public_key_pem=pem, seq=checkpoint.seq + 1, hash=checkpoint.hash,
                                           signed_at=signed_at, signature=checkpoint.signature,
                                           root_hash=checkpoint.root_hash)
    assert not verify_checkpoint_signature(public_key_pem=pem, seq=checkpoint.seq, hash=checkpoint.hash,
                                           signed_at=signed_at, signature=checkpoint.signature, root_hash="ab" * 32)


@pytest.mark.django_db
def test_a_forged_signature_is_detected(signing_key):
    # given a checkpoint stored with the configured public key but signed by someone else's key
    record(2)
    head = AuditHead.objects.get(pk=1)
    forger = Ed25519PrivateKey.generate()
    forged = AuditCheckpoint(seq=head.seq, hash=head.hash, signed_at=timezone.now(),
                             public_key=public_key_pem(signing_key),
                             key_fingerprint=key_fingerprint(signing_key.public_key()))
    forged.signature = forger.sign(forged.signed_message()).hex()
    forged.save()
    # when the chain is verified
    code, _, err = verify_audit()
    # then the checkpoint fails and verify_audit exits 1
    assert code == 1
    assert "First bad sequence number: 2" in err
    assert "FAILED checkpoint at entry 2" in err and "signature does not verify" in err
    assert "All 2 entries hash and link correctly, but a signed checkpoint does not agree" in err


@pytest.mark.django_db
def test_a_checkpoint_whose_hash_the_chain_no_longer_has_is_detected(signing_key, bypass_audit_triggers):
    # given a checkpoint at entry 2, then the whole chain rewritten from entry 1 with every hash and
    # the head recomputed, so that the chain on its own looks intact
    record(2)
    audit_checkpoint_create()
    with bypass_audit_triggers():
        prev_hash = "0" * 64
        for event in AuditEvent.objects.order_by("seq").values(*HASHED_FIELDS, "id"):
            event = event | {"prev_hash": prev_hash}
            if event["seq"] == 1:
                event["reason"] = "history rewritten"
            prev_hash = event_hash(event)
            AuditEvent.objects.filter(pk=event["id"]).update(reason=event["reason"], prev_hash=event["prev_hash"],
                                                             hash=prev_hash)
    AuditHead.objects.filter(pk=1).update(hash=prev_hash)
    # when the chain is verified
    code, _, err = verify_audit()
    # then only the checkpoint gives the rewrite away, at entry 2
    assert code == 1
    assert "First bad sequence number: 2" in err
    assert "the chain's hash at entry 2 is not the signed one" in err
    report = verify_chain()
    assert report.chain_intact and report.count == report.total == 3  # the chain alone looks intact


@pytest.mark.django_db
def test_a_checkpoint_of_a_removed_entry_is_detected(signing_key, bypass_audit_triggers):
    # given a checkpoint at entry 2 whose entries were later removed, head included
    record(2)
    audit_checkpoint_create()
    with bypass_audit_triggers():
        AuditEvent.objects.all().delete()
    AuditHead.objects.filter(pk=1).update(seq=0, hash="0" * 64)
    # when the chain is verified
    code, _, err = verify_audit()
    # then the checkpoint names the entry that is gone
    assert code == 1
    assert "entry 2, which it signed, is no longer in the log" in err


@pytest.mark.django_db
def test_a_checkpoint_signed_by_another_key_is_a_warning_not_a_failure(signing_key, tmp_path, settings):
    # given a checkpoint signed with the first key, then the configured key replaced
    record(1)
    checkpoint = audit_checkpoint_create()
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "rotated.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    # when the chain is verified
    code, out, err = verify_audit()
    # then it passes, with a warning naming the old key
    assert (code, err) == (0, "")
    assert "OK checkpoint at entry 1" in out
    assert "Warning: checkpoint at entry 1" in out and checkpoint.key_fingerprint[:16] in out
