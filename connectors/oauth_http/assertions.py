"""Signed JWTs: the claims of an assertion, its signature, and the parts a page may show.

Used by the JWT Bearer grant (RFC 7523 §2.1), private_key_jwt client authentication (§2.2)
and Jwt/Jwks Auth, where the signed JWT itself is the API credential. Signing is PyJWT's (with
`cryptography`), never ours. No Django here: the HTTP core imports this module.

A signed JWT is a bearer credential for its lifetime, so the token itself is treated as a
secret; `decoded_view` returns only its header and claims, the parts a result step may show.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# RFC 7523 leaves the lifetime to the server; two hours is the console's ceiling everywhere.
MAX_TTL_SECONDS = 7200
DEFAULT_TTL_SECONDS = 300
# NIST SP 800-57: RSA keys under 2048 bits no longer give 112-bit security.
MIN_RSA_BITS = 2048
# Claims the console computes for every token; extra claims may not replace them, so the cap on
# the lifetime and the freshness of jti hold whatever a user configures.
RESERVED_CLAIMS = frozenset({"exp", "iat", "jti"})
# Header fields PyJWT owns: the algorithm must match the key, and kid has a field of its own.
RESERVED_HEADERS = frozenset({"alg"})


class SigningAlgorithm(StrEnum):
    """The JWS algorithms (RFC 7518 §3) a connector can sign with."""

    RS256 = "RS256"
    ES256 = "ES256"
    PS256 = "PS256"


RSA_ALGORITHMS = frozenset({SigningAlgorithm.RS256, SigningAlgorithm.PS256})
EC_ALGORITHMS = frozenset({SigningAlgorithm.ES256})


class SigningError(ValueError):
    """A key, algorithm or claim set that cannot make a token; `code` names the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What a page may say about a private key: its type and size, never a byte of it."""

    kind: str  # "RSA" or "EC"
    bits: int
    curve: str = ""

    @property
    def weak(self) -> bool:
        return self.kind == "RSA" and self.bits < MIN_RSA_BITS

    @property
    def description(self) -> str:
        return f"EC {self.curve}" if self.kind == "EC" else f"RSA {self.bits} bits"


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


_PEM_BLOCK = re.compile(r"(-----BEGIN [A-Z ]+-----)\s*(.*?)\s*(-----END [A-Z ]+-----)", re.S)


def _pem_lines(text: str) -> bytes:
    """The PEM with its base64 body on lines of its own again.

    A key pasted through a one-line box (or a JSON value with its line breaks lost) arrives as
    one line; the armour tells where the body is, so it is rebuilt instead of refused.
    """
    match = _PEM_BLOCK.search(text.strip())
    if match is None:
        return text.strip().encode()
    begin, body, end = match.groups()
    if "Proc-Type" in body:  # an OpenSSL-encrypted key: its headers need their own lines
        return text.strip().encode()
    body = "".join(body.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([begin, *lines, end, ""]).encode()


def load_private_key(private_key_pem: str) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8 or traditional); RSA or EC only.

    The error never quotes the input: it is a private key. Parsed keys are kept (a few dozen):
    loading an RSA key checks it, which costs tens of milliseconds, and Jwt Auth signs a JWT
    for every request.
    """
    return _load_private_key(private_key_pem)


@functools.lru_cache(maxsize=64)
def _load_private_key(private_key_pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(_pem_lines(private_key_pem), password=None)
    except TypeError:
        raise SigningError(
            "key_encrypted",
            "The private key is protected with a passphrase. Paste it unencrypted "
            "(openssl pkey -in key.pem).",
        ) from None
    except (ValueError, UnicodeError):
        # cryptography's message can quote the input's structure; say only what to do.
        raise SigningError(
            "key_unreadable",
            "This is not a readable PEM private key. Paste the whole key, from "
            "-----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----.",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningError(
            "key_type", "Only RSA and EC private keys can sign (RS256, ES256, PS256)."
        )
    return key


def key_facts(key: PrivateKey) -> KeyFacts:
    if isinstance(key, rsa.RSAPrivateKey):
        return KeyFacts(kind="RSA", bits=key.key_size)
    return KeyFacts(kind="EC", bits=key.curve.key_size, curve=_curve_name(key.curve))


def _curve_name(curve: ec.EllipticCurve) -> str:
    return {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
        curve.name, curve.name
    )


def check_key_matches(key: PrivateKey, algorithm: str) -> None:
    """RS256/PS256 need an RSA key and ES256 an EC P-256 key (RFC 7518 §3.4)."""
    if algorithm in RSA_ALGORITHMS and not isinstance(key, rsa.RSAPrivateKey):
        raise SigningError(
            "algorithm_mismatch", f"{algorithm} signs with an RSA key; this key is EC."
        )
    if algorithm in EC_ALGORITHMS:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningError(
                "algorithm_mismatch", f"{algorithm} signs with an EC P-256 key; this key is RSA."
            )
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningError(
                "algorithm_mismatch",
                f"{algorithm} signs with an EC P-256 key; this key is {_curve_name(key.curve)}.",
            )
    if algorithm not in RSA_ALGORITHMS | EC_ALGORITHMS:
        raise SigningError("algorithm_unknown", "Choose RS256, ES256 or PS256.")


def parse_json_object(text: str, *, what: str) -> dict[str, Any]:
    """Blank is {}; anything else must be one JSON object."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise SigningError("json_invalid", f"{what} must be a JSON object.") from None
    if not isinstance(value, dict):
        raise SigningError("json_not_object", f"{what} must be a JSON object, like {{}}.")
    return value


def build_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    ttl_seconds: int,
    extra_claims: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The claim set of one token: iss, sub, aud, iat, exp and a fresh jti (RFC 7523 §3).

    Extra claims come first so the computed ones win: an extra "exp" cannot stretch the
    lifetime past the two-hour cap, and "jti" is always new (servers refuse a replayed one).
    Blank iss/sub/aud are left out rather than sent empty.
    """
    if ttl_seconds <= 0 or ttl_seconds > MAX_TTL_SECONDS:
        raise SigningError(
            "ttl_range", f"The expiry must be between 1 and {MAX_TTL_SECONDS} seconds."
        )
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        key: value for key, value in (extra_claims or {}).items() if key not in RESERVED_CLAIMS
    }
    for key, value in (("iss", issuer), ("sub", subject), ("aud", audience)):
        if value:
            claims[key] = value
    claims["iat"] = issued
    claims["exp"] = issued + ttl_seconds
    claims["jti"] = str(uuid.uuid4())
    return claims


def sign_jwt(
    *,
    private_key_pem: str,
    algorithm: str,
    claims: Mapping[str, Any],
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign `claims` with the key; `headers` adds fields such as kid and typ (alg is ours)."""
    key = load_private_key(private_key_pem)
    check_key_matches(key, algorithm)
    extra = {k: v for k, v in (headers or {}).items() if k not in RESERVED_HEADERS and v != ""}
    return jwt.encode(dict(claims), key, algorithm=algorithm, headers=extra or None)


def decoded_view(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, without verifying it and without its signature."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return dict(header), dict(claims)


def signature_of(token: str) -> str:
    """The third segment of a compact JWS: what redaction must never let through."""
    parts = token.split(".")
    return parts[2] if len(parts) == 3 else ""


@dataclass(frozen=True, slots=True)
class JwtSigning:
    """How a connector signs its JWTs: the key, the algorithm and the claims it states.

    `audience` blank means the caller's default (the token URL, or the Base URL for Jwt Auth).
    """

    private_key_pem: str = field(repr=False)
    algorithm: str = SigningAlgorithm.RS256
    issuer: str = ""
    subject: str = ""
    audience: str = ""
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    key_id: str = ""
    extra_claims: Mapping[str, Any] = field(default_factory=dict)
    extra_headers: Mapping[str, Any] = field(default_factory=dict)

    def sign(
        self,
        *,
        default_audience: str,
        issuer: str | None = None,
        subject: str | None = None,
        now: float | None = None,
    ) -> str:
        """A freshly signed JWT; `issuer`/`subject` override the configured ones (RFC 7523 §2.2
        client assertions state the client id in both)."""
        claims = build_claims(
            issuer=self.issuer if issuer is None else issuer,
            subject=self.subject if subject is None else subject,
            audience=self.audience or default_audience,
            ttl_seconds=self.ttl_seconds,
            extra_claims=self.extra_claims,
            now=now,
        )
        headers = dict(self.extra_headers)
        if self.key_id:
            headers["kid"] = self.key_id
        return sign_jwt(
            private_key_pem=self.private_key_pem,
            algorithm=self.algorithm,
            claims=claims,
            headers=headers,
        )


def unsigned_view(token: str, mask: str) -> str:
    """The token with its signature replaced by `mask`: header and claims stay readable.

    What a result step stores and shows of a JWT the console sent. Without its signature the
    token is worthless to anyone who reads it.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return mask
    return f"{parts[0]}.{parts[1]}.{mask}"


# --- key help: the public half, for registering it with the identity provider --------------


def public_key_pem(private_key_pem: str) -> str:
    key = load_private_key(private_key_pem)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(private_key_pem: str, *, algorithm: str = "", kid: str = "") -> dict[str, Any]:
    """The public key as a JWK (RFC 7517), with use=sig and, when known, alg and kid."""
    key = load_private_key(private_key_pem)
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.get_default_algorithms()[
            "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        ].to_jwk(key.public_key())
    )
    # Only public members: to_jwk of a public key has none of d, p, q, dp, dq, qi.
    # RFC 7517 §4.3: "use" and "key_ops" should not both be present; providers read "use".
    private_members = {"d", "p", "q", "dp", "dq", "qi", "oth", "key_ops"}
    jwk = {k: v for k, v in jwk.items() if k not in private_members}
    jwk["use"] = "sig"
    if algorithm:
        jwk["alg"] = algorithm
    if kid:
        jwk["kid"] = kid
    return jwk


def generate_private_key_pem(algorithm: str) -> str:
    """A new key for the algorithm: RSA 2048 for RS256/PS256, EC P-256 for ES256 (PKCS#8)."""
    key: PrivateKey
    if algorithm in EC_ALGORITHMS:
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm in RSA_ALGORITHMS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    else:
        raise SigningError("algorithm_unknown", "Choose RS256, ES256 or PS256.")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "MIN_RSA_BITS",
    "SigningError",
    "JwtSigning",
    "KeyFacts",
    "SigningAlgorithm",
    "build_claims",
    "check_key_matches",
    "decoded_view",
    "generate_private_key_pem",
    "key_facts",
    "load_private_key",
    "parse_json_object",
    "public_jwk",
    "public_key_pem",
    "sign_jwt",
    "signature_of",
    "unsigned_view",
]
