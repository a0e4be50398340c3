"""Calls from Google's own services: Cloud Scheduler (the culler) and Cloud Tasks (spawn).

Each attaches an OIDC ID token that Google signs for the service account the job runs
as, with the receiving service's URL as audience. We accept a call only with a token
signed by the configured issuer's keys, for our audience, naming one of the allowed
service accounts with a verified e-mail. RS256 only: the algorithm comes from our list,
never from the token.
"""

from __future__ import annotations

import jwt

from .tokens import InvalidToken

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"


class ServiceTokenVerifier:
    def __init__(self, audience: str, accounts: tuple[str, ...],
                 issuers: tuple[str, ...] = GOOGLE_ISSUERS, jwks_url: str = GOOGLE_JWKS_URL):
        self.audience = audience
        self.accounts = frozenset(a.lower() for a in accounts)
        self.issuers = issuers
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=5)

    def verify(self, authorization: str | None) -> str:
        """The calling service account's e-mail, or InvalidToken."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("no bearer token")
        try:
            key = self._keys.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience,
                                issuer=list(self.issuers), leeway=30,
                                options={"require": ["exp", "iat", "iss", "aud", "email"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as err:
            raise InvalidToken(str(err)) from None
        email = str(claims.get("email", "")).lower()
        if claims.get("email_verified") is not True or email not in self.accounts:
            raise PermissionError(f"{email or 'this caller'} may not call this service")
        return email
