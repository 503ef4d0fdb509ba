"""Signed checkpoints: an Ed25519 signature over "the chain had this hash at this sequence number".

A checkpoint is worth something only if its key is not in the database: whoever rewrites the
whole chain (and recomputes every hash) cannot forge a signature without the private key file.
Only the signer needs that file (the `audit_checkpoint_sign` job or `manage.py audit_checkpoint`,
on a worker or an operator's machine; audit_keygen writes it 0600). Web servers verify with the
public key alone (H2H_AUDIT_PUBLIC_KEY), so a compromised web server cannot sign.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from h2h_core.lock_objects import audit_head_qs_select_for_update
from h2h_core.models import AuditCheckpoint, AuditEvent
from h2h_core.transactions import service_atomic

from .chain import GENESIS_HASH
from .record import audit_record
from .sealer import audit_seal
from .tree import audit_tree_extend, audit_tree_root


class SigningKeyError(ImproperlyConfigured):
    """The audit signing key is missing or unusable."""


def signing_key_path() -> Path:
    return Path(settings.H2H_AUDIT_SIGNING_KEY)


def load_signing_key(path: Path | str | None = None) -> Ed25519PrivateKey:
    """Read the Ed25519 private key that signs checkpoints (H2H_AUDIT_SIGNING_KEY by default)."""
    path = Path(path) if path is not None else signing_key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(
            f"No audit signing key at {path}. Create one with `manage.py audit_keygen`, "
            "or point H2H_AUDIT_SIGNING_KEY at the existing key file."
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"The audit signing key at {path} cannot be read: {error}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"The audit signing key at {path} is not an Ed25519 private key.")
    return key


def _public_key_setting() -> str:
    # An environment variable cannot always hold newlines: accept them written as "\n" too.
    return str(getattr(settings, "H2H_AUDIT_PUBLIC_KEY", "") or "").strip().replace("\\n", "\n")


def public_key_path() -> Path:
    """Where audit_keygen writes the public key: H2H_AUDIT_PUBLIC_KEY when that names a file, else
    next to the signing key (`audit_signing_key.pem` -> `audit_signing_key.pub.pem`)."""
    configured = _public_key_setting()
    if configured and not configured.startswith("-----BEGIN"):
        return Path(configured)
    return signing_key_path().with_suffix(".pub.pem")


def load_public_key() -> Ed25519PublicKey:
    """Return the public key checkpoints are verified with.

    H2H_AUDIT_PUBLIC_KEY (PEM text, or the path of a PEM file) when set; otherwise the public half
    of the signing key file, when this machine has one (the development default).
    """
    configured = _public_key_setting()
    if not configured:
        try:
            return load_signing_key().public_key()
        except SigningKeyError as error:
            raise SigningKeyError(
                "No audit public key is configured: set H2H_AUDIT_PUBLIC_KEY to the public key that "
                f"`manage.py audit_keygen` wrote (PEM text or file). ({error})"
            ) from error
    if configured.startswith("-----BEGIN"):
        data, source = configured.encode("ascii", "replace"), "H2H_AUDIT_PUBLIC_KEY"
    else:
        source = f"{configured} (H2H_AUDIT_PUBLIC_KEY)"
        try:
            data = Path(configured).read_bytes()
        except OSError as error:
            raise SigningKeyError(f"The audit public key file {source} cannot be read: {error.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise SigningKeyError(f"The audit public key in {source} cannot be read: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"The audit public key in {source} is not an Ed25519 public key.")
    return key


def write_public_key(key: Ed25519PrivateKey | Ed25519PublicKey, path: Path | str | None = None) -> Path:
    """Write the public half of `key` as PEM (mode 0644: it is meant to be published)."""
    path = Path(path) if path is not None else public_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(public_key_pem(key))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def generate_signing_key(path: Path | str | None = None, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create a new Ed25519 key and write it as PEM, readable by its owner only (0600).

    The parent directory is created if needed. The file is written next to its final place and
    renamed over it, so a reader never sees half a key. An existing key is replaced only when
    `overwrite` is true: checkpoints signed by the old key then verify with a warning.
    """
    path = Path(path) if path is not None else signing_key_path()
    if path.exists() and not overwrite:
        raise FileExistsError(f"An audit signing key already exists at {path}.")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # mkstemp creates the file 0600 from the start: the key is never readable by anyone else.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey | None = None) -> str:
    """Return a public key as PEM text: the half of `key`, or by default the configured public key."""
    key = key if key is not None else load_public_key()
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def key_fingerprint(public_key: Ed25519PublicKey | str | bytes) -> str:
    """Return the SHA-256 hex digest of the raw 32-byte public key (given as a key or as PEM)."""
    if isinstance(public_key, str | bytes):
        data = public_key.encode("ascii") if isinstance(public_key, str) else public_key
        public_key = serialization.load_pem_public_key(data)
        if not isinstance(public_key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
    raw = public_key.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def configured_key_fingerprint() -> str | None:
    """Return the fingerprint of the configured public key, or None when there is no usable key."""
    try:
        return key_fingerprint(load_public_key())
    except SigningKeyError:
        return None


def checkpoint_signing_key() -> Ed25519PrivateKey:
    """Load the signing key, refusing one that is not the half of the configured public key.

    Checkpoints signed by another key would verify only with a warning on the web servers.
    """
    key = load_signing_key()
    if _public_key_setting():
        expected, actual = key_fingerprint(load_public_key()), key_fingerprint(key.public_key())
        if expected != actual:
            raise SigningKeyError(
                f"The audit signing key at {signing_key_path()} (fingerprint {actual}) is not the private half "
                f"of H2H_AUDIT_PUBLIC_KEY (fingerprint {expected}): nothing was signed."
            )
    return key


CHECKPOINT_EVENT = "audit.checkpoint_signed"


def audit_checkpoint_create(*, actor=None, only_if_moved: bool = False) -> AuditCheckpoint | None:
    """Sign the chain's current head and store the signature as a checkpoint.

    The events of ended transactions are sealed first, so the signed head covers them. The head row
    is then locked, so the checkpoint names a head the sealer has committed. The checkpoint covers
    the chain up to that head; the "audit.checkpoint_signed" event recorded afterwards, in the same
    transaction, is sealed in it too, so verification can tell a deleted checkpoint row from one
    never made. With `only_if_moved`, nothing is signed (None is returned) when no event but
    checkpoint signings was recorded since the last checkpoint.
    """
    key = checkpoint_signing_key()  # read and parse the key before taking the lock
    public_pem = public_key_pem(key)
    fingerprint = key_fingerprint(key.public_key())
    audit_seal()
    with service_atomic():
        head = audit_head_qs_select_for_update().filter(pk=1).first()
        if only_if_moved and head is not None:
            last = AuditCheckpoint.objects.order_by("-seq", "-id").values_list("seq", flat=True).first()
            # The checkpoints' own events do not count as a move of the chain.
            since = AuditEvent.objects.filter(seq__gt=last if last is not None else 0)
            if last is not None and not since.exclude(action=CHECKPOINT_EVENT).exists():
                return None
        if head is not None:
            audit_tree_extend(head=head)  # on SQLite the tree grows here; the sealer grew it on PostgreSQL
        checkpoint = AuditCheckpoint(
            seq=head.seq if head else 0,
            hash=head.hash if head else GENESIS_HASH,
            root_hash=audit_tree_root(head.seq if head else 0),
            signed_at=timezone.now(),
            public_key=public_pem,
            key_fingerprint=fingerprint,
        )
        checkpoint.signature = key.sign(checkpoint.signed_message()).hex()
        checkpoint.save(force_insert=True)
        audit_record(
            actor=actor,
            action=CHECKPOINT_EVENT,
            object_type="audit_checkpoint",
            object_id=checkpoint.pk,
            after={
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "root_hash": checkpoint.root_hash,
                "signed_at": checkpoint.signed_at,
                "key_fingerprint": fingerprint,
            },
        )
        audit_seal()  # the signing's own event: in the chain when the checkpoint is
    return checkpoint
