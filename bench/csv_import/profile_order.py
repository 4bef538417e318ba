"""Per-order cost of processing imported orders, with cProfile: where the time of one order goes.

    uv run python bench/csv_import/profile_order.py [--orders 300] [--database-url postgresql://...|sqlite]

A fresh database (PostgreSQL on the given server, or a SQLite file with ``--database-url sqlite``) is
migrated and seeded with `clearline demo --no-serve`; an order CSV of ``--orders`` orders is generated as the
CSV benchmark does, imported once under cProfile, and the per-order wall time and the top functions by
cumulative and own time are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--database-url", default=benchkit.DEFAULT_PG)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="process each stored order with ingest.service.process (the postback path), not the batch path",
    )
    args = parser.parse_args()
    server = None if args.database_url == "sqlite" else args.database_url
    with benchkit.scratch("profile") as work, contextlib.ExitStack() as stack:
        url = stack.enter_context(benchkit.database(server, work, "profile"))
        benchkit.use_database(url)
        benchkit.seed_demo()
        from clearline.kit.db import engine_for

        stack.callback(lambda: engine_for(url).dispose())
        import run  # the CSV benchmark's generator and import call

        data = run.generate_csv(int(args.orders * 2.5), args.orders)
        if args.one_by_one:
            from clearline.ingest import service

            # The CSV import's batch step, replaced by one `process` call (one savepoint) per stored order.
            def one_by_one(session, events, *, parsed=None):  # type: ignore[no-untyped-def]
                return {e.id: service.process(session, e, parsed=(parsed or {}).get(e.id)) for e in events}

            service.process_batch = one_by_one  # type: ignore[assignment]
        profiler = cProfile.Profile()
        meter = benchkit.Meter()
        started = time.perf_counter()
        profiler.enable()
        report = run.run_import(data, meter)
        profiler.disable()
        wall = time.perf_counter() - started
        per_order = wall / max(report.orders, 1) * 1000
        print(
            f"{'SQLite' if server is None else 'PostgreSQL'}: {report.orders} orders imported, "
            f"{report.failed_processing} failed, {wall:.2f} s, {per_order:.2f} ms per order; steps: "
            + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in getattr(report, "seconds", {}).items())
        )
        for key in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
