"""Link health: probe landing pages, alert ops and ping the creator when one breaks, escalate after 2 h."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.kit.clock import utcnow
from clearline.link import repository
from clearline.link.utm import with_params
from clearline.models import Link, Notification

ESCALATE_AFTER = dt.timedelta(hours=2)


@dataclass
class HealthReport:
    checked: int = 0
    ok: int = 0
    broken: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


def probe(client: httpx.Client, url: str) -> tuple[bool, str]:
    try:
        response = client.get(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code >= 400:
        return False, f"HTTP {response.status_code}"
    return True, f"HTTP {response.status_code}"


def _notify(session: Session, link: Link, *, kind: str, ops: str, creator: str, level: int = 1) -> None:
    """One alert for the brand's social_ops and one message to the link's creator."""
    session.add(
        Notification(
            brand_id=link.brand_id,
            role="social_ops",
            kind=kind,
            subject_type="link",
            subject_id=link.id,
            message=ops,
            level=level,
        )
    )
    session.add(
        Notification(
            brand_id=link.brand_id,
            creator_id=link.creator_id,
            kind=kind,
            subject_type="link",
            subject_id=link.id,
            level=level,
            message=creator,
        )
    )


def check_links(
    session: Session, actor: Actor, *, client: httpx.Client, now: dt.datetime | None = None, brand_id: int | None = None
) -> HealthReport:
    """Probe every live link's landing page and move its health flag; each transition is audited."""
    now = now or utcnow()
    stmt = select(Link).where(Link.status == "live").order_by(Link.id)
    if brand_id is not None:
        stmt = stmt.where(Link.brand_id == brand_id)
    report = HealthReport()
    for link in session.scalars(stmt):
        healthy, detail = probe(client, with_params(link.destination_url, link.utm))
        report.checked += 1
        link.health_checked_at = now
        if healthy:
            report.ok += 1
            if link.health == "broken":
                down_for = now - (link.broken_since or now)
                link.health, link.broken_since, link.escalated_at = "ok", None, None
                _notify(
                    session,
                    link,
                    kind="link.recovered",
                    ops=f"Link {link.code} works again after {down_for} ({link.destination_url}).",
                    creator=f"Your link {link.code} works again: posts that use it can go out.",
                )
                audit.record(
                    session,
                    actor,
                    "link.recovered",
                    link,
                    before={"health": "broken"},
                    after={"health": "ok"},
                    reason=detail,
                )
                repository.touch(session, link.id)
                report.recovered.append(link.code)
            else:
                link.health = "ok"
            continue
        # Every link broken after this check is reported (the CLI exits 2 on any), escalated or not.
        report.broken.append(link.code)
        if link.health != "broken":
            before = link.health
            link.health, link.broken_since = "broken", now
            _notify(
                session,
                link,
                kind="link.broken",
                ops=f"Link {link.code} is broken ({detail}): {link.destination_url} does not answer.",
                creator=f"Your link {link.code} is broken ({detail}): its landing page does not answer. "
                "Ops is on it; please hold posts that use it.",
            )
            audit.record(
                session,
                actor,
                "link.broken",
                link,
                before={"health": before},
                after={"health": "broken"},
                reason=detail,
            )
            repository.touch(session, link.id)
        elif link.escalated_at is None and link.broken_since and now - link.broken_since > ESCALATE_AFTER:
            link.escalated_at = now
            session.add(
                Notification(
                    brand_id=link.brand_id,
                    role="social_ops",
                    kind="link.escalated",
                    subject_type="link",
                    subject_id=link.id,
                    level=2,
                    message=f"Link {link.code} has been down since "
                    f"{link.broken_since.isoformat()} ({detail}): escalated.",
                )
            )
            audit.record(
                session, actor, "link.escalated", link, after={"broken_since": link.broken_since}, reason=detail
            )
            report.escalated.append(link.code)
    return report
