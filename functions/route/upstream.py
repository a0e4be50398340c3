"""A lean HTTP/1.1 client for forwarding requests to upstreams on loopback.

The proxy forwards every environment request to a local Streamlit (uvicorn) or to the
control plane. aiohttp's ClientSession spends most of the proxy's added latency on things
a loopback forwarder does not need (URL objects, tracing, timeouts per request, cookie
handling, ClientResponse machinery), so this module does only what forwarding needs:

- a bounded pool of keep-alive connections per upstream, each an asyncio Protocol (no
  streams: one callback per read, no extra tasks or buffers);
- the request head written as given: the raw path and query exactly as received, the
  caller's headers; the body sent as bytes, or streamed from an async iterator / aiohttp
  StreamReader with Content-Length or chunked framing;
- the response parsed by httptools (llhttp, in C), de-chunked, and handed back as status,
  headers and a body that is read whole or iterated as it arrives.

A reused connection that the upstream closed while idle is retried once on a fresh one,
if nothing of the answer came back and the body can be sent again. A connection goes back
to the pool only after a complete exchange that both sides agreed to keep alive.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import httptools

CONNECT_TIMEOUT = 5.0
MAX_IDLE = 32  # idle connections kept per upstream; more are closed on release
# uvicorn (Streamlit's server) drops idle keep-alive connections after 5 s; retiring ours
# a little earlier avoids sending a request into a socket the upstream is closing.
IDLE_TTL = 4.0
# Reading from the upstream pauses while this much of a streamed answer is unread, so a
# slow client does not make the proxy buffer a whole download.
READ_HIGH = 1024 * 1024
# A head and a body below this size go out in one write (one send syscall, one segment).
JOIN_BODY_BELOW = 64 * 1024
# Request bodies a caller may read whole and pass as bytes: sent again if needed.
REPLAYABLE_BODY = 64 * 1024

_NO_BODY_STATUS = frozenset((204, 304))
_FRAMING = frozenset(("content-length", "transfer-encoding"))


class UpstreamError(Exception):
    """The upstream could not be reached or broke off its answer (a proxy answers 502)."""


class _Stale(Exception):
    """A reused connection died before any byte of the answer: safe to try again."""


Body = bytes | bytearray | memoryview | AsyncIterable[bytes]


class UpstreamPool:
    """Keep-alive connections to any number of upstreams, `http://host:port` each."""

    def __init__(self, max_idle: int = MAX_IDLE, idle_ttl: float = IDLE_TTL,
                 connect_timeout: float = CONNECT_TIMEOUT):
        self.max_idle = max_idle
        self.idle_ttl = idle_ttl
        self.connect_timeout = connect_timeout
        self._origins: dict[str, _Origin] = {}

    async def request(self, method: str, url: str, headers: Iterable[tuple[str, str]],
                      body: Body | None = None,
                      body_length: int | None = None) -> UpstreamResponse:
        """Send one request and return as soon as the answer's head has arrived.

        `url` is the upstream origin followed by the raw target, which is sent byte for
        byte. `headers` go out as given, except Content-Length and Transfer-Encoding:
        the body's framing is this client's, from `body_length` (Content-Length, also
        for an empty body), the size of a bytes body, or chunked for a stream of unknown
        length. Raises UpstreamError if there is no answer. The caller must `close()`
        the response (or read it to the end) to free the connection.
        """
        origin_key, target = _split(url)
        origin = self._origins.get(origin_key)
        if origin is None:
            origin = self._origins[origin_key] = _Origin(origin_key, self)
        if isinstance(body, bytes | bytearray | memoryview):
            body_length = len(body) if body_length is None else body_length
            replayable = True
        else:
            replayable = body is None
        head = _head(method, target, headers, origin.host_header, body, body_length)
        head_only = method == "HEAD"
        # A stream can only be sent once, so it never rides on a connection that may
        # turn out to be dead; loopback connects are cheap next to an upload.
        conn = origin.acquire() if replayable else None
        if conn is not None:
            try:
                return await _exchange(conn, head, body, body_length, head_only)
            except _Stale:
                pass
        conn = await origin.connect()
        try:
            return await _exchange(conn, head, body, body_length, head_only)
        except _Stale as err:
            raise UpstreamError(str(err)) from None

    async def close(self) -> None:
        """Close every idle connection; those in use close when their answer ends."""
        for origin in self._origins.values():
            origin.closed = True
            while origin.idle:
                origin.idle.pop().transport.close()


class UpstreamResponse:
    """An answer: `status` and `headers` (a list of pairs, as sent) now, the body later.

    `content_length` is the Content-Length header's value, None for a chunked answer or
    one that ends when the upstream closes. Read the body whole with `read()` or as it
    arrives with `iter_chunks()`; `close()` frees the connection, or closes it if the
    body was not read to the end, so a half-read answer never reaches the next request.
    """

    status: int
    headers: list[tuple[str, str]]
    content_length: int | None

    def __init__(self, conn: _Connection, head_only: bool):
        self._conn: _Connection | None = conn
        self._loop = conn.loop
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)
        self._raw: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future | None = None
        self._started = False  # any byte of the answer has arrived
        self._interim = False  # parsing a 1xx answer, which is skipped
        self._has_head = False
        self._until_eof = False
        self._done = False
        self._sent = False  # the request went out whole
        self._keep_alive = False
        self._abandoned = False  # the request was cut short: never reuse the connection
        self._read_all = False
        self._error: BaseException | None = None
        self.status = 0
        self.headers = []
        self.content_length = None

    async def read(self) -> bytes:
        """The whole body."""
        self._read_all = True
        while not self._done:
            if self._error is not None:
                raise self._error
            conn = self._conn
            if conn is not None and conn.reading_paused:
                conn.resume_reading()
            await self._wait()
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        self._buffered = 0
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each item is everything received since the last."""
        while True:
            chunks = self._chunks
            if chunks:
                self._chunks = []
                self._buffered = 0
                conn = self._conn
                if conn is not None and conn.reading_paused:
                    conn.resume_reading()
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif self._done:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    def close(self) -> None:
        """Done with this answer: give back the connection, or close it mid-answer."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.response = None
            conn.transport.close()
        self._chunks = []

    # -- the connection's side ---------------------------------------------------------------
    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._done:
            self._error = error
        self._wake()

    def _feed(self, conn: _Connection, data: bytes) -> None:
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            # The connection may already be back in the pool (bytes after a complete
            # answer): closing the transport keeps it from being handed out again.
            conn.transport.close()
            self._fail(UpstreamError(f"bad answer from upstream: {err!r}"))

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._done or self._error is not None:
            return
        if self._has_head and self._until_eof and exc is None:
            self._finish(keep_alive=False)
        elif not self._started:
            self._fail(_Stale(f"upstream closed the connection: {exc or 'EOF'}"))
        else:
            self._fail(UpstreamError(f"upstream broke off its answer: {exc or 'EOF'}"))

    def _finish(self, keep_alive: bool) -> None:
        self._done = True
        self._keep_alive = keep_alive
        self._wake()
        if self._sent:
            self._release()

    def _release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        conn.response = None
        if self._keep_alive and not self._abandoned and not conn.transport.is_closing():
            conn.resume_reading()  # paused for a reader that has finished with it
            conn.origin.release(conn)
        else:
            conn.transport.close()

    # httptools callbacks, called from within _feed
    def on_message_begin(self) -> None:
        if self._done:  # bytes after a complete answer: the connection is out of step
            raise UpstreamError("unexpected bytes after the answer")
        self._raw = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200 and status != 101:
            self._interim = True  # 100 Continue and the like: the real answer follows
            return
        headers = []
        length = None
        chunked = False
        for name, value in self._raw:
            key = name.lower()
            if key == b"content-length":
                length = int(value)  # llhttp has already rejected a malformed one
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            headers.append((name.decode("utf-8", "surrogateescape"),
                            value.decode("utf-8", "surrogateescape")))
        self.status = status
        self.headers = headers
        self.content_length = length
        self._has_head = True
        no_body = self._head_only or status in _NO_BODY_STATUS or status == 101
        self._until_eof = not (no_body or chunked or length is not None)
        self._wake()
        if self._head_only:
            # llhttp cannot be told this answered a HEAD, so it would wait for the body
            # the headers describe: the answer ends here, and the next uses a new parser.
            self._finish(keep_alive=self._parser.should_keep_alive())
        elif status == 101:
            self._finish(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        if self._done:
            raise UpstreamError("body after a HEAD answer")
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > READ_HIGH and not self._read_all and self._conn is not None:
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if not self._done:
            self._finish(keep_alive=self._parser.should_keep_alive())


class _Connection(asyncio.Protocol):
    """One TCP connection to an upstream; it feeds the answer it is currently reading."""

    def __init__(self, origin: _Origin, loop: asyncio.AbstractEventLoop):
        self.origin = origin
        # Kept rather than looked up: before Python 3.12, get_running_loop() makes a
        # getpid() system call, which on the hot path costs more than it seems.
        self.loop = loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.reading_paused = False
        self._write_paused = False
        self._drain: asyncio.Future | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.transport.close()  # nobody asked: an idle connection must stay silent
        else:
            response._feed(self, data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost tells the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None:
            response._connection_lost(exc)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    async def drain(self, response: UpstreamResponse) -> None:
        """Wait until the upstream takes more, or answers, or goes away."""
        while self._write_paused and not self.closed and not response._has_head:
            self._drain = self.loop.create_future()
            try:
                await self._drain
            finally:
                self._drain = None

    def _wake_writer(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)


class _Origin:
    def __init__(self, key: str, pool: UpstreamPool):
        self.pool = pool
        self.host, self.port = _host_port(key)
        self.host_header = key.split("://", 1)[1]
        self.idle: collections.deque[_Connection] = collections.deque()
        self.closed = False

    def acquire(self) -> _Connection | None:
        idle = self.idle
        if not idle:
            return None
        oldest_ok = time.monotonic() - self.pool.idle_ttl
        while idle:
            conn = idle.pop()  # the most recently used is the least likely to be stale
            if conn.idle_since >= oldest_ok and not conn.transport.is_closing():
                return conn
            conn.transport.close()
        return None

    def release(self, conn: _Connection) -> None:
        if self.closed or len(self.idle) >= self.pool.max_idle:
            conn.transport.close()
            return
        conn.reused = True
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.pool.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, loop), self.host, self.port)
        except (OSError, TimeoutError) as err:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {err!r}") from err
        return conn


async def _exchange(conn: _Connection, head: bytes, body: Body | None,
                    body_length: int | None, head_only: bool) -> UpstreamResponse:
    if conn.closed or conn.transport.is_closing():
        raise _Stale("pooled connection already closed")
    response = UpstreamResponse(conn, head_only)
    conn.response = response
    stale = conn.reused
    try:
        if body is None:
            conn.transport.write(head)
        elif isinstance(body, bytes | bytearray | memoryview):
            if len(body) < JOIN_BODY_BELOW:
                conn.transport.write(head + body)
            else:
                conn.transport.writelines((head, body))
                await conn.drain(response)
        else:
            conn.transport.write(head)
            await _send_stream(conn, response, body, body_length)
        response._sent = True
        if response._done:
            response._release()
        while not response._has_head:
            if response._error is not None:
                raise response._error
            await response._wait()
    except _Stale:
        response.close()
        if stale:
            raise
        raise UpstreamError("upstream closed the connection without answering") from None
    except BaseException:
        response.close()
        raise
    return response


async def _send_stream(conn: _Connection, response: UpstreamResponse,
                       body: AsyncIterable[bytes], body_length: int | None) -> None:
    iter_any = getattr(body, "iter_any", None)  # an aiohttp StreamReader
    chunks = iter_any() if iter_any is not None else body
    write = conn.transport.write
    chunked = body_length is None
    sent = 0
    try:
        async for chunk in chunks:
            if response._has_head or conn.closed:
                # The upstream answered (or left) before taking the whole body: stop
                # sending; the connection is out of step, so it will not be reused.
                response._abandoned = True
                return
            if not chunk:
                continue
            if chunked:
                conn.transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
            else:
                write(chunk)
            sent += len(chunk)
            await conn.drain(response)
    except (_Stale, UpstreamError):
        raise
    except Exception as err:  # the client's side broke off its upload
        raise UpstreamError(f"request body failed: {err!r}") from err
    if chunked:
        write(b"0\r\n\r\n")
    elif sent != body_length:
        raise UpstreamError(f"request body was {sent} bytes, not {body_length}")


def _split(url: str) -> tuple[str, str]:
    """`http://host:port/raw?target` -> (`http://host:port`, `/raw?target`), no decoding."""
    if not url.startswith("http://"):
        raise ValueError(f"only http:// upstreams are supported: {url!r}")
    slash = url.find("/", 7)
    if slash < 0:
        return url, "/"
    return url[:slash], url[slash:]


def _host_port(origin: str) -> tuple[str, int]:
    authority = origin.split("://", 1)[1]
    if authority.startswith("["):  # [::1]:port
        host, _, port = authority[1:].partition("]")
        return host, int(port.lstrip(":") or 80)
    host, _, port = authority.partition(":")
    return host, int(port or 80)


def _head(method: str, target: str, headers: Iterable[tuple[str, str]], host: str,
          body: Body | None, body_length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    has_host = False
    for name, value in headers:
        key = name.lower()
        if key in _FRAMING:
            continue
        if key == "host":
            has_host = True
        lines.append(name + ": " + value)  # an f-string is slower on multidict's istr
    if not has_host:
        lines.insert(1, f"Host: {host}")
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    elif body is not None:
        lines.append("Transfer-Encoding: chunked")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    # One count instead of a check per header: a CR or LF inside a name, value or target
    # would let a caller's data start a header or a request of its own.
    if text.count("\n") != len(lines) or text.count("\r") != len(lines) or " " in method:
        raise ValueError("CR or LF in the request line or a header")
    # aiohttp decodes what it receives as UTF-8 with surrogateescape: this is the inverse,
    # so the bytes received are the bytes sent.
    return text.encode("utf-8", "surrogateescape")
