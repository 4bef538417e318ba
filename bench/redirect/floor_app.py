"""The floor under Clearline: a bare ASGI app that answers every request with a 302 and nothing else.

Served by the benchmark under exactly Clearline's uvicorn settings (`--lifespan off`, as it has no start-up work),
it shows how much of Clearline's CPU per redirect is uvicorn's own HTTP handling, which no change to the hot path
can remove. The Location has the length of a real one (destination, UTM parameters and a signed click id).
"""

from __future__ import annotations

from typing import Any

LOCATION = (
    b"https://shop.acme-beauty.com/collections/glow?ref=creator&utm_source=instagram&utm_medium=affiliate"
    b"&utm_campaign=glow-season&utm_content=anna.glow&utm_id=1&clid=0PZ8Y3M1XK2QD.Hb3kq9XwP_2mVt7c"
)
HEADERS = [(b"cache-control", b"no-store"), (b"content-length", b"0"), (b"location", LOCATION)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 302, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})
