"""Periodic link jobs, run by the Huey consumer inside `clearline serve` (or `clearline worker`)."""

from __future__ import annotations

import httpx
from huey import crontab

from clearline.auth.actor import Actor
from clearline.kit.db import unit_of_work
from clearline.kit.jobs import huey
from clearline.link import health, service


@huey.periodic_task(crontab(minute="*/5"), name="link.health_checked")
def check_link_health() -> None:
    with unit_of_work() as session, httpx.Client(timeout=10, headers={"user-agent": "clearline-linkcheck"}) as c:
        health.check_links(session, Actor.system("job:link.health_checked"), client=c)


@huey.periodic_task(crontab(minute="*"), name="link.expired")
def expire_links() -> None:
    with unit_of_work() as session:
        service.expire_due(session, Actor.system("job:link.expired"))
