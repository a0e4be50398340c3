"""Session checks: a valid signature is not enough, the user must still be allowed in.

API calls read the user record every time (`fresh=True`). The route check runs on every
proxied request and must not read the store, so it consults a short-lived per-process
cache of each user's token version and disabled flag instead; logout and disabling in
this process update the cache at once, other replicas see it within `ttl` seconds.
"""

from __future__ import annotations

import threading
import time

from .models import User
from .store.base import Store
from .tokens import Identity, InvalidToken, TokenSigner

SESSION_COOKIE = "cmbcluster_session"
VERIFIED_CACHE_SIZE = 10_000


class SessionGuard:
    def __init__(self, signer: TokenSigner, store: Store, ttl: float = 5.0):
        self.signer = signer
        self.store = store
        self.ttl = ttl
        self._cache: dict[str, tuple[int, bool, float]] = {}
        self._verified: dict[str, Identity] = {}  # token -> identity, for the route check
        self._lock = threading.Lock()

    def identity(self, token: str | None, *, fresh: bool = True) -> Identity:
        ident = self._verify(token) if not fresh else self.signer.verify_session(token)
        version, disabled = self._state(ident.user_id, fresh)
        if disabled:
            raise InvalidToken("user disabled")
        if ident.version != version:
            raise InvalidToken("session revoked")
        return ident

    def still_valid(self, user_id: str, version: int) -> bool:
        """For tokens other than sessions that carry a user's token version (the
        environment access cookie): cached like the route check's session lookups."""
        try:
            current, disabled = self._state(user_id, fresh=False)
        except InvalidToken:
            return False
        return not disabled and current == version

    def user(self, token: str | None) -> tuple[Identity, User]:
        """Verify and load the user (API calls): the record is read, never cached."""
        ident = self.signer.verify_session(token)
        user = self.store.get_user(ident.user_id)
        if user is None:
            raise InvalidToken("unknown user")
        self.remember(user)
        if user.disabled:
            raise InvalidToken("user disabled")
        if ident.version != user.token_version:
            raise InvalidToken("session revoked")
        return ident, user

    def _verify(self, token: str | None) -> Identity:
        """Signature checks cost more than the rest of the route check together; a token
        that verified once is remembered until it expires."""
        ident = self._verified.get(token) if token else None
        if ident is not None and ident.expires > time.time():
            return ident
        ident = self.signer.verify_session(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude but bounded; refilled at one verify per token
        self._verified[token] = ident
        return ident

    def remember(self, user: User) -> None:
        with self._lock:
            self._cache[user.id] = (user.token_version, user.disabled, time.monotonic())

    def _state(self, user_id: str, fresh: bool) -> tuple[int, bool]:
        cached = self._cache.get(user_id)
        if not fresh and cached and time.monotonic() - cached[2] < self.ttl:
            return cached[0], cached[1]
        user = self.store.get_user(user_id)
        if user is None:
            raise InvalidToken("unknown user")
        self.remember(user)
        return user.token_version, user.disabled

    def issue(self, user: User, ttl_seconds: float) -> str:
        self.remember(user)
        return self.signer.sign_session(user.id, user.email, user.name, str(user.role),
                                        user.token_version, ttl_seconds)
