"""`clearline serve`'s HTTP protocol: uvicorn's own, with `GET /r/{code}` answered before any ASGI work.

Under uvicorn a bare ASGI app answering a constant 302 already costs about four times nginx's CPU per
request (parser callbacks, a scope, a task and two messages per request), so no handler behind ASGI can
come near nginx. This protocol reads a plain redirect request itself and writes the answer the `Redirector`
prepared in one call: the request's line and the few headers a click needs are found in the raw bytes.

Whatever it is not sure of goes to uvicorn: another path, a request with a body or an upgrade, HTTP/1.0,
an odd line ending, a link that needs the database first (single use). The connection is then handed over
to uvicorn's protocol with every byte not yet answered, for the rest of its life, so the full server (and
FastAPI behind it) sees exactly the requests it would have seen.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from clearline.ingest import protocol as postbacks
from clearline.link.redirect import COUNTRY_HEADERS, PEER_IS_PROXY, STATUS_302, RedirectMiddleware, Redirector

MAX_HEAD = 16_384  # a longer request head is uvicorn's to refuse
# The header block (lowercased) of a request the fast path may answer: every line a token name, a colon and a
# value without control bytes but tab (uvicorn's parser refuses those), and none of them a body, an upgrade or
# an expectation. Anything else (a folded line, a space before a colon, a bare CR or LF) goes to uvicorn, whose
# parser knows the rules: a refused match can only cost speed, never let a malformed request through. One
# regex is half the cost of the equivalent substring searches.
_PLAIN_HEADERS = re.compile(
    rb"(?:\r\n(?!content-length:|transfer-encoding:|upgrade:|expect:)"
    rb"[!#$%&'*+.^_`|~0-9a-z-]+:[^\x00-\x08\x0a-\x1f\x7f]*)*\r\n"
)
_COUNTRY = tuple(b"\r\n" + name + b":" for name in COUNTRY_HEADERS)
# A byte uvicorn's parser refuses in a request target (a space would also make it read another version).
_NOT_IN_TARGET = re.compile(rb"[\x00-\x20\x7f-\xff]")


def _hot_path(config: Any) -> tuple[Redirector | None, Any, Any]:
    """The Redirector, the trusted proxies and the postback intake of the app uvicorn serves (found once per
    server)."""
    found = getattr(config, "_clearline_hot_path", None)
    if found is None:
        if not config.loaded:
            config.load()
        redirector, trusted, intake, app = None, None, None, config.loaded_app
        for _ in range(16):  # uvicorn's own wrappers, then ours
            if isinstance(app, ProxyHeadersMiddleware):
                trusted = app.trusted_hosts
            if isinstance(app, RedirectMiddleware):
                redirector = app.redirector
                intake = getattr(getattr(app.app, "state", None), "postbacks", None)
                break
            app = getattr(app, "app", None)
            if app is None:
                break
        found = config._clearline_hot_path = (redirector, trusted, intake)
    return found


def _could_be_redirect(data: bytes) -> bool:
    return b"GET /r/".startswith(data[:7]) or b"HEAD /r/".startswith(data[:8])


def _value(block: bytes, low: bytes, name: bytes) -> bytes:
    at = low.find(name)
    if at < 0:
        return b""
    at += len(name)
    return block[at : block.index(b"\r\n", at)].strip(b" \t")


class _FromTrustedProxy:
    """The served app, for the requests of a connection whose peer is a trusted proxy (see `PEER_IS_PROXY`)."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[PEER_IS_PROXY] = True
        await self.app(scope, receive, send)


class RedirectProtocol(asyncio.Protocol):
    """One connection; serves redirects until the first request that is not one, then uvicorn does."""

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.redirector, self.trusted, self.intake = _hot_path(config)
        self.transport: Any = None
        self.peer = ""
        self.peer_is_proxy = False
        self.buffer = b""
        self.answered = 0
        self.closing = False
        self.reading_paused = False
        self.idle_check: asyncio.TimerHandle | None = None
        self.count_requests = config.limit_max_requests is not None  # uvicorn's count serves only that limit
        self._defaults: Any = None
        self._prefix = STATUS_302
        self._server_headers = b""
        self.waiting = False  # a postback's answer is not written yet; later requests wait in the buffer
        self.held = False  # reading paused while they wait

    # --- connection life --------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio.Transport's
        self.transport = transport
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) and peer else ""
        self.peer_is_proxy = self.trusted is not None and self.peer in self.trusted
        if self.redirector is None:
            self._hand_over(b"")
            return
        self.idle_check = self.loop.call_later(self.config.timeout_keep_alive, self._close_if_idle, 0)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.idle_check is not None:
            self.idle_check.cancel()

    def _close_if_idle(self, answered: int) -> None:
        # One timer per keep-alive period instead of one per request: idle connections close after one to
        # two periods, and a request costs no timer.
        if self.answered == answered and not self.waiting:
            self.transport.close()
        else:
            self.idle_check = self.loop.call_later(self.config.timeout_keep_alive, self._close_if_idle, self.answered)

    def pause_writing(self) -> None:
        # A client that does not read its answers stops being read from.
        self.reading_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.reading_paused = False
        self.transport.resume_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: every redirect is already answered (and its click buffered), so close;
        a postback waiting for its commit is answered first (uvicorn waits for its connections)."""
        self.closing = True
        if not self.waiting:
            self.transport.close()

    def _hand_over(self, data: bytes) -> None:
        if self.idle_check is not None:
            self.idle_check.cancel()
            self.idle_check = None
        self.server_state.connections.discard(self)
        protocol = AutoHTTPProtocol(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.app_state, _loop=self.loop
        )
        if self.peer_is_proxy:
            # Behind uvicorn's ProxyHeadersMiddleware the ASGI path sees the forwarded client, not this peer:
            # tell it the peer was trusted, so both front doors honour the same headers from the same peers.
            protocol.app = _FromTrustedProxy(protocol.app)  # type: ignore[attr-defined]
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if self.reading_paused:
            # Writing is still paused: the transport will call resume_writing but never pause_writing again,
            # so uvicorn must hear it now or it writes on without limit to a client that reads nothing.
            protocol.pause_writing()
            self.transport.resume_reading()
        if data:
            protocol.data_received(data)

    # --- requests -----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data, self.buffer = self.buffer + data, b""
        if self.waiting:
            self._hold(data)
            return
        end = data.find(b"\r\n\r\n")
        if end + 4 == len(data):  # the common case: exactly one request head
            answer = self._answer(data, 0, end)
            if answer is not None:
                self.answered += 1
                if self.count_requests:
                    self.server_state.total_requests += 1
                self.transport.write(answer)
                if self.closing:
                    self.transport.close()
                return
            if self.intake is None or not data.startswith(postbacks.START):
                self._hand_over(data)
                return
        start, hand_over, body_due = 0, False, False
        answers: list[bytes] = []
        while end >= 0 and not self.closing:
            answer = self._answer(data, start, end)
            if answer is None:
                if self.intake is not None and data.startswith(postbacks.START, start):
                    found = postbacks.read(data, start, end)
                    if isinstance(found, postbacks.Postback):
                        self._write_answers(answers)
                        self._postback(found)
                        self._hold(data[found.end :])
                        return
                    body_due = isinstance(found, int)  # a postback whose body is not all in yet
                hand_over = not body_due
                break
            answers.append(answer)
            start = end + 4
            end = data.find(b"\r\n\r\n", start)
        self._write_answers(answers)
        if self.closing:
            self.transport.close()
            return
        rest = data[start:] if start else data
        if body_due:  # (its length is within the intake's limit)
            self.buffer = rest
            return
        # A head ended by bare line feeds never shows "\r\n\r\n": uvicorn's parser decides, not a timeout.
        if (
            hand_over
            or len(rest) > MAX_HEAD
            or not (_could_be_redirect(rest) or (self.intake is not None and postbacks.could_be_postback(rest)))
            or rest.count(b"\n") > rest.count(b"\r\n")
        ):
            self._hand_over(rest)
        else:
            self.buffer = rest

    def _write_answers(self, answers: list[bytes]) -> None:
        if answers:
            self.answered += len(answers)
            if self.count_requests:
                self.server_state.total_requests += len(answers)
            self.transport.write(b"".join(answers))

    # --- postbacks ----------------------------------------------------------------------------------
    def _hold(self, data: bytes) -> None:
        """Keep what arrived while a postback waits; stop reading once that is more than a postback's worth."""
        self.buffer = data
        if len(data) > postbacks.MAX_BODY + MAX_HEAD and not self.held:
            self.held = True
            self.transport.pause_reading()

    def _postback(self, request: postbacks.Postback) -> None:
        intake = self.intake
        assert intake is not None
        self.waiting = True
        if request.close:
            self.closing = True

        def reply(status: int, payload: dict[str, Any]) -> None:
            self._postback_answered(postbacks.response(status, payload, self._server_prefix(), self.closing))

        if not intake.started or intake.closed:  # before the app's start-up or after its shut-down
            reply(503, {"error": "unavailable", "detail": "the server is starting or stopping; send it again"})
            return
        intake.begin(request.slug, request.kind, request.headers, request.body, self.loop, reply)

    def _postback_answered(self, answer: bytes) -> None:
        self.waiting = False
        if self.transport.is_closing():  # the client went away; the row is stored all the same
            return
        self._write_answers([answer])
        if self.closing:
            self.transport.close()
            return
        if self.held:
            self.held = False
            if not self.reading_paused:
                self.transport.resume_reading()
        if self.buffer:
            self.data_received(b"")

    def _server_prefix(self) -> bytes:
        """uvicorn's default headers (server, date), as it would send them."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:  # uvicorn renews its date header once a second
            self._defaults = defaults
            self._server_headers = b"".join(name + b": " + value + b"\r\n" for name, value in defaults)
            self._prefix = STATUS_302 + self._server_headers
        return self._server_headers

    def _answer(self, data: bytes, start: int, end: int) -> bytes | None:
        """The whole answer to the request head data[start:end], or None when uvicorn should answer it."""
        line_end = data.find(b"\r\n", start)
        if data.startswith(b"GET /r/", start):
            head, code_at = False, start + 7
        elif data.startswith(b"HEAD /r/", start):
            head, code_at = True, start + 8
        else:
            return None
        if not data.startswith(b" HTTP/1.1", line_end - 9):
            return None
        code_end = data.find(b"?", code_at, line_end)
        redirector = self.redirector
        assert redirector is not None
        entry = redirector.links.by_raw_code.get(data[code_at : line_end - 9 if code_end < 0 else code_end])
        if entry is None:  # an unknown code, or one only uvicorn decodes (percent escapes): its 404 or 302
            return None
        if code_end >= 0 and _NOT_IN_TARGET.search(data, code_end, line_end - 9) is not None:
            return None
        now = time.time()
        if entry.plain and now < entry.expires_at:
            outcome = "live"
        else:
            outcome = redirector.outcome(entry, now)  # type: ignore[assignment]
            if outcome is None:
                return None
        block = data[line_end : end + 2]  # "\r\n" + every header line with its "\r\n"
        low = block.lower()
        if _PLAIN_HEADERS.fullmatch(low) is None:
            return None
        at = low.find(b"\r\nuser-agent:")
        agent = block[at + 13 : block.index(b"\r\n", at + 13)].strip(b" \t") if at >= 0 else b""
        at = low.find(b"\r\nreferer:")
        referrer = block[at + 10 : block.index(b"\r\n", at + 10)].strip(b" \t") if at >= 0 else b""
        country = b""
        # find, not `in`: bytes.__contains__ first tries its argument as an integer and builds a TypeError.
        # A country header counts only from a trusted proxy (any client can send one). One search finds whether
        # any is there: "country", not "country:", which X-Country-Code does not contain.
        if self.peer_is_proxy and low.find(b"country") >= 0:
            for name in _COUNTRY:
                if low.find(name) >= 0:
                    country = _value(block, low, name)
                    break
        ip = self.peer
        if self.peer_is_proxy and low.find(b"\r\nx-forwarded-for:") >= 0:
            if low.count(b"\r\nx-forwarded-for:") > 1:
                return None
            forwarded = _value(block, low, b"\r\nx-forwarded-for:").decode("latin-1")
            ip = self.trusted.get_trusted_client_address(forwarded)[0] or ip
        if low.find(b"\r\nconnection:") >= 0:
            if low.count(b"\r\nconnection:") > 1:  # uvicorn reads every one of them
                return None
            if _value(low, low, b"\r\nconnection:").find(b"close") >= 0:
                self.closing = True
        signed = redirector.click(entry, now, outcome, ip, agent, referrer, country, head)
        if self.server_state.default_headers is not self._defaults:
            self._server_prefix()
        prefix = self._prefix + b"connection: close\r\n" if self.closing else self._prefix
        if signed is None:
            return prefix + entry.fallback_headers
        return b"".join((prefix, entry.live_headers, signed, entry.live_end))
