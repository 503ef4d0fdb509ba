"""API tokens: a random secret shown once, at issue; only its SHA-256 digest and a short prefix are kept.

The secret is 256 random bits, so a fast unkeyed hash is enough: nobody can search that space, and
the digest stays valid when SECRET_KEY is rotated. The prefix names a token to its owner and in
the audit log; it is no secret and no key. `password_fingerprint` ties a token to the password its
user had at issue (see `h2h_core.people.api_token_usable`).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX_LENGTH = 6


def token_digest(key: str) -> str:
    """Return the stored form of a token's key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH)
    digest = models.CharField(max_length=64, unique=True)
    password_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "API token"
        indexes = [models.Index(fields=["user", "created_at"], name="api_token_user_created")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"
