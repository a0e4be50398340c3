"""Sign-in test rig: real OpenID providers (npm `oidc-provider`) and the hub served for real.

- `oidc`: three provider processes, each in its own process group on loopback:
  the main one; one with the same issuer and keys whose clock runs ten minutes slow (its
  ID tokens arrive expired); one with the same keys but its own issuer. All three sign
  with one RSA key made here, so a test can tell an issuer check from a signature check.
- A token relay: a metadata document that is the main provider's, except that its token
  endpoint forwards to the real one and can swap the ID token in the answer for another
  real one (from another client or provider) or a tampered copy. That is how a token the
  main provider would never send for this sign-in reaches the callback.
- `hub_server`: one real HTTP server for the whole session; each test mounts its own
  hub (auth + admin apps, a fresh SQLite store) on it, so redirects work over real HTTP.

Without node or `npm ci --prefix tests/oidc`, the provider tests fail, saying which.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server

from functions.admin.app import create_app as admin_app
from functions.auth.app import create_app as auth_app
from functions.core.config import load_settings
from functions.core.platform import Platform, build_platform
from functions.core.sessions import SESSION_COOKIE
from functions.core.store.sqlite import SqliteStore

from ..conftest import missing_service

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
SECRET_KEY = "test-secret-key-" + "x" * 32
CLIENT_ID, CLIENT_SECRET = "cmbcluster", "cmbcluster-test-secret"
OTHER_CLIENT_ID, OTHER_CLIENT_SECRET = "other-app", "other-app-secret"
ACCOUNTS = {
    "alice": {"email": "alice@uni.example", "name": "Alice Analyst"},
    "bob": {"email": "bob@gmail.example", "name": "Bob"},
    "eve": {"email": "eve@evil.example", "name": "Eve"},
    "unverified": {"email": "mallory@uni.example", "email_verified": False},
    "wronghd": {"email": "carol@uni.example", "hd": "evil.example"},
    "root": {"email": "root@uni.example", "name": "Root Admin"},
}


def session_cookie_set(response: requests.Response) -> bool:
    """True when the answer sets a non-empty session cookie."""
    for header in response.raw.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE and rest.split(";", 1)[0].strip():
            return True
    return False


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


# -- the hub, served for real -----------------------------------------------------------
class Mount:
    """A WSGI app whose target each test replaces: the admin API or the auth function."""

    def __init__(self) -> None:
        self.auth: Flask | None = None
        self.admin: Flask | None = None

    def __call__(self, environ, start_response):
        app = self.admin if environ.get("PATH_INFO", "").startswith("/api/admin") else self.auth
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no hub mounted"]
        return app(environ, start_response)


def serve(app) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="session")
def hub_server() -> Iterator[tuple[Mount, str]]:
    mount = Mount()
    server, url = serve(mount)
    yield mount, url
    server.shutdown()


@dataclass
class Hub:
    url: str
    platform: Platform
    provider: Provider | None = None

    @property
    def store(self) -> SqliteStore:
        return self.platform.store

    def start_login(self, browser: requests.Session, next_path: str = "/") -> str:
        """GET /auth/login; the provider's authorization URL it sends the browser to."""
        resp = browser.get(f"{self.url}/auth/login", params={"next": next_path},
                           allow_redirects=False, timeout=10)
        assert resp.status_code == 302, resp.text
        return resp.headers["Location"]

    def finish(self, browser: requests.Session, callback_url: str) -> requests.Response:
        return browser.get(callback_url, allow_redirects=False, timeout=10)

    def sign_in(self, browser: requests.Session, account: str,
                next_path: str = "/") -> requests.Response:
        auth_url = self.start_login(browser, next_path)
        return self.finish(browser, provider_login(browser, auth_url, account, self.url))


def provider_login(browser: requests.Session, auth_url: str, account: str,
                   stop_at: str) -> str:
    """Drive the provider's login page like a person would; return the URL it sends the
    browser back to (under `stop_at`), without following it."""
    url, form = auth_url, None
    for _ in range(12):
        if form is not None:
            resp = browser.post(url, data=form, allow_redirects=False, timeout=10)
            form = None
        else:
            resp = browser.get(url, allow_redirects=False, timeout=10)
        if resp.status_code in (302, 303):
            url = urljoin(url, resp.headers["Location"])
            if url.startswith(stop_at):
                return url
        elif resp.status_code == 200 and 'name="login"' in resp.text:
            action = unescape(re.search(r'<form[^>]*action="([^"]+)"', resp.text).group(1))
            url = urljoin(url, action)
            form = {"prompt": "login", "login": account, "password": "any"}
        else:
            raise AssertionError(f"provider answered {resp.status_code}: {resp.text[:500]}")
    raise AssertionError("provider never redirected back")


@pytest.fixture
def make_hub(tmp_path, hub_server) -> Iterator[Callable[..., Hub]]:
    """Mount a fresh hub; keyword arguments are environment variables for its settings."""
    mount, url = hub_server
    stores: list[SqliteStore] = []

    def make(provider: Provider | None = None, metadata_url: str | None = None,
             **env: str) -> Hub:
        base = {"SECRET_KEY": SECRET_KEY, "CMBCLUSTER_DATA_DIR": str(tmp_path / "data"),
                "PUBLIC_URL": url, "HOST": "127.0.0.1"}
        if provider is not None:
            base |= {"OIDC_SERVER_METADATA_URL": metadata_url or provider.metadata_url,
                     "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET}
        settings = load_settings(base | env)
        store = SqliteStore(tmp_path / f"hub{len(stores)}.db")
        stores.append(store)
        platform = build_platform(settings, store)
        mount.auth, mount.admin = auth_app(platform), admin_app(platform)
        return Hub(url=url, platform=platform, provider=provider)

    yield make
    mount.auth = mount.admin = None
    for store in stores:
        store.close()


# -- the OpenID providers ---------------------------------------------------------------
@dataclass
class Provider:
    url: str
    issuer: str
    process: subprocess.Popen
    _metadata: dict = field(default_factory=dict)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @property
    def metadata(self) -> dict:
        if not self._metadata:
            self._metadata = requests.get(self.metadata_url, timeout=5).json()
        return self._metadata

    def id_token(self, account: str, nonce: str, redirect_uri: str, *,
                 client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> str:
        """A real ID token for `account`, with `nonce`, from a whole flow of its own."""
        verifier, challenge = pkce_pair()
        query = urlencode({
            "client_id": client_id, "response_type": "code", "scope": "openid email profile",
            "redirect_uri": redirect_uri, "state": secrets.token_urlsafe(8), "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        with requests.Session() as browser:
            back = provider_login(browser, f"{self.metadata['authorization_endpoint']}?{query}",
                                  account, redirect_uri)
        code = parse_qs(urlsplit(back).query)["code"][0]
        resp = requests.post(self.metadata["token_endpoint"], auth=(client_id, client_secret),
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri, "code_verifier": verifier},
                             timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()["id_token"]


def start_provider(env: dict[str, str]) -> Provider:
    proc = subprocess.Popen(
        ["node", str(OIDC_DIR / "provider.mjs")], cwd=OIDC_DIR,
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, killed whole at the end
    )
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                break
            line += chunk
    match = re.match(rb"listening (\d+) (\S+)", line)
    if not match:
        stop_provider(proc)
        err = proc.stderr.read().decode(errors="replace")[-2000:]
        pytest.fail(f"oidc-provider did not start: {line!r} {err}")
    provider = Provider(url=f"http://127.0.0.1:{int(match[1])}", issuer=match[2].decode(),
                        process=proc)
    while time.monotonic() < deadline:
        try:
            if requests.get(provider.metadata_url, timeout=2).status_code == 200:
                return provider
        except requests.RequestException:
            time.sleep(0.2)
    stop_provider(proc)
    pytest.fail("oidc-provider never answered its discovery document")


def stop_provider(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def signing_jwks() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return json.dumps({"keys": [jwk | {"kid": "shared-test-key", "alg": "RS256",
                                       "use": "sig"}]})


@dataclass
class Providers:
    main: Provider
    slow_clock: Provider  # same issuer and keys, ten minutes behind
    other_issuer: Provider  # same keys, its own issuer
    relay: TokenRelay


@pytest.fixture(scope="session")
def oidc(hub_server) -> Iterator[Providers]:
    if shutil.which("node") is None:
        missing_service("node is not installed")
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        missing_service("the test OpenID provider is not installed: npm ci --prefix tests/oidc")
    _, hub_url = hub_server
    clients = json.dumps([
        {"client_id": cid, "client_secret": secret,
         "redirect_uris": [f"{hub_url}/auth/callback"]}
        for cid, secret in ((CLIENT_ID, CLIENT_SECRET), (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    ])
    common = {"OIDC_CLIENTS": clients, "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
              "OIDC_JWKS": signing_jwks()}
    started: list[Provider] = []
    try:
        main = start_provider(common)
        started.append(main)
        slow = start_provider(common | {"OIDC_ISSUER": main.issuer, "OIDC_CLOCK_OFFSET": "-600",
                                        "OIDC_ID_TOKEN_TTL": "60"})
        started.append(slow)
        other = start_provider(common)
        started.append(other)
        relay = TokenRelay(main)
        yield Providers(main=main, slow_clock=slow, other_issuer=other, relay=relay)
        relay.close()
    finally:
        for provider in started:
            stop_provider(provider.process)


class TokenRelay:
    """The main provider's metadata with a token endpoint in between: the real exchange
    happens (code and PKCE checked by the provider), then `swap` may replace the ID token."""

    def __init__(self, provider: Provider):
        self.provider = provider
        self.swap: Callable[[str], str] | None = None
        app = Flask("token-relay")
        app.get("/.well-known/openid-configuration")(self._metadata)
        app.post("/token")(self._token)
        self.server, self.url = serve(app)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def _metadata(self):
        return self.provider.metadata | {"token_endpoint": f"{self.url}/token"}

    def _token(self):
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        real = requests.post(self.provider.metadata["token_endpoint"], data=request.get_data(),
                             headers=headers, timeout=10)
        body = real.json()
        if self.swap is not None and "id_token" in body:
            body["id_token"] = self.swap(body["id_token"])
        return Response(json.dumps(body), status=real.status_code,
                        mimetype="application/json")

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def relay(oidc) -> Iterator[TokenRelay]:
    yield oidc.relay
    oidc.relay.swap = None
