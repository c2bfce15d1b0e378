"""Identity from JWTs: what ``TokenVerifier`` accepts and refuses, on an injected wall clock,
and key files that cannot work failing when they are loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from token_keys import NOW, SECRET, KeyPair, claims, ec_pair, forged, rsa_pair, write

from actors.server.gateway import (
    DEFAULT_LEEWAY,
    DemoLogin,
    Identity,
    InvalidTokenError,
    KeyRing,
    TokenKeyError,
    TokenRules,
    TokenVerifier,
)


@pytest.fixture(scope="module")
def rsa_keys() -> KeyPair:
    return rsa_pair()


@pytest.fixture(scope="module")
def ec_keys() -> KeyPair:
    return ec_pair()


def hs256(rules: TokenRules | None = None, now: float = NOW) -> TokenVerifier:
    return TokenVerifier.from_secret(SECRET, rules, clock=lambda: now)


def signed(payload: dict[str, Any], secret: bytes = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def refusal(verifier: TokenVerifier, token: object) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify(token)
    return str(caught.value)


def test_a_valid_token_gives_its_user_and_expiry() -> None:
    identity = hs256().verify(signed(claims()))
    assert identity == Identity("ada", None, NOW + 600)


def test_the_demo_login_issues_tokens_the_verifier_accepts() -> None:
    rules = TokenRules(audience="chat", issuer="https://login.example.com")
    verifier = hs256(rules)
    token, expires_at = DemoLogin(verifier, ttl=60, clock=lambda: NOW).issue("ada")
    assert expires_at == NOW + 60
    assert verifier.verify(token) == Identity("ada", None, NOW + 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_an_expired_token_is_refused_once_the_leeway_is_over() -> None:
    token = signed(claims(exp=int(NOW)))
    assert hs256(now=NOW + DEFAULT_LEEWAY - 1).verify(token).user_id == "ada"
    assert refusal(hs256(now=NOW + DEFAULT_LEEWAY), token) == "the token has expired"


def test_a_token_not_valid_yet_is_refused_beyond_the_leeway() -> None:
    token = signed(claims(nbf=int(NOW) + 60))
    assert refusal(hs256(), token) == "the token is not valid yet (nbf)"
    assert hs256(now=NOW + 60 - DEFAULT_LEEWAY).verify(token).user_id == "ada"
    assert refusal(hs256(now=NOW + 60 - DEFAULT_LEEWAY - 1), token).endswith("(nbf)")


def test_a_token_issued_in_the_future_is_refused() -> None:
    token = signed(claims(iat=int(NOW) + 3600))
    assert refusal(hs256(), token) == "the token was issued in the future (iat)"


def test_the_leeway_is_configurable_and_small() -> None:
    token = signed(claims(exp=int(NOW)))
    assert refusal(hs256(TokenRules(leeway=0)), token) == "the token has expired"
    assert hs256(TokenRules(leeway=30), now=NOW + 29).verify(token).user_id == "ada"
    with pytest.raises(ValueError, match="from 0 to 300 seconds"):
        TokenRules(leeway=301)


def test_the_audience_is_checked() -> None:
    verifier = hs256(TokenRules(audience="chat"))
    assert verifier.verify(signed(claims(aud="chat"))).user_id == "ada"
    assert verifier.verify(signed(claims(aud=["other", "chat"]))).user_id == "ada"
    assert "audience" in refusal(verifier, signed(claims(aud="billing"))).lower()
    assert refusal(verifier, signed(claims())) == "the token has no aud"
    # A token meant for some audience is not taken by a server that expects none.
    assert "audience" in refusal(hs256(), signed(claims(aud="billing"))).lower()


def test_the_issuer_is_checked() -> None:
    verifier = hs256(TokenRules(issuer="https://login.example.com"))
    assert verifier.verify(signed(claims(iss="https://login.example.com"))).user_id == "ada"
    assert "issuer" in refusal(verifier, signed(claims(iss="https://evil.example.com"))).lower()
    assert refusal(verifier, signed(claims())) == "the token has no iss"


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_a_token_without_sub_or_exp_is_refused(missing: str) -> None:
    assert refusal(hs256(), signed(claims(**{missing: None}))) == f"the token has no {missing}"


@pytest.mark.parametrize("user", ["", "a b", "x" * 65, "\u00e4da", "ada\u0000"])
def test_a_token_naming_no_valid_user_is_refused(user: str) -> None:
    assert refusal(hs256(), signed(claims(sub=user))) == "the token names no valid user (sub)"


@pytest.mark.parametrize("expiry", ["soon", True, None])
def test_an_expiry_that_is_no_number_is_refused(expiry: object) -> None:
    token = forged({"alg": "HS256", "typ": "JWT"}, claims(exp=0) | {"exp": expiry}, SECRET)
    assert refusal(hs256(), token).startswith("the token")


def test_tampered_tokens_are_refused() -> None:
    token = signed(claims())
    header, payload, signature = token.split(".")
    as_bob = forged({"alg": "HS256", "typ": "JWT"}, claims(sub="bob"), b"guessed" * 5)
    bob_payload = as_bob.split(".")[1]
    assert "Signature verification failed" in refusal(
        hs256(), f"{header}.{bob_payload}.{signature}"
    )
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert "Signature verification failed" in refusal(hs256(), f"{header}.{payload}.{flipped}")
    assert refusal(hs256(), signed(claims(), b"another secret of 32 bytes long!")).endswith(
        "Signature verification failed"
    )
    for malformed in ["", "a.b", "not a token", f"{header}.{payload}", 42, None]:
        assert refusal(hs256(), malformed).startswith("the token")
    assert refusal(hs256(), "x" * 9000) == "the token is missing or too long"


def test_an_unsigned_token_is_refused() -> None:
    """``alg: none`` carries no signature: a server must never take it."""
    for name in ["none", "None", "NONE"]:
        token = forged({"alg": name, "typ": "JWT"}, claims(), None)
        assert refusal(hs256(), token) == f"the token is signed with {name!r}; HS256 is expected"


def test_the_algorithm_confusion_attack_is_refused(rsa_keys: KeyPair, tmp_path: Path) -> None:
    """An HS256 token whose HMAC key is the server's RS256 public key (which is public) must
    not pass as the provider's: the algorithm comes from the configuration, not the token."""
    keys = KeyRing.from_public_key_file(write(tmp_path / "key.pem", rsa_keys.public_pem), "RS256")
    verifier = TokenVerifier(keys, clock=lambda: NOW)
    attack = forged({"alg": "HS256", "typ": "JWT"}, claims(sub="admin"), rsa_keys.public_pem)
    assert refusal(verifier, attack) == "the token is signed with 'HS256'; RS256 is expected"
    assert verifier.verify(rsa_keys.sign(claims(), "RS256")).user_id == "ada"


def test_a_token_of_another_algorithm_is_refused(rsa_keys: KeyPair, ec_keys: KeyPair) -> None:
    assert refusal(hs256(), rsa_keys.sign(claims(), "RS256")).endswith("HS256 is expected")
    assert refusal(hs256(), ec_keys.sign(claims(), "ES256")).endswith("HS256 is expected")
    hs512 = jwt.encode(claims(), SECRET + SECRET, algorithm="HS512")
    assert refusal(hs256(), hs512) == "the token is signed with 'HS512'; HS256 is expected"


def test_es256_with_a_public_key_file(ec_keys: KeyPair, tmp_path: Path) -> None:
    keys = KeyRing.from_public_key_file(write(tmp_path / "ec.pem", ec_keys.public_pem), "ES256")
    verifier = TokenVerifier(keys, clock=lambda: NOW)
    assert verifier.verify(ec_keys.sign(claims(), "ES256")).user_id == "ada"
    other = ec_pair()
    assert "Signature verification failed" in refusal(verifier, other.sign(claims(), "ES256"))


def test_a_jwks_file_chooses_the_key_by_kid(rsa_keys: KeyPair, tmp_path: Path) -> None:
    second = rsa_pair()
    key_set = {"keys": [rsa_keys.jwk("RS256", "one"), second.jwk("RS256", "two")]}
    path = write(tmp_path / "jwks.json", json.dumps(key_set))
    verifier = TokenVerifier(KeyRing.from_jwks_file(path, "RS256"), clock=lambda: NOW)
    assert verifier.verify(rsa_keys.sign(claims(), "RS256", kid="one")).user_id == "ada"
    assert verifier.verify(second.sign(claims(sub="bob"), "RS256", kid="two")).user_id == "bob"
    wrong = rsa_keys.sign(claims(), "RS256", kid="two")
    assert "Signature verification failed" in refusal(verifier, wrong)
    unknown = rsa_keys.sign(claims(), "RS256", kid="three")
    assert refusal(verifier, unknown) == "the token names no known key (kid)"
    assert refusal(verifier, rsa_keys.sign(claims(), "RS256")).endswith("(kid)")


def test_the_rooms_claim_lists_the_rooms_a_user_may_join() -> None:
    verifier = hs256()
    token = signed(claims(rooms=["lobby", "support"]))
    assert verifier.verify(token).rooms == frozenset({"lobby", "support"})
    assert verifier.verify(signed(claims(rooms=[]))).rooms == frozenset()
    groups = hs256(TokenRules(rooms_claim="groups"))
    assert groups.verify(signed(claims(groups=["ops"]))).rooms == frozenset({"ops"})
    assert groups.verify(token).rooms is None
    assert hs256(TokenRules(rooms_claim=None)).verify(token).rooms is None


@pytest.mark.parametrize("rooms", ["lobby", [1], [{}], ["a room"], ["global"], {"lobby": 1}])
def test_a_rooms_claim_that_is_no_list_of_rooms_is_refused(rooms: object) -> None:
    message = refusal(hs256(), signed(claims(rooms=rooms)))
    assert message.startswith("the token's rooms claim"), message


def test_the_demo_login_needs_hs256(rsa_keys: KeyPair, tmp_path: Path) -> None:
    keys = KeyRing.from_public_key_file(write(tmp_path / "key.pem", rsa_keys.public_pem), "RS256")
    with pytest.raises(ValueError, match="the demo login signs HS256 tokens"):
        DemoLogin(TokenVerifier(keys))
    with pytest.raises(ValueError, match="ttl must be positive"):
        DemoLogin(hs256(), ttl=0)


# --- key files that cannot work fail when they are loaded ---------------------------------


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(TokenKeyError, match="has 31 bytes; HS256 needs 32 or more"):
        KeyRing.from_secret(b"x" * 31)


def key_error(path: Path, algorithm: str = "RS256", *, jwks: bool = False) -> str:
    with pytest.raises(TokenKeyError) as caught:
        if jwks:
            KeyRing.from_jwks_file(path, algorithm)
        else:
            KeyRing.from_public_key_file(path, algorithm)
    return str(caught.value)


def test_bad_public_key_files_are_refused(rsa_keys: KeyPair, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert (
        key_error(missing)
        == f"the public key file {missing} cannot be read: No such file or directory"
    )
    garbage = write(tmp_path / "garbage.pem", b"-----BEGIN PUBLIC KEY-----\nnonsense\n")
    assert key_error(garbage) == f"{garbage} holds no PEM public key for RS256"
    private = write(tmp_path / "private.pem", rsa_keys.private_pem)
    assert key_error(private) == (
        f"{private}: RS256 needs an RSA public key, not a private key (give the public key only)"
    )
    rsa_file = write(tmp_path / "rsa.pem", rsa_keys.public_pem)
    assert key_error(rsa_file, "ES256").startswith(f"{rsa_file}: ES256 needs an EC P-256")
    p384 = write(tmp_path / "p384.pem", ec_pair(ec.SECP384R1()).public_pem)
    assert key_error(p384, "ES256").endswith("(secp384r1)")
    assert key_error(p384, "RS256").startswith(f"{p384}: RS256 needs an RSA public key")
    short = write(tmp_path / "short.pem", rsa_pair(1024).public_pem)
    assert key_error(short) == f"{short}: the RSA key has 1024 bits; RS256 needs 2048 or more"
    assert key_error(rsa_file, "HS256") == "a public key file is for RS256 or ES256"


def test_bad_jwks_files_are_refused(rsa_keys: KeyPair, tmp_path: Path) -> None:
    def jwks(name: str, document: object) -> Path:
        return write(tmp_path / name, json.dumps(document))

    not_json = write(tmp_path / "not.json", "{")
    assert key_error(not_json, jwks=True).startswith(f"{not_json} is not a usable JSON Web Key")
    empty = jwks("empty.json", {"keys": []})
    assert key_error(empty, jwks=True).startswith(f"{empty} is not a usable JSON Web Key Set")
    ec_only = jwks("ec.json", {"keys": [ec_pair().jwk("ES256", "e")]})
    assert key_error(ec_only, jwks=True) == f"{ec_only} has no RS256 key"
    signing = rsa_keys.jwk("RS256", "one")
    encrypting = jwks("enc.json", {"keys": [{**signing, "use": "enc"}]})
    assert key_error(encrypting, jwks=True) == f"{encrypting} has no RS256 key"
    assert isinstance(rsa_keys.private, rsa.RSAPrivateKey)
    private_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_keys.private, as_dict=True)
    private = jwks("private.json", {"keys": [{**private_jwk, "alg": "RS256", "kid": "p"}]})
    assert key_error(private, jwks=True).endswith("not a private key (give the public key only)")
    twice = jwks("twice.json", {"keys": [signing, rsa_pair().jwk("RS256", "one")]})
    assert key_error(twice, jwks=True) == f"{twice}, key 'one': two keys have this kid"
