"""The OpenID Connect client: authorization code flow with PKCE, and ID token checks.

Authlib builds the authorization request (state, nonce, S256 code challenge) and does
the code exchange. PyJWT checks the ID token, restricted to the asymmetric algorithms the
provider advertises, so a token signed with HS256 (using a public key or the client
secret as the HMAC key) is refused before any key is tried.

The provider's metadata and keys are fetched on first use and cached: the function
starts even when the provider is briefly unreachable, and a failed refresh keeps the
last good copy.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

SCOPE = "openid email profile"
ASYMMETRIC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})


class ProviderUnavailable(Exception):
    """The provider's metadata, keys or token endpoint could not be reached or read."""


class CodeRejected(Exception):
    """The token endpoint refused the authorization code (used, expired, PKCE mismatch)."""


class BadIdToken(Exception):
    """The ID token failed a check: signature, issuer, audience, expiry or nonce."""


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    verifier: str


class _Cached:
    """One JSON document fetched lazily and kept for `max_age` seconds."""

    def __init__(self, max_age: float):
        self.max_age = max_age
        self.value: dict | None = None
        self.fetched = 0.0

    def fresh(self) -> bool:
        return self.value is not None and time.monotonic() - self.fetched < self.max_age


class OidcClient:
    def __init__(self, metadata_url: str, client_id: str, client_secret: str, *,
                 timeout: float = 5.0, cache_seconds: float = 3600.0, leeway: int = 60):
        self.metadata_url = metadata_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.leeway = leeway
        self._metadata = _Cached(cache_seconds)
        self._jwks = _Cached(cache_seconds)
        self._lock = threading.Lock()

    # -- provider documents -----------------------------------------------------------
    def _get_json(self, url: str) -> dict:
        try:
            response = requests.get(url, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as err:
            raise ProviderUnavailable(f"{url}: {type(err).__name__}") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return data

    def _load(self, cache: _Cached, url: str, *, force: bool = False) -> dict:
        with self._lock:
            if cache.fresh() and not force:
                return cache.value
            try:
                cache.value = self._get_json(url)
                cache.fetched = time.monotonic()
            except ProviderUnavailable:
                if cache.value is None:
                    raise
                # Keep serving the last good copy; try again in a minute.
                cache.fetched = time.monotonic() - cache.max_age + 60
            return cache.value

    def metadata(self) -> dict:
        meta = self._load(self._metadata, self.metadata_url)
        missing = [k for k in REQUIRED_METADATA if not isinstance(meta.get(k), str)]
        if missing:
            raise ProviderUnavailable(f"provider metadata lacks {', '.join(missing)}")
        return meta

    @property
    def issuer(self) -> str:
        return self.metadata()["issuer"]

    def _signing_key(self, kid: str | None, alg: str) -> Any:
        jwks_uri = self.metadata()["jwks_uri"]
        keys = self._find_keys(self._load(self._jwks, jwks_uri), kid)
        if not keys and kid is not None and time.monotonic() - self._jwks.fetched > 60:
            # An unknown key id: the provider may have rotated its keys. At most one
            # refetch a minute, so forged key ids cannot make us hammer the provider.
            keys = self._find_keys(self._load(self._jwks, jwks_uri, force=True), kid)
        if len(keys) != 1:
            raise BadIdToken("no single provider key matches the token's key id")
        try:
            return jwt.PyJWK(keys[0], algorithm=alg).key
        except jwt.PyJWTError as err:
            raise BadIdToken(f"provider key unusable: {err}") from None

    @staticmethod
    def _find_keys(jwks: dict, kid: str | None) -> list[dict]:
        keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)
                and k.get("use", "sig") == "sig"]
        return keys if kid is None else [k for k in keys if k.get("kid") == kid]

    # -- the flow ----------------------------------------------------------------------
    def _session(self, redirect_uri: str) -> OAuth2Session:
        methods = self.metadata().get("token_endpoint_auth_methods_supported",
                                      ["client_secret_basic"])
        auth_method = ("client_secret_basic" if "client_secret_basic" in methods
                       else "client_secret_post")
        return OAuth2Session(self.client_id, self.client_secret, scope=SCOPE,
                             redirect_uri=redirect_uri, code_challenge_method="S256",
                             token_endpoint_auth_method=auth_method)

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=state, nonce=nonce,
                code_verifier=verifier)
        return AuthorizationRequest(url=url, state=state, nonce=nonce, verifier=verifier)

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict:
        """Trade the code for tokens; the provider checks the PKCE verifier."""
        with self._session(redirect_uri) as session:
            try:
                return dict(session.fetch_token(
                    self.metadata()["token_endpoint"], grant_type="authorization_code",
                    code=code, code_verifier=verifier, timeout=self.timeout))
            except OAuthError as err:
                raise CodeRejected(err.error or "invalid_grant") from None
            except (requests.RequestException, ValueError) as err:
                raise ProviderUnavailable(f"token endpoint: {type(err).__name__}") from None

    def verify_id_token(self, token: Any, nonce: str) -> dict:
        if not isinstance(token, str) or not token:
            raise BadIdToken("the provider sent no ID token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise BadIdToken(f"malformed ID token: {err}") from None
        alg = header.get("alg")
        advertised = self.metadata().get("id_token_signing_alg_values_supported", ["RS256"])
        if alg not in ASYMMETRIC_ALGORITHMS or alg not in advertised:
            raise BadIdToken(f"ID token algorithm {alg!r} not accepted")
        key = self._signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=self.client_id, issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.PyJWTError as err:
            raise BadIdToken(f"ID token rejected: {err}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise BadIdToken("ID token for several audiences without us as azp")
        if not isinstance(claims["nonce"], str) or not hmac.compare_digest(
                claims["nonce"].encode(), nonce.encode()):
            raise BadIdToken("ID token nonce does not match this sign-in")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise BadIdToken("ID token has no subject")
        return claims
