"""The local proxy against a real upstream that echoes what it received."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from functions.core.models import User
from functions.route import proxy as proxy_module

from .servers import BASE, ENV, serve_handler, serve_proxy


async def echo(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        ws = web.WebSocketResponse(protocols=("streamlit",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(b"echo:" + msg.data)
            else:
                await ws.send_str("echo:" + msg.data)
        return ws
    body = await request.read()
    return web.json_response({
        "path": request.raw_path, "host": request.host, "method": request.method,
        "cookie": request.headers.get("Cookie"), "length": len(body),
        "forwarded_for": request.headers.get("X-Forwarded-For"),
    })


@pytest.fixture
async def setup(tmp_path: Path):
    up, upstream = await serve_handler(echo)
    activity: list[str] = []
    running = await serve_proxy(tmp_path, upstream, on_activity=activity.append,
                                lingering_time=0.5)
    store, sessions = running.platform.store, running.platform.sessions
    users = [store.upsert_user(User(name, f"{name}@x.org")) for name in ("alice", "bob")]
    tokens = {u.id: sessions.issue(u, 600) for u in users}
    yield running.url, tokens, activity
    await running.close()
    await up.cleanup()


def cookies(token: str) -> dict:
    return {"Cookie": f"theme=dark; cmbcluster_session={token}; _streamlit_xsrf=abc"}


async def test_forwards_path_host_and_strips_only_the_session_cookie(setup):
    url, tokens, activity = setup
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}{BASE}/page?x=1", headers=cookies(tokens["alice"])) as resp:
        assert resp.status == 200
        seen = await resp.json()
    assert seen["path"] == f"{BASE}/page?x=1"
    assert seen["host"] == url.split("://")[1]
    assert seen["cookie"] == "theme=dark; _streamlit_xsrf=abc"
    assert seen["forwarded_for"] == "127.0.0.1"
    assert activity == [ENV]  # a page request is a person
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}{BASE}/_stcore/health", headers=cookies(tokens["alice"])):
        pass
    assert activity == [ENV]  # a health probe is not


async def test_the_control_plane_keeps_the_session_cookie(setup):
    url, tokens, _ = setup
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}/api/me", headers=cookies(tokens["alice"])) as resp:
        seen = await resp.json()
    assert "cmbcluster_session=" in seen["cookie"]


async def test_websocket_both_ways_with_subprotocols(setup):
    url, tokens, activity = setup
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{url}{BASE}/_stcore/stream", protocols=("streamlit", "xsrf-token-value"),
            headers=cookies(tokens["alice"])) as ws:
        assert ws.protocol == "streamlit"
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "echo:hello"
        assert activity == []  # connecting and talking is not a person clicking
        await ws.send_bytes(back_msg(heartbeat=True))
        await ws.receive(timeout=5)
        assert activity == []  # what an idle tab sends
        await ws.send_bytes(back_msg(rerun=True))
        await ws.receive(timeout=5)
        assert activity == [ENV]  # a widget interaction


def back_msg(heartbeat: bool = False, rerun: bool = False) -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    if heartbeat:
        msg.app_heartbeat = True
    if rerun:
        msg.rerun_script.query_string = "a=1"
    return msg.SerializeToString()


async def test_another_user_gets_403_on_http_and_websocket(setup):
    url, tokens, activity = setup
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}{BASE}/", headers=cookies(tokens["bob"])) as resp:
            assert resp.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"{url}{BASE}/_stcore/stream",
                                  headers=cookies(tokens["bob"]))
        assert err.value.status == 403
    assert activity == []


async def test_streams_large_uploads_and_refuses_oversized_ones(setup, monkeypatch):
    url, tokens, _ = setup
    body = b"x" * (3 * 1024 * 1024)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}{BASE}/_stcore/upload_file", data=body,
                             headers=cookies(tokens["alice"])) as resp:
            assert json.loads(await resp.text())["length"] == len(body)
        monkeypatch.setattr(proxy_module, "MAX_UPLOAD_BYTES", 1024 * 1024)
        async with http.post(f"{url}{BASE}/_stcore/upload_file", data=body,
                             headers=cookies(tokens["alice"])) as resp:
            assert resp.status == 413


async def test_an_environment_that_is_not_running_is_503(setup):
    url, tokens, _ = setup
    async with aiohttp.ClientSession() as http, http.get(f"{url}/user/alice/ba9876543210/",
                        headers=cookies(tokens["alice"])) as resp:
        assert resp.status == 503



@pytest.mark.parametrize("header,token", [
    ("cmbcluster_session=abc", "abc"),
    ("a=1; cmbcluster_session=abc; b=2", "abc"),
    ("xcmbcluster_session=evil; cmbcluster_session=abc", "abc"),
    ("xcmbcluster_session=evil", None),
    ("", None),
    ("a=1;cmbcluster_session=abc", "abc"),
])
def test_the_session_cookie_is_found_exactly(header, token):
    from functions.route.proxy import session_cookie

    assert session_cookie(header) == token
