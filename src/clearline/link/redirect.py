"""The redirect hot path: `GET /r/{code}` answered from memory, clicks logged in batches.

It never touches the ORM. A `LinkMap` holds every link in memory, with its response bytes built once, and
follows the `link_changes` feed (so every worker process sees rotations, sign-offs and retirements within a
poll interval); a `ClickWriter` buffers clicks and inserts them in one statement every ~20 ms, and flushes on
graceful shutdown — at most one interval of clicks is at risk on a crash.

Two front doors share `Redirector.click`: `RedirectMiddleware`, the outermost ASGI callable (any ASGI server,
the tests), and `clearline.link.protocol.RedirectProtocol`, which `clearline serve` runs inside uvicorn so a
redirect costs no ASGI round trip at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import sqlite3
import threading
import time
from base64 import b32encode
from binascii import b2a_base64
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from clearline.kit.signing import CROCKFORD, SIGNATURE_CHARS, Signer
from clearline.link.utm import with_params
from clearline.models import Campaign, Click, Link, LinkChange

log = logging.getLogger("clearline.redirect")

BOT_AGENTS = re.compile(
    rb"bot|crawl|spider|slurp|facebookexternalhit|facebookcatalog|embedly|preview|headless|python-requests|"
    rb"curl/|wget|httpclient|okhttp|go-http-client|scrapy|lighthouse|pingdom|uptime",
    re.IGNORECASE,
)
# Set by a CDN or load balancer in front; anyone can send them, so they count only from a trusted proxy (a peer
# in uvicorn's forwarded-allow-ips, as for X-Forwarded-For). `RedirectProtocol` knows its peer; the ASGI path
# only sees the client that uvicorn's ProxyHeadersMiddleware left in the scope (the forwarded one, when the peer
# was trusted), so it takes the protocol's word for it: `PEER_IS_PROXY` in the scope.
COUNTRY_HEADERS = (b"cf-ipcountry", b"x-country-code", b"x-appengine-country", b"cloudfront-viewer-country")
# The scope key `RedirectProtocol` sets on the requests of a connection from a trusted proxy that it hands to
# uvicorn. Without it (another server, a test client, a direct peer) the ASGI path stores no country.
PEER_IS_PROXY = "clearline.peer_is_proxy"
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
# A click as the hot path records it, in CLICK_COLUMNS order: `at` as epoch seconds, the client's address where
# its hash goes, the header values as raw bytes and whether it was a HEAD request where the bot flag goes.
# Turning them into column values is left to the writer thread, once per batch.
ClickRow = tuple[str, int, float, str, bytes, bytes, bytes, bool, bool, str]

_SQLITE_INSERT = f"INSERT INTO {Click.__tablename__} ({', '.join(CLICK_COLUMNS)}) VALUES "  # noqa: S608 - fixed names
_SQLITE_ROW = f"({', '.join('?' * len(CLICK_COLUMNS))})"
# Rows per chunk of a batch; within SQLite's bound-parameter limit (999 before 3.32, 32766 since).
_CHUNK = 256 if sqlite3.sqlite_version_info >= (3, 32) else 99
_PG_COPY = f"COPY {Click.__tablename__} ({', '.join(CLICK_COLUMNS)}) FROM STDIN"
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~"
_SIGNATURE_BYTES = SIGNATURE_CHARS * 3 // 4
_URL_SAFE_B64 = bytes.maketrans(b"+/", b"-_")

# What every redirect answer carries besides the Location; the fast protocol adds uvicorn's date/server lines.
STATUS_302 = b"HTTP/1.1 302 Found\r\n"
_FIXED_HEADERS = b"cache-control: no-store\r\ncontent-length: 0\r\nlocation: "
_CACHE_LIMIT = 65_536
# A change id the feed skipped is looked for again this long: the transaction that took it may commit after a
# later-numbered one the poller has already read (on SQLite, one writer at a time, ids commit in order).
GAP_WAIT_S = 300.0
_GAP_SPAN = 1_000  # at most this many ids below the newest one are looked for


@dataclass(slots=True)
class Entry:
    link_id: int
    status: str
    head: bytes  # Location up to the signed click id: destination, UTM parameters, "clid="
    tail: bytes  # the destination's fragment, if any
    fallback: bytes
    expires_at: float
    single_use: bool
    used: bool
    live_headers: bytes  # the header lines of a live answer up to the signed click id ...
    live_end: bytes  # ... and after it, through the blank line
    fallback_headers: bytes  # every header line of a fallback answer, through the blank line
    plain: bool  # live and reusable: "live" until expires_at, no database needed


def split_for_click_id(destination: str, utm: dict[str, str]) -> tuple[str, str]:
    """Precompute the Location around the click id: head + signed id + tail."""
    url = with_params(destination, {k: v for k, v in utm.items() if k != "clid"})
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    head = base + ("&" if parts.query else "?") + "clid="
    return head, ("#" + parts.fragment) if parts.fragment else ""


def _header_value(url: str) -> bytes:
    """A URL as a Location value: non-ASCII characters percent-encoded as UTF-8, existing escapes kept."""
    return quote(url, safe=_URL_SAFE).encode("ascii")


def make_entry(
    *,
    link_id: int,
    status: str,
    destination: str,
    utm: dict[str, str],
    fallback: str,
    expires_at: dt.datetime,
    single_use: bool,
    used: bool,
) -> Entry:
    head, tail = (_header_value(part) for part in split_for_click_id(destination, utm))
    fallback_value = _header_value(fallback)
    return Entry(
        link_id=link_id,
        status=status,
        head=head,
        tail=tail,
        fallback=fallback_value,
        expires_at=(expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)).timestamp(),
        single_use=single_use,
        used=used,
        live_headers=_FIXED_HEADERS + head,
        live_end=tail + b"\r\n\r\n",
        fallback_headers=_FIXED_HEADERS + fallback_value + b"\r\n\r\n",
        plain=status == "live" and not single_use,
    )


class LinkMap:
    """code -> Entry for every link, refreshed from the `link_changes` feed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries: dict[str, Entry] = {}
        self.by_raw_code: dict[bytes, Entry] = {}  # the same entries keyed as the code arrives on the wire
        self.cursor = 0
        self.gaps: dict[int, float] = {}  # change id not seen (yet) -> monotonic time it was first missed
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
            entry = self.entries[row.code] = make_entry(
                link_id=row.id,
                status=row.status,
                destination=row.destination_url,
                utm=row.utm or {},
                fallback=row.fallback_url,
                expires_at=row.expires_at,
                single_use=row.is_single_use,
                used=row.used_at is not None,
            )
            self.by_raw_code[row.code.encode("latin-1", "replace")] = entry

    def _note_gaps(self, after: int, seen: list[int], now: float) -> None:
        """Remember the ids between ``after`` and the newest of ``seen`` (ascending) that are not in it."""
        if not seen:
            return
        expected, present = max(after + 1, seen[-1] - _GAP_SPAN), set(seen)
        for missing in range(expected, seen[-1]):
            if missing not in present:
                self.gaps.setdefault(missing, now)

    def load(self) -> None:
        with self._lock, self.engine.connect() as conn:
            cursor = conn.scalar(select(func.coalesce(func.max(LinkChange.id), 0))) or 0
            recent = select(LinkChange.id).where(LinkChange.id > cursor - _GAP_SPAN, LinkChange.id <= cursor)
            self._note_gaps(cursor - _GAP_SPAN, list(conn.scalars(recent.order_by(LinkChange.id))), time.monotonic())
            self._store(conn.execute(self._query()))
            self.cursor = cursor

    def refresh(self) -> int:
        """Reload the links changed since the last call; returns how many changed."""
        with self._lock, self.engine.connect() as conn:
            now = time.monotonic()
            for stale in [change for change, since in self.gaps.items() if now - since > GAP_WAIT_S]:
                del self.gaps[stale]  # a rolled-back transaction's id, most likely: it never comes
            wanted = LinkChange.id > self.cursor
            if self.gaps:
                wanted = or_(wanted, LinkChange.id.in_(sorted(self.gaps)))
            changes = conn.execute(
                select(LinkChange.id, LinkChange.link_id).where(wanted).order_by(LinkChange.id)
            ).all()
            if not changes:
                return 0
            for change, _ in changes:
                self.gaps.pop(change, None)
            self._note_gaps(self.cursor, [change for change, _ in changes if change > self.cursor], now)
            ids = sorted({link_id for _, link_id in changes})
            self._store(conn.execute(self._query().where(Link.id.in_(ids))))
            self.cursor = max(self.cursor, changes[-1][0])
            return len(ids)


class _Mac:
    """HMAC-SHA256 (RFC 2104) under one key with its padded-key states hashed once: a message then costs two
    state copies (a one-shot `hmac.digest` sets up the key again, four to five times the work)."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_B32_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD.encode())


def click_id_now() -> str:
    """`time_ordered_id` as the hot path makes it: the same 13 Crockford characters (48 bits of milliseconds,
    17 random bits), the random bits taken from a pool read from os.urandom 4 KiB at a time and the digits
    written by base32 in C."""
    global _random_pool, _random_at
    if _random_at >= len(_random_pool):
        _random_pool, _random_at = os.urandom(3 * 1365), 0
    random = _random_pool[_random_at : _random_at + 3]
    _random_at += 3
    value = (int(time.time() * 1000) << 17) | int.from_bytes(random, "big") & 0x1FFFF
    # 10 bytes are 16 base32 digits; the last 13 are the low 65 bits, all the id has.
    return b32encode(value.to_bytes(10, "big"))[3:].translate(_B32_TO_CROCKFORD).decode()


_random_pool, _random_at = b"", 0


def _fresh_pool() -> None:
    global _random_pool, _random_at
    _random_pool, _random_at = b"", 0  # a forked worker must not deal out its parent's random bits again


os.register_at_fork(after_in_child=_fresh_pool)


class _Columns:
    """Click rows as column values, made by the writer thread. Everything a click needs but its answer does not
    is done here, in batches, rather than on the request path: the salted IP hash (an HMAC per distinct
    address), the bot flag (a regex per distinct user agent), decoding (and escaping for COPY) each distinct
    header value once, and formatting each second's timestamp prefix once."""

    def __init__(self, ip_key: bytes) -> None:
        self._ip_mac = _Mac(ip_key)
        self._ips: dict[str, str] = {}
        # value -> column text, one map per form (plain, escaped for COPY); an agent's maps to (text, is bot)
        self._agents: tuple[dict[bytes, tuple[str, bool]], dict[bytes, tuple[str, bool]]] = ({}, {})
        self._referrers: tuple[dict[bytes, str], dict[bytes, str]] = ({}, {})
        self._countries: tuple[dict[bytes, str], dict[bytes, str]] = ({}, {})

    @staticmethod
    def _text(value: bytes, limit: int, escape: bool) -> str:
        text = value[:limit].decode("latin-1")
        if escape and _COPY_SPECIAL.search(text):
            text = text.translate(_COPY_ESCAPES)
        return text

    def _ip_hash(self, ip: str) -> str:
        if len(self._ips) >= _CACHE_LIMIT:
            self._ips.clear()
        found = self._ips[ip] = self._ip_mac.digest(ip.encode()).hex()
        return found

    def _agent(self, agent: bytes, escape: bool) -> tuple[str, bool]:
        cache = self._agents[escape]
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        found = cache[agent] = (self._text(agent, 512, escape), BOT_AGENTS.search(agent) is not None)
        return found

    @staticmethod
    def _keep(cache: dict[bytes, str], value: bytes, text: str) -> str:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = text
        return text

    def _rows(self, rows: list[ClickRow], escape: bool, true: Any, false: Any) -> Iterator[tuple[Any, ...]]:
        """(click id, link id, timestamp text, ip hash, agent, referrer, country, bot, repeat, outcome) per row;
        the timestamp as SQLAlchemy stores a `UTCDateTime` on SQLite: naive UTC, six fraction digits."""
        ips, agents, referrers, countries = (
            self._ips,
            self._agents[escape],
            self._referrers[escape],
            self._countries[escape],
        )
        second, prefix = -1, ""
        for c, link, at, ip, agent, ref, country, head, repeat, outcome in rows:
            if int(at) != second:
                second = int(at)
                prefix = time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(second))
            ip_hash = ips.get(ip) or self._ip_hash(ip)
            agent_text, bot = agents.get(agent) or self._agent(agent, escape)
            ref_text = referrers.get(ref)
            if ref_text is None:
                ref_text = self._keep(referrers, ref, self._text(ref, 1000, escape))
            country_text = countries.get(country)
            if country_text is None:
                country_text = self._keep(countries, country, self._text(country.upper(), 2, escape))
            yield (
                c,
                link,
                f"{prefix}{int((at - second) * 1e6):06d}",
                ip_hash,
                agent_text,
                ref_text,
                country_text,
                true if bot or head else false,
                true if repeat else false,
                outcome,
            )

    def sqlite_values(self, rows: list[ClickRow]) -> list[Any]:
        """Every row's values in one flat list; the flags as 1 and 0, which sqlite3 binds as they are (a bool
        is not an exact int to it: it looks for an adapter, twice per row, at a cost larger than the bind)."""
        values: list[Any] = []
        extend = values.extend
        for row in self._rows(rows, False, 1, 0):
            extend(row)
        return values

    def copy_text(self, rows: list[ClickRow]) -> str:
        """The rows in COPY's text format."""
        return "".join(
            [
                f"{c}\t{link}\t{at}+00\t{ip}\t{agent}\t{ref}\t{country}\t{bot}\t{repeat}\t{outcome}\n"
                for c, link, at, ip, agent, ref, country, bot, repeat, outcome in self._rows(rows, True, "t", "f")
            ]
        )

    def values(self, rows: list[ClickRow]) -> list[dict[str, Any]]:
        """The rows as Core insert parameters (drivers other than sqlite3 and psycopg)."""
        return [
            {
                "click_id": c,
                "link_id": link,
                "at": dt.datetime.fromtimestamp(row[2], dt.UTC),
                "ip_hash": ip,
                "user_agent": agent,
                "referrer": ref,
                "country": country,
                "is_bot": bot,
                "is_repeat": repeat,
                "outcome": outcome,
            }
            for row, (c, link, _, ip, agent, ref, country, bot, repeat, outcome) in zip(
                rows, self._rows(rows, False, True, False), strict=True
            )
        ]


def insert_clicks(conn: Connection, rows: list[ClickRow], columns: _Columns) -> None:
    """Insert one batch without SQLAlchemy's per-row parameter processing, which costs more than the insert:
    SQLite gets multi-row INSERTs of plain values, PostgreSQL (psycopg) one COPY of text built here; other
    drivers take the Core insert."""
    # In chunks, each built and then handed to the database with the GIL released: the event loop's thread
    # waits for the GIL at most one chunk's Python work (under a long batch it waited up to the interpreter's
    # 5 ms switch interval, which showed in the redirect's p99).
    chunks = [rows[first : first + _CHUNK] for first in range(0, len(rows), _CHUNK)]
    if conn.dialect.name == "sqlite":
        # Not executemany: sqlite3 releases and retakes the GIL around every row's step, and under load each
        # retake waits for the event loop's thread; one multi-row statement takes it once per chunk.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for chunk in chunks:
            cursor.execute(_SQLITE_INSERT + ",".join([_SQLITE_ROW] * len(chunk)), columns.sqlite_values(chunk))
        cursor.close()
    elif conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        with (
            conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(_PG_COPY) as copy,
        ):
            for chunk in chunks:
                copy.write(columns.copy_text(chunk))
    else:
        conn.execute(insert(Click), columns.values(rows))


class ClickWriter:
    """Buffers click rows and inserts them in batches from one background thread."""

    # 20 ms: at most that much of the clicks is at risk on a crash, and each batch is small enough that the
    # database's work on it (PostgreSQL's backend shares the two CPUs with the server) does not show in the
    # redirect's p99: at 50 ms the p99 at 64 connections was 12.5 ms on PostgreSQL, at 20 ms 8 ms, same CPU.
    def __init__(self, engine: Engine, *, ip_key: bytes, interval: float = 0.02, enabled: bool = True) -> None:
        self.engine = engine
        self.interval = interval
        self.enabled = enabled
        # A deque: appending and taking from the left are atomic, so a click takes no lock (a list swapped
        # under a flush could lose an append that had already fetched the old list).
        self._buffer: deque[ClickRow] = deque()
        self._flushing = threading.Lock()  # one flush at a time, from taking the rows to putting back failures
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._columns = _Columns(ip_key)
        self.written = 0
        self._failure_logged = float("-inf")  # monotonic time the last failed flush was logged

    def add(self, row: ClickRow) -> None:
        if self.enabled:
            self._buffer.append(row)

    def flush(self) -> int:
        # Held for the whole flush: a second flush (shutdown's, while the thread's is still writing) must not
        # find the buffer empty and return while the first can still fail and put its rows back.
        with self._flushing:
            buffer = self._buffer
            rows = [buffer.popleft() for _ in range(len(buffer))]
            if not rows:
                return 0
            try:
                with self.engine.begin() as conn:
                    insert_clicks(conn, rows, self._columns)
            except Exception:
                # Never drop accepted clicks: put them back and retry on the next tick (logged at most once a
                # minute while it keeps failing: a tick is 20 ms).
                now = time.monotonic()
                if now - self._failure_logged >= 60.0:
                    self._failure_logged = now
                    log.exception("click flush failed; %d clicks kept for retry", len(rows))
                buffer.extendleft(reversed(rows))
                return 0
            self._failure_logged = float("-inf")
            self.written += len(rows)
            return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
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
        self._seen: OrderedDict[int, tuple[str, float]] = OrderedDict()

    def get(self, key: int, now: float) -> str | None:
        found = self._seen.get(key)
        if found is None or now - found[1] > self.window:
            return None
        return found[0]

    def put(self, key: int, click_id: str, now: float) -> None:
        self._seen.pop(key, None)  # a visitor back after the window goes to the end, in time order with the rest
        self._seen[key] = (click_id, now)
        while self._seen:
            oldest_key, (_, at) = next(iter(self._seen.items()))
            if now - at <= self.window and len(self._seen) <= self.max_entries:
                break
            self._seen.popitem(last=False)


class Redirector:
    """Decides every `/r/{code}` answer and logs its click; the front doors only parse and write."""

    def __init__(self, engine: Engine, *, secret_key: str, log_clicks: bool = True, poll_interval: float = 0.5) -> None:
        self.engine = engine
        self.links = LinkMap(engine)
        ip_key = hmac.new(secret_key.encode(), b"ip-hash", hashlib.sha256).digest()
        self.writer = ClickWriter(engine, ip_key=ip_key, enabled=log_clicks)
        self.repeats = Repeats()
        self.click_ids = Signer(secret_key, "click-id")
        mac = _Mac(hmac.new(secret_key.encode(), b"click-id", hashlib.sha256).digest())  # as `Signer` keys it
        self._inner, self._outer = mac.inner, mac.outer
        # Bound once: the hot path appends to the writer's buffer (nothing when logging is off) and reads the
        # repeats map without a method call each.
        self._add = self.writer.add if not log_clicks else self.writer._buffer.append
        self._seen = self.repeats._seen
        self._window = self.repeats.window
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
    @staticmethod
    def outcome(entry: Entry, now: float) -> str | None:
        """The click's outcome, or None for a single-use link not yet used (only the database can claim it)."""
        if entry.status != "live":
            return entry.status if entry.status in ("expired", "retired") else "not_live"
        if now >= entry.expires_at:
            return "expired"
        if entry.single_use:
            return "used" if entry.used else None
        return "live"

    def claim_single_use(self, entry: Entry, now: float) -> str:
        """Mark a single-use link used, once across every worker; "live" for the one request that did."""
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(Link).where(Link.id == entry.link_id, Link.used_at.is_(None)).values(used_at=at)
            ).rowcount
            if claimed:
                conn.execute(insert(LinkChange).values(link_id=entry.link_id, at=at))
        entry.used = True
        return "live" if claimed else "used"

    def click(
        self,
        entry: Entry,
        now: float,
        outcome: str,
        ip: str,
        agent: bytes,
        referrer: bytes,
        country: bytes,
        head: bool,
        /,
    ) -> bytes | None:
        """Log one click; returns the signed click id for a live link, None when the answer is the fallback.
        (Positional only: it runs once per redirect, and keyword arguments cost a measurable share of it.)
        The click's salted IP hash and bot flag are the writer's to compute, once per batch: nothing in the
        answer depends on them."""
        if outcome == "live":
            # One visitor is (link, address, user agent) -- the address the IP hash is made of, so the same
            # visitors as (link, IP hash, agent); a 64-bit hash keys it: a collision only merges two visitors'
            # repeat flags within the hour, in one process.
            key = hash((entry.link_id, ip, agent))
            seen = self._seen.get(key)
            if seen is not None and now - seen[1] <= self._window:
                click_id = seen[0]
                self._add((click_id, entry.link_id, now, ip, agent, referrer, country, head, True, outcome))
            else:
                click_id = click_id_now()
                self.repeats.put(key, click_id, now)
                self._add((click_id, entry.link_id, now, ip, agent, referrer, country, head, False, outcome))
            # HMAC-SHA256 under the click-id key (as `Signer`), from its padded-key states: two state copies.
            value = click_id.encode()
            inner = self._inner.copy()
            inner.update(value)
            outer = self._outer.copy()
            outer.update(inner.digest())
            return value + b"." + b2a_base64(outer.digest()[:_SIGNATURE_BYTES], newline=False).translate(_URL_SAFE_B64)
        self._add((click_id_now(), entry.link_id, now, ip, agent, referrer, country, head, False, outcome))
        return None

    async def handle(self, scope: dict[str, Any], send: Any, code: str) -> None:
        entry = self.links.entries.get(code)
        if entry is None:
            await _respond(send, 404, None)
            return
        now = time.time()
        outcome = self.outcome(entry, now)
        if outcome is None:
            import anyio

            outcome = await anyio.to_thread.run_sync(self.claim_single_use, entry, now)
        agent = referrer = country = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value
            elif name == b"referer":
                referrer = value
            elif not country and name in COUNTRY_HEADERS:
                country = value
        if country and not scope.get(PEER_IS_PROXY):  # (no cost to the common request, which has none)
            country = b""
        client = scope.get("client")  # already the forwarded client when the peer is a trusted proxy
        ip = client[0] if client else ""
        signed = self.click(entry, now, outcome, ip, agent, referrer, country, scope["method"] == "HEAD")
        await _respond(send, 302, entry.fallback if signed is None else entry.head + signed + entry.tail)


async def _respond(send: Any, status: int, location: bytes | None) -> None:
    headers = [(b"cache-control", b"no-store"), (b"content-length", b"0")]
    if location is not None:
        headers.append((b"location", location))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class RedirectMiddleware:
    """Pure ASGI and the outermost app: `/r/{code}` goes to the Redirector, everything else (lifespan
    included) to the wrapped application."""

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
