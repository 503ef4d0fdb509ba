"""Checkpoints are signed by the workers and recorded in the chain; the web servers hold only the public key.

Signing appends an `audit.checkpoint_signed` event with the checkpoint's entry, hash, time and key,
so verify_audit compares the chain's record with the checkpoint rows: a deleted, altered or planted
row is named.
"""

from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from h2h_core.audit import audit_record, audit_seal
from h2h_core.audit.chain import format_instant
from h2h_core.audit.checkpoint import (
    audit_checkpoint_create,
    generate_signing_key,
    key_fingerprint,
    public_key_pem,
)
from h2h_core.audit.jobs import audit_checkpoint_sign
from h2h_core.audit.verify import verify_chain
from h2h_core.jobs import enqueue
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead, Role
from tests.factories import UserFactory
from tests.jobs import failed_jobs, run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_path(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "keys" / "audit_signing_key.pem"
    settings.H2H_AUDIT_PUBLIC_KEY = ""
    return settings.H2H_AUDIT_SIGNING_KEY


@pytest.fixture
def signing_key(key_path):
    return generate_signing_key(key_path)


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


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


def signed_time(checkpoint) -> str:
    return checkpoint.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- The chain records every signing ---------------------------------------------------------------


def test_signing_records_the_checkpoint_in_the_chain_with_its_hash_time_and_key(signing_key):
    # given two events
    record(2)
    # when the head is signed
    checkpoint = audit_checkpoint_create()
    # then the next entry records the checkpoint: its entry, hash, time and key fingerprint
    event = AuditEvent.objects.get(seq=3)
    assert (event.action, event.object_type, event.object_id) == ("audit.checkpoint_signed", "audit_checkpoint",
                                                                 str(checkpoint.pk))
    assert event.after == {"seq": 2, "hash": checkpoint.hash, "root_hash": checkpoint.root_hash,
                           "signed_at": format_instant(checkpoint.signed_at),
                           "key_fingerprint": key_fingerprint(signing_key.public_key())}


def test_a_deleted_checkpoint_is_named_by_its_record_in_the_chain(signing_key, bypass_audit_triggers):
    # given two checkpoints, the first at entry 2 (recorded as entry 3), the second at entry 4
    record(2)
    deleted = audit_checkpoint_create()
    record(1)
    kept = audit_checkpoint_create()
    # when someone able to bypass the triggers deletes the first checkpoint row
    with bypass_audit_triggers():
        AuditCheckpoint.objects.filter(pk=deleted.pk).delete()
    # then verify_audit fails and names the missing checkpoint and the entry that records it
    code, out, err = verify_audit()
    assert code == 1
    assert "First bad sequence number: 2" in err
    assert (f"FAILED checkpoint at entry 2 signed {signed_time(deleted)}: it is missing (deleted); "
            "the chain recorded its signing as entry 3") in err
    assert "All 5 entries hash and link correctly, but a signed checkpoint does not agree" in err
    # and the other checkpoint still verifies
    assert f"OK checkpoint at entry {kept.seq} signed" in out


def test_every_checkpoint_deleted_is_still_detected(signing_key, bypass_audit_triggers):
    # given a checkpoint
    record(1)
    audit_checkpoint_create()
    # when every checkpoint row is deleted
    with bypass_audit_triggers():
        AuditCheckpoint.objects.all().delete()
    # then the chain's record gives it away
    code, _, err = verify_audit()
    assert code == 1
    assert "checkpoint at entry 1 signed" in err and "is missing (deleted)" in err


def test_a_checkpoint_row_re_signed_by_another_key_does_not_match_its_record(signing_key, bypass_audit_triggers):
    # given a checkpoint, then its row rewritten with a forger's key and a valid signature of that key
    record(2)
    checkpoint = audit_checkpoint_create()
    forger = Ed25519PrivateKey.generate()
    with bypass_audit_triggers():
        checkpoint.public_key = public_key_pem(forger)
        checkpoint.key_fingerprint = key_fingerprint(forger.public_key())
        checkpoint.signature = forger.sign(checkpoint.signed_message()).hex()
        checkpoint.save()
    # when the chain is verified
    code, _, err = verify_audit()
    # then the checkpoint fails: the chain recorded another key for it
    assert code == 1
    assert ("it does not match the chain's record of its signing (entry 3): its key_fingerprint was altered"
            in err)


def test_a_checkpoint_planted_without_its_record_is_named(signing_key):
    # given a checkpoint row inserted behind the chain's back, validly signed by another key
    record(2)
    head = AuditHead.objects.get(pk=1)
    planter = Ed25519PrivateKey.generate()
    planted = AuditCheckpoint(seq=head.seq, hash=head.hash, signed_at=timezone.now(),
                              public_key=public_key_pem(planter), key_fingerprint=key_fingerprint(planter.public_key()))
    planted.signature = planter.sign(planted.signed_message()).hex()
    planted.save()
    # when the chain is verified
    code, _, err = verify_audit()
    # then it fails and says the chain has no record of that checkpoint
    assert code == 1
    assert "FAILED checkpoint at entry 2" in err
    assert "the chain has no record of its signing: it was stored behind the chain's back" in err


# --- The signing job (workers hold the private key) ---------------------------------------------------


def test_the_signing_job_signs_only_when_the_head_moved(signing_key):
    # given three events
    record(3)
    # when the signing job runs, then again with nothing new
    enqueue(audit_checkpoint_sign)
    enqueue(audit_checkpoint_sign)
    assert run_jobs(queues="audit") == 2
    # then one checkpoint was signed, at entry 3
    assert list(AuditCheckpoint.objects.values_list("seq", flat=True)) == [3]
    # and after a new event the next run signs again
    record(1)
    enqueue(audit_checkpoint_sign)
    run_jobs(queues="audit")
    assert list(AuditCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == [3, 5]
    assert verify_chain().ok


def test_the_signing_job_without_the_private_key_fails_and_writes_nothing(key_path):
    # given a worker without the key file
    record(1)
    # when the signing job runs
    enqueue(audit_checkpoint_sign)
    run_jobs(queues="audit")
    # then the job failed with the reason, and nothing was signed or recorded
    assert failed_jobs().count() == 1
    assert not AuditCheckpoint.objects.exists()
    assert AuditHead.objects.get(pk=1).seq == 1


def test_the_checkpoint_command_signs_nothing_when_the_head_has_not_moved(signing_key):
    # given a checkpoint of the current head
    record(1)
    audit_checkpoint_create()
    # when the command runs with --if-moved
    out = StringIO()
    call_command("audit_checkpoint", "--if-moved", stdout=out)
    # then nothing new is signed
    assert "Nothing to sign" in out.getvalue()
    assert AuditCheckpoint.objects.count() == 1


def test_signing_refuses_a_key_that_is_not_the_configured_public_keys_half(signing_key, settings):
    # given web servers told to trust another public key
    record(1)
    settings.H2H_AUDIT_PUBLIC_KEY = public_key_pem(Ed25519PrivateKey.generate())
    # when a checkpoint is signed
    with pytest.raises(CommandError, match="is not the private half of H2H_AUDIT_PUBLIC_KEY"):
        call_command("audit_checkpoint", stdout=StringIO())
    # then nothing was signed
    assert not AuditCheckpoint.objects.exists()


# --- Verification needs only the public key ----------------------------------------------------------


@pytest.mark.parametrize("given_as", ["pem text", "pem file"])
def test_a_web_server_with_only_the_public_key_verifies_checkpoints(signing_key, key_path, settings, tmp_path,
                                                                    given_as):
    # given a checkpoint signed by the worker's key
    record(2)
    audit_checkpoint_create()
    # when a server without the private key, given only the public key, verifies the chain
    pem = public_key_pem(signing_key)
    if given_as == "pem file":
        (tmp_path / "public.pem").write_text(pem)
        pem = str(tmp_path / "public.pem")
    settings.H2H_AUDIT_PUBLIC_KEY = pem
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "absent.pem"
    code, out, err = verify_audit()
    # then the checkpoint verifies against the configured key, without a warning
    assert (code, err) == (0, "")
    assert "OK checkpoint at entry 2 signed" in out and "Warning" not in out


def test_without_any_key_checkpoints_verify_with_a_warning_that_says_what_to_configure(signing_key, settings,
                                                                                         tmp_path):
    # given a checkpoint, then a server with neither key
    record(1)
    audit_checkpoint_create()
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "absent.pem"
    # when the chain is verified
    code, out, _ = verify_audit()
    # then it passes with a warning naming the setting
    assert code == 0
    assert "Warning: No audit public key is configured: set H2H_AUDIT_PUBLIC_KEY" in out


def test_the_auditors_public_key_download_is_the_configured_public_key(client, signing_key, settings, tmp_path,
                                                                       audrey):
    # given a web server with only the public key
    settings.H2H_AUDIT_PUBLIC_KEY = public_key_pem(signing_key)
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "absent.pem"
    client.force_login(audrey)
    # when the auditor downloads the public key
    response = client.get(reverse("audit:public_key"))
    # then it is that key
    assert response.status_code == 200
    assert response.content.decode() == public_key_pem(signing_key)
