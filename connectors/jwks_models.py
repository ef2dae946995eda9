"""The console's signing keys for Jwks Auth, and their rotation settings.

Imported by connectors.models, so Django finds them in the connectors app. The key set is
console-wide: one issuer, one `/.well-known/jwks.json` (README "Jwks Auth").

Each key's life is four instants, stored when it is made or retired, so that every question
("which key signs now?", "which keys are published now?") is a date comparison and a rotation
can be replayed by moving dates (tests do):

    publish_at <= activates_at < retires_at <= unpublish_at

published from `publish_at` (before it signs, so verifiers have it before any token does),
signing from `activates_at` until `retires_at`, and published until `unpublish_at` (so tokens
signed just before `retires_at` still verify). After `unpublish_at` the private key is wiped.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connectors.fields import SecretTextField

DEFAULT_ROTATION_DAYS = 90
DEFAULT_GRACE_HOURS = 24


class JwksSettings(models.Model):
    """The one row (pk 1): rotate every N days (0: never automatically), grace in hours.

    Also the lock that serialises rotations: a rotation holds this row for update.
    """

    rotation_days = models.PositiveIntegerField(default=DEFAULT_ROTATION_DAYS)
    grace_hours = models.PositiveIntegerField(default=DEFAULT_GRACE_HOURS)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ()
        verbose_name_plural = "JWKS settings"

    def __str__(self) -> str:
        return f"rotate every {self.rotation_days} days, grace {self.grace_hours} hours"


class JwksKey(models.Model):
    """One RSA signing key of the console's JWKS."""

    class Reason(models.TextChoices):
        GENERATE = "generate", "Generate JWKS"
        ROTATE_NOW = "rotate_now", "Rotate now"
        SCHEDULED = "scheduled", "Scheduled rotation"

    kid = models.CharField("Key ID (kid)", max_length=36, unique=True, editable=False)
    algorithm = models.CharField(max_length=8, default="RS256", editable=False)
    # PKCS#8 PEM, encrypted with FIELD_ENCRYPTION_KEY; wiped ("") once the key is unpublished.
    private_key_pem = SecretTextField(blank=True, editable=False)
    # The public half as a JWK (RFC 7517), kid/alg/use included: what jwks.json serves. Kept
    # apart so publishing never decrypts a private key.
    public_jwk = models.JSONField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    publish_at = models.DateTimeField(db_index=True)
    activates_at = models.DateTimeField(db_index=True)
    retires_at = models.DateTimeField(null=True, blank=True)
    unpublish_at = models.DateTimeField(null=True, blank=True, db_index=True)
    wiped_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    reason = models.CharField(max_length=16, choices=Reason.choices, editable=False)

    class Meta:
        default_permissions = ()
        ordering = ["-activates_at", "-pk"]
        verbose_name = "JWKS key"

    def __str__(self) -> str:
        # The kid is public (it is in every token's header and in jwks.json); the key is not.
        return f"JWKS key {self.kid}"

    def __repr__(self) -> str:
        return f"<JwksKey kid={self.kid!r}>"
