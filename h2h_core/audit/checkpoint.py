"""Signed checkpoints: an Ed25519 signature over "the chain had this hash at this sequence number".

A checkpoint is worth something only if its key is not in the database: whoever rewrites the
whole chain (and recomputes every hash) cannot forge a signature without the private key file.
Keep that file off the database host, readable by the app only (audit_keygen writes it 0600).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from h2h_core.lock_objects import audit_head_qs_select_for_update
from h2h_core.models import AuditCheckpoint
from h2h_core.transactions import service_atomic

from .chain import GENESIS_HASH
from .record import audit_record


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
    """Return the public half of the signing key (the configured one by default) as PEM text."""
    key = key if key is not None else load_signing_key()
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
    """Return the fingerprint of the configured signing key, or None when there is no usable key."""
    try:
        return key_fingerprint(load_signing_key().public_key())
    except SigningKeyError:
        return None


def audit_checkpoint_create(*, actor=None) -> AuditCheckpoint:
    """Sign the chain's current head and store the signature as a checkpoint.

    The head row is locked, so the checkpoint names a head that writers have committed (a writer
    holding the lock finishes first). The checkpoint covers the chain up to the head as it was
    before this call; the "audit.checkpoint_signed" event recorded afterwards comes after it.
    """
    key = load_signing_key()  # read and parse the key before taking the lock
    public_pem = public_key_pem(key)
    fingerprint = key_fingerprint(key.public_key())
    with service_atomic():
        head = audit_head_qs_select_for_update().filter(pk=1).first()
        checkpoint = AuditCheckpoint(
            seq=head.seq if head else 0,
            hash=head.hash if head else GENESIS_HASH,
            signed_at=timezone.now(),
            public_key=public_pem,
            key_fingerprint=fingerprint,
        )
        checkpoint.signature = key.sign(checkpoint.signed_message()).hex()
        checkpoint.save(force_insert=True)
        audit_record(
            actor=actor,
            action="audit.checkpoint_signed",
            object_type="audit_checkpoint",
            object_id=checkpoint.pk,
            after={
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "signed_at": checkpoint.signed_at,
                "key_fingerprint": fingerprint,
            },
        )
    return checkpoint
