"""The audit chain's keys: parsed from AUDIT_CHAIN_KEY, named by a key id, never stored.

AUDIT_CHAIN_KEY is a comma-separated list, newest first. The newest key signs new records and
checkpoints; every listed key still verifies what it signed. Each key is url-safe base64 of at
least 32 random bytes. A record stores only the key's id (a hash prefix), so the database can
say which key signed it without holding anything that could sign.

No app imports here: config/settings.py parses the variable with this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

MIN_KEY_BYTES = 32
KEY_ID_LENGTH = 16  # hex characters: 64 bits of the key's hash, to tell keys apart

KEY_HELP = (
    "Generate one with: python -c 'import base64, os; "
    "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'. "
    "To rotate, list the new key first: NEW,OLD."
)


def generate_chain_key() -> str:
    """A fresh key in the form AUDIT_CHAIN_KEY takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode("ascii")


def parse_chain_keys(raw: str) -> list[bytes]:
    """The keys of an AUDIT_CHAIN_KEY value, newest first; a bad one stops start-up."""
    keys: list[bytes] = []
    for position, text in enumerate((t.strip() for t in raw.split(",") if t.strip()), start=1):
        try:
            key = base64.urlsafe_b64decode(text.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            key = b""
        if len(key) < MIN_KEY_BYTES:
            # Never the key itself in the message: it may be a real key with a typo.
            raise ImproperlyConfigured(
                f"AUDIT_CHAIN_KEY key #{position} is not url-safe base64 of at least "
                f"{MIN_KEY_BYTES} bytes. {KEY_HELP}"
            )
        keys.append(key)
    return keys


def key_id(key: bytes) -> str:
    """A public name for a key: a prefix of its hash, which cannot be used to sign."""
    return hashlib.sha256(b"audit-chain-key-id\n" + key).hexdigest()[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class ChainKeys:
    """The configured keys: the newest signs, all verify."""

    keys: tuple[bytes, ...] = ()
    by_id: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<ChainKeys: {len(self.keys)} keys>"

    @property
    def signing_key(self) -> bytes | None:
        return self.keys[0] if self.keys else None

    @property
    def signing_key_id(self) -> str:
        return key_id(self.keys[0]) if self.keys else ""


def chain_keys_from(keys: list[bytes] | tuple[bytes, ...]) -> ChainKeys:
    return ChainKeys(tuple(keys), {key_id(k): k for k in keys})


def current_chain_keys() -> ChainKeys:
    """The keys from settings.AUDIT_CHAIN_KEYS (read each time, so tests may override it)."""
    from django.conf import settings

    keys = tuple(getattr(settings, "AUDIT_CHAIN_KEYS", ()) or ())
    return _cached(keys)


_CACHE: dict[tuple[bytes, ...], ChainKeys] = {}


def _cached(keys: tuple[bytes, ...]) -> ChainKeys:
    found = _CACHE.get(keys)
    if found is None:
        found = _CACHE.setdefault(keys, chain_keys_from(keys))
    return found


def mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def macs_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))
