"""One-time prune permits for PostgreSQL: the only way a session can delete audit history.

The permits are the links of a hash chain (as in S/KEY): link(n) = SHA-256^n(seed), with the
seed an HMAC of the chain key, which the database never holds. The database stores the last
link handed out and how many remain. To prune, the app reveals the link before it; a trigger
accepts the update only if SHA-256 of the new value is the stored one, and records the
transaction, and the append-only triggers then let deletes through in that transaction alone.
A database user without the key cannot compute the next link, so no session setting, temporary
table or plain UPDATE opens a prune.
"""

from __future__ import annotations

import hashlib

from django.db import connection

from audit.keys import ChainKeys, mac
from audit.models import AuditPrunePermit

PERMITS = 100_000  # one prune a day for centuries; each costs at most this many hashes


class PrunePermitError(RuntimeError):
    """No permit could be used: the prune must not happen."""


def _seed(key: bytes) -> bytes:
    return bytes.fromhex(mac(key, b"audit-prune-permits"))


def permit_link(key: bytes, n: int) -> str:
    """SHA-256 applied n times to the seed, as hex."""
    value = _seed(key)
    for _ in range(n):
        value = hashlib.sha256(value).digest()
    return value.hex()


def permits_set_up(keys: ChainKeys) -> AuditPrunePermit | None:
    """Create the permit chain under the signing key, once (the trigger refuses a second)."""
    existing = AuditPrunePermit.objects.filter(pk=1).first()
    if existing is not None or keys.signing_key is None:
        return existing
    return AuditPrunePermit.objects.create(
        pk=1,
        key_id=keys.signing_key_id,
        remaining=PERMITS,
        next_hash=permit_link(keys.signing_key, PERMITS),
    )


def _permit_table() -> str:
    return connection.ops.quote_name(AuditPrunePermit._meta.db_table)


def permit_close() -> None:
    """End the permit, so later statements of the same transaction can't delete (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_permit_table()} SET used_txid = NULL WHERE id = 1")  # noqa: S608


def permit_use(keys: ChainKeys) -> int:
    """Open this transaction for pruning (PostgreSQL); returns the permits left.

    Call `permit_close()` once the deletes are done: the permit lasts until then, or until the
    transaction ends.
    """
    permit = permits_set_up(keys)
    if permit is None:
        raise PrunePermitError(
            "Pruning on PostgreSQL needs AUDIT_CHAIN_KEY: the prune permits are derived from it."
        )
    key = keys.by_id.get(permit.key_id)
    if key is None:
        raise PrunePermitError(
            f"The prune permits were set up under chain key id {permit.key_id}, which "
            "AUDIT_CHAIN_KEY no longer lists: list that key again (after the newest)."
        )
    if permit.remaining < 1:
        raise PrunePermitError("The prune permits are used up.")
    link = permit_link(key, permit.remaining - 1)
    with connection.cursor() as cursor:
        # Only the model's own table name is interpolated; the values are parameters.
        cursor.execute(
            f"UPDATE {_permit_table()} SET next_hash = %s, remaining = remaining - 1, "  # noqa: S608
            "used_txid = txid_current() WHERE id = 1",
            [link],
        )
    return permit.remaining - 1
