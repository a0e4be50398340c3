"""Who may sign in, and who is an administrator, decided from verified ID token claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.config import Settings
from .oidc import GOOGLE_ISSUERS


def email_verified(claims: Mapping[str, Any]) -> bool:
    # Some providers send the flag as a string; anything but an explicit true is "no".
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower() if "@" in email else ""


def denial(settings: Settings, claims: Mapping[str, Any], issuer: str) -> str | None:
    """Why this verified identity may not sign in, or None when it may.

    Both lists empty: anyone with a verified email. Otherwise the email must be listed in
    ALLOWED_EMAILS or ADMIN_EMAILS, or be in one of ALLOWED_EMAIL_DOMAINS. A Google
    account admitted by domain must also carry that domain as its Workspace `hd`: a
    consumer Google account can have a verified address at any domain.
    """
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return "the provider sent no email address"
    if not email_verified(claims):
        return "the email address is not verified"
    email = email.lower()
    if not settings.allowed_emails and not settings.allowed_email_domains:
        return None
    if email in settings.allowed_emails or email in settings.admin_emails:
        return None
    if domain_of(email) not in settings.allowed_email_domains:
        return "this email address is not on the allow-list"
    hd = claims.get("hd")
    if hd is None and issuer in GOOGLE_ISSUERS:
        return "a Google Workspace account of an allowed domain is required"
    if hd is not None and (not isinstance(hd, str)
                           or hd.lower() not in settings.allowed_email_domains):
        return "the account's hosted domain is not on the allow-list"
    return None


def is_admin_email(settings: Settings, email: str) -> bool:
    return email.lower() in settings.admin_emails
