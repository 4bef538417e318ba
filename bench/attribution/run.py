"""Batch attribution benchmark: `clearline.attribution.batch` on 10 million orders against 20 million clicks,
against a plain 10-million-row GROUP BY in the same engine (DuckDB) and run.

    uv run python bench/attribution/run.py [--orders 10000000] [--clicks 20000000] [--repeat 3]

A synthetic program is generated inside DuckDB (nothing touches the application database): 20 brands with two
campaigns each, 5,000 creators, 20,000 links, a creator code per (creator, campaign) plus single-use codes,
a contract per (creator, brand) with a 7, 14 or 30-day window (every 50th creator through an agency instead),
`--clicks` clicks (3 % not on a live link, 4 % bots) and `--orders` orders: 35 % with a creator code (one in
seven of them also with a UTM landing URL naming a random creator: conflicts), 40 % with the signed id (HMAC, as
the redirect signs it) of a random click — 1 % of them forged — 10 % with a UTM landing URL, the rest with
nothing; each order has a customer (1 million of them) and an amount.

Measured, in one DuckDB connection, best of `--repeat` runs each:
- baseline: `SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id` into a table;
- attribution: `batch.attribute` (coupon > signed click within window > UTM, conflicts, governing contract)
  into `batch_attributions`.
Checks: one attribution per order, and every rule and conflict actually occurs. DuckDB spills to the scratch
directory, which is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402

HERE = Path(__file__).resolve().parent
SECRET = "bench-attribution-secret"  # the click-id signing key of the synthetic program

# PRODUCT.md, "Speed it must reach" (attribution).
MAX_RATIO = 5.0
MEMORY_LIMIT = "6GB"

GENERATE = """
CREATE OR REPLACE TABLE campaigns AS
SELECT i AS id, 1 + (i - 1) // 2 AS brand_id, 'campaign-' || i AS slug, TIMESTAMP '2026-08-01' AS starts_at,
       TIMESTAMP '2026-10-31' AS ends_at
FROM range(1, 41) t(i);

CREATE OR REPLACE TABLE creators AS SELECT i AS id, 'creator.' || i AS handle FROM range(1, 5001) t(i);

CREATE OR REPLACE TABLE links AS
SELECT i AS id, c.brand_id, c.id AS campaign_id, 1 + (i * 7919) % 5000 AS creator_id
FROM range(1, 20001) t(i) JOIN campaigns c ON c.id = 1 + i % 40;

CREATE OR REPLACE TABLE roster AS
SELECT id AS creator_id, 1 + id % 17 AS agency_id FROM creators WHERE id % 50 = 0;

CREATE OR REPLACE TABLE contracts AS
WITH pairs AS (SELECT DISTINCT creator_id, brand_id FROM links)
SELECT row_number() OVER () AS id, brand_id, creator_id, NULL::BIGINT AS agency_id, 'accepted' AS status,
       TIMESTAMP '2026-07-01' AS starts_at, NULL::TIMESTAMP AS ends_at, [7, 14, 30][1 + creator_id % 3] AS window_days
FROM pairs WHERE creator_id % 50 <> 0
UNION ALL
SELECT 100000 + row_number() OVER () AS id, brand_id, NULL, agency_id, 'accepted', TIMESTAMP '2026-07-01', NULL, 21
FROM (SELECT DISTINCT l.brand_id, r.agency_id FROM links l JOIN roster r ON r.creator_id = l.creator_id);

CREATE OR REPLACE TABLE coupons AS
SELECT DISTINCT l.brand_id, 'C' || l.creator_id || 'X' || l.campaign_id AS code, l.creator_id, l.campaign_id,
       c.starts_at AS valid_from, c.ends_at AS valid_until, false AS is_single_use, NULL::TIMESTAMP AS used_at
FROM links l JOIN campaigns c ON c.id = l.campaign_id
UNION ALL
SELECT l.brand_id, 'ONCE-' || l.id, l.creator_id, l.campaign_id, c.starts_at, c.ends_at, true, NULL
FROM links l JOIN campaigns c ON c.id = l.campaign_id WHERE l.id % 100 = 0;

CREATE OR REPLACE TEMP TABLE _coupon_pick AS
SELECT row_number() OVER (ORDER BY code) - 1 AS n, * FROM coupons;

CREATE OR REPLACE TEMP TABLE _signed_clicks AS
SELECT click_id, @SIGNATURE@ AS signature, link_id, clicked_at, outcome, is_bot
FROM (
    SELECT 'K' || lpad(i::VARCHAR, 12, '0') AS click_id, (1 + hash(i * 3) % 20000)::BIGINT AS link_id,
           TIMESTAMP '2026-08-01' + to_seconds((hash(i * 5) % (85 * 86400))::BIGINT) AS clicked_at,
           CASE WHEN hash(i * 7) % 100 < 97 THEN 'live' ELSE 'expired' END AS outcome,
           hash(i * 11) % 100 < 4 AS is_bot
    FROM range(@CLICKS@) t(i)
);

CREATE OR REPLACE TABLE clicks AS
SELECT click_id, CASE WHEN outcome = 'live' THEN signature ELSE '' END AS signature, link_id, clicked_at, outcome,
       is_bot
FROM _signed_clicks;

CREATE OR REPLACE TEMP TABLE _base AS
SELECT i AS id, hash(i * 13) AS h, hash(i * 17) % 100 AS roll FROM range(1, @ORDERS@ + 1) t(i);

CREATE OR REPLACE TEMP TABLE _click_orders AS
SELECT b.id, l.brand_id, c.clicked_at + to_seconds((b.h % (20 * 86400))::BIGINT) AS ordered_at,
       c.click_id AS raw, c.signature, b.h % 100 = 0 AS forged
FROM _base b
JOIN _signed_clicks c ON c.click_id = 'K' || lpad((b.h % @CLICKS@)::VARCHAR, 12, '0')
JOIN links l ON l.id = c.link_id
WHERE b.roll BETWEEN 35 AND 74;

CREATE OR REPLACE TABLE orders AS
SELECT b.id,
       coalesce(cp.brand_id, co.brand_id, ul.brand_id, 1 + b.h % 20)::BIGINT AS brand_id,
       coalesce(co.ordered_at,
                TIMESTAMP '2026-08-01' + to_seconds((b.h % (90 * 86400))::BIGINT)) AS ordered_at,
       CASE WHEN cp.code IS NOT NULL THEN [cp.code] ELSE []::VARCHAR[] END AS coupon_codes,
       CASE WHEN co.raw IS NULL THEN ''
            ELSE co.raw || '.' || CASE WHEN co.forged THEN 'AAAAAAAAAAAAAAAA' ELSE co.signature END END AS click_id,
       CASE WHEN ul.id IS NULL THEN ''
            ELSE 'https://shop.example.com/p?utm_source=instagram&utm_campaign=' || ca.slug || '&utm_content='
                 || cr.handle END AS landing_url,
       (b.h % 1000000)::BIGINT AS customer_id,
       (1000 + (b.h // 7) % 50000)::BIGINT AS amount
FROM _base b
LEFT JOIN _coupon_pick cp ON b.roll < 35 AND cp.n = b.h % (SELECT count(*) FROM _coupon_pick)
LEFT JOIN _click_orders co ON co.id = b.id
LEFT JOIN links ul ON (b.roll BETWEEN 75 AND 84 OR b.roll < 5) AND ul.id = 1 + (b.h // 3) % 20000
LEFT JOIN campaigns ca ON ca.id = ul.campaign_id
LEFT JOIN creators cr ON cr.id = ul.creator_id;

DROP TABLE _base; DROP TABLE _click_orders; DROP TABLE _coupon_pick; DROP TABLE _signed_clicks;
"""

BASELINE = """
CREATE OR REPLACE TEMP TABLE _baseline AS
SELECT customer_id, count(*) AS orders, sum(amount) AS amount FROM orders GROUP BY customer_id
"""


def timed(action, repeat: int, cpu: list[float]) -> list[float]:  # type: ignore[no-untyped-def]
    """Wall seconds of each run; this process's CPU seconds of each run go to `cpu` (DuckDB's threads included)."""
    times = []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        action()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return times


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000_000, help="orders (default 10,000,000)")
    parser.add_argument("--clicks", type=int, default=20_000_000, help="clicks (default 20,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    import duckdb

    from clearline.attribution import batch

    facts = benchkit.machine_facts()
    facts["duckdb"] = duckdb.__version__
    with benchkit.scratch("attribution") as work:
        con = duckdb.connect()  # in memory, as a batch job would hold its working set; spills go to `work`
        try:
            con.execute(f"SET temp_directory = '{work / 'spill'}'")
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")  # the machine is shared: spill beyond this
            threads = con.execute("SELECT current_setting('threads')").fetchone()[0]  # type: ignore[index]
            print(f"generating {args.orders:,} orders and {args.clicks:,} clicks in DuckDB ...", flush=True)
            started = time.perf_counter()
            pads = batch._hmac_pads(SECRET)
            sql = (
                GENERATE.replace("@CLICKS@", str(args.clicks))
                .replace("@ORDERS@", str(args.orders))
                .replace("@SIGNATURE@", batch.SIGNATURE_SQL)
            )
            for statement in (s for s in sql.split(";\n") if s.strip()):
                con.execute(statement, pads if "$inner_pad" in statement else None)
            generated = time.perf_counter() - started
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("orders", "clicks")}  # type: ignore[index]
            print("baseline GROUP BY ...", flush=True)
            baseline_cpu: list[float] = []
            attribution_cpu: list[float] = []
            baseline = timed(lambda: con.execute(BASELINE), args.repeat, baseline_cpu)
            groups = con.execute("SELECT count(*) FROM _baseline").fetchone()[0]  # type: ignore[index]
            print("batch attribution ...", flush=True)
            attribution = timed(lambda: batch.attribute(con, secret_key=SECRET), args.repeat, attribution_cpu)
            rows, distinct = con.execute("SELECT count(*), count(DISTINCT order_id) FROM batch_attributions").fetchone()  # type: ignore[misc]
            by_via = dict(con.execute("SELECT via, count(*) FROM batch_attributions GROUP BY via").fetchall())
            conflicts = con.execute("SELECT count(*) FROM batch_attributions WHERE has_conflict").fetchone()[0]  # type: ignore[index]
            governed = con.execute(
                "SELECT count(*) FROM batch_attributions WHERE via <> 'none' AND contract_id IS NOT NULL"
            ).fetchone()[0]  # type: ignore[index]
        finally:
            con.close()

    best_base, best_attr = min(baseline), min(attribution)
    cpu_ratio = min(attribution_cpu) / min(baseline_cpu)
    ratio = best_attr / best_base
    ok = (
        rows == counts["orders"]
        and distinct == rows
        and all(by_via.get(v, 0) > 0 for v in ("coupon", "click", "utm", "none"))
        and conflicts > 0
    )
    runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    table = [
        [
            "baseline: GROUP BY customer_id (count, sum) of orders",
            f"{counts['orders']:,}",
            runs(baseline),
            f"{best_base:.2f}",
            f"{counts['orders'] / best_base:,.0f}",
        ],
        [
            "batch attribution (orders × clicks)",
            f"{counts['orders']:,}",
            runs(attribution),
            f"{best_attr:.2f}",
            f"{counts['orders'] / best_attr:,.0f}",
        ],
    ]
    targets = [
        [
            f"attribution ≤ {MAX_RATIO:g}× the GROUP BY",
            f"{best_attr:.2f} s / {best_base:.2f} s = {ratio:.2f}×",
            benchkit.verdict(ratio <= MAX_RATIO),
        ],
        [
            "(for reference, not the target) CPU time, best runs",
            f"{min(attribution_cpu):.2f} s / {min(baseline_cpu):.2f} s = {cpu_ratio:.2f}×",
            "-",
        ],
        [
            "one attribution per order; every rule occurs",
            f"{rows:,} rows, {distinct:,} orders; "
            + ", ".join(f"{v} {by_via.get(v, 0):,}" for v in ("coupon", "click", "utm", "none"))
            + f"; {conflicts:,} conflicts; {governed:,} attributed under a contract",
            "OK" if ok else "FAILED",
        ],
    ]
    report = "\n".join(
        [
            "Clearline batch attribution benchmark (DuckDB)",
            "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()) + f", DuckDB threads: {threads}",
            f"  data: {counts['orders']:,} orders, {counts['clicks']:,} clicks, generated in {generated:.1f} s; "
            f"the baseline makes {groups:,} groups; best of {args.repeat} runs",
            "",
            benchkit.table(["query", "rows", "runs s", "best s", "rows/s"], table),
            "",
            "Targets (PRODUCT.md, 'Speed it must reach')",
            benchkit.table(["target", "measured", "verdict"], targets),
        ]
    )
    print("\n" + report)
    if not args.no_results:
        benchkit.write_results(HERE / "RESULTS.md", "Batch attribution benchmark results", facts, report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
