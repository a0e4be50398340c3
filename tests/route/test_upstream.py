"""The proxy's upstream client against real servers, some of them misbehaving on purpose."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from functions.core.models import User
from functions.route.upstream import UpstreamError, UpstreamPool

from .servers import BASE, serve_handler, serve_proxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


class RawServer:
    """A TCP server whose every connection runs `handler`; counts connections."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head, as received
        self.server: asyncio.Server | None = None
        self.url = ""
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def read_head(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.requests.append(head)
        return head


def answer(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def ok_forever(reader, writer, server: RawServer) -> None:
    while await server.read_head(reader) is not None:
        writer.write(answer(b"ok"))


@pytest.fixture
async def pool():
    pool = UpstreamPool()
    yield pool
    await pool.close()


async def get(pool: UpstreamPool, url: str, method: str = "GET", **kwargs) -> tuple[int, bytes]:
    response = await pool.request(method, url, [("Host", "front.example")], **kwargs)
    try:
        return response.status, await response.read()
    finally:
        response.close()


async def test_sequential_requests_share_one_connection(pool):
    async with RawServer(ok_forever) as server:
        for _ in range(20):
            assert await get(pool, server.url + "/x") == (200, b"ok")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\nHost: front.example\r\n")


async def test_a_host_header_is_added_when_the_caller_has_none(pool):
    async with RawServer(ok_forever) as server:
        response = await pool.request("GET", server.url + "/", [])
        response.close()
    port = server.url.rsplit(":", 1)[1]
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in server.requests[0]


async def test_the_raw_target_is_sent_byte_for_byte(pool):
    target = "/user/a/%2e%2E/b%2Fc//d;v=1/./e/../f?q=%20+x&e=&&=~!$'()*,;:@/?%zz&%C3%A9=é"
    async with RawServer(ok_forever) as server:
        await get(pool, server.url + target)
    request_line = server.requests[0].split(b"\r\n", 1)[0]
    assert request_line == b"GET " + target.encode() + b" HTTP/1.1"


async def test_header_injection_is_refused(pool):
    async with RawServer(ok_forever) as server:
        with pytest.raises(ValueError):
            await pool.request("GET", server.url + "/", [("X-A", "1\r\nX-B: 2")])


async def test_chunked_answer_is_dechunked_and_the_connection_reused(pool):
    async def chunked(reader, writer, server):
        while await server.read_head(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")

    async with RawServer(chunked) as server:
        response = await pool.request("GET", server.url + "/", [])
        assert response.content_length is None
        assert ("Transfer-Encoding", "chunked") in response.headers
        assert await response.read() == b"hello, world"
        response.close()
        assert await get(pool, server.url + "/") == (200, b"hello, world")
    assert server.connections == 1


async def test_a_streamed_answer_arrives_as_it_is_sent(pool):
    first_seen = asyncio.Event()

    async def events(reader, writer, server):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await asyncio.wait_for(first_seen.wait(), 5)  # the client has the first event
        writer.write(b"c\r\ndata: last\n\n\r\n0\r\n\r\n")

    async with RawServer(events) as server:
        response = await pool.request("GET", server.url + "/events", [])
        received = []
        async for chunk in response.iter_chunks():
            received.append(chunk)
            first_seen.set()
        response.close()
    assert received == [b"data: first\n\n", b"data: last\n\n"]


@pytest.mark.parametrize(("method", "status_line"), [
    ("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified"),
])
async def test_answers_without_a_body(pool, method, status_line):
    async def no_body(reader, writer, server):
        while await server.read_head(reader) is not None:
            # Content-Length describes the body a GET would get: none follows.
            length = "Content-Length: 1000\r\n" if status_line != "204 No Content" else ""
            writer.write(f"HTTP/1.1 {status_line}\r\n{length}ETag: \"v1\"\r\n\r\n".encode())

    async with RawServer(no_body) as server:
        for _ in range(3):
            status, body = await asyncio.wait_for(get(pool, server.url + "/", method), 5)
            assert (status, body) == (int(status_line[:3]), b"")
    assert server.connections == 1


async def test_interim_100_continue_is_skipped(pool):
    async def continue_first(reader, writer, server):
        await server.read_head(reader)
        await reader.readexactly(4)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done"))

    async with RawServer(continue_first) as server:
        assert await get(pool, server.url + "/", "POST", body=b"data") == (200, b"done")


async def test_connection_close_is_not_reused(pool):
    async def close_each(reader, writer, server):
        await server.read_head(reader)
        writer.write(answer(b"bye", "Connection: close\r\n"))
        await writer.drain()

    async with RawServer(close_each) as server:
        for _ in range(3):
            assert await get(pool, server.url + "/") == (200, b"bye")
    assert server.connections == 3


async def test_an_answer_that_ends_at_close(pool):
    async def until_close(reader, writer, server):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"part two")

    async with RawServer(until_close) as server:
        for _ in range(2):
            assert await get(pool, server.url + "/") == (200, b"part one, part two")
    assert server.connections == 2


async def test_a_pooled_connection_the_upstream_closed_while_idle(pool):
    async def one_per_connection(reader, writer, server):
        await server.read_head(reader)
        writer.write(answer(b"ok"))  # keep-alive as far as the client knows, but:
        await writer.drain()

    async with RawServer(one_per_connection) as server:
        assert await get(pool, server.url + "/") == (200, b"ok")
        await asyncio.sleep(0.05)  # the client sees the close while the connection idles
        assert await get(pool, server.url + "/") == (200, b"ok")
    assert server.connections == 2


@pytest.mark.parametrize("body", [None, b"payload"])
async def test_a_pooled_connection_that_dies_on_reuse_is_retried_once(pool, body):
    async def drop_second(reader, writer, server):
        await server.read_head(reader)
        if body:
            await reader.readexactly(len(body))
        writer.write(answer(b"ok"))
        await writer.drain()
        if server.connections == 1:
            # Take the next request, then go away without a byte of answer: what a
            # client sees when the upstream closes an idle connection as it is reused.
            await server.read_head(reader)
            writer.transport.abort()

    async with RawServer(drop_second) as server:
        method = "GET" if body is None else "POST"
        assert await get(pool, server.url + "/", method, body=body) == (200, b"ok")
        assert await get(pool, server.url + "/", method, body=body) == (200, b"ok")
    assert server.connections == 2
    if body:
        assert all(r.endswith(b"Content-Length: 7\r\n\r\n") for r in server.requests)


async def test_an_upstream_that_keeps_failing_is_an_error(pool):
    async def hang_up(reader, writer, server):
        await server.read_head(reader)
        writer.transport.abort()

    async with RawServer(hang_up) as server:
        with pytest.raises(UpstreamError):
            await pool.request("GET", server.url + "/", [])


async def test_an_answer_broken_off_midway_is_an_error(pool):
    async def short(reader, writer, server):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.transport.abort()

    async with RawServer(short) as server:
        response = await pool.request("GET", server.url + "/", [])
        with pytest.raises(UpstreamError):
            await response.read()
        response.close()


async def test_a_malformed_answer_is_an_error(pool):
    async def garbage(reader, writer, server):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")

    async with RawServer(garbage) as server:
        with pytest.raises(UpstreamError):
            await pool.request("GET", server.url + "/", [])


async def test_connection_refused_is_an_error(pool):
    async with RawServer(ok_forever) as server:
        url = server.url
    with pytest.raises(UpstreamError, match="cannot connect"):
        await pool.request("GET", url + "/", [])


async def test_an_answer_not_read_to_the_end_closes_its_connection(pool):
    async def big(reader, writer, server):
        while await server.read_head(reader) is not None:
            writer.write(answer(b"x" * 4 * 1024 * 1024))
            await writer.drain()

    async with RawServer(big) as server:
        response = await pool.request("GET", server.url + "/", [])
        async for _ in response.iter_chunks():
            break  # the client went away
        response.close()
        assert await get(pool, server.url + "/") == (200, b"x" * 4 * 1024 * 1024)
    assert server.connections == 2


async def test_idle_connections_are_bounded():
    pool = UpstreamPool(max_idle=2)
    go = asyncio.Event()

    async def slow(reader, writer, server):
        while await server.read_head(reader) is not None:
            await go.wait()
            writer.write(answer(b"ok"))

    async with RawServer(slow) as server:
        async def five_at_once() -> None:
            go.clear()
            calls = [asyncio.create_task(get(pool, server.url + "/")) for _ in range(5)]
            await asyncio.sleep(0.05)
            go.set()
            assert await asyncio.gather(*calls) == [(200, b"ok")] * 5

        await five_at_once()
        assert server.connections == 5
        await five_at_once()  # two kept from the first five, three new
        assert server.connections == 8
    await pool.close()


# -- against aiohttp: uploads ------------------------------------------------------------------
async def digest(request: web.Request) -> web.Response:
    hasher, size = hashlib.sha256(), 0
    async for chunk in request.content.iter_any():
        hasher.update(chunk)
        size += len(chunk)
    return web.json_response({
        "size": size, "sha256": hasher.hexdigest(), "chunked": "chunked" in
        request.headers.get("Transfer-Encoding", ""),
        "length": request.headers.get("Content-Length"),
    })


@pytest.fixture
async def digest_server():
    runner, url = await serve_handler(digest)
    yield url
    await runner.cleanup()


async def pieces(data: bytes, size: int = 100_000):
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start:start + size]


@pytest.mark.parametrize("with_length", [True, False])
async def test_an_upload_is_streamed(pool, digest_server, with_length):
    data = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 7)
    response = await pool.request(
        "POST", digest_server + "/upload", [("Content-Type", "application/octet-stream")],
        body=pieces(data), body_length=len(data) if with_length else None,
    )
    seen = json.loads(await response.read())
    response.close()
    assert seen["size"] == len(data)
    assert seen["sha256"] == hashlib.sha256(data).hexdigest()
    assert seen["chunked"] is not with_length
    assert seen["length"] == (str(len(data)) if with_length else None)


async def test_a_body_shorter_than_its_length_is_an_error(pool, digest_server):
    with pytest.raises(UpstreamError, match="not 10"):
        await pool.request("POST", digest_server + "/", [], body=pieces(b"12345"),
                           body_length=10)


# -- through LocalProxy._forward ---------------------------------------------------------------
@pytest.fixture
async def behind_proxy(tmp_path):
    """LocalProxy in front of an aiohttp app that streams, counts uploads and answers HEAD."""
    release = asyncio.Event()

    async def app(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/events"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"data: first\n\n")
            await asyncio.wait_for(release.wait(), 5)
            await response.write(b"data: last\n\n")
            return response
        if request.path.endswith("/big"):
            return web.Response(body=b"y" * (3 * 1024 * 1024))
        return await digest(request)

    up, upstream = await serve_handler(app)
    running = await serve_proxy(tmp_path, upstream)
    plat = running.platform
    token = plat.sessions.issue(plat.store.upsert_user(User("alice", "alice@x.org")), 600)
    yield (f"{running.url}{BASE}", {"Cookie": f"cmbcluster_session={token}"}, release, up)
    await running.close()
    await up.cleanup()


async def test_the_proxy_streams_events_as_they_come(behind_proxy):
    url, cookie, release, _ = behind_proxy
    async with aiohttp.ClientSession() as http, http.get(url + "/events", headers=cookie) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        assert first == b"data: first\n\n"  # while the upstream still holds the last one
        release.set()
        assert await r.content.read() == b"data: last\n\n"


async def test_the_proxy_forwards_big_answers_chunked_uploads_and_head(behind_proxy):
    url, cookie, _, _ = behind_proxy
    data = b"z" * (2 * 1024 * 1024 + 3)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/big", headers=cookie) as r:
            assert r.content_length == 3 * 1024 * 1024
            assert await r.read() == b"y" * (3 * 1024 * 1024)
        async with http.post(url + "/up", data=pieces(data), headers=cookie) as r:
            seen = await r.json()
        assert (seen["size"], seen["chunked"]) == (len(data), True)
        async with http.post(url + "/up", data=b"small", headers=cookie) as r:
            assert (await r.json())["length"] == "5"
        async with http.head(url + "/big", headers=cookie) as r:
            assert r.status == 200
            assert await r.read() == b""


async def test_the_proxy_answers_502_when_the_upstream_is_gone(behind_proxy):
    url, cookie, _, up = behind_proxy
    await up.cleanup()
    async with aiohttp.ClientSession() as http, http.get(url + "/x", headers=cookie) as r:
        assert r.status == 502
