"""Per-request and per-click cost of the redirect path in one process, without sockets: for callgrind.

    CLEARLINE_DATABASE_URL=sqlite:////tmp/demo.db uv run clearline demo --no-serve     # a seeded database
    uv run python bench/redirect/profile.py sqlite:////tmp/demo.db --requests 20000 --head browser
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=starmap_next \
        .venv/bin/python bench/redirect/profile.py sqlite:////tmp/demo.db --requests 20000

It drives `RedirectProtocol.data_received` with a fake transport for one live link (or, with `--flush`, does so
unmeasured and then measures one writer flush of the logged clicks). The measured part runs inside
`itertools.starmap`, so callgrind's `--toggle-collect=starmap_next` counts it and nothing else: instruction
counts are repeatable on a shared machine where times are not. It prints thread CPU time per item too. The
flush writes the clicks into the given database.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque
from itertools import repeat, starmap
from typing import Any

from clearline.kit.db import make_engine
from clearline.link.protocol import RedirectProtocol
from clearline.link.redirect import Redirector

BROWSER = (
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    b"Version/17.0 Mobile/15E148 Safari/604.1\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\nReferer: https://www.instagram.com/\r\nAccept-Encoding: gzip, deflate, br\r\n"
)


class _Transport:
    written = 0

    def write(self, data: bytes) -> None:
        self.written += 1

    def get_extra_info(self, name: str) -> Any:
        return ("10.1.2.3", 5555)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--head", choices=("wrk", "browser"), default="wrk")
    parser.add_argument("--new-visitors", action="store_true", help="a new client address per request")
    parser.add_argument("--flush", action="store_true", help="measure the writer's flush instead of the requests")
    args = parser.parse_args()

    redirector = Redirector(make_engine(args.database_url), secret_key="profile-secret-key-0123456789")
    redirector.links.load()
    now = time.time()
    code = next(c for c, e in redirector.links.entries.items() if e.plain and e.expires_at > now)

    class Config:
        limit_max_requests = None
        timeout_keep_alive = 5
        loaded = True
        _clearline_hot_path = (redirector, None, None)

    class State:
        connections: set[Any] = set()
        default_headers = [(b"date", b"Tue, 24 Nov 2026 22:00:00 GMT"), (b"server", b"uvicorn")]
        total_requests = 0

    protocol = RedirectProtocol(Config(), State(), {}, _loop=asyncio.new_event_loop())
    transport = protocol.transport = _Transport()
    protocol.peer = "10.1.2.3"
    headers = b"Host: 127.0.0.1:8080\r\n" if args.head == "wrk" else BROWSER
    request = b"GET /r/" + code.encode() + b" HTTP/1.1\r\n" + headers + b"\r\n"
    peers = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(args.requests)]

    def one(i: int) -> None:
        protocol.peer = peers[i]
        protocol.data_received(request)

    def requests() -> None:
        if args.new_visitors:
            deque(starmap(one, ((i,) for i in range(args.requests))), maxlen=0)
        else:
            deque(starmap(protocol.data_received, repeat((request,), args.requests)), maxlen=0)

    for _ in range(1_000):  # warm caches (the repeat entry, the header values)
        protocol.data_received(request)
    redirector.writer._buffer.clear()
    if args.flush:
        requests()
        started = time.thread_time()
        deque(starmap(redirector.writer.flush, repeat((), 1)), maxlen=0)
        spent, what = time.thread_time() - started, "click flushed"
    else:
        started = time.thread_time()
        requests()
        spent, what = time.thread_time() - started, "request"
    assert transport.written == args.requests + 1_000
    print(f"{spent / args.requests * 1e6:.2f} µs CPU per {what} ({args.requests} {args.head} requests)")


if __name__ == "__main__":
    main()
