"""Forged session cookies: none of them signs anyone in, on the auth or the admin API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.core.models import Role, User
from functions.core.sessions import SESSION_COOKIE
from functions.core.tokens import TokenSigner

from .oidc_rig import SECRET_KEY


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def hub(make_hub):
    hub = make_hub()
    hub.store.upsert_user(User(id="alice", email="alice@uni.example", role=Role.USER))
    hub.store.upsert_user(User(id="root", email="root@uni.example", role=Role.ADMIN))
    return hub


def claims(**changes) -> dict:
    now = int(time.time())
    return {"typ": "session", "sub": "root", "iss": "cmbcluster", "iat": now,
            "exp": now + 3600, "email": "root@uni.example", "name": "", "role": "admin",
            "ver": 0} | changes


def rejected(hub, token: str) -> None:
    for path in ("/api/me", "/api/admin/users"):
        resp = requests.get(f"{hub.url}{path}", cookies={SESSION_COOKIE: token}, timeout=10)
        assert resp.status_code == 401, (path, resp.text)
        assert resp.json()["error"] == "not_signed_in"


def test_a_genuine_cookie_works(hub):
    # The control for everything below: the same claims, properly signed, get in.
    token = jwt.encode(claims(), SECRET_KEY, algorithm="HS256")
    assert requests.get(f"{hub.url}/api/admin/users", cookies={SESSION_COOKIE: token},
                        timeout=10).status_code == 200


def test_alg_none(hub):
    rejected(hub, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.")


def test_alg_none_with_signature(hub):
    token = jwt.encode(claims(), SECRET_KEY, algorithm="HS256")
    header, payload, signature = token.split(".")
    rejected(hub, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}")


def test_rs256_signed_with_attacker_key(hub):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rejected(hub, jwt.encode(claims(), key, algorithm="RS256"))


def test_hs256_keyed_with_a_public_key(hub):
    # HS/RS confusion: a verifier that took "the key" for an RSA token would check this
    # HMAC against the public key, which the attacker knows.
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    rejected(hub, f"{signing_input}.{b64(signature)}")


def test_wrong_key(hub):
    rejected(hub, jwt.encode(claims(), "another-secret-key-" + "y" * 32, algorithm="HS256"))


def test_expired(hub):
    rejected(hub, TokenSigner(SECRET_KEY).sign("session", "root", -120, email="root@uni.example",
                                                role="admin", ver=0))


def test_altered_claims(hub):
    # alice's genuine token, with the role and subject changed and the signature kept.
    token = TokenSigner(SECRET_KEY).sign_session("alice", "alice@uni.example", "", "user", 0, 3600)
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    rejected(hub, f"{header}.{b64(body | {'sub': 'root', 'role': 'admin'})}.{signature}")


def test_token_of_another_type(hub):
    # A login-state token, signed with the real key, is not a session.
    rejected(hub, TokenSigner(SECRET_KEY).sign("login", "root", 600, email="root@uni.example",
                                                role="admin", ver=0))


def test_stale_token_version(hub):
    hub.store.update_user("root", revoke_tokens=True)
    rejected(hub, jwt.encode(claims(ver=0), SECRET_KEY, algorithm="HS256"))


def test_garbage(hub):
    rejected(hub, "not.a.jwt")
