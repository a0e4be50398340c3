"""Entrypoint of a research environment: `python launch.py run app.py --server.port ...`.

It is Streamlit's own CLI plus one fix. Streamlit 1.67 serves through uvicorn on a
listening socket it creates as `socket.socket(family)`, so the socket's `proto` is 0 and
so is every accepted socket's. asyncio only sets TCP_NODELAY on a transport whose
`proto == IPPROTO_TCP` (`asyncio.base_events._set_nodelay`), so Nagle stays on and every
response after the first on a keep-alive connection waits for the client's delayed ACK
(~40 ms per request). We set TCP_NODELAY on every accepted TCP stream socket instead.

This file is also the container image's entrypoint, so it imports nothing from the
platform (`functions`): only the standard library and Streamlit.
"""

from __future__ import annotations

import asyncio.base_events
import contextlib
import socket
import sys


def _set_nodelay(sock: socket.socket) -> None:
    # Same as asyncio's own check, minus `proto == IPPROTO_TCP`, which is 0 here.
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):  # peer already gone: nothing to speed up
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def patch_nodelay() -> None:
    """Make every asyncio TCP transport (uvicorn's included) disable Nagle.

    The selector transport looks `_set_nodelay` up on the module at construction time,
    so replacing the module attribute reaches every socket accepted from now on.
    """
    asyncio.base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    patch_nodelay()
    from streamlit.web.cli import main as streamlit_main

    # Streamlit's CLI is a click command: it reads its arguments from sys.argv.
    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    streamlit_main()


if __name__ == "__main__":
    main()
