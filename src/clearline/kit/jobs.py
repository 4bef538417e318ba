"""Background and periodic jobs (Huey): SQLite storage by default, Redis when configured."""

from __future__ import annotations

import signal
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey

from clearline.config import get_settings


def _make_huey() -> Huey:
    storage = get_settings().huey_storage
    if storage.startswith("redis://"):
        return RedisHuey("clearline", url=storage)
    return SqliteHuey("clearline", filename=str(Path.cwd() / "clearline-jobs.db"))


huey = _make_huey()


def start_consumer():  # type: ignore[no-untyped-def]
    """Run a consumer on threads inside this process (what `clearline serve` does for a pilot)."""
    import clearline.brief.tasks  # noqa: F401  (registers the periodic tasks)
    import clearline.link.tasks  # noqa: F401

    consumer = huey.create_consumer(workers=1, periodic=True, worker_type="thread", check_worker_health=False)
    # Huey's start() takes SIGINT/SIGTERM/SIGHUP for its own run loop, which an in-process consumer never
    # runs: the server's handlers would be lost and a stop signal ignored (no graceful shutdown, no final
    # click flush). The host process keeps its signals and stops the consumer itself.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer.start()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    return consumer
