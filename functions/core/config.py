"""Configuration, read once from environment variables and validated at start.

Every bad value stops start-up with one line naming the variable and what it accepts
(`ConfigError`). `.env.example` documents each variable read here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

GOOGLE_METADATA_URL = "https://accounts.google.com/.well-known/openid-configuration"


class ConfigError(ValueError):
    """A configuration variable has a value the platform cannot use."""


@dataclass(frozen=True)
class Profile:
    """A named environment size; the server owns these, the client only names one."""

    name: str
    cpu: float  # cores
    memory_mb: int
    storage_gb: int
    image: str
    description: str = ""

    def public(self) -> dict:
        return {
            "name": self.name,
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            "storage_gb": self.storage_gb,
            "description": self.description,
        }


DEFAULT_IMAGE = "cmbcluster-user-env:latest"
DEFAULT_PROFILES = (
    Profile("small", 1.0, 2048, 10, DEFAULT_IMAGE, "1 CPU, 2 GiB: notebooks and plots"),
    Profile("medium", 2.0, 4096, 20, DEFAULT_IMAGE, "2 CPU, 4 GiB: CAMB grids, HEALPix maps"),
    Profile("large", 4.0, 8192, 50, DEFAULT_IMAGE, "4 CPU, 8 GiB: large map-making"),
)


@dataclass(frozen=True)
class CloudSettings:
    """Where the cloud adapters find their queue and cluster (terraform/run.tf sets these)."""

    tasks_location: str = ""
    tasks_queue: str = ""
    tasks_target_url: str = ""  # the spawn service's URL (Cloud Tasks posts /tasks/spawn)
    tasks_service_account: str = ""  # the identity Cloud Tasks signs its tokens as
    k8s_endpoint: str = ""  # empty: in-cluster config, then kubeconfig
    k8s_ca_cert: str = ""  # base64 PEM of the cluster CA
    k8s_storage_class: str = ""
    k8s_ingress_class: str = "nginx"
    k8s_ingress_namespace: str = "ingress-nginx"
    k8s_apps_host: str = ""  # default: PUBLIC_URL's host; "{env_id}.apps.example.org" works
    k8s_auth_url: str = ""  # the route service's /route/verify
    k8s_tls_secret: str = ""
    k8s_image_pull_policy: str = "IfNotPresent"


@dataclass(frozen=True)
class Settings:
    mode: str = "local"  # local | cloud
    project_id: str = ""
    base_domain: str = "cmbcluster.local"
    apps_domain: str = ""  # cloud: environments served on <env id>.<apps_domain>
    secret_key: str = ""
    max_inactive_hours: float = 4.0
    max_age_hours: float | None = None
    max_user_pods: int = 1
    max_total_environments: int = 20
    token_expire_hours: float = 8.0
    namespace: str = "cmbcluster"
    store: str = "sqlite"  # sqlite | firestore
    data_dir: Path = Path(".cmbcluster")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    start_timeout: float = 120.0
    cull_interval_seconds: float = 300.0
    activity_interval_seconds: float = 60.0
    oidc_server_metadata_url: str = GOOGLE_METADATA_URL
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    allowed_email_domains: tuple[str, ...] = ()
    allowed_emails: tuple[str, ...] = ()
    admin_emails: tuple[str, ...] = ()
    profiles: tuple[Profile, ...] = DEFAULT_PROFILES
    default_profile: str = "small"
    shared_data_dir: Path | None = None
    firestore_database: str = "(default)"
    # Google-signed OIDC tokens that Cloud Scheduler (cull) and Cloud Tasks (spawn) send.
    cull_audience: str = ""
    cull_service_accounts: tuple[str, ...] = ()
    tasks_audience: str = ""
    tasks_service_accounts: tuple[str, ...] = ()
    service_oidc_issuer: str = "https://accounts.google.com"
    service_oidc_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    cloud: CloudSettings = field(default_factory=CloudSettings)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_client_id)

    @property
    def dev_login_enabled(self) -> bool:
        return not self.oidc_configured and self.loopback_only

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def profile(self, name: str | None) -> Profile | None:
        wanted = name or self.default_profile
        return next((p for p in self.profiles if p.name == wanted), None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float,
            integer: bool = False, optional: bool = False) -> float | None:
    raw = _get(env, name)
    if not raw:
        return None if optional else default
    kind = "a whole number" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected {kind} >= {minimum:g}") from None
    if value != value or value < minimum or value == float("inf"):
        raise ConfigError(f"{name}={raw!r}: expected {kind} >= {minimum:g}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _get(env, name, default).lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(x.strip().lower() for x in _get(env, name).split(",") if x.strip())


_PROFILE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _profiles(env: Mapping[str, str]) -> tuple[Profile, ...]:
    raw = _get(env, "PROFILES")
    if not raw:
        return DEFAULT_PROFILES
    accepts = ("a JSON list of {name, cpu, memory_mb, storage_gb[, image, description]}"
               " with unique lower-case names")
    try:
        items = json.loads(raw)
        if not isinstance(items, list) or not items:
            raise ValueError
        profiles = tuple(
            Profile(
                name=str(item["name"]),
                cpu=float(item["cpu"]),
                memory_mb=int(item["memory_mb"]),
                storage_gb=int(item["storage_gb"]),
                image=str(item.get("image", DEFAULT_IMAGE)),
                description=str(item.get("description", "")),
            )
            for item in items
        )
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"PROFILES: expected {accepts}") from None
    names = [p.name for p in profiles]
    if len(set(names)) != len(names) or not all(_PROFILE_NAME.match(n) for n in names):
        raise ConfigError(f"PROFILES: expected {accepts}")
    if any(p.cpu <= 0 or p.memory_mb < 256 or p.storage_gb < 1 for p in profiles):
        raise ConfigError("PROFILES: cpu must be > 0, memory_mb >= 256, storage_gb >= 1")
    return profiles


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the whole configuration; raise ConfigError on the first bad one."""
    env = os.environ if env is None else env
    mode = _choice(env, "CMBCLUSTER_MODE", "local", ("local", "cloud"))
    store = _choice(env, "STORE", "firestore" if mode == "cloud" else "sqlite",
                    ("sqlite", "firestore"))
    host = _get(env, "HOST", "127.0.0.1")
    try:
        if host != "localhost":
            ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"HOST={host!r}: expected an IP address or localhost") from None
    port = int(_number(env, "PORT", 8000, minimum=0, integer=True))
    if port > 65535:
        raise ConfigError(f"PORT={port}: expected a whole number from 0 to 65535")

    public_url = _get(env, "PUBLIC_URL").rstrip("/")
    if public_url and not re.match(r"^https?://[^/\s]+$", public_url):
        raise ConfigError(f"PUBLIC_URL={public_url!r}: expected http(s)://host[:port]")

    profiles = _profiles(env)
    default_profile = _get(env, "DEFAULT_PROFILE", profiles[0].name)
    if default_profile not in {p.name for p in profiles}:
        raise ConfigError(f"DEFAULT_PROFILE={default_profile!r}: expected one of "
                          + ", ".join(p.name for p in profiles))

    client_id = _get(env, "OIDC_CLIENT_ID") or _get(env, "GOOGLE_CLIENT_ID")
    client_secret = _get(env, "OIDC_CLIENT_SECRET") or _get(env, "GOOGLE_CLIENT_SECRET")
    if client_id and not client_secret:
        raise ConfigError("OIDC_CLIENT_SECRET (or GOOGLE_CLIENT_SECRET): required when a "
                          "client id is set")
    if not client_id and not is_loopback(host):
        raise ConfigError(f"HOST={host!r}: without OIDC_CLIENT_ID (or GOOGLE_CLIENT_ID) the "
                          "platform offers only the dev login, which binds to loopback only; "
                          "set a client id or use HOST=127.0.0.1")

    data_dir = Path(_get(env, "CMBCLUSTER_DATA_DIR", ".cmbcluster")).expanduser().resolve()
    secret_key = _get(env, "SECRET_KEY")
    if mode == "cloud" and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY: required in cloud mode, at least 32 characters "
                          "(python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    if secret_key and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY: expected at least 32 characters")

    shared = _get(env, "SHARED_DATA_DIR")
    settings = Settings(
        mode=mode,
        project_id=_get(env, "PROJECT_ID"),
        base_domain=_get(env, "BASE_DOMAIN", "cmbcluster.local"),
        apps_domain=_apps_domain(env),
        secret_key=secret_key,
        max_inactive_hours=_number(env, "MAX_INACTIVE_HOURS", 4, minimum=0.001),
        max_age_hours=_number(env, "MAX_AGE_HOURS", 0, minimum=0.001, optional=True),
        max_user_pods=int(_number(env, "MAX_USER_PODS", 1, minimum=1, integer=True)),
        max_total_environments=int(_number(env, "MAX_TOTAL_ENVIRONMENTS", 20, minimum=1,
                                           integer=True)),
        token_expire_hours=_number(env, "TOKEN_EXPIRE_HOURS", 8, minimum=0.01),
        namespace=_get(env, "NAMESPACE", "cmbcluster"),
        store=store,
        data_dir=data_dir,
        host=host,
        port=port,
        public_url=public_url,
        start_timeout=_number(env, "START_TIMEOUT", 120, minimum=1),
        cull_interval_seconds=_number(env, "CULL_INTERVAL_SECONDS", 300, minimum=0.1),
        activity_interval_seconds=_number(env, "ACTIVITY_INTERVAL_SECONDS", 60, minimum=0.1),
        oidc_server_metadata_url=_get(env, "OIDC_SERVER_METADATA_URL", GOOGLE_METADATA_URL),
        oidc_client_id=client_id,
        oidc_client_secret=client_secret,
        allowed_email_domains=_list(env, "ALLOWED_EMAIL_DOMAINS"),
        allowed_emails=_list(env, "ALLOWED_EMAILS"),
        admin_emails=_list(env, "ADMIN_EMAILS"),
        profiles=profiles,
        default_profile=default_profile,
        shared_data_dir=Path(shared).resolve() if shared else None,
        firestore_database=_get(env, "FIRESTORE_DATABASE", "(default)"),
        cull_audience=_get(env, "CULL_AUDIENCE"),
        cull_service_accounts=_list(env, "CULL_SERVICE_ACCOUNTS"),
        tasks_audience=_get(env, "TASKS_AUDIENCE"),
        tasks_service_accounts=_list(env, "TASKS_SERVICE_ACCOUNTS"),
        service_oidc_issuer=_get(env, "SERVICE_OIDC_ISSUER", "https://accounts.google.com"),
        service_oidc_jwks_url=_get(env, "SERVICE_OIDC_JWKS_URL",
                                   "https://www.googleapis.com/oauth2/v3/certs"),
        cloud=_cloud(env, mode),
        extra={k: v for k, v in env.items() if k.startswith("CMBCLUSTER_")},
    )
    if mode == "cloud" and store != "firestore":
        raise ConfigError("STORE: cloud mode keeps session records in Firestore; "
                          "expected firestore")
    for audience, accounts in (("CULL_AUDIENCE", "CULL_SERVICE_ACCOUNTS"),
                               ("TASKS_AUDIENCE", "TASKS_SERVICE_ACCOUNTS")):
        if bool(_get(env, audience)) != bool(_list(env, accounts)):
            raise ConfigError(f"{audience} and {accounts}: set both (the service URL and the "
                              "service accounts allowed to call it) or neither")
    if store == "firestore" and not settings.project_id:
        raise ConfigError("PROJECT_ID: required when STORE=firestore")
    return settings


def _apps_domain(env: Mapping[str, str]) -> str:
    value = _get(env, "APPS_DOMAIN").lower().strip(".")
    if value and not re.match(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$", value):
        raise ConfigError(f"APPS_DOMAIN={value!r}: expected a DNS domain such as "
                          "apps.example.org (a different one from the platform's)")
    return value


def _cloud(env: Mapping[str, str], mode: str) -> CloudSettings:
    cloud = CloudSettings(
        tasks_location=_get(env, "TASKS_LOCATION"),
        tasks_queue=_get(env, "TASKS_QUEUE"),
        tasks_target_url=_get(env, "TASKS_TARGET_URL"),
        tasks_service_account=_get(env, "TASKS_SERVICE_ACCOUNT"),
        k8s_endpoint=_get(env, "K8S_ENDPOINT"),
        k8s_ca_cert=_get(env, "K8S_CA_CERT"),
        k8s_storage_class=_get(env, "K8S_STORAGE_CLASS"),
        k8s_ingress_class=_get(env, "K8S_INGRESS_CLASS", "nginx"),
        k8s_ingress_namespace=_get(env, "K8S_INGRESS_NAMESPACE", "ingress-nginx"),
        k8s_apps_host=_get(env, "K8S_APPS_HOST"),
        k8s_auth_url=_get(env, "K8S_AUTH_URL"),
        k8s_tls_secret=_get(env, "K8S_TLS_SECRET"),
        k8s_image_pull_policy=_get(env, "K8S_IMAGE_PULL_POLICY", "IfNotPresent"),
    )
    if mode == "cloud":
        for name in ("PUBLIC_URL", "TASKS_LOCATION", "TASKS_QUEUE", "TASKS_TARGET_URL",
                     "TASKS_SERVICE_ACCOUNT", "K8S_AUTH_URL"):
            if not _get(env, name):
                raise ConfigError(f"{name}: required in cloud mode (terraform/run.tf sets it)")
    if cloud.k8s_image_pull_policy not in ("IfNotPresent", "Always", "Never"):
        raise ConfigError(f"K8S_IMAGE_PULL_POLICY={cloud.k8s_image_pull_policy!r}: expected "
                          "IfNotPresent, Always or Never")
    return cloud


def ensure_secret_key(settings: Settings) -> Settings:
    """Local mode: generate a SECRET_KEY once and keep it in the data dir."""
    if settings.secret_key:
        return settings
    if settings.mode == "cloud":  # load_settings already refuses this; belt and braces
        raise ConfigError("SECRET_KEY: required in cloud mode")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"SECRET_KEY: {path} holds a key shorter than 32 characters; "
                          "delete it to have a new one generated")
    return replace(settings, secret_key=key)
