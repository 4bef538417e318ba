"""The postback hot path: `POST /api/v1/postbacks/{brand}/orders|refunds`, stored first, processed after.

A small ASGI handler sits in front of FastAPI (as the redirect does). It never touches the ORM on the event
loop: the brand and its valid postback secrets come from `BrandKeys` in memory; the Standard Webhooks
signature, the timestamp and the body are checked in the handler; the inbox row goes to the
`GroupCommitWriter`, and the 200 is sent only when the batch holding it is committed. The `Drainer`
applies the stored events in the background, so the answer never waits for attribution or the ledger and
never says an order was processed.

When the app's database session is overridden (tests run every request in their own rolled-back
session), each postback is stored and then processed in that session before the answer, exactly as the
request-scoped routes are; the served app has no override and never processes inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from clearline.ingest import schemas, service, signatures
from clearline.ingest.drainer import Drainer, drain_once
from clearline.ingest.inbox_writer import GroupCommitWriter, Stored, write_batch
from clearline.kit.clock import ensure_utc
from clearline.kit.errors import ClearlineError, ValidationFailedError
from clearline.kit.signing import Hmac256
from clearline.models import Brand, BrandSecret

log = logging.getLogger("clearline.ingest.fastpath")

PREFIX = "/api/v1/postbacks/"
KINDS = {"orders": "order", "refunds": "refund"}
MAX_BODY = 1024 * 1024  # an order of 5,000 lines fits; anything larger is refused before it is buffered
STORE_FAILED = {"error": "internal", "detail": "the event was not stored; send it again"}
BUSY_GAP_S = 0.01  # a request this recent still counts: the next one is likely on its way


@dataclass(frozen=True, slots=True)
class BrandKey:
    brand_id: int
    keys: tuple[tuple[Hmac256, float | None], ...]  # (signing key, expires at in unix seconds), newest first

    def valid(self, now: float) -> list[Hmac256]:
        """The keys still valid at ``now`` (the current one and any inside its rotation grace period)."""
        return [key for key, until in self.keys if until is None or until > now]


def read_keys(conn: Connection) -> dict[str, BrandKey]:
    """Every brand's slug with its postback secrets (expired ones, and any that does not decrypt, left out),
    decrypted here, once per load: a request only uses the prepared keys."""
    now = signatures.utcnow().timestamp()
    rows = conn.execute(
        select(Brand.id, Brand.slug, BrandSecret.id, BrandSecret.sealed_secret, BrandSecret.expires_at)
        .outerjoin(BrandSecret, and_(BrandSecret.brand_id == Brand.id, BrandSecret.kind == "postback"))
        .order_by(Brand.id, BrandSecret.id.desc())
    )
    found: dict[str, tuple[int, list[tuple[Hmac256, float | None]]]] = {}
    for brand_id, slug, row_id, sealed, expires_at in rows:
        _, secrets = found.setdefault(slug, (brand_id, []))
        until = ensure_utc(expires_at).timestamp() if expires_at is not None else None
        if sealed is None or (until is not None and until <= now):
            continue
        secret = signatures.open_or_skip(row_id, sealed, brand_id=brand_id, kind="postback")
        key = signatures.signing_key(secret) if secret is not None else None
        if key is not None:
            secrets.append((key, until))
    return {slug: BrandKey(brand_id, tuple(secrets)) for slug, (brand_id, secrets) in found.items()}


class BrandKeys:
    """slug -> BrandKey for every brand, reloaded every ``poll_interval`` seconds and, at most every
    ``min_refresh`` seconds, when a postback names an unknown brand or matches no cached secret: such a
    postback waits for that reload and is checked again, so a rotated secret works at once (its first postbacks
    wait up to ``min_refresh``), and a burst of forged ones costs one load per ``min_refresh``, not one each.
    An expired secret is refused by its expiry time, a revoked one (a rotation with no grace) within a poll
    interval."""

    def __init__(self, engine: Engine, *, poll_interval: float = 1.0, min_refresh: float = 0.5) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.min_refresh = min_refresh
        self.keys: dict[str, BrandKey] = {}
        self.loaded_at = float("-inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def load(self, asked: float | None = None) -> None:
        """Read every brand's keys; with ``asked`` (a request's monotonic time), not when a load that started
        after it has run meanwhile: a burst of requests naming unknown keys costs one or two loads, not one each."""
        with self._lock:
            if asked is not None and self.loaded_at >= asked:
                return
            with self.engine.connect() as conn:
                started = time.monotonic()  # what the keys are as fresh as: a change committed later is not in them
                self.keys = read_keys(conn)
                self.loaded_at = started

    async def reload_for(self, asked: float) -> None:
        """Reload (off the event loop) for a request made at ``asked`` that matched no key in memory: after the
        next ``min_refresh`` boundary, and not at all if a load that started after ``asked`` has run by then."""
        wait = self.loaded_at + self.min_refresh - time.monotonic()
        if wait > 0:
            await anyio.sleep(wait)
        await anyio.to_thread.run_sync(self.load, asked)

    def start(self) -> None:
        if self._poller is None:
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="brand-keys-poller", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def _poll(self) -> None:
        while True:
            try:
                self.load()
            except Exception:
                log.exception("brand key refresh failed")
            if self._stop.wait(self.poll_interval):
                return


@dataclass(frozen=True, slots=True)
class Prepared:
    row: dict[str, Any]
    public_id: str


def verify(key: BrandKey | None, body: bytes, headers: dict[str, str]) -> None:
    """401 unless the Standard Webhooks signature matches one of the brand's valid secrets (constant-time,
    timestamp within 300 s); an unknown brand answers the same."""
    if key is None:
        raise signatures.refused("no such brand")
    now = signatures.utcnow()
    signatures.check_standard_webhook(key.valid(now.timestamp()), body, headers, now=now)


def validated(kind: str, body: bytes) -> schemas.OrderIn | schemas.RefundIn:
    """`service.normalise` of the body: pydantic reads a well-formed body straight from its bytes (one JSON
    parse less); anything it refuses takes the service's path, which accepts the same bodies (a wrapped
    resource) or raises the same 422 naming every bad field."""
    model = schemas.OrderIn if kind == "order" else schemas.RefundIn
    try:
        return model.model_validate_json(body)
    except ValueError:  # pydantic's ValidationError, a malformed body among them
        return service.normalise("postback", kind, service.parse_json(body))


def prepare(brand_id: int, kind: str, body: bytes, headers: dict[str, str]) -> Prepared:
    """Parse and validate the body (422 naming each bad field) into the inbox row to store."""
    parsed = validated(kind, body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ValidationFailedError("body is not UTF-8", details=[{"loc": ["body"], "msg": "not UTF-8"}]) from None
    public_id = parsed.order_id if isinstance(parsed, schemas.OrderIn) else parsed.refund_id
    row = {
        "brand_id": brand_id,
        "source": "postback",
        "kind": kind,
        "external_id": service.inbox_key("postback", parsed, text),
        "delivery_id": headers.get("webhook-id", "")[:128],
        "body": text,
        # The raw text's digest: the canonical JSON costs more than a signature check, and is only needed
        # when an id comes again (`inbox_writer.same_content` compares by content then).
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "received_at": signatures.utcnow(),
        "error": "",
    }
    return Prepared(row, public_id)


def accepted(kind: str, public_id: str, stored: Stored) -> dict[str, Any]:
    """INTERFACES §2/§3: stored, not processed yet; the same id and body again is a duplicate."""
    return {"status": "accepted", f"{kind}_id": public_id, "duplicate": stored.duplicate}


class PostbackIntake:
    """Verifies, validates and stores signed postbacks; owns the brand keys, the writer and the drainer."""

    def __init__(self, engine: Engine, *, poll_interval: float = 1.0, drain: bool = True) -> None:
        self.engine = engine
        self.keys = BrandKeys(engine, poll_interval=poll_interval)
        self.drainer = Drainer(engine, busy=self.busy)
        self.writer = GroupCommitWriter(engine, on_commit=self.drainer.wake)
        self.drain = drain
        self.in_flight = 0
        self.last_request = float("-inf")
        self.started = False
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.started or self.closed:
            return
        try:
            self.keys.load()
        except Exception:
            log.exception("brand keys could not be loaded; the poller retries")
        self.keys.start()
        self.writer.start()
        if self.drain:
            self.drainer.start()
        self.started = True

    def stop(self) -> None:
        """Graceful shutdown: every queued row is written, the drainer finishes its batch."""
        self.writer.stop()
        self.drainer.stop()
        self.keys.stop()
        self.started = False
        self.closed = True

    def busy(self) -> bool:
        return self.in_flight > 0 or time.monotonic() - self.last_request < BUSY_GAP_S

    # --- the hot path -------------------------------------------------------------------------
    async def handle(
        self, slug: str, kind: str, headers: dict[str, str], body: bytes, *, session: Callable[..., Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON answer) for one postback; ``session`` is an overriding session dependency."""
        self.in_flight += 1
        try:
            if session is not None:
                stored, public_id = await anyio.to_thread.run_sync(self._inline, session, slug, kind, headers, body)
            else:
                if not self.started and not self.closed:  # served without a lifespan (a bare ASGI mount)
                    await anyio.to_thread.run_sync(self.start)
                stored, public_id = await self._fast(slug, kind, headers, body)
            return 200, accepted(kind, public_id, stored)
        except ClearlineError as exc:
            return exc.status_code, exc.to_dict()
        except Exception:
            log.exception("postback could not be stored")
            return 500, STORE_FAILED
        finally:
            self.in_flight -= 1
            self.last_request = time.monotonic()

    def begin(
        self,
        slug: str,
        kind: str,
        headers: dict[str, str],
        body: bytes,
        loop: asyncio.AbstractEventLoop,
        reply: Callable[[int, dict[str, Any]], None],
    ) -> None:
        """`handle` without a coroutine, for `clearline serve`'s HTTP protocol: ``reply(status, answer)`` is
        called on ``loop`` once the answer is known (for a 200, once the row's batch is committed). The
        answers are `handle`'s, byte for byte; only a signature that needs the keys reloaded takes the
        coroutine path."""
        self.in_flight += 1

        def answer(status: int, payload: dict[str, Any]) -> None:
            self.in_flight -= 1
            self.last_request = time.monotonic()
            reply(status, payload)

        try:
            key = self.keys.keys.get(slug)
            try:
                verify(key, body, headers)
            except ClearlineError:
                self.in_flight -= 1  # handle() counts it again

                async def reload_and_handle() -> None:
                    reply(*await self.handle(slug, kind, headers, body))

                task = loop.create_task(reload_and_handle())
                self._tasks.add(task)  # the loop keeps only a weak reference
                task.add_done_callback(self._tasks.discard)
                return
            assert key is not None
            prepared = prepare(key.brand_id, kind, body, headers)
            public_id = prepared.public_id

            def stored(outcome: Stored | BaseException) -> None:
                if isinstance(outcome, Stored):
                    answer(200, accepted(kind, public_id, outcome))
                elif isinstance(outcome, ClearlineError):
                    answer(outcome.status_code, outcome.to_dict())
                else:
                    answer(500, STORE_FAILED)

            self.writer.submit_callback(prepared.row, loop, stored)
        except ClearlineError as exc:
            answer(exc.status_code, exc.to_dict())
        except Exception:
            log.exception("postback could not be stored")
            answer(500, STORE_FAILED)

    async def _fast(self, slug: str, kind: str, headers: dict[str, str], body: bytes) -> tuple[Stored, str]:
        key = self.keys.keys.get(slug)
        try:
            verify(key, body, headers)
        except ClearlineError:
            # Perhaps a brand or secret newer than the keys in memory: reload and check once more.
            await self.keys.reload_for(time.monotonic())
            key = self.keys.keys.get(slug)
            verify(key, body, headers)
        assert key is not None
        prepared = prepare(key.brand_id, kind, body, headers)
        stored = await self.writer.submit(prepared.row)
        return stored, prepared.public_id

    def _inline(
        self, dependency: Callable[..., Any], slug: str, kind: str, headers: dict[str, str], body: bytes
    ) -> tuple[Stored, str]:
        with _unit_of_work(dependency) as db:
            key = read_keys(db.connection()).get(slug)
            verify(key, body, headers)
            assert key is not None
            prepared = prepare(key.brand_id, kind, body, headers)
            outcome = write_batch(db.connection(), [prepared.row])[0]
            if isinstance(outcome, ClearlineError):
                raise outcome
            drain_once(db)
            return outcome, prepared.public_id


@contextlib.contextmanager
def _unit_of_work(dependency: Callable[..., Any]) -> Iterator[Session]:
    """Run a (generator) session dependency as FastAPI would: its code after `yield` commits or rolls back."""
    if not inspect.isgeneratorfunction(dependency):
        yield dependency()
        return
    generator = dependency()
    db = next(generator)
    try:
        yield db
    except BaseException as exc:
        with contextlib.suppress(StopIteration):
            generator.throw(exc)
        raise
    with contextlib.suppress(StopIteration):
        next(generator)


def session_override(scope: MutableMapping[str, Any]) -> Callable[..., Any] | None:
    app = scope.get("app")
    overrides = getattr(app, "dependency_overrides", None)
    if not overrides:
        return None
    from clearline.auth.deps import get_session

    return overrides.get(get_session)  # type: ignore[no-any-return]


class _Gone(Exception):
    """The client disconnected before its body was in."""


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole body, or None once it grows past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def route(path: str) -> tuple[str, str] | None:
    """(brand slug, "order" | "refund") for a postback path, else None."""
    if not path.startswith(PREFIX):
        return None
    slug, _, tail = path[len(PREFIX) :].partition("/")
    kind = KINDS.get(tail)
    return (slug, kind) if slug and kind else None


class PostbackMiddleware:
    """Pure ASGI, ahead of FastAPI: signed postbacks go to the intake, everything else to the app. It also
    starts the intake after the app's start-up and stops it (flushing) before the app's shut-down ends."""

    def __init__(self, app: Any, intake: PostbackIntake) -> None:
        self.app = app
        self.intake = intake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and (found := route(scope["path"])):
            await self.serve(scope, receive, send, *found)
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan(scope, send))
        else:
            await self.app(scope, receive, send)

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any, slug: str, kind: str) -> None:
        try:
            body = await _read_body(receive, MAX_BODY)
        except _Gone:
            return
        if body is None:
            await _respond(send, 413, {"error": "payload_too_large", "detail": f"the body exceeds {MAX_BODY} bytes"})
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        status, payload = await self.intake.handle(slug, kind, headers, body, session=session_override(scope))
        await _respond(send, status, payload)

    def _lifespan(self, scope: dict[str, Any], send: Any) -> Callable[[dict[str, Any]], Any]:
        intake = self.intake

        async def lifespan_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete" and session_override(scope) is None:
                await anyio.to_thread.run_sync(intake.start)
            elif message["type"] == "lifespan.shutdown.complete" and intake.started:
                await anyio.to_thread.run_sync(intake.stop)
            await send(message)

        return lifespan_send
