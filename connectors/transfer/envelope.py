"""The encrypted export file: a small JSON envelope around the export, sealed with a passphrase.

    {"format": "connector-console-export", "version": 1,
     "kdf": {"name": "scrypt", "salt": "<base64, 16 bytes>", "n": 32768, "r": 8, "p": 1,
             "length": 32},
     "cipher": "AES-256-GCM", "nonce": "<base64, 12 bytes>", "ciphertext": "<base64>"}

The passphrase goes through scrypt (memory-hard: n=2**15, r=8 takes 32 MiB per guess) with a
random salt; the derived key seals the export's JSON text (UTF-8) with AES-256-GCM under a
random nonce. Every field but the ciphertext and the nonce is bound to it as associated data, so
altering the header, the ciphertext or the tag makes opening fail exactly as a wrong passphrase
does: the cipher cannot tell the two apart, and neither can we.

Plain Python and `cryptography` only, no Django: the same code serves the pages and the commands.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "connector-console-export"
VERSION = 1
CIPHER = "AES-256-GCM"
KDF = "scrypt"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LENGTH = 32
SALT_LENGTH = 16
NONCE_LENGTH = 12
# What a file may ask of us when it is opened: a file sealed elsewhere may use a stronger
# setting, but a crafted one must not make the server spend gigabytes or minutes per try.
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # 128 * n * r bytes
MAX_SCRYPT_P = 4


class EnvelopeError(ValueError):
    """The envelope cannot be opened; the message says why, in words for the user."""


class WrongPassphrase(EnvelopeError):
    """The passphrase does not open the file, or the file was altered since it was sealed."""


def envelope_is(payload: Any) -> bool:
    """True when a parsed JSON file is an encrypted export (whatever its version)."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def envelope_seal(plaintext: bytes, *, passphrase: str) -> dict[str, Any]:
    """Encrypt `plaintext` under a key derived from `passphrase`; the envelope, as a dict.

    The passphrase's strength is the caller's rule (connectors.rules.passphrase).
    """
    salt = os.urandom(SALT_LENGTH)
    nonce = os.urandom(NONCE_LENGTH)
    header = _header(salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    key = _derive(passphrase, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated_data(header))
    return {**header, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}


def envelope_open(envelope: Any, *, passphrase: str) -> bytes:
    """The plaintext sealed in `envelope`; EnvelopeError if malformed, WrongPassphrase if it
    does not open."""
    if not envelope_is(envelope):
        raise EnvelopeError(f'The file is not an encrypted export (its "format" is not {FORMAT}).')
    version = envelope.get("version")
    if type(version) is not int or version != VERSION:
        raise EnvelopeError(
            f"The file is an encrypted export of another version; this installation reads "
            f"version {VERSION}. Export it again from an installation of this version."
        )
    if envelope.get("cipher") != CIPHER:
        raise EnvelopeError(f'The file\'s "cipher" must be "{CIPHER}".')
    salt, n, r, p = _kdf_parameters(envelope.get("kdf"))
    nonce = _b64_field(envelope, "nonce")
    ciphertext = _b64_field(envelope, "ciphertext")
    if len(nonce) != NONCE_LENGTH:
        raise EnvelopeError(f'The file\'s "nonce" must be {NONCE_LENGTH} bytes.')
    # Rebuilt from the values just checked, as sealing built it: anything else in the file
    # (unknown keys) is neither read nor authenticated.
    header = _header(salt, n=n, r=r, p=p)
    key = _derive(passphrase, salt=salt, n=n, r=r, p=p)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _associated_data(header))
    except InvalidTag:
        raise WrongPassphrase(
            "The passphrase does not open this file (or the file was changed after it was "
            "exported). Check the passphrase and try again."
        ) from None


def _kdf_parameters(kdf: Any) -> tuple[bytes, int, int, int]:
    """The salt and scrypt costs a file names, refused when malformed or beyond our limits."""
    if not isinstance(kdf, dict) or kdf.get("name") != KDF:
        raise EnvelopeError(f'The file\'s "kdf" must be an object with "name": "{KDF}".')
    n, r, p = (_cost(kdf, name) for name in ("n", "r", "p"))
    if n < 2 or n & (n - 1) or 128 * n * r > MAX_SCRYPT_MEMORY or p > MAX_SCRYPT_P:
        raise EnvelopeError(
            "The file's scrypt settings are not a power of two or ask for more than this "
            f"server allows ({MAX_SCRYPT_MEMORY // 2**20} MiB, p up to {MAX_SCRYPT_P})."
        )
    if kdf.get("length") != KEY_LENGTH:
        raise EnvelopeError(f'The file\'s "kdf" "length" must be {KEY_LENGTH}.')
    salt = _b64_field(kdf, "salt")
    if len(salt) < SALT_LENGTH:
        raise EnvelopeError(f'The file\'s "salt" must be at least {SALT_LENGTH} bytes.')
    return salt, n, r, p


def _cost(kdf: dict[str, Any], name: str) -> int:
    value = kdf.get(name)
    if type(value) is not int or value < 1:  # bool is an int to Python, not to this format
        raise EnvelopeError('The file\'s "kdf" must give n, r and p as positive whole numbers.')
    return value


def _header(salt: bytes, *, n: int, r: int, p: int) -> dict[str, Any]:
    """Everything in the envelope but the nonce and the ciphertext, in the documented order."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "kdf": {"name": KDF, "salt": _b64(salt), "n": n, "r": r, "p": p, "length": KEY_LENGTH},
        "cipher": CIPHER,
    }


def _derive(passphrase: str, *, salt: bytes, n: int, r: int, p: int) -> bytes:
    try:
        secret = passphrase.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvelopeError("The passphrase is not valid text.") from None
    return Scrypt(salt=salt, length=KEY_LENGTH, n=n, r=r, p=p).derive(secret)


def _associated_data(header: dict[str, Any]) -> bytes:
    """The header as one canonical byte string, authenticated along with the ciphertext."""
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_field(holder: dict[str, Any], key: str) -> bytes:
    value = holder.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise EnvelopeError(f'The file\'s "{key}" must be base64 text.') from None
