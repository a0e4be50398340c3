"""Container health check: exit 0 when Streamlit answers on its health endpoint.

Streamlit serves /_stcore/health under its base URL path, so behind the platform's
proxy the endpoint is <base path>/_stcore/health; the pod's probes use the same URL.
Python rather than curl: the slim image has no curl, and no shell is needed to read
the base path from the environment.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

TIMEOUT_SECONDS = 4.0


def health_url(env: Mapping[str, str]) -> str:
    """The health endpoint for the base path and port in `env`."""
    # Streamlit's own variable wins: it is the path the server actually serves under.
    base = env.get("STREAMLIT_SERVER_BASE_URL_PATH") or env.get("CMBCLUSTER_BASE_PATH") or ""
    base = base.strip("/")
    port = env.get("STREAMLIT_SERVER_PORT") or "8501"
    prefix = f"/{base}" if base else ""
    return f"http://127.0.0.1:{port}{prefix}/_stcore/health"


def main() -> int:
    try:
        with urllib.request.urlopen(health_url(os.environ), timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
