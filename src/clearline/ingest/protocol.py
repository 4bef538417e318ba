"""Signed postbacks read straight off the connection by `clearline serve`'s HTTP protocol.

`clearline.link.protocol.RedirectProtocol` answers redirects from raw bytes; a `POST /api/v1/postbacks/...`
costs far more under uvicorn and ASGI (a scope, a task, receive and send messages per request) than its own
work, so the protocol reads it too, with this module, and hands it to `PostbackIntake.begin`. The answer is
written when the intake replies, that is once the inbox row is committed; the connection reads no further
request until then, so answers keep their order.

As for redirects, anything not plainly a postback goes to uvicorn: a target with a query or a percent
escape, a chunked body, `Expect: 100-continue`, a header line uvicorn's parser would refuse, a repeated
signature header, a body over the intake's limit. uvicorn and `PostbackMiddleware` then answer it exactly as
they would have.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from clearline.ingest.fastpath import KINDS, MAX_BODY, PREFIX

START = b"POST " + PREFIX.encode()
_TARGET = re.compile(  # a brand slug as brands take them, then one of the intake's kinds
    re.escape(START) + rb"([a-z0-9][a-z0-9-]{0,62})/(" + "|".join(KINDS).encode() + rb") HTTP/1\.1"
)
# The lowercased header block: each line a token, a colon and a value without control bytes but tab, and no
# chunked body, upgrade or expectation (uvicorn answers those).
_HEADERS = re.compile(
    rb"(?:\r\n(?!transfer-encoding:|upgrade:|expect:)[!#$%&'*+.^_`|~0-9a-z-]+:[^\x00-\x08\x0a-\x1f\x7f]*)*\r\n"
)
SIGNATURE_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")
_PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Postback:
    slug: str
    kind: str  # "order" | "refund"
    headers: dict[str, str]  # the Standard Webhooks headers, lowercased names
    body: bytes
    close: bool  # the client asked to close the connection after the answer
    end: int  # where the next request starts in the data read


def could_be_postback(data: bytes) -> bool:
    """The start of a request this module may read (so far)."""
    return START.startswith(data[: len(START)])


def _only(low: bytes, name: bytes) -> tuple[int, int] | None:
    """(start, end) of the value of header ``name`` (b"\\r\\n<name>:"), (0, 0) if absent, None if repeated."""
    at = low.find(name)
    if at < 0:
        return (0, 0)
    if low.find(name, at + len(name)) >= 0:
        return None
    start = at + len(name)
    return (start, low.index(b"\r\n", start))


def read(data: bytes, start: int, end: int) -> Postback | int | None:
    """The postback whose head is data[start:end] (end at its blank line); an int when the body is not all
    in yet (the bytes needed from ``start``); None when uvicorn should have the request."""
    line_end = data.find(b"\r\n", start)
    target = _TARGET.fullmatch(data, start, line_end)
    if target is None:
        return None
    block = data[line_end : end + 2]  # "\r\n" + every header line with its "\r\n"
    low = block.lower()
    if _HEADERS.fullmatch(low) is None:
        return None
    length_at = _only(low, b"\r\ncontent-length:")
    if length_at is None or length_at == (0, 0):
        return None
    length_text = low[length_at[0] : length_at[1]].strip(b" \t")
    if not (length_text.isdigit() and len(length_text) <= 8):
        return None
    length = int(length_text)
    if length > MAX_BODY:
        return None  # PostbackMiddleware answers 413
    body_start = end + 4
    if len(data) < body_start + length:
        return body_start + length - start
    headers: dict[str, str] = {}
    for name in SIGNATURE_HEADERS:
        found = _only(low, b"\r\n" + name + b":")
        if found is None:
            return None  # which one counts is uvicorn's and FastAPI's business
        if found != (0, 0):
            headers[name.decode()] = block[found[0] : found[1]].strip(b" \t").decode("latin-1")
    close = False
    connection = _only(low, b"\r\nconnection:")
    if connection is None:
        return None
    if connection != (0, 0):
        close = b"close" in low[connection[0] : connection[1]]
    slug, tail = target.group(1).decode(), target.group(2).decode()
    return Postback(slug, KINDS[tail], headers, data[body_start : body_start + length], close, body_start + length)


def response(status: int, payload: dict[str, Any], prefix_headers: bytes, close: bool) -> bytes:
    """The whole HTTP/1.1 answer: what `PostbackMiddleware` sends through uvicorn, without uvicorn."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES.get(status, b"")),
            prefix_headers,
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n" if close else b"\r\n",
            body,
        )
    )
