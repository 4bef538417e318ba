"""Periodic approval jobs: SLA breach detection and escalation."""

from __future__ import annotations

from huey import crontab

from clearline.auth.actor import Actor
from clearline.brief import approval
from clearline.kit.db import unit_of_work
from clearline.kit.jobs import huey


@huey.periodic_task(crontab(minute="*/5"), name="approval.checked")
def check_approvals() -> None:
    with unit_of_work() as session:
        approval.check_breaches(session, Actor.system("job:approval.checked"))
