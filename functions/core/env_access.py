"""Access to environments served on their own hosts (`<env id>.<APPS_DOMAIN>`).

In the cloud each environment has its own origin on a separate apps domain, so user
code never shares an origin or a cookie with the hub. The hub's session cookie is
host-only and never reaches an apps host; a browser gets into an environment by a
handoff instead:

1. ingress-nginx asks the route function; no environment cookie yet: 401, and the
   browser goes to the hub's `/auth/env-login?env=<id>&next=<path>`.
2. The hub (signed in, the owner) issues a one-minute, one-time ticket for that
   environment and sends the browser to `https://<env host>/_cmbcluster/auth?ticket=…`.
3. The route function, on the environment's host, redeems the ticket (once) and sets a
   host-only cookie holding an access token for that one environment.

Each token names its environment, so a cookie or ticket for one environment is
worthless on any other host, and neither is a session for the hub.
"""

from __future__ import annotations

import secrets

from .config import Settings
from .tokens import Identity, InvalidToken, TokenSigner

TICKET = "env-ticket"
ACCESS = "env-access"
COOKIE = "cmbcluster_env"
CALLBACK_PATH = "/_cmbcluster/auth"
TICKET_TTL_SECONDS = 60


def env_host(settings: Settings, env_id: str) -> str | None:
    """The environment's own host, when environments are served on an apps domain."""
    return f"{env_id}.{settings.apps_domain}" if settings.apps_domain else None


def env_id_of_host(settings: Settings, host: str) -> str | None:
    """The environment a request's host names, if it is one of ours."""
    host = host.split(":", 1)[0].lower()
    suffix = "." + settings.apps_domain
    if not settings.apps_domain or not host.endswith(suffix):
        return None
    label = host[: -len(suffix)]
    return label if label and "." not in label else None


def issue_ticket(signer: TokenSigner, user: Identity, env_id: str) -> tuple[str, str]:
    """A one-time ticket and its id (the id is what redeeming uses up)."""
    ticket_id = secrets.token_urlsafe(16)
    token = signer.sign(TICKET, user.user_id, TICKET_TTL_SECONDS, env=env_id, jti=ticket_id,
                        ver=user.version)
    return token, ticket_id


def read_ticket(signer: TokenSigner, token: str | None, env_id: str) -> dict:
    claims = signer.verify(token, TICKET, ("env", "jti", "ver"))
    if claims["env"] != env_id:
        raise InvalidToken("ticket for another environment")
    return claims


def access_token(signer: TokenSigner, claims: dict, ttl_seconds: float) -> str:
    return signer.sign(ACCESS, claims["sub"], ttl_seconds, env=claims["env"], ver=claims["ver"])


def read_access(signer: TokenSigner, token: str | None, env_id: str) -> tuple[str, int]:
    """The user and token version an access cookie grants, for this environment only."""
    claims = signer.verify(token, ACCESS, ("env", "ver"))
    if claims["env"] != env_id or not isinstance(claims["ver"], int):
        raise InvalidToken("access token for another environment")
    return str(claims["sub"]), claims["ver"]
