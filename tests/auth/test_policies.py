"""The pure sign-in policies: where `next` may lead, and who may sign in."""

from __future__ import annotations

import pytest

from functions.auth.allowlist import denial
from functions.auth.redirects import safe_next
from functions.core.config import load_settings

from .test_oidc_attacks import OPEN_REDIRECTS


@pytest.mark.parametrize("target", OPEN_REDIRECTS + ["/%2e%2e/%2f%2fevil", "/" + "a" * 2048,
                                                     "/caf\u00e9", None])
def test_unsafe_next_falls_back(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/environments", "/a/b?x=1&y=%2F#frag",
                                    "/admin/users?cursor=abc%3D", "/path:with:colons",
                                    "/search?q=a%20b%0A"])
def test_safe_next_kept(target):
    assert safe_next(target) == target


GOOGLE = "https://accounts.google.com"


def claims(email: str, **extra) -> dict:
    return {"email": email, "email_verified": True, **extra}


def settings(**env):
    return load_settings({"SECRET_KEY": "k" * 32, **env})


def test_anyone_verified_when_lists_empty():
    assert denial(settings(), claims("a@anywhere.example"), GOOGLE) is None


@pytest.mark.parametrize("verified", [False, None, "false", 1, "yes"])
def test_unverified_refused(verified):
    assert denial(settings(), {"email": "a@x.example", "email_verified": verified}, GOOGLE)


def test_google_domain_requires_workspace_hd():
    s = settings(ALLOWED_EMAIL_DOMAINS="uni.example")
    # A consumer Google account can hold a verified uni.example address: no hd, no entry.
    assert denial(s, claims("a@uni.example"), GOOGLE)
    assert denial(s, claims("a@uni.example", hd="uni.example"), GOOGLE) is None
    assert denial(s, claims("a@uni.example", hd="evil.example"), GOOGLE)
    # Other issuers do not send hd.
    assert denial(s, claims("a@uni.example"), "https://login.uni.example") is None


def test_listed_emails_and_admins_pass_domain_rules():
    s = settings(ALLOWED_EMAIL_DOMAINS="uni.example", ALLOWED_EMAILS="guest@gmail.com",
                 ADMIN_EMAILS="boss@gmail.com")
    assert denial(s, claims("Guest@Gmail.com"), GOOGLE) is None
    assert denial(s, claims("boss@gmail.com"), GOOGLE) is None
    assert denial(s, claims("other@gmail.com"), GOOGLE)


def test_lookalike_domains_refused():
    s = settings(ALLOWED_EMAIL_DOMAINS="uni.example")
    for email in ("a@evil-uni.example", "a@uni.example.evil", "a@sub.uni.example",
                  "uni.example@evil.example"):
        assert denial(s, claims(email), "https://idp.example"), email
