"""Signed tokens (PyJWT, HS256 with SECRET_KEY).

A session token carries what the route check needs without a store read: the user id,
role, and the token version that logout and disabling bump. Each token has a `typ` so a
token made for one purpose is never accepted for another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
SESSION = "session"


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or of the wrong type."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    email: str
    name: str
    role: str
    version: int
    expires: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenSigner:
    def __init__(self, secret_key: str, *, issuer: str = "cmbcluster"):
        if len(secret_key) < 32:
            raise ValueError("secret key shorter than 32 characters")
        self._key = secret_key
        self._issuer = issuer

    def sign(self, typ: str, subject: str, ttl_seconds: float, **claims) -> str:
        now = int(time.time())
        payload = {**claims, "typ": typ, "sub": subject, "iss": self._issuer,
                   "iat": now, "exp": now + int(ttl_seconds)}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def verify(self, token: str | None, typ: str, required: tuple[str, ...] = ()) -> dict:
        if not token:
            raise InvalidToken("no token")
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "typ", "iss", *required]},
            )
        except jwt.PyJWTError as err:
            raise InvalidToken(str(err)) from None
        if claims.get("typ") != typ:
            raise InvalidToken("wrong token type")
        return claims

    # Session tokens ----------------------------------------------------------------------
    def sign_session(self, user_id: str, email: str, name: str, role: str, version: int,
                     ttl_seconds: float) -> str:
        return self.sign(SESSION, user_id, ttl_seconds, email=email, name=name, role=role,
                         ver=version)

    def verify_session(self, token: str | None) -> Identity:
        claims = self.verify(token, SESSION, ("email", "role", "ver"))
        if not isinstance(claims["ver"], int) or claims["role"] not in ("user", "admin"):
            raise InvalidToken("malformed session claims")
        return Identity(user_id=str(claims["sub"]), email=str(claims["email"]),
                        name=str(claims.get("name", "")), role=claims["role"],
                        version=claims["ver"], expires=int(claims["exp"]))
