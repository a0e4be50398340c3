"""The local proxy: one public origin for the hub, the control plane and environments.

Requests under `/user/<owner>/<env>/` pass the access check (no store read), lose the
platform's session cookie and go to the environment's Streamlit, HTTP and websockets
alike; everything else goes to the control plane's WSGI server. This is the one piece
of the local process on every request's path, so it does as little as it can.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from ..core.platform import Platform
from ..core.sessions import SESSION_COOKIE
from ..core.tokens import Identity, InvalidToken
from .access import PREFIX, BadPath, Decision, decide, parse_path
from .activity import is_person_message, is_person_request
from .upstream import REPLAYABLE_BODY, UpstreamError, UpstreamPool

log = logging.getLogger("cmbcluster.proxy")

# Streamlit's own default upload limit (server.maxUploadSize, 200 MB), plus form overhead.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024 + 64 * 1024
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
))
WS_HANDSHAKE = frozenset(h.lower() for h in (
    "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol", "Sec-WebSocket-Accept",
))
HUB_PREFIX = "/hub/"
BUFFER_LIMIT = 1024 * 1024  # answers smaller than this are sent whole, not streamed

ActivityFn = Callable[[str], None]  # called with an environment id


class LocalProxy:
    def __init__(self, platform: Platform, control_upstream: str,
                 on_activity: ActivityFn | None = None, hub_upstream: str | None = None):
        self.platform = platform
        self.control = control_upstream.rstrip("/")
        self.hub = hub_upstream.rstrip("/") if hub_upstream else None
        self.on_activity = on_activity or (lambda env_id: None)
        self._session: aiohttp.ClientSession | None = None  # websockets only
        # Plain HTTP goes through our own pool, not aiohttp's client: on this path its
        # per-request machinery was most of what the proxy added to a request's latency.
        self._upstreams = UpstreamPool()

    # -- the aiohttp server ------------------------------------------------------------------
    # A low-level server, not a web.Application: one handler takes every path, so the
    # router and middleware machinery would only add time to every request.
    def server(self, **options) -> web.Server:
        return web.Server(self.handle, access_log=None, **options)

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        await self._upstreams.close()
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith(PREFIX):
            return await self._environment(request, raw)
        if self.hub is not None and raw.split("?", 1)[0] in ("/", "/hub"):
            return _redirect("/hub/")
        if self.hub is not None and raw.startswith(HUB_PREFIX):
            # The hub is the platform's own app: it keeps the session cookie, which it
            # sends back to the API on the visitor's behalf.
            if _is_websocket(request):
                # Streamlit reads st.context.cookies from this handshake: strip the
                # cookie here and every visitor looks signed out.
                return await self._websocket(request, self.hub + raw, None,
                                             strip_session=False)
            return await self._forward(request, self.hub + raw, strip_session=False)
        return await self._forward(request, self.control + raw, strip_session=False)

    # -- environments ------------------------------------------------------------------------
    async def _environment(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        path = raw.split("?", 1)[0]
        try:
            target = parse_path(path)
        except BadPath as err:
            return _refusal(request, 403, f"forbidden: {err}")
        identity = self._identity(session_cookie(request.headers.get("Cookie", "")))
        decision = decide(identity.user_id if identity else None, target)
        if decision == Decision.SIGN_IN:
            return self._sign_in(request, raw)
        if decision == Decision.DENY:
            return _refusal(request, 403, "forbidden: this environment belongs to someone else")
        server = self.platform.backend.route(target.env_id)
        if server is None:
            return _refusal(request, 503, "this environment is not running: launch it from "
                            "the hub")
        if server.owner != target.owner:
            return _refusal(request, 403, "forbidden: this environment belongs to someone else")
        if _is_websocket(request):
            return await self._websocket(request, server.upstream + raw, target.env_id)
        if is_person_request(target.rest):
            self.on_activity(target.env_id)
        return await self._forward(request, server.upstream + raw, strip_session=True)

    def _identity(self, token: str | None) -> Identity | None:
        if not token:
            return None
        try:
            return self.platform.sessions.identity(token, fresh=False)
        except InvalidToken:
            return None

    @staticmethod
    def _sign_in(request: web.BaseRequest, raw: str) -> web.StreamResponse:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return _redirect("/auth/login?next=" + quote(raw, safe=""))
        return _plain(401, "sign in first")

    # -- forwarding ------------------------------------------------------------------------
    def _headers(self, request: web.BaseRequest, strip_session: bool) -> CIMultiDict:
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in WS_HANDSHAKE
        )
        if strip_session:
            _strip_session_cookie(headers)
        peer = request.remote or ""
        headers["X-Forwarded-For"] = peer
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        return headers

    async def _forward(self, request: web.BaseRequest, url: str,
                       strip_session: bool) -> web.StreamResponse:
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            too_large = _plain(413, "upload too large")
            too_large.force_close()  # the unread body makes the connection unusable
            return too_large
        body = None
        if request.body_exists:
            # A small body is read whole: it goes out in one write and can be sent again
            # if a pooled connection turns out to be dead.
            length = request.content_length
            small = length is not None and length <= REPLAYABLE_BODY
            body = await request.read() if small else request.content
        try:
            upstream = await self._upstreams.request(
                request.method, url, self._headers(request, strip_session).items(),
                body=body, body_length=request.content_length,
            )
        except UpstreamError:
            return _plain(502, "upstream unavailable")
        try:
            headers = CIMultiDict(
                (k, v) for k, v in upstream.headers if k.lower() not in HOP_BY_HOP
            )
            length = upstream.content_length
            if length is not None and length <= BUFFER_LIMIT:
                try:
                    data = await upstream.read()
                except UpstreamError:
                    return _plain(502, "upstream unavailable")
                return web.Response(status=upstream.status, headers=headers, body=data)
            response = web.StreamResponse(status=upstream.status, headers=headers)
            if length is not None:
                response.content_length = length
            await response.prepare(request)
            try:
                async for chunk in upstream.iter_chunks():
                    await response.write(chunk)
            except (UpstreamError, ConnectionResetError):
                return response
            await response.write_eof()
            return response
        finally:
            upstream.close()

    async def _websocket(self, request: web.BaseRequest, url: str, env_id: str | None,
                         strip_session: bool = True) -> web.StreamResponse:
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "")
                     .split(",") if p.strip()]
        try:
            upstream = await self._session.ws_connect(
                url, headers=self._headers(request, strip_session=strip_session),
                protocols=protocols,
                autoping=False, max_msg_size=0, autoclose=False,
            )
        except (aiohttp.ClientError, aiohttp.WSServerHandshakeError):
            return _plain(502, "upstream unavailable")
        client = web.WebSocketResponse(
            protocols=[upstream.protocol] if upstream.protocol else (),
            autoping=False, max_msg_size=0, autoclose=False,
        )
        await client.prepare(request)
        # Only what a person does counts as activity, not what an open tab sends by itself.
        on_message = None
        if env_id:
            def on_message(data: bytes) -> None:
                if is_person_message(data):
                    self.on_activity(env_id)
        to_upstream = asyncio.create_task(_pump(client, upstream, on_message))
        to_client = asyncio.create_task(_pump(upstream, client, None))
        try:
            await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_upstream, to_client):
                task.cancel()
            await upstream.close()
            await client.close()
        return client


async def _pump(source, sink, on_message: Callable[[bytes], None] | None) -> None:
    async for msg in source:
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if on_message is not None and msg.type == WSMsgType.BINARY:
                on_message(msg.data)
            if msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            else:
                await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.PING:
            await sink.ping(msg.data)
        elif msg.type == WSMsgType.PONG:
            await sink.pong(msg.data)
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                          WSMsgType.ERROR):
            return


def session_cookie(header: str) -> str | None:
    """The platform's session token from a Cookie header. Not `request.cookies`:
    SimpleCookie parses every cookie of the header on every proxied request."""
    start = header.find(SESSION_COOKIE + "=")
    while start != -1:
        if start == 0 or header[start - 1] in " ;":
            end = header.find(";", start)
            return header[start + len(SESSION_COOKIE) + 1: end if end != -1 else None].strip()
        start = header.find(SESSION_COOKIE + "=", start + 1)
    return None


def _is_websocket(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _strip_session_cookie(headers: CIMultiDict) -> None:
    cookies = headers.popall("Cookie", [])
    kept = [
        part.strip() for header in cookies for part in header.split(";")
        if part.strip() and part.split("=", 1)[0].strip() != SESSION_COOKIE
    ]
    if kept:
        headers["Cookie"] = "; ".join(kept)


REFUSAL_PAGE = """<!doctype html><meta charset="utf-8"><title>CMBCluster</title>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.5">
<h1>{title}</h1><p>{text}</p><p><a href="/hub/">Back to your hub</a></p></body>
"""


def _refusal(request: web.BaseRequest, status: int, text: str) -> web.Response:
    """A page for a person's browser, a line of text for anything else."""
    if "text/html" not in request.headers.get("Accept", ""):
        return _plain(status, text)
    title = "Not yours" if status == 403 else "Not running"
    body = REFUSAL_PAGE.format(title=title, text=html.escape(text.capitalize()))
    return web.Response(status=status, text=body, content_type="text/html")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")
