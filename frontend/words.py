"""What the hub says: API problems and record states in words a researcher can act on.

Pure functions, so they can be checked without a browser.
"""

from __future__ import annotations

from frontend.api import ApiProblem

MESSAGES = {
    "limit_reached": "You already have an environment running. Stop it before launching "
                     "another.",
    "still_stopping": "Your previous environment is still shutting down. Try again in a "
                      "few seconds.",
    "capacity_reached": "The platform is full right now. Try again in a few minutes.",
    "unknown_profile": "That profile is no longer offered. Reload the page and pick another.",
    "not_signed_in": "Your session has ended. Sign in again.",
    "account_disabled": "Your account is disabled. Ask an administrator to enable it.",
    "forbidden": "Only administrators can do that.",
    "self_change": "Administrators cannot disable or demote themselves; ask another "
                   "administrator.",
    "unreachable": "The platform is not answering. Try again in a moment.",
}


def plain(err: ApiProblem) -> str:
    """What went wrong, in words a researcher can act on."""
    return MESSAGES.get(err.code, err.message)


def why_stopped(env: dict) -> str:
    """Why the user's last environment is no longer running, or "" when they stopped it
    themselves (telling people what they just did is noise)."""
    reason = env.get("reason") or ""
    if env["state"] == "failed":
        return f"Your last environment could not start: {reason or 'no reason was given'}."
    if env["state"] != "stopped" or not reason or reason == "stopped by its owner":
        return ""
    if "idle" in reason:
        return (f"Your last environment was stopped because it was {reason}. "
                "Your files are safe.")
    if reason.startswith("stopped by"):  # "stopped by administrator ..."
        return f"Your last environment was {reason}. Your files are safe."
    return f"Your last environment stopped: {reason}. Your files are safe."


def human_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def profile_label(profile: dict) -> str:
    return (f"{profile['name']}: {profile['cpu']:g} CPU · "
            f"{profile['memory_mb'] / 1024:g} GiB memory · {profile['storage_gb']} GB storage")
