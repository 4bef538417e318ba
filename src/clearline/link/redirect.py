"""The redirect hot path: `GET /r/{code}` answered from memory, clicks logged in batches.

A small ASGI handler sits in front of FastAPI. It never touches the ORM: a `LinkMap` holds every link
in memory and follows the `link_changes` feed (so every worker process sees rotations, sign-offs and
retirements within a poll interval); a `ClickWriter` buffers clicks and inserts them in one statement
every ~50 ms, and flushes on graceful shutdown — at most one interval of clicks is at risk on a crash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from clearline.kit.signing import Signer, time_ordered_id
from clearline.link.utm import with_params
from clearline.models import Campaign, Click, Link, LinkChange

log = logging.getLogger("clearline.redirect")

BOT_AGENTS = re.compile(
    rb"bot|crawl|spider|slurp|facebookexternalhit|facebookcatalog|embedly|preview|headless|python-requests|"
    rb"curl/|wget|httpclient|okhttp|go-http-client|scrapy|lighthouse|pingdom|uptime",
    re.IGNORECASE,
)
COUNTRY_HEADERS = (b"cf-ipcountry", b"x-country-code", b"x-appengine-country", b"cloudfront-viewer-country")
REPEAT_WINDOW_S = 3600.0
CLICK_COLUMNS = (
    "click_id",
    "link_id",
    "at",
    "ip_hash",
    "user_agent",
    "referrer",
    "country",
    "is_bot",
    "is_repeat",
    "outcome",
)
_CLICK_KEYS = frozenset(CLICK_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO {Click.__tablename__} ({', '.join(CLICK_COLUMNS)}) "  # noqa: S608 - fixed names only
    f"VALUES ({', '.join('?' * len(CLICK_COLUMNS))})"
)
_PG_COPY = f"COPY {Click.__tablename__} ({', '.join(CLICK_COLUMNS)}) FROM STDIN"


@dataclass(slots=True)
class Entry:
    link_id: int
    status: str
    head: str  # destination with UTM parameters, ending in "clid=" ready for the signed click id
    tail: str  # the destination's fragment, if any
    fallback: str
    expires_at: float
    single_use: bool
    used: bool


def split_for_click_id(destination: str, utm: dict[str, str]) -> tuple[str, str]:
    """Precompute the Location around the click id: head + signed id + tail."""
    url = with_params(destination, {k: v for k, v in utm.items() if k != "clid"})
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    head = base + ("&" if parts.query else "?") + "clid="
    return head, ("#" + parts.fragment) if parts.fragment else ""


class LinkMap:
    """code -> Entry for every link, refreshed from the `link_changes` feed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries: dict[str, Entry] = {}
        self.cursor = 0
        self._lock = threading.Lock()

    def _query(self):  # type: ignore[no-untyped-def]
        return select(
            Link.id,
            Link.code,
            Link.status,
            Link.destination_url,
            Link.utm,
            Link.expires_at,
            Link.is_single_use,
            Link.used_at,
            Campaign.fallback_url,
        ).join(Campaign, Campaign.id == Link.campaign_id)

    def _store(self, rows: Any) -> None:
        for row in rows:
            head, tail = split_for_click_id(row.destination_url, row.utm or {})
            self.entries[row.code] = Entry(
                link_id=row.id,
                status=row.status,
                head=head,
                tail=tail,
                fallback=row.fallback_url,
                expires_at=row.expires_at.replace(tzinfo=dt.UTC).timestamp()
                if row.expires_at.tzinfo is None
                else row.expires_at.timestamp(),
                single_use=row.is_single_use,
                used=row.used_at is not None,
            )

    def load(self) -> None:
        with self._lock, self.engine.connect() as conn:
            cursor = conn.scalar(select(func.coalesce(func.max(LinkChange.id), 0))) or 0
            self._store(conn.execute(self._query()))
            self.cursor = cursor

    def refresh(self) -> int:
        """Reload the links changed since the last call; returns how many changed."""
        with self._lock, self.engine.connect() as conn:
            changes = conn.execute(
                select(LinkChange.id, LinkChange.link_id).where(LinkChange.id > self.cursor).order_by(LinkChange.id)
            ).all()
            if not changes:
                return 0
            ids = sorted({link_id for _, link_id in changes})
            self._store(conn.execute(self._query().where(Link.id.in_(ids))))
            self.cursor = changes[-1][0]
            return len(ids)


def _sqlite_at(at: dt.datetime) -> str:
    """What SQLAlchemy stores for a `UTCDateTime` on SQLite: naive UTC, always six fraction digits."""
    if at.utcoffset():
        at = at.astimezone(dt.UTC)
    date = f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
    return f"{date} {at.hour:02d}:{at.minute:02d}:{at.second:02d}.{at.microsecond:06d}"


def insert_clicks(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert one batch without SQLAlchemy's per-row parameter processing, which cost more than the insert:
    SQLite gets one executemany of plain tuples, PostgreSQL (psycopg) one COPY. Rows with other keys than
    CLICK_COLUMNS, and other drivers, take the Core insert."""
    if not all(row.keys() == _CLICK_KEYS for row in rows):
        conn.execute(insert(Click), rows)
    elif conn.dialect.name == "sqlite":
        values = [
            (r["click_id"], r["link_id"], _sqlite_at(r["at"]), r["ip_hash"], r["user_agent"], r["referrer"])
            + (r["country"], r["is_bot"], r["is_repeat"], r["outcome"])
            for r in rows
        ]
        conn.exec_driver_sql(_SQLITE_INSERT, values)
    elif conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        with (
            conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(_PG_COPY) as copy,
        ):
            for row in rows:
                copy.write_row([row[name] for name in CLICK_COLUMNS])
    else:
        conn.execute(insert(Click), rows)


class ClickWriter:
    """Buffers click rows and inserts them in batches from one background thread."""

    def __init__(self, engine: Engine, *, interval: float = 0.05, enabled: bool = True) -> None:
        self.engine = engine
        self.interval = interval
        self.enabled = enabled
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self._lock:
                self._buffer.append(row)

    def flush(self) -> int:
        with self._lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                insert_clicks(conn, rows)
        except Exception:
            # Never drop accepted clicks: put them back and retry on the next tick.
            log.exception("click flush failed; %d clicks kept for retry", len(rows))
            with self._lock:
                self._buffer[:0] = rows
            return 0
        self.written += len(rows)
        return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="click-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for _ in range(3):
            self.flush()
            if not self._buffer:
                break

    @property
    def pending(self) -> int:
        return len(self._buffer)


class Repeats:
    """The first click id a visitor got on a link within the last hour (per process)."""

    def __init__(self, window: float = REPEAT_WINDOW_S, max_entries: int = 2_000_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[int, bytes], tuple[str, float]] = OrderedDict()

    def get(self, key: tuple[int, bytes], now: float) -> str | None:
        found = self._seen.get(key)
        if found is None or now - found[1] > self.window:
            return None
        return found[0]

    def put(self, key: tuple[int, bytes], click_id: str, now: float) -> None:
        self._seen[key] = (click_id, now)
        while self._seen:
            oldest_key, (_, at) = next(iter(self._seen.items()))
            if now - at <= self.window and len(self._seen) <= self.max_entries:
                break
            self._seen.popitem(last=False)


class Redirector:
    """Answers `/r/{code}`; everything else goes to the wrapped application."""

    def __init__(self, engine: Engine, *, secret_key: str, log_clicks: bool = True, poll_interval: float = 0.5) -> None:
        self.engine = engine
        self.links = LinkMap(engine)
        self.writer = ClickWriter(engine, enabled=log_clicks)
        self.repeats = Repeats()
        self.click_ids = Signer(secret_key, "click-id")
        self._ip_key = hmac.new(secret_key.encode(), b"ip-hash", hashlib.sha256).digest()
        self.poll_interval = poll_interval
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self.started = False

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        self.links.load()
        self.writer.start()
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="link-map-poller", daemon=True)
        self._poller.start()
        self.started = True

    def stop(self) -> None:
        """Graceful shutdown: stop polling and flush every buffered click."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self.writer.stop()
        self.started = False

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.links.refresh()
            except Exception:
                log.exception("link map refresh failed")

    # --- the hot path -------------------------------------------------------------------------
    def _claim_single_use(self, entry: Entry, now: float) -> bool:
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(Link)
                .where(Link.id == entry.link_id, Link.used_at.is_(None))
                .values(used_at=dt.datetime.fromtimestamp(now, dt.UTC))
            ).rowcount
            if claimed:
                conn.execute(
                    insert(LinkChange).values(link_id=entry.link_id, at=dt.datetime.fromtimestamp(now, dt.UTC))
                )
        entry.used = True
        return bool(claimed)

    async def handle(self, scope: dict[str, Any], send: Any, code: str) -> None:
        entry = self.links.entries.get(code)
        if entry is None:
            await _respond(send, 404, None)
            return
        now = time.time()
        headers = dict(scope["headers"])
        outcome = "live"
        if entry.status != "live":
            outcome = entry.status if entry.status in ("expired", "retired") else "not_live"
        elif now >= entry.expires_at:
            outcome = "expired"
        elif entry.single_use:
            if entry.used:
                outcome = "used"
            else:
                import anyio

                claimed = await anyio.to_thread.run_sync(self._claim_single_use, entry, now)
                outcome = "live" if claimed else "used"
        agent = headers.get(b"user-agent", b"")
        ip = (scope.get("client") or ("", 0))[0] or ""
        ip_hash = hmac.digest(self._ip_key, ip.encode(), "sha256").hex()
        is_bot = scope["method"] == "HEAD" or bool(BOT_AGENTS.search(agent))
        repeat_key = (entry.link_id, hashlib.blake2b(ip_hash.encode() + agent, digest_size=12).digest())
        if outcome == "live":
            click_id = self.repeats.get(repeat_key, now)
            is_repeat = click_id is not None
            if click_id is None:
                click_id = time_ordered_id()
                self.repeats.put(repeat_key, click_id, now)
            location = entry.head + self.click_ids.sign(click_id) + entry.tail
        else:
            click_id, is_repeat, location = time_ordered_id(), False, entry.fallback
        country = b""
        for name in COUNTRY_HEADERS:
            if name in headers:
                country = headers[name][:2].upper()
                break
        self.writer.add(
            {
                "click_id": click_id,
                "link_id": entry.link_id,
                "at": dt.datetime.fromtimestamp(now, dt.UTC),
                "ip_hash": ip_hash,
                "user_agent": agent[:512].decode("latin-1"),
                "referrer": headers.get(b"referer", b"")[:1000].decode("latin-1"),
                "country": country.decode("latin-1"),
                "is_bot": is_bot,
                "is_repeat": is_repeat,
                "outcome": outcome,
            }
        )
        await _respond(send, 302, location)


async def _respond(send: Any, status: int, location: str | None) -> None:
    headers = [(b"cache-control", b"no-store"), (b"content-length", b"0")]
    if location is not None:
        headers.append((b"location", location.encode("latin-1", "ignore")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class RedirectMiddleware:
    """Pure ASGI, first in line: `/r/{code}` goes to the Redirector, everything else to FastAPI."""

    def __init__(self, app: Any, redirector: Redirector) -> None:
        self.app = app
        self.redirector = redirector

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/r/") and scope["method"] in ("GET", "HEAD"):
            code = scope["path"][3:]
            if code and "/" not in code:
                await self.redirector.handle(scope, send, code)
                return
        await self.app(scope, receive, send)
