"""Set-based attribution for millions of orders at once (backfills, re-attribution reviews, analytics), in DuckDB.

The rules are those of `attribution.service`, written as joins instead of per-order lookups:
1. a creator's coupon: the first of the order's codes that is a creator code of the brand, inside its validity
   window and not already used up (a single-use code goes to the earliest order, by time then id, carrying it);
   a later code of another creator is a conflict;
2. else a signed click id (the order's `click_id`, else the `clid` of its landing URL) that is exactly the id and
   signature the redirect issued, matching the earliest human click on a live link of the same brand, no older
   than the attribution window of the creator's contract at order time (30 days without one) and not after the
   order;
3. else a UTM last touch: `utm_content` names a creator and `utm_campaign` a campaign of the brand, and the order
   falls between the campaign's start and its end plus the window.
The winner is the first rule that matched; `has_conflict` says another rule named a different creator.

How it stays fast: the clicks carry the signature the redirect computed when it issued the id
(`clicks.signature`), so a signed id verifies by equality with what the server issued — no HMAC is recomputed per
order, and a forged or altered id (a wrong signature, or a real one under another id) verifies against no click.
What an order carries decides which joins it takes: orders with nothing are 'none' without a lookup; orders with
a code or a UTM touch take one streaming pass whose joins all have small build sides (coupons, creators,
campaigns, links, contract spans); orders with a signed id take one pass of the clicks against a hash table of
those orders. No join is keyed by order id over the whole order set, and no Python runs per row.

Input tables (create them with `create_tables`, fill them with `load` or any bulk loader); timestamps are naive
UTC `TIMESTAMP`s:

    orders(id, brand_id, ordered_at, coupon_codes VARCHAR[], click_id, landing_url)
    clicks(click_id, signature, link_id, clicked_at, outcome, is_bot)
    links(id, brand_id, campaign_id, creator_id)
    coupons(brand_id, code, creator_id, campaign_id, valid_from, valid_until, is_single_use, used_at)
    contracts(id, brand_id, creator_id, agency_id, status, starts_at, ends_at, window_days)
    roster(creator_id, agency_id)    creators(id, handle)    campaigns(id, brand_id, slug, starts_at, ends_at)

`clicks.signature` is the 16-character signature of `click_id` under the click-id key (`kit.signing.Signer`,
purpose click-id) — the part after the last dot of the signed id the redirect handed out — on every live click;
`load` computes it. A coupon is one row per (brand_id, code), a creator one per handle and a campaign one per
(brand_id, slug), as the application's unique constraints keep them.

`attribute` writes `batch_attributions(order_id, via, creator_id, campaign_id, link_id, contract_id, click_id,
coupon_code, has_conflict)`, one row per order (the reason in words stays the per-order service's). It reads,
never writes, the application database: turning a batch result into current attributions stays the audited
re-attribution of `attribution.reattribution`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.attribution.service import DEFAULT_WINDOW_DAYS
from clearline.kit.signing import SIGNATURE_CHARS, Signer
from clearline.models import Campaign, Click, Contract, CouponCode, Creator, Link, Order
from clearline.models.creator import RosterEntry

DDL = """
CREATE OR REPLACE TABLE orders (id BIGINT, brand_id BIGINT, ordered_at TIMESTAMP, coupon_codes VARCHAR[],
    click_id VARCHAR, landing_url VARCHAR);
CREATE OR REPLACE TABLE clicks (click_id VARCHAR, signature VARCHAR, link_id BIGINT, clicked_at TIMESTAMP,
    outcome VARCHAR, is_bot BOOLEAN);
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

# How many stored click signatures `attribute` checks against the key before trusting the column.
SIGNATURE_SAMPLE = 256

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
# contract with one small join (creator, brand) and a range check, instead of ranking every candidate per order.
# An open end is 'infinity', so the range check is two plain comparisons.
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
SELECT s.for_creator, s.brand_id, s.span_from, coalesce(s.span_to, 'infinity'::TIMESTAMP) AS span_to,
       arg_min(pc.contract_id, pc.agency_rank * 1000000000000 - pc.contract_id) AS contract_id,
       arg_min(pc.window_days, pc.agency_rank * 1000000000000 - pc.contract_id) AS window_days
FROM spans s JOIN _payee_contracts pc
  ON pc.for_creator = s.for_creator AND pc.brand_id = s.brand_id AND pc.starts_at <= s.span_from
 AND (pc.ends_at IS NULL OR (s.span_to IS NOT NULL AND pc.ends_at >= s.span_to))
GROUP BY ALL
"""

_FIRST_LINKS = """
CREATE OR REPLACE TEMP TABLE _first_links AS SELECT campaign_id, creator_id, min(id) AS link_id FROM links GROUP BY ALL
"""

# Rule 1, the part that needs every order: a single-use code is usable by one order only, the earliest (by time,
# then id) that carries it inside its validity window.
_FIRST_USE = """
CREATE OR REPLACE TEMP TABLE _first_use AS
WITH single_use AS (
    SELECT brand_id, code, valid_from, valid_until FROM coupons WHERE is_single_use AND creator_id IS NOT NULL
), carried AS (
    SELECT id AS order_id, brand_id, ordered_at, upper(coupon_codes[1]) AS code FROM orders
    WHERE len(coupon_codes) = 1
    UNION ALL
    SELECT id, brand_id, ordered_at, upper(unnest(coupon_codes)) FROM orders WHERE len(coupon_codes) > 1
)
SELECT su.brand_id, su.code, ca.order_id FROM carried ca JOIN single_use su ON su.brand_id = ca.brand_id
   AND su.code = ca.code
WHERE su.valid_from <= ca.ordered_at AND (su.valid_until IS NULL OR ca.ordered_at <= su.valid_until)
QUALIFY row_number() OVER (PARTITION BY su.brand_id, su.code ORDER BY ca.ordered_at, ca.order_id) = 1
"""

# The creator codes, each with the one order that may use it when it is single-use.
_COUPONS = """
CREATE OR REPLACE TEMP TABLE _coupons AS
SELECT cp.brand_id, cp.code, cp.creator_id, cp.campaign_id, cp.valid_from,
       coalesce(cp.valid_until, 'infinity'::TIMESTAMP) AS valid_until, cp.is_single_use, cp.used_at,
       fu.order_id AS first_order_id
FROM coupons cp LEFT JOIN _first_use fu ON fu.brand_id = cp.brand_id AND fu.code = cp.code
WHERE cp.creator_id IS NOT NULL
"""


def _usable(code: str, order: str) -> str:
    """SQL: the coupon row `code` (of `_coupons`) is usable on the order `order` (id, ordered_at)."""
    return (
        f"({code}.valid_from <= {order}.ordered_at AND {order}.ordered_at <= {code}.valid_until"
        f" AND (NOT {code}.is_single_use OR ({code}.first_order_id = {order}.order_id"
        f" AND ({code}.used_at IS NULL OR {code}.used_at >= {order}.ordered_at))))"
    )


# Orders with several codes (rare): the first usable one by position, and whether another names someone else.
_COUPON_MULTI = f"""
CREATE OR REPLACE TEMP TABLE _coupon_multi AS
WITH codes AS (
    SELECT id AS order_id, brand_id, ordered_at, upper(unnest(coupon_codes)) AS code,
           generate_subscripts(coupon_codes, 1) AS position
    FROM orders WHERE len(coupon_codes) > 1
)
SELECT codes.order_id, arg_min(cp.creator_id, codes.position) AS creator_id,
       arg_min(cp.campaign_id, codes.position) AS campaign_id, arg_min(cp.code, codes.position) AS code,
       count(DISTINCT cp.creator_id) > 1 AS conflict
FROM codes JOIN _coupons cp ON cp.brand_id = codes.brand_id AND cp.code = codes.code
WHERE {_usable("cp", "codes")}
GROUP BY codes.order_id
"""  # noqa: S608 - composed from constants, no input


def _param(query: str, name: str) -> str:
    """SQL: the first value of `name` in `query` ('&' + the URL's query), '' when absent; the raw, still encoded
    text, as the per-order rule's parse_qs reads the first occurrence."""
    key = f"&{name}="
    return (
        f"CASE WHEN strpos({query}, '{key}') > 0 THEN split_part(substr({query}, strpos({query}, '{key}') + "
        f"{len(key)}), '&', 1) ELSE '' END"
    )


def _decoded(value: str) -> str:
    """SQL: a query value decoded as urllib's unquote_plus does ('+' is a space)."""
    return f"url_decode(replace({value}, '+', ' '))"


# The query of a landing URL as urlsplit reads it (after the first '?' before any '#'), behind an '&'.
_QUERY = (
    "'&' || CASE WHEN strpos(split_part(landing_url, '#', 1), '?') > 0 "
    "THEN substr(split_part(landing_url, '#', 1), strpos(split_part(landing_url, '#', 1), '?') + 1) ELSE '' END"
)


def _contract(alias: str, creator: str, at: str, brand: str) -> str:
    """SQL: LEFT JOIN of the contract span governing `creator` with the brand `brand` at `at`."""
    return (
        f"LEFT JOIN _contract_spans {alias} ON {alias}.for_creator = {creator} AND {alias}.brand_id = {brand}"
        f" AND {alias}.span_from <= {at} AND {at} < {alias}.span_to"
    )


def _rules_1_and_3(where: str, *, signed: bool) -> str:
    """SQL: the orders matching `where`, each with its coupon touch (c_*) and its UTM touch (u_*), both with the
    governing contract; with `signed`, also the signed id split into raw id and signature (raw NULL when the id
    is malformed). Every join has a small build side; a join key is NULL where the rule does not apply."""
    cut = SIGNATURE_CHARS + 1
    needs_query = "contains(landing_url, 'utm_content=') AND contains(landing_url, 'utm_campaign=')"
    signed_parsed = signed_named = signed_out = ""
    if signed:
        needs_query = f"({needs_query}) OR coalesce(click_id, '') = ''"
        signed_parsed = ", click_id"
        signed_named = f""",
               CASE WHEN coalesce(click_id, '') <> '' THEN click_id
                    ELSE {_decoded(_param("query", "clid"))} END AS signed"""
        signed_out = f""",
               CASE WHEN length(signed) > {cut} AND signed[-{cut}] = '.'
                         AND NOT contains(right(signed, {SIGNATURE_CHARS}), '.')
                    THEN left(signed, length(signed) - {cut}) END AS raw,
               right(signed, {SIGNATURE_CHARS}) AS sig"""
    return f"""
    WITH parsed AS (
        SELECT id AS order_id, brand_id, ordered_at{signed_parsed},
               CASE WHEN len(coupon_codes) = 1 THEN upper(coupon_codes[1]) END AS code1,
               CASE WHEN len(coupon_codes) > 1 THEN id END AS several_codes,
               CASE WHEN {needs_query} THEN {_QUERY} END AS query
        FROM orders WHERE {where}
    ), named AS (
        SELECT order_id, brand_id, ordered_at, code1, several_codes{signed_named},
               CASE WHEN query IS NOT NULL THEN lower({_decoded(_param("query", "utm_content"))}) END AS handle,
               CASE WHEN query IS NOT NULL THEN lower({_decoded(_param("query", "utm_campaign"))}) END AS slug
        FROM parsed
    ), split AS (
        SELECT * EXCLUDE ({"signed, " if signed else ""}handle),
               CASE WHEN handle <> '' AND slug <> '' THEN handle END AS handle{signed_out}
        FROM named
    ), touched AS (
        SELECT o.order_id, o.brand_id, o.ordered_at{", o.raw, o.sig" if signed else ""},
               CASE WHEN o.several_codes IS NOT NULL THEN m.order_id IS NOT NULL
                    ELSE cp.creator_id IS NOT NULL AND {_usable("cp", "o")} END AS c_hit,
               coalesce(m.creator_id, cp.creator_id) AS c_creator,
               coalesce(m.campaign_id, cp.campaign_id) AS c_campaign,
               coalesce(m.code, cp.code) AS c_code,
               coalesce(m.conflict, false) AS c_conflict,
               ca.id AS u_campaign, CASE WHEN ca.id IS NOT NULL THEN cr.id END AS u_creator, fl.link_id AS u_link,
               ca.starts_at AS u_starts, ca.ends_at AS u_ends
        FROM split o
        LEFT JOIN _coupons cp ON cp.brand_id = o.brand_id AND cp.code = o.code1
        LEFT JOIN _coupon_multi m ON m.order_id = o.several_codes
        LEFT JOIN creators cr ON cr.handle = o.handle
        LEFT JOIN campaigns ca ON ca.brand_id = o.brand_id AND ca.slug = CASE WHEN cr.id IS NOT NULL THEN o.slug END
        LEFT JOIN _first_links fl ON fl.campaign_id = ca.id AND fl.creator_id = cr.id
    )
    SELECT t.order_id, t.brand_id, t.ordered_at{", t.raw, t.sig" if signed else ""},
           coalesce(t.c_hit, false) AS c_hit, t.c_creator, t.c_campaign, t.c_code, t.c_conflict,
           cc.contract_id AS c_contract,
           coalesce(t.u_creator IS NOT NULL AND t.u_starts <= t.ordered_at
               AND t.ordered_at <= t.u_ends + to_days(coalesce(uc.window_days, {{default_window}})), false) AS u_hit,
           t.u_creator, t.u_campaign, t.u_link, uc.contract_id AS u_contract
    FROM touched t
    {_contract("cc", "CASE WHEN t.c_hit THEN t.c_creator END", "t.ordered_at", "t.brand_id")}
    {_contract("uc", "t.u_creator", "t.ordered_at", "t.brand_id")}
    """  # noqa: S608 - composed from constants, no input


# The winner (its rule already found the governing contract), and whether another touch named someone else.
_WINNER = """
SELECT order_id,
       CASE WHEN c_hit THEN 'coupon' WHEN k_hit THEN 'click' WHEN u_hit THEN 'utm' ELSE 'none' END AS via,
       CASE WHEN c_hit THEN c_creator WHEN k_hit THEN k_creator WHEN u_hit THEN u_creator END AS creator_id,
       CASE WHEN c_hit THEN c_campaign WHEN k_hit THEN k_campaign WHEN u_hit THEN u_campaign END AS campaign_id,
       CASE WHEN c_hit THEN NULL WHEN k_hit THEN k_link WHEN u_hit THEN u_link END AS link_id,
       CASE WHEN c_hit THEN c_contract WHEN k_hit THEN k_contract WHEN u_hit THEN u_contract END AS contract_id,
       CASE WHEN NOT c_hit AND k_hit THEN raw ELSE '' END AS click_id,
       CASE WHEN c_hit THEN c_code ELSE '' END AS coupon_code,
       coalesce((c_hit AND c_conflict)
                OR (c_hit AND k_hit AND k_creator <> c_creator)
                OR (u_hit AND CASE WHEN c_hit THEN u_creator <> c_creator WHEN k_hit THEN u_creator <> k_creator END),
                false) AS has_conflict
FROM decided
"""

_RESULT = """
CREATE OR REPLACE TABLE batch_attributions (order_id BIGINT, via VARCHAR, creator_id BIGINT, campaign_id BIGINT,
    link_id BIGINT, contract_id BIGINT, click_id VARCHAR, coupon_code VARCHAR, has_conflict BOOLEAN)
"""


# What an order carries decides which rules can apply, so each kind of order takes only the joins it needs.
_HAS_SIGNED = "(coalesce(click_id, '') <> '' OR contains(coalesce(landing_url, ''), 'clid='))"
_HAS_CODE_OR_UTM = (
    "(coalesce(len(coupon_codes), 0) > 0 OR (contains(coalesce(landing_url, ''), 'utm_content=')"
    " AND contains(coalesce(landing_url, ''), 'utm_campaign=')))"
)
_NO_CODE_OR_UTM = """false AS c_hit, NULL::BIGINT AS c_creator, NULL::BIGINT AS c_campaign, NULL::VARCHAR AS c_code,
    false AS c_conflict, NULL::BIGINT AS c_contract, false AS u_hit, NULL::BIGINT AS u_creator,
    NULL::BIGINT AS u_campaign, NULL::BIGINT AS u_link, NULL::BIGINT AS u_contract"""
_NO_CLICK = """false AS k_hit, NULL::BIGINT AS k_creator, NULL::BIGINT AS k_campaign, NULL::BIGINT AS k_link,
    NULL::BIGINT AS k_contract, NULL::VARCHAR AS raw"""


def _bare_orders() -> str:
    """Orders with no code, no UTM touch and no signed id: nothing to look up."""
    return f"""
    INSERT INTO batch_attributions
    SELECT id, 'none', NULL, NULL, NULL, NULL, '', '', false FROM orders
    WHERE NOT {_HAS_SIGNED} AND NOT {_HAS_CODE_OR_UTM}
    """  # noqa: S608 - composed from constants, no input


def _unsigned_orders() -> str:
    """Orders with a code or a UTM touch but no signed id: rules 1 and 3 only, in one streaming pass."""
    return f"""
    INSERT INTO batch_attributions
    WITH decided AS (
        SELECT *, {_NO_CLICK}
        FROM ({_rules_1_and_3(f"NOT {_HAS_SIGNED} AND {_HAS_CODE_OR_UTM}", signed=False)})
    )
    {_WINNER}
    """  # noqa: S608 - composed from constants, no input


def _signed_only() -> str:
    """SQL: orders with a signed id and nothing else (the common case), as `_rules_1_and_3` gives them."""
    cut = SIGNATURE_CHARS + 1
    return f"""
    WITH parsed AS (
        SELECT id AS order_id, brand_id, ordered_at, click_id,
               CASE WHEN coalesce(click_id, '') = '' THEN {_QUERY} END AS query
        FROM orders WHERE {_HAS_SIGNED} AND NOT {_HAS_CODE_OR_UTM}
    ), carried AS (
        SELECT order_id, brand_id, ordered_at,
               CASE WHEN query IS NULL THEN click_id ELSE {_decoded(_param("query", "clid"))} END AS signed
        FROM parsed
    )
    SELECT order_id, brand_id, ordered_at,
           CASE WHEN length(signed) > {cut} AND signed[-{cut}] = '.'
                     AND NOT contains(right(signed, {SIGNATURE_CHARS}), '.')
                THEN left(signed, length(signed) - {cut}) END AS raw,
           right(signed, {SIGNATURE_CHARS}) AS sig
    FROM carried
    """  # noqa: S608 - composed from constants, no input


def _signed_orders(*, with_code_or_utm: bool) -> str:
    """Orders with a signed click id: rules 1 and 3 where the order has a code or a UTM touch, then one pass of the
    clicks against a hash table of these orders for rule 2. The id verifies when a live human click under it carries
    exactly the order's signature (the pair was issued); the touch is the earliest such click under the id, as the
    per-order rule takes it once the HMAC verified."""
    if with_code_or_utm:
        evaluated = _rules_1_and_3(f"{_HAS_SIGNED} AND {_HAS_CODE_OR_UTM}", signed=True)
        others = ""
    else:
        evaluated = _signed_only()
        others = ", " + _NO_CODE_OR_UTM
    return f"""
    INSERT INTO batch_attributions
    WITH evaluated AS ({evaluated}),
    clicked AS (
        SELECT e.* EXCLUDE (sig), arg_min(c.link_id, c.clicked_at) AS first_link, min(c.clicked_at) AS clicked_at,
               coalesce(bool_or(c.signature = e.sig), false) AS issued
        FROM clicks c
        RIGHT JOIN evaluated e ON c.click_id = e.raw AND c.outcome = 'live' AND NOT c.is_bot
        GROUP BY ALL
    ), decided AS (
        SELECT k.*, l.creator_id AS k_creator, l.campaign_id AS k_campaign, l.id AS k_link,
               kc.contract_id AS k_contract,
               coalesce(k.issued AND l.id IS NOT NULL AND epoch_us(k.ordered_at) - epoch_us(k.clicked_at)
                   BETWEEN 0 AND coalesce(kc.window_days, {{default_window}}) * 86400000000, false) AS k_hit
               {others}
        FROM clicked k
        LEFT JOIN links l ON l.id = k.first_link AND l.brand_id = k.brand_id
        {_contract("kc", "l.creator_id", "k.ordered_at", "k.brand_id")}
    )
    {_WINNER}
    """  # noqa: S608 - composed from constants, no input


def _steps(default_window: int) -> list[str]:
    steps = [
        _PAYEE_CONTRACTS,
        _CONTRACT_SPANS,
        _FIRST_LINKS,
        _FIRST_USE,
        _COUPONS,
        _COUPON_MULTI,
        _RESULT,
        _bare_orders(),
        _unsigned_orders(),
        _signed_orders(with_code_or_utm=False),
        _signed_orders(with_code_or_utm=True),
    ]
    return [step.replace("{default_window}", str(int(default_window))) for step in steps]


def _hmac_pads(secret_key: str) -> dict[str, bytes]:
    """The HMAC-SHA256 inner and outer key pads of the click-id signer (kit.signing.Signer, purpose click-id)."""
    key = hmac.new(secret_key.encode(), b"click-id", hashlib.sha256).digest().ljust(64, b"\0")
    return {"inner_pad": bytes(b ^ 0x36 for b in key), "outer_pad": bytes(b ^ 0x5C for b in key)}


# kit.signing.Signer's signature of `click_id` in SQL: base64url(HMAC-SHA256(key, id)) cut to SIGNATURE_CHARS.
SIGNATURE_SQL = f"""replace(replace(left(to_base64(unhex(sha256(
    $outer_pad || unhex(sha256($inner_pad || encode(click_id)))))), {SIGNATURE_CHARS}), '+', '-'), '/', '_')"""


def check_signatures(con: Any, *, secret_key: str, sample: int = SIGNATURE_SAMPLE) -> None:
    """Raise ValueError when the first `sample` stored signatures of live clicks are not those of `secret_key`
    (a wrong export, or clicks signed under a key since rotated, which the per-order rule would reject)."""
    wrong = con.execute(
        f"""SELECT count(*) FROM (SELECT click_id, signature FROM clicks WHERE outcome = 'live' LIMIT {int(sample)})
        WHERE signature IS DISTINCT FROM {SIGNATURE_SQL}""",  # noqa: S608 - constants and an int
        _hmac_pads(secret_key),
    ).fetchone()[0]
    if wrong:
        raise ValueError(
            f"clicks.signature: {wrong} of the first {sample} live clicks are not signed with the click-id key"
        )


def create_tables(con: Any) -> None:
    """Empty input tables in the DuckDB connection `con` (existing ones are replaced)."""
    con.execute(DDL)


def attribute(con: Any, *, secret_key: str, default_window_days: int = DEFAULT_WINDOW_DAYS) -> int:
    """Attribute every row of `orders` in `con`; writes `batch_attributions` and returns its row count. The stored
    click signatures are checked against `secret_key` on a sample first (`check_signatures`)."""
    check_signatures(con, secret_key=secret_key)
    # Every join here is written with its build side on the right: the small reference tables, and for the clicks
    # the orders that carry a signed id. DuckDB's estimate of a stream of parsed orders is poor enough that it
    # would otherwise build hash tables of millions of orders to probe a few thousand coupons with.
    disabled = con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0]
    con.execute("SET disabled_optimizers = " + _quoted(",".join(filter(None, [disabled, "build_side_probe_side"]))))
    try:
        for step in _steps(default_window_days):
            con.execute(step)
    finally:
        con.execute("SET disabled_optimizers = " + _quoted(disabled))
    return int(con.execute("SELECT count(*) FROM batch_attributions").fetchone()[0])


def _quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _naive(at: dt.datetime | None) -> dt.datetime | None:
    return None if at is None else at.astimezone(dt.UTC).replace(tzinfo=None)


def load(con: Any, session: Session, *, secret_key: str, brand_id: int | None = None) -> int:
    """Copy orders, clicks and the reference rows they need from the application database into `con`'s input
    tables (created afresh); returns the number of orders. Row by row: meant for reviews and samples; load
    millions with a bulk path (COPY to Parquet, DuckDB's postgres extension). The click signature is computed
    here with `secret_key` (the clicks table keeps only the unsigned id)."""
    create_tables(con)
    signer = Signer(secret_key, "click-id")
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
        (
            r.click_id,
            signer.signature(r.click_id) if r.outcome == "live" else "",
            r.link_id,
            _naive(r.at),
            r.outcome,
            r.is_bot,
        )
        for r in session.execute(
            select(Click.click_id, Click.link_id, Click.at, Click.outcome, Click.is_bot).order_by(Click.id)
        )
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
