"""Session tokens: explicit algorithm, expiry, claims; everything else refused."""

from __future__ import annotations

import base64
import json
import time
import warnings

import jwt
import pytest

from functions.core.tokens import InvalidToken, TokenSigner

KEY = "k" * 40
signer = TokenSigner(KEY)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(**over) -> dict:
    now = int(time.time())
    base = {"typ": "session", "sub": "alice", "iss": "cmbcluster", "iat": now,
            "exp": now + 600, "email": "a@x.org", "role": "user", "ver": 0}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip():
    token = signer.sign_session("alice", "a@x.org", "Alice", "admin", 3, 600)
    ident = signer.verify_session(token)
    assert (ident.user_id, ident.role, ident.version, ident.is_admin) == ("alice", "admin", 3, True)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # PyJWT warns the key is short for HS512: beside the point
    HS512_TOKEN = jwt.encode(claims(), KEY, algorithm="HS512")


@pytest.mark.parametrize("token", [
    None, "", "garbage", "a.b.c",
    f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
    HS512_TOKEN,
    jwt.encode(claims(), "wrong-key-" + "x" * 30, algorithm="HS256"),
    jwt.encode(claims(exp=int(time.time()) - 120), KEY, algorithm="HS256"),
    jwt.encode(claims(iat=None), KEY, algorithm="HS256"),
    jwt.encode(claims(ver=None), KEY, algorithm="HS256"),
    jwt.encode(claims(sub=None), KEY, algorithm="HS256"),
    jwt.encode(claims(typ="activity"), KEY, algorithm="HS256"),
    jwt.encode(claims(iss="someone-else"), KEY, algorithm="HS256"),
    jwt.encode(claims(role="root"), KEY, algorithm="HS256"),
    jwt.encode(claims(ver="0"), KEY, algorithm="HS256"),
])
def test_bad_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        signer.verify_session(token)


def test_small_clock_skew_is_tolerated():
    token = jwt.encode(claims(exp=int(time.time()) - 10), KEY, algorithm="HS256")
    assert signer.verify_session(token).user_id == "alice"


def test_altering_a_claim_breaks_the_signature():
    header, payload, sig = signer.sign_session("bob", "b@x.org", "", "user", 0, 600).split(".")
    forged = b64(json.loads(base64.urlsafe_b64decode(payload + "==")) | {"role": "admin"})
    with pytest.raises(InvalidToken):
        signer.verify_session(f"{header}.{forged}.{sig}")


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        TokenSigner("short")
