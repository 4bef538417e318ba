"""Set-based attribution for millions of orders at once (backfills, re-attribution reviews, analytics), in DuckDB.

The rules are those of `attribution.service`, written as joins instead of per-order lookups:
1. a creator's coupon: the first of the order's codes that is a creator code of the brand, inside its validity
   window and not already used up (a single-use code goes to the earliest order, by time then id, carrying it);
2. else a signed click id (the order's `click_id`, else the `clid` of its landing URL) whose HMAC verifies,
   matching the earliest human click on a live link of the same brand, no older than the attribution window
   of the creator's contract at order time (30 days without one) and not after the order;
3. else a UTM last touch: `utm_content` names a creator and `utm_campaign` a campaign of the brand, and the order
   falls between the campaign's start and its end plus the window.
The winner is the first rule that matched; `has_conflict` says another rule named a different creator.

Input tables (create them with `create_tables`, fill them with `load` or any bulk loader); timestamps are naive
UTC `TIMESTAMP`s:

    orders(id, brand_id, ordered_at, coupon_codes VARCHAR[], click_id, landing_url)
    clicks(click_id, link_id, clicked_at, outcome, is_bot)        links(id, brand_id, campaign_id, creator_id)
    coupons(brand_id, code, creator_id, campaign_id, valid_from, valid_until, is_single_use, used_at)
    contracts(id, brand_id, creator_id, agency_id, status, starts_at, ends_at, window_days)
    roster(creator_id, agency_id)    creators(id, handle)    campaigns(id, brand_id, slug, starts_at, ends_at)

`attribute` writes `batch_attributions(order_id, via, creator_id, campaign_id, link_id, contract_id, click_id,
coupon_code, has_conflict)`, one row per order. It reads, never writes, the application database: turning a
batch result into current attributions stays the audited re-attribution of `attribution.reattribution`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.attribution.service import DEFAULT_WINDOW_DAYS
from clearline.kit.signing import SIGNATURE_CHARS
from clearline.models import Campaign, Click, Contract, CouponCode, Creator, Link, Order
from clearline.models.creator import RosterEntry

DDL = """
CREATE OR REPLACE TABLE orders (id BIGINT, brand_id BIGINT, ordered_at TIMESTAMP, coupon_codes VARCHAR[],
    click_id VARCHAR, landing_url VARCHAR);
CREATE OR REPLACE TABLE clicks (click_id VARCHAR, link_id BIGINT, clicked_at TIMESTAMP, outcome VARCHAR,
    is_bot BOOLEAN);
CREATE OR REPLACE TABLE links (id BIGINT, brand_id BIGINT, campaign_id BIGINT, creator_id BIGINT);
CREATE OR REPLACE TABLE coupons (brand_id BIGINT, code VARCHAR, creator_id BIGINT, campaign_id BIGINT,
    valid_from TIMESTAMP, valid_until TIMESTAMP, is_single_use BOOLEAN, used_at TIMESTAMP);
CREATE OR REPLACE TABLE contracts (id BIGINT, brand_id BIGINT, creator_id BIGINT, agency_id BIGINT,
    status VARCHAR, starts_at TIMESTAMP, ends_at TIMESTAMP, window_days INTEGER);
CREATE OR REPLACE TABLE roster (creator_id BIGINT, agency_id BIGINT);
CREATE OR REPLACE TABLE creators (id BIGINT, handle VARCHAR);
CREATE OR REPLACE TABLE campaigns (id BIGINT, brand_id BIGINT, slug VARCHAR, starts_at TIMESTAMP,
    ends_at TIMESTAMP);
"""

# Contracts that can govern a creator: their own (preferred) and those of every agency that has them on its
# roster; among several, the newest wins (attribution.service via link.repository.accepted_contract_for).
_PAYEE_CONTRACTS = """
CREATE OR REPLACE TEMP TABLE _payee_contracts AS
SELECT c.creator_id AS for_creator, c.brand_id, c.id AS contract_id, 0 AS agency_rank, c.starts_at, c.ends_at,
       c.window_days
FROM contracts c WHERE c.status = 'accepted' AND c.creator_id IS NOT NULL
UNION ALL
SELECT r.creator_id, c.brand_id, c.id, 1, c.starts_at, c.ends_at, c.window_days
FROM contracts c JOIN roster r ON r.agency_id = c.agency_id
WHERE c.status = 'accepted' AND c.agency_id IS NOT NULL
"""


# The governing contract as a function of time, per (creator, brand): the span between two consecutive contract
# boundaries has one winner (every candidate is active over the whole span or not at all), so a touch finds its
# contract with one range join instead of ranking every candidate per order.
_CONTRACT_SPANS = """
CREATE OR REPLACE TEMP TABLE _contract_spans AS
WITH bounds AS (
    SELECT for_creator, brand_id, starts_at AS boundary FROM _payee_contracts
    UNION SELECT for_creator, brand_id, ends_at FROM _payee_contracts WHERE ends_at IS NOT NULL
), spans AS (
    SELECT for_creator, brand_id, boundary AS span_from,
           lead(boundary) OVER (PARTITION BY for_creator, brand_id ORDER BY boundary) AS span_to
    FROM bounds
)
SELECT s.for_creator, s.brand_id, s.span_from, s.span_to,
       arg_min(pc.contract_id, pc.agency_rank * 1000000000000 - pc.contract_id) AS contract_id,
       arg_min(pc.window_days, pc.agency_rank * 1000000000000 - pc.contract_id) AS window_days
FROM spans s JOIN _payee_contracts pc
  ON pc.for_creator = s.for_creator AND pc.brand_id = s.brand_id AND pc.starts_at <= s.span_from
 AND (pc.ends_at IS NULL OR (s.span_to IS NOT NULL AND pc.ends_at >= s.span_to))
GROUP BY ALL
"""


def _contract_at(touches: str) -> str:
    """SQL adding the governing contract and window to `touches(order_id, brand_id, creator_id, ordered_at, …)`."""
    return f"""
    SELECT t.*, cs.contract_id, coalesce(cs.window_days, {{default_window}}) AS window_days
    FROM {touches} t
    LEFT JOIN _contract_spans cs
      ON cs.for_creator = t.creator_id AND cs.brand_id = t.brand_id
     AND cs.span_from <= t.ordered_at AND (cs.span_to IS NULL OR t.ordered_at < cs.span_to)
    """  # noqa: S608 - `touches` is one of this module's own table names


def _steps(default_window: int) -> list[str]:
    contract_at = _contract_at  # the window lookup, shared by rules 2 and 3 and the winner's contract
    steps = [
        _PAYEE_CONTRACTS,
        _CONTRACT_SPANS,
        # Rule 1: every (order, position, code) candidate that is a valid creator code of the brand.
        """
        CREATE OR REPLACE TEMP TABLE _coupon_candidates AS
        WITH codes AS (
            SELECT id AS order_id, brand_id, ordered_at, upper(unnest(coupon_codes)) AS code,
                   generate_subscripts(coupon_codes, 1) AS position
            FROM orders WHERE len(coupon_codes) > 0
        )
        SELECT codes.*, cp.creator_id, cp.campaign_id, cp.is_single_use, cp.used_at
        FROM codes JOIN coupons cp ON cp.brand_id = codes.brand_id AND cp.code = codes.code
        WHERE cp.creator_id IS NOT NULL AND cp.valid_from <= codes.ordered_at
          AND (cp.valid_until IS NULL OR codes.ordered_at <= cp.valid_until)
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _coupon AS
        WITH first_use AS (
            SELECT * FROM _coupon_candidates WHERE is_single_use
            QUALIFY row_number() OVER (PARTITION BY brand_id, code ORDER BY ordered_at, order_id) = 1
                AND (used_at IS NULL OR used_at >= ordered_at)
        ), usable AS (
            SELECT * FROM _coupon_candidates WHERE NOT is_single_use
            UNION ALL SELECT * FROM first_use
        ), first_code AS (
            SELECT order_id, any_value(brand_id) AS brand_id, any_value(ordered_at) AS ordered_at,
                   arg_min(creator_id, position) AS creator_id, arg_min(campaign_id, position) AS campaign_id,
                   arg_min(code, position) AS coupon_code
            FROM usable GROUP BY order_id
        ), governed AS ({contract_at("first_code")})
        SELECT order_id, creator_id, campaign_id, coupon_code, contract_id FROM governed
        """,  # noqa: S608 - composed from constants, no input
        # Rule 2: the signed id (order click_id, else the landing URL's clid), verified with HMAC-SHA256 as
        # kit.signing.Signer does: base64url(HMAC(key, id)) cut to SIGNATURE_CHARS.
        f"""
        CREATE OR REPLACE TEMP TABLE _signed AS
        WITH ids AS (
            SELECT id AS order_id, brand_id, ordered_at,
                   CASE WHEN click_id <> '' THEN click_id
                        ELSE url_decode(regexp_extract(regexp_extract(landing_url, '\\?([^#]*)', 1),
                                                       '(?:^|&)clid=([^&]*)', 1)) END AS signed
            FROM orders WHERE click_id <> '' OR landing_url LIKE '%clid=%'
        ), parts AS (
            -- rpartition('.'): the id is everything before the last dot, the signature everything after it
            SELECT *, left(signed, length(signed) - {SIGNATURE_CHARS + 1}) AS raw, right(signed, {SIGNATURE_CHARS})
                      AS signature
            FROM ids
            WHERE length(signed) > {SIGNATURE_CHARS + 1} AND signed[-{SIGNATURE_CHARS + 1}] = '.'
              AND NOT contains(right(signed, {SIGNATURE_CHARS}), '.')
        )
        SELECT order_id, brand_id, ordered_at, raw FROM parts
        WHERE signature = replace(replace(left(to_base64(unhex(sha256(
                  $outer_pad || unhex(sha256($inner_pad || encode(raw)))))), {SIGNATURE_CHARS}), '+', '-'), '/', '_')
        """,  # noqa: S608 - composed from constants, no input
        """
        CREATE OR REPLACE TEMP TABLE _clicked AS
        SELECT s.order_id, any_value(s.brand_id) AS brand_id, any_value(s.ordered_at) AS ordered_at,
               any_value(s.raw) AS raw, arg_min(c.link_id, c.clicked_at) AS link_id, min(c.clicked_at) AS clicked_at
        FROM _signed s JOIN clicks c ON c.click_id = s.raw AND c.outcome = 'live' AND NOT c.is_bot
        GROUP BY s.order_id
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _click AS
        WITH touched AS (
            SELECT k.order_id, k.brand_id, k.ordered_at, k.raw, k.clicked_at, l.id AS link_id, l.creator_id,
                   l.campaign_id
            FROM _clicked k JOIN links l ON l.id = k.link_id AND l.brand_id = k.brand_id
        ), windowed AS ({contract_at("touched")})
        SELECT order_id, creator_id, campaign_id, link_id, raw AS click_id, contract_id FROM windowed
        WHERE epoch_us(ordered_at) - epoch_us(clicked_at) BETWEEN 0 AND window_days * 86400000000
        """,  # noqa: S608 - composed from constants, no input
        # Rule 3: utm_content names the creator, utm_campaign the brand's campaign (first value of each).
        """
        CREATE OR REPLACE TEMP TABLE _utm_named AS
        WITH q AS (
            SELECT id AS order_id, brand_id, ordered_at, '&' || regexp_extract(landing_url, '\\?([^#]*)', 1) AS query
            FROM orders WHERE contains(landing_url, 'utm_content=') AND contains(landing_url, 'utm_campaign=')
        )
        SELECT order_id, brand_id, ordered_at,
               lower(url_decode(regexp_extract(query, '&utm_content=([^&]*)', 1))) AS handle,
               lower(url_decode(regexp_extract(query, '&utm_campaign=([^&]*)', 1))) AS slug
        FROM q
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _utm AS
        WITH touched AS (
            SELECT u.order_id, u.brand_id, u.ordered_at, cr.id AS creator_id, ca.id AS campaign_id,
                   ca.starts_at, ca.ends_at
            FROM _utm_named u
            JOIN creators cr ON cr.handle = u.handle
            JOIN campaigns ca ON ca.brand_id = u.brand_id AND ca.slug = u.slug
            WHERE u.handle <> '' AND u.slug <> ''
        ), windowed AS ({contract_at("touched")}),
        first_links AS (SELECT campaign_id, creator_id, min(id) AS link_id FROM links GROUP BY ALL)
        SELECT w.order_id, w.creator_id, w.campaign_id, fl.link_id, w.contract_id FROM windowed w
        LEFT JOIN first_links fl ON fl.campaign_id = w.campaign_id AND fl.creator_id = w.creator_id
        WHERE w.starts_at <= w.ordered_at AND w.ordered_at <= w.ends_at + to_days(w.window_days)
        """,  # noqa: S608 - composed from constants, no input
        # The winner (its rule already found the governing contract), and whether another rule named someone else.
        """
        CREATE OR REPLACE TABLE batch_attributions AS
        SELECT o.id AS order_id,
               CASE WHEN cp.order_id IS NOT NULL THEN 'coupon' WHEN ck.order_id IS NOT NULL THEN 'click'
                    WHEN ut.order_id IS NOT NULL THEN 'utm' ELSE 'none' END AS via,
               coalesce(cp.creator_id, ck.creator_id, ut.creator_id) AS creator_id,
               coalesce(cp.campaign_id, ck.campaign_id, ut.campaign_id) AS campaign_id,
               CASE WHEN cp.order_id IS NULL THEN coalesce(ck.link_id, ut.link_id) END AS link_id,
               CASE WHEN cp.order_id IS NOT NULL THEN cp.contract_id WHEN ck.order_id IS NOT NULL THEN ck.contract_id
                    ELSE ut.contract_id END AS contract_id,
               CASE WHEN cp.order_id IS NULL AND ck.order_id IS NOT NULL THEN ck.click_id ELSE '' END AS click_id,
               coalesce(cp.coupon_code, '') AS coupon_code,
               coalesce(ck.creator_id <> coalesce(cp.creator_id, ck.creator_id), false)
                 OR coalesce(ut.creator_id <> coalesce(cp.creator_id, ck.creator_id, ut.creator_id), false)
                 AS has_conflict
        FROM orders o
        LEFT JOIN _coupon cp ON cp.order_id = o.id
        LEFT JOIN _click ck ON ck.order_id = o.id
        LEFT JOIN _utm ut ON ut.order_id = o.id
        """,
    ]
    return [step.replace("{default_window}", str(int(default_window))) for step in steps]


def _hmac_pads(secret_key: str) -> dict[str, bytes]:
    """The HMAC-SHA256 inner and outer key pads of the click-id signer (kit.signing.Signer, purpose click-id)."""
    key = hmac.new(secret_key.encode(), b"click-id", hashlib.sha256).digest().ljust(64, b"\0")
    return {"inner_pad": bytes(b ^ 0x36 for b in key), "outer_pad": bytes(b ^ 0x5C for b in key)}


def create_tables(con: Any) -> None:
    """Empty input tables in the DuckDB connection `con` (existing ones are replaced)."""
    con.execute(DDL)


def attribute(con: Any, *, secret_key: str, default_window_days: int = DEFAULT_WINDOW_DAYS) -> int:
    """Attribute every row of `orders` in `con`; writes `batch_attributions` and returns its row count."""
    pads = _hmac_pads(secret_key)
    for step in _steps(default_window_days):
        if "$inner_pad" in step:
            con.execute(step, pads)
        else:
            con.execute(step)
    return int(con.execute("SELECT count(*) FROM batch_attributions").fetchone()[0])


def _naive(at: dt.datetime | None) -> dt.datetime | None:
    return None if at is None else at.astimezone(dt.UTC).replace(tzinfo=None)


def load(con: Any, session: Session, *, brand_id: int | None = None) -> int:
    """Copy orders, clicks and the reference rows they need from the application database into `con`'s input
    tables (created afresh); returns the number of orders. Row by row: meant for reviews and samples; load
    millions with a bulk path (COPY to Parquet, DuckDB's postgres extension)."""
    create_tables(con)
    orders = select(Order.id, Order.brand_id, Order.ordered_at, Order.coupon_codes, Order.click_id, Order.landing_url)
    links = select(Link.id, Link.brand_id, Link.campaign_id, Link.creator_id)
    coupons = select(
        CouponCode.brand_id,
        CouponCode.code,
        CouponCode.creator_id,
        CouponCode.campaign_id,
        CouponCode.valid_from,
        CouponCode.valid_until,
        CouponCode.is_single_use,
        CouponCode.used_at,
    )
    contracts = select(Contract)
    campaigns = select(Campaign.id, Campaign.brand_id, Campaign.slug, Campaign.starts_at, Campaign.ends_at)
    if brand_id is not None:
        orders = orders.where(Order.brand_id == brand_id)
        links = links.where(Link.brand_id == brand_id)
        coupons = coupons.where(CouponCode.brand_id == brand_id)
        contracts = contracts.where(Contract.brand_id == brand_id)
        campaigns = campaigns.where(Campaign.brand_id == brand_id)
    order_rows = [
        (r.id, r.brand_id, _naive(r.ordered_at), list(r.coupon_codes or []), r.click_id or "", r.landing_url or "")
        for r in session.execute(orders)
    ]
    link_rows = [tuple(r) for r in session.execute(links)]
    link_ids = {r[0] for r in link_rows}
    click_rows = [
        (r.click_id, r.link_id, _naive(r.at), r.outcome, r.is_bot)
        for r in session.execute(select(Click.click_id, Click.link_id, Click.at, Click.outcome, Click.is_bot))
        if r.link_id in link_ids or brand_id is None
    ]
    coupon_rows = [
        (
            r.brand_id,
            r.code,
            r.creator_id,
            r.campaign_id,
            _naive(r.valid_from),
            _naive(r.valid_until),
            r.is_single_use,
            _naive(r.used_at),
        )
        for r in session.execute(coupons)
    ]
    contract_rows = [
        (
            c.id,
            c.brand_id,
            c.creator_id,
            c.agency_id,
            c.status,
            _naive(c.starts_at),
            _naive(c.ends_at),
            int((c.terms or {}).get("attribution_window_days", DEFAULT_WINDOW_DAYS)),
        )
        for c in session.scalars(contracts)
    ]
    tables: dict[str, list[tuple[Any, ...]]] = {
        "orders": order_rows,
        "clicks": click_rows,
        "links": link_rows,
        "coupons": coupon_rows,
        "contracts": contract_rows,
        "roster": [tuple(r) for r in session.execute(select(RosterEntry.creator_id, RosterEntry.agency_id))],
        "creators": [tuple(r) for r in session.execute(select(Creator.id, Creator.handle))],
        "campaigns": [
            (r.id, r.brand_id, r.slug, _naive(r.starts_at), _naive(r.ends_at)) for r in session.execute(campaigns)
        ],
    }
    for table, rows in tables.items():
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - fixed table names
    return len(order_rows)
