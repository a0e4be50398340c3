"""The access check for environment URLs: who may reach `/user/<owner>/<env>/...`.

It runs on every proxied request, so it reads no store: the path names the owner, the
signed session names the caller, and they must be the same person.

nginx `auth_request` (ingress-nginx `auth-url`) checks the raw URI but routes on the
normalised one, so `/user/alice/<env>/../../bob/<env>/` would pass as alice and land on
bob. Any path the proxy or nginx could normalise into a different one is refused
outright: dot segments, encoded or not, empty segments, backslashes, encoded slashes
and encoded percent signs (double encoding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from ..core.models import ENV_ID, USER_ID

PREFIX = "/user/"

# Any percent-escape of '.', '/', '\\', '%' itself or a control character: legitimate
# Streamlit URLs never need them, and each is a way to smuggle a segment past a raw-URI
# check (or to cut a path short at a NUL).
_SMUGGLED = re.compile(r"%(2e|2f|5c|25|[01][0-9a-f]|7f)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Decision(IntEnum):
    ALLOW = 200
    SIGN_IN = 401
    DENY = 403


@dataclass(frozen=True)
class Target:
    owner: str
    env_id: str
    rest: str  # the path below the environment's base path, starting with "/"


class BadPath(ValueError):
    """Not an environment path, or one that could be normalised into another."""


def parse_path(raw_path: str) -> Target:
    """Split a raw request path (no query) into owner, environment and the rest."""
    if not raw_path.startswith(PREFIX):
        raise BadPath("not an environment path")
    if "\\" in raw_path or _SMUGGLED.search(raw_path) or _CONTROL.search(raw_path):
        raise BadPath("encoded or control characters in path")
    segments = raw_path[len(PREFIX):].split("/")
    if len(segments) < 2:
        raise BadPath("no environment in path")
    owner, env_id, rest = segments[0], segments[1], segments[2:]
    # Every segment but a final empty one (the trailing slash) must be a real name.
    for segment in (owner, env_id, *rest[:-1]):
        if segment in ("", ".", ".."):
            raise BadPath("empty or dot segment in path")
    if rest and rest[-1] in (".", ".."):
        raise BadPath("dot segment in path")
    if not USER_ID.match(owner) or not ENV_ID.match(env_id):
        raise BadPath("malformed owner or environment id")
    return Target(owner, env_id, "/" + "/".join(rest))


def decide(user_id: str | None, target: Target) -> Decision:
    """`user_id`: who the request's credentials name, None when it carries none valid."""
    if user_id is None:
        return Decision.SIGN_IN
    if user_id == target.owner:
        return Decision.ALLOW
    return Decision.DENY
