"""The floor under Clearline: a bare ASGI app that answers every request with a 302 and nothing else.

Served by the benchmark under uvicorn's default HTTP protocol with Clearline's other settings (`--lifespan off`, as
it has no start-up work), it shows the least a redirect answered through ASGI costs under uvicorn; `clearline serve`
answers plain redirects ahead of ASGI, in its own HTTP protocol. The Location has the length of a real one
(destination, UTM parameters and a signed click id).
"""

from __future__ import annotations

import asyncio
from typing import Any

LOCATION = (
    b"https://shop.acme-beauty.com/collections/glow?ref=creator&utm_source=instagram&utm_medium=affiliate"
    b"&utm_campaign=glow-season&utm_content=anna.glow&utm_id=1&clid=0PZ8Y3M1XK2QD.Hb3kq9XwP_2mVt7c"
)
HEADERS = [(b"cache-control", b"no-store"), (b"content-length", b"0"), (b"location", LOCATION)]
RSGI_HEADERS = [(name.decode(), value.decode()) for name, value in HEADERS if name != b"content-length"]
RAW = b"HTTP/1.1 302 Found\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS) + b"\r\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 302, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})


class RsgiApp:
    """The same answer through Granian's RSGI interface (`servers.py` only)."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        protocol.response_empty(302, RSGI_HEADERS)


rsgi_app = RsgiApp()


class RawProtocol(asyncio.Protocol):
    """The same answer written straight from an asyncio protocol, no HTTP parser and no ASGI (`servers.py` only):
    the least Python can spend on a redirect under uvicorn's event loop. Keep-alive GETs without a body only."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.server_state = server_state
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        data = self.buffer + data
        count = data.count(b"\r\n\r\n")
        self.buffer = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data
        if count:
            self.transport.write(RAW * count)

    def shutdown(self) -> None:
        self.transport.close()
