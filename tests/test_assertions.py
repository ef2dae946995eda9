"""The signing core (connectors.oauth_http.assertions): claims, signatures, the public half."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors.oauth_http import assertions as a


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    return a.generate_private_key_pem("RS256")


@pytest.fixture(scope="module")
def ec_pem() -> str:
    return a.generate_private_key_pem("ES256")


def test_build_claims_has_the_registered_claims_and_a_fresh_jti():
    one = a.build_claims(
        issuer="client-1",
        subject="user@x",
        audience="https://127.0.0.1/token",
        ttl_seconds=300,
        extra_claims={"scope": "read"},
        now=1_000_000,
    )
    two = a.build_claims(
        issuer="client-1",
        subject="user@x",
        audience="https://127.0.0.1/token",
        ttl_seconds=300,
        extra_claims=None,
        now=1_000_000,
    )
    assert one["iss"] == "client-1" and one["sub"] == "user@x"
    assert one["aud"] == "https://127.0.0.1/token"
    assert one["iat"] == 1_000_000 and one["exp"] == 1_000_300
    assert one["scope"] == "read"
    assert one["jti"] != two["jti"] and len(one["jti"]) == 36


def test_extra_claims_cannot_stretch_exp_or_reuse_jti():
    claims = a.build_claims(
        issuer="i",
        subject="s",
        audience="a",
        ttl_seconds=60,
        extra_claims={"exp": 9_999_999_999, "jti": "fixed", "iat": 1},
        now=1000,
    )
    assert claims["exp"] == 1060 and claims["iat"] == 1000 and claims["jti"] != "fixed"


@pytest.mark.parametrize("ttl", [0, -1, a.MAX_TTL_SECONDS + 1])
def test_ttl_outside_the_cap_is_refused(ttl):
    with pytest.raises(a.SigningError) as error:
        a.build_claims(issuer="i", subject="s", audience="a", ttl_seconds=ttl)
    assert error.value.code == "ttl_range"


def test_blank_registered_claims_are_left_out():
    claims = a.build_claims(issuer="", subject="", audience="", ttl_seconds=10)
    assert not {"iss", "sub", "aud"} & set(claims)


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_rsa_signature_verifies_with_the_public_key(rsa_pem, algorithm):
    claims = a.build_claims(issuer="i", subject="s", audience="aud", ttl_seconds=60)
    token = a.sign_jwt(
        private_key_pem=rsa_pem,
        algorithm=algorithm,
        claims=claims,
        headers={"kid": "k1", "typ": "JWT", "alg": "none"},
    )
    decoded = jwt.decode(token, a.public_key_pem(rsa_pem), algorithms=[algorithm], audience="aud")
    assert decoded["jti"] == claims["jti"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm and header["kid"] == "k1" and header["typ"] == "JWT"


def test_ec_signature_verifies_through_the_jwk(ec_pem):
    claims = a.build_claims(issuer="i", subject="s", audience="aud", ttl_seconds=60)
    token = a.sign_jwt(private_key_pem=ec_pem, algorithm="ES256", claims=claims, headers=None)
    jwk = a.public_jwk(ec_pem, algorithm="ES256", kid="k2")
    assert jwk["kid"] == "k2" and jwk["alg"] == "ES256" and jwk["crv"] == "P-256"
    assert "d" not in jwk
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=["ES256"], audience="aud")["sub"] == "s"


def test_rsa_jwk_has_no_private_members(rsa_pem):
    jwk = a.public_jwk(rsa_pem, algorithm="RS256", kid="k")
    assert jwk["kty"] == "RSA" and {"n", "e"} <= set(jwk)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_the_algorithm_must_match_the_key(rsa_pem, ec_pem):
    claims = {"sub": "s"}
    for pem, algorithm in ((rsa_pem, "ES256"), (ec_pem, "RS256"), (ec_pem, "PS256")):
        with pytest.raises(a.SigningError) as error:
            a.sign_jwt(private_key_pem=pem, algorithm=algorithm, claims=claims)
        assert error.value.code == "algorithm_mismatch"
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(a.SigningError, match="P-384"):
        a.sign_jwt(private_key_pem=p384, algorithm="ES256", claims=claims)


def test_unreadable_key_error_never_quotes_the_input():
    garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWNhbmFyeQ==\n-----END PRIVATE KEY-----"
    with pytest.raises(a.SigningError) as error:
        a.load_private_key(garbage)
    assert error.value.code == "key_unreadable"
    assert "c2VjcmV0" not in str(error.value)


def test_passphrase_protected_key_is_named():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    with pytest.raises(a.SigningError) as error:
        a.load_private_key(pem)
    assert error.value.code == "key_encrypted"


def test_weak_rsa_key_is_flagged():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    facts = a.key_facts(a.load_private_key(_pem(weak)))
    assert facts.weak and facts.description == "RSA 1024 bits"
    strong = a.key_facts(a.load_private_key(a.generate_private_key_pem("PS256")))
    assert not strong.weak and strong.bits == 2048
    ec_facts = a.key_facts(a.load_private_key(a.generate_private_key_pem("ES256")))
    assert not ec_facts.weak and ec_facts.description == "EC P-256"


def test_decoded_view_has_no_signature(rsa_pem):
    token = a.sign_jwt(
        private_key_pem=rsa_pem,
        algorithm="RS256",
        claims=a.build_claims(issuer="i", subject="s", audience="a", ttl_seconds=60),
        headers={"kid": "k"},
    )
    header, claims = a.decoded_view(token)
    signature = a.signature_of(token)
    assert signature and signature not in json.dumps([header, claims])
    assert header["kid"] == "k" and claims["iss"] == "i"


@pytest.mark.parametrize(
    ("text", "code"),
    [("[1]", "json_not_object"), ("{", "json_invalid"), ('"x"', "json_not_object")],
)
def test_json_objects_only(text, code):
    with pytest.raises(a.SigningError) as error:
        a.parse_json_object(text, what="Additional Claims")
    assert error.value.code == code
    assert a.parse_json_object("  ", what="x") == {}
    assert a.parse_json_object('{"typ": "JWT"}', what="x") == {"typ": "JWT"}
