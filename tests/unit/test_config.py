"""Configuration: defaults, and one clear line naming the bad variable."""

from __future__ import annotations

import pytest

from functions.cli import main as cli_main
from functions.core.config import ConfigError, ensure_secret_key, load_settings

GOOD_SECRET = "s" * 40


def test_defaults_match_the_original_readme(tmp_path):
    s = load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path)})
    assert (s.max_inactive_hours, s.max_user_pods, s.token_expire_hours) == (4, 1, 8)
    assert (s.namespace, s.base_domain, s.store) == ("cmbcluster", "cmbcluster.local", "sqlite")
    assert (s.host, s.port, s.mode) == ("127.0.0.1", 8000, "local")
    assert s.dev_login_enabled and not s.oidc_configured
    assert [p.name for p in s.profiles] == ["small", "medium", "large"]


@pytest.mark.parametrize("env,variable,accepts", [
    ({"MAX_INACTIVE_HOURS": "soon"}, "MAX_INACTIVE_HOURS", "a number"),
    ({"MAX_INACTIVE_HOURS": "-1"}, "MAX_INACTIVE_HOURS", ">= 0.001"),
    ({"MAX_INACTIVE_HOURS": "nan"}, "MAX_INACTIVE_HOURS", "a number"),
    ({"MAX_USER_PODS": "1.5"}, "MAX_USER_PODS", "a whole number"),
    ({"MAX_USER_PODS": "0"}, "MAX_USER_PODS", ">= 1"),
    ({"TOKEN_EXPIRE_HOURS": "inf"}, "TOKEN_EXPIRE_HOURS", "a number"),
    ({"PORT": "70000"}, "PORT", "0 to 65535"),
    ({"PORT": "http"}, "PORT", "a whole number"),
    ({"STORE": "postgres"}, "STORE", "sqlite, firestore"),
    ({"CMBCLUSTER_MODE": "prod"}, "CMBCLUSTER_MODE", "local, cloud"),
    ({"HOST": "example.org"}, "HOST", "an IP address"),
    ({"HOST": "0.0.0.0"}, "HOST", "dev login"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY", "32 characters"),
    ({"CMBCLUSTER_MODE": "cloud", "PROJECT_ID": "p", "OIDC_CLIENT_ID": "c",
      "OIDC_CLIENT_SECRET": "x"}, "SECRET_KEY", "required in cloud mode"),
    ({"STORE": "firestore"}, "PROJECT_ID", "required"),
    ({"OIDC_CLIENT_ID": "abc"}, "OIDC_CLIENT_SECRET", "required"),
    ({"PUBLIC_URL": "javascript:alert(1)"}, "PUBLIC_URL", "http(s)://"),
    ({"PROFILES": "[]"}, "PROFILES", "JSON list"),
    ({"PROFILES": "{not json"}, "PROFILES", "JSON list"),
    ({"PROFILES": '[{"name": "Big Box", "cpu": 1, "memory_mb": 512, "storage_gb": 1}]'},
     "PROFILES", "lower-case"),
    ({"PROFILES": '[{"name": "a", "cpu": 0, "memory_mb": 512, "storage_gb": 1}]'},
     "PROFILES", "cpu must be > 0"),
    ({"DEFAULT_PROFILE": "gpu"}, "DEFAULT_PROFILE", "small, medium, large"),
    ({"CULL_AUDIENCE": "https://cull.run.app"}, "CULL_SERVICE_ACCOUNTS", "set both"),
])
def test_bad_values_name_the_variable_and_what_it_accepts(tmp_path, env, variable, accepts):
    with pytest.raises(ConfigError) as err:
        load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path), **env})
    message = str(err.value)
    assert variable in message and accepts in message
    assert "\n" not in message


def test_google_client_variables_are_the_fallback(tmp_path):
    s = load_settings({"GOOGLE_CLIENT_ID": "g-id", "GOOGLE_CLIENT_SECRET": "g-secret",
                       "HOST": "0.0.0.0", "CMBCLUSTER_DATA_DIR": str(tmp_path)})
    assert (s.oidc_client_id, s.oidc_client_secret) == ("g-id", "g-secret")
    assert not s.dev_login_enabled  # a client is configured, and not on loopback


def test_local_mode_generates_and_keeps_a_secret_key(tmp_path):
    first = ensure_secret_key(load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path)}))
    again = ensure_secret_key(load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path)}))
    assert len(first.secret_key) >= 32 and first.secret_key == again.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    given = ensure_secret_key(load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path),
                                             "SECRET_KEY": GOOD_SECRET}))
    assert given.secret_key == GOOD_SECRET


def test_a_truncated_stored_key_is_refused(tmp_path):
    (tmp_path / "secret_key").write_text("tiny")
    with pytest.raises(ConfigError, match="secret_key"):
        ensure_secret_key(load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path)}))


def test_the_command_prints_one_line_and_exits_2_on_bad_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CMBCLUSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAX_USER_PODS", "many")
    assert cli_main(["check-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "MAX_USER_PODS" in err
    monkeypatch.setenv("MAX_USER_PODS", "2")
    assert cli_main(["check-config"]) == 0


def read_env_example() -> dict[str, str]:
    import shlex
    from pathlib import Path

    values = {}
    for line in (Path(__file__).parents[2] / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, rest = line.partition("=")
            words = shlex.split(rest, comments=True)
            values[name] = words[0] if words else ""
    return values


def test_env_example_documents_every_variable_and_loads(tmp_path):
    import re
    from pathlib import Path

    example = read_env_example()
    sources = "".join(p.read_text() for p in Path("functions").rglob("*.py"))
    read = set(re.findall(r'_(?:get|number|choice|list)\(env, "([A-Z_]+)"', sources))
    read |= set(re.findall(r'VARIABLE = "([A-Z_]+)"', sources))
    assert len(read) > 25 and read - set(example) == set()
    settings = load_settings({**example, "CMBCLUSTER_DATA_DIR": str(tmp_path)})
    assert settings.firestore_database == "(default)"
