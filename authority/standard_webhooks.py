"""Sign and verify webhook requests in the Standard Webhooks format (standardwebhooks.com).

Every request carries three headers:

    webhook-id:        the outbox message id, the same on every retry (receivers deduplicate by it)
    webhook-timestamp: Unix seconds when this attempt was sent
    webhook-signature: v1,<base64 of HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{raw body}">

The HMAC key is the base64-decoded part of the endpoint's secret `whsec_<base64>`. During a secret
rotation the endpoint's secret holds several secrets separated by spaces (new first); every request
is then signed with each, and the header lists the signatures separated by spaces, so a receiver
holding either secret accepts it. Secrets from before this format were converted by the migration
`webhook_jobs` to `whsec_` + base64 of their UTF-8 bytes: the key bytes did not change.

`verify` is what a receiver does (the tests use it): a timestamp within five minutes of now, and a
constant-time comparison against each signature offered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from django.core.exceptions import ValidationError

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 5 * 60
SECRET_BYTES = 32
MIN_KEY_BYTES, MAX_KEY_BYTES = 16, 128

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def secret_generate() -> str:
    """Return a new endpoint secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_keys(secret: str) -> list[bytes]:
    """Return the HMAC keys of a secret (several during a rotation); raise ValueError when malformed."""
    keys = []
    for part in secret.split():
        if not part.startswith(SECRET_PREFIX):
            raise ValueError(f"A secret starts with {SECRET_PREFIX!r}.")
        try:
            key = base64.b64decode(part[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError(f"After {SECRET_PREFIX!r} a secret is base64.") from None
        if not key:
            raise ValueError("A secret's key is not empty.")
        keys.append(key)
    if not keys:
        raise ValueError("A secret is required.")
    return keys


def validate_secret(value: str) -> None:
    """Model-field validator: one or more `whsec_<base64>` secrets separated by spaces, none weak.

    Signing accepts any key (a converted secret from before this format may be short); a secret
    typed or changed in the admin must have 16 to 128 bytes of key.
    """
    try:
        for key in secret_keys(value):
            if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
                raise ValueError(f"A secret's key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes (this one {len(key)}).")
    except ValueError as error:
        raise ValidationError(f"{error} Leave the generated secret, or paste one in the form whsec_<base64>.",
                              code="invalid_secret") from None


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one `v1,<base64>` signature of a request."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return f"{SIGNATURE_VERSION}," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three Standard Webhooks headers of a request, signed with every key of `secret`."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(key, msg_id, timestamp, body) for key in secret_keys(secret)),
    }


def verify(*, secret: str, headers: dict[str, str], body: bytes, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Return whether a received request is authentic and fresh (what a receiver does).

    `headers` may use any case. The timestamp must be within `tolerance` seconds of now, and one of
    the offered `v1` signatures must match one of the secret's keys (compared in constant time).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, offered = (lowered.get(ID_HEADER), lowered.get(TIMESTAMP_HEADER),
                              lowered.get(SIGNATURE_HEADER, ""))
    if not msg_id or not stamp or not stamp.isascii() or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    try:
        keys = secret_keys(secret)
    except ValueError:
        return False
    expected = [signature(key, msg_id, timestamp, body) for key in keys]
    candidates = [part for part in offered.split() if part.startswith(f"{SIGNATURE_VERSION},")]
    # Every pair is compared, so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(want, got) for want in expected for got in candidates]
    return any(matches)
