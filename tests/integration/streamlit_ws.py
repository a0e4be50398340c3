"""A minimal Streamlit websocket client: enough to run a page and see it answer."""

from __future__ import annotations

from contextlib import contextmanager

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect


def ws_url(http_url: str, base_path: str) -> str:
    return http_url.replace("http://", "ws://", 1) + base_path.rstrip("/") + "/_stcore/stream"


@contextmanager
def streamlit_socket(http_url: str, base_path: str, cookies: str = "", origin: str = ""):
    headers = {"Origin": origin or http_url}
    if cookies:
        headers["Cookie"] = cookies
    with connect(ws_url(http_url, base_path), subprotocols=["streamlit"],
                 additional_headers=headers, open_timeout=10, max_size=None) as ws:
        yield ws


def rerun(ws: ClientConnection, timeout: float = 20) -> list[str]:
    """Ask for a script run, as a click does; return the kinds of message until it ends."""
    msg = BackMsg()
    msg.rerun_script.query_string = ""
    msg.rerun_script.page_script_hash = ""
    ws.send(msg.SerializeToString())
    kinds = []
    while True:
        fwd = ForwardMsg.FromString(ws.recv(timeout=timeout))
        kinds.append(fwd.WhichOneof("type"))
        if kinds[-1] == "script_finished":
            return kinds


def heartbeat(ws: ClientConnection) -> None:
    """What an open but idle tab sends now and then."""
    msg = BackMsg()
    msg.app_heartbeat = True
    ws.send(msg.SerializeToString())
