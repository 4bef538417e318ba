from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from clearline.auth.deps import CurrentActor, DbSession
from clearline.brief import approval, creative, service
from clearline.brief.schemas import (
    BriefIn,
    BriefRead,
    CreativeIn,
    CreativeRead,
    DecisionIn,
    ProofIn,
    ScheduleIn,
    StepRead,
)
from clearline.kit.storage import content_disposition

router = APIRouter(tags=["briefs"])


@router.post("/brands/{brand_id}/briefs", response_model=BriefRead, status_code=201)
def create_brief(brand_id: int, body: BriefIn, session: DbSession, actor: CurrentActor) -> object:
    """Marketing writes a brief; a missing tracking field is a 422 naming every one of them."""
    return service.create_brief(session, actor, brand_id=brand_id, data=body)


@router.get("/briefs", response_model=list[BriefRead])
def list_briefs(session: DbSession, actor: CurrentActor, brand_id: int | None = None) -> object:
    return service.list_briefs(session, actor, brand_id=brand_id)


@router.get("/briefs/{brief_id}", response_model=BriefRead)
def get_brief(brief_id: int, session: DbSession, actor: CurrentActor) -> object:
    return service.get_brief(session, actor, brief_id)


@router.put("/briefs/{brief_id}", response_model=BriefRead)
def update_brief(brief_id: int, body: BriefIn, session: DbSession, actor: CurrentActor) -> object:
    return service.update_brief(session, actor, brief_id=brief_id, data=body)


@router.post("/briefs/{brief_id}/submit", response_model=BriefRead)
def submit_brief(brief_id: int, session: DbSession, actor: CurrentActor) -> object:
    """To legal: clearance of a new offer (48 business hours) or a content check (24)."""
    return service.submit_brief(session, actor, brief_id=brief_id)


@router.post("/brands/{brand_id}/brief-templates", status_code=201)
def create_template(brand_id: int, body: dict[str, Any], session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    template = service.create_template(
        session,
        actor,
        brand_id=brand_id,
        name=str(body.get("name", "template")),
        defaults=dict(body.get("defaults") or {}),
    )
    return {"id": template.id, "name": template.name, "defaults": template.defaults}


@router.get("/briefs-duplicates")
def duplicates(session: DbSession, actor: CurrentActor, threshold: float = service.SIMILARITY_THRESHOLD) -> object:
    """Similar briefs for the same SKU across teams or brands."""
    return service.duplicates(session, actor, threshold=threshold)


@router.get("/offer-collisions")
def collisions(session: DbSession, actor: CurrentActor) -> object:
    """Overlapping offer windows on the same SKU across brands."""
    return service.collisions(session, actor)


@router.get("/approvals", response_model=list[StepRead])
def approval_queue(
    session: DbSession, actor: CurrentActor, brand_id: int | None = None, role: str | None = None
) -> object:
    """Open approval steps for your roles, earliest due first."""
    return approval.queue(session, actor, brand_id=brand_id, role=role)


@router.post("/approvals/{step_id}/decision", response_model=StepRead)
def decide(step_id: int, body: DecisionIn, session: DbSession, actor: CurrentActor) -> object:
    """Approve or request changes; approver, time and comment are recorded."""
    return approval.decide(session, actor, step_id=step_id, decision=body.decision, comment=body.comment)


@router.post("/creatives", response_model=CreativeRead, status_code=201)
def create_creative(body: CreativeIn, session: DbSession, actor: CurrentActor) -> object:
    return creative.create_creative(session, actor, **body.model_dump())


@router.get("/creatives", response_model=list[CreativeRead])
def list_creatives(session: DbSession, actor: CurrentActor, brief_id: int | None = None) -> object:
    return creative.list_creatives(session, actor, brief_id=brief_id)


@router.post("/creatives/{creative_id}/versions", status_code=201)
async def add_version(
    creative_id: int,
    session: DbSession,
    actor: CurrentActor,
    caption: Annotated[str, Form()] = "",
    file: UploadFile | None = None,
) -> dict[str, Any]:
    """A new version (caption, optional file within the size and type limits); it opens a review."""
    data = await file.read() if file is not None else None
    version = creative.add_version(
        session,
        actor,
        creative_id=creative_id,
        caption=caption,
        data=data,
        file_name=(file.filename or "") if file else "",
        content_type=(file.content_type or "") if file else "",
    )
    return {"id": version.id, "version": version.version, "file_key": version.file_key}


@router.post("/creatives/{creative_id}/schedule", status_code=201, response_model=None)
def schedule(
    creative_id: int, body: ScheduleIn, session: DbSession, actor: CurrentActor
) -> dict[str, Any] | JSONResponse:
    """Schedule only with an accepted contract, a live link and this channel's approval — else 409 listing
    every missing item."""
    try:
        post = creative.schedule(session, actor, creative_id=creative_id, scheduled_for=body.scheduled_for)
    except creative.ScheduleRefusedError as exc:
        # Answered, not raised: a raised error rolls the request back, and the refusal's audit event with it.
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)
    return {"id": post.id, "scheduled_for": post.scheduled_for, "channel": post.channel}


@dataclass
class ProofUpload:
    body: ProofIn
    data: bytes | None = None
    file_name: str = ""
    content_type: str = ""


_PROOF_FORM = {
    "type": "object",
    "required": ["url", "posted_at"],
    "properties": {
        "url": {"type": "string"},
        "posted_at": {"type": "string", "format": "date-time"},
        "file": {"type": "string", "format": "binary", "description": "optional screenshot or recording"},
    },
}
_PROOF_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ProofIn.model_json_schema()},
            "multipart/form-data": {"schema": _PROOF_FORM},
        },
    }
}


async def proof_upload(request: Request) -> ProofUpload:
    """JSON (URL and time), or a multipart form that may also carry the proof's file."""
    is_form = request.headers.get("content-type", "").startswith("multipart/form-data")
    try:
        if not is_form:
            return ProofUpload(ProofIn.model_validate_json(await request.body()))
        form = await request.form()
        fields = {k: v for k, v in form.items() if k in ("url", "posted_at") and isinstance(v, str)}
        body = ProofIn.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    upload = form.get("file")
    if not isinstance(upload, StarletteUpload) or not upload.filename:
        return ProofUpload(body)
    return ProofUpload(body, await upload.read(), upload.filename, upload.content_type or "")


@router.post("/creatives/{creative_id}/proofs", status_code=201, openapi_extra=_PROOF_BODY)
def add_proof(
    creative_id: int, upload: Annotated[ProofUpload, Depends(proof_upload)], session: DbSession, actor: CurrentActor
) -> dict[str, Any]:
    """Proof of posting for scheduled content: URL and time, and optionally a file (multipart) within the
    upload size and type limits."""
    proof = creative.add_proof(
        session,
        actor,
        creative_id=creative_id,
        url=upload.body.url,
        posted_at=upload.body.posted_at,
        data=upload.data,
        file_name=upload.file_name,
        content_type=upload.content_type,
    )
    return {"id": proof.id, "url": proof.url, "posted_at": proof.posted_at, "file_key": proof.file_key}


CHUNK = 64 * 1024


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


def _serve(found: creative.FileToServe, *, download: bool) -> StreamingResponse:
    """Streamed in chunks with the type it was accepted as, never sniffed, and a name that cannot break the
    header; a type outside the upload's allow-list is only ever a download."""
    handle = found.handle
    size = handle.seek(0, 2)
    handle.seek(0)
    media_type = found.content_type + ("; charset=utf-8" if found.content_type == "text/plain" else "")
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": content_disposition(found.name, inline=found.is_allowed_type and not download),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(_chunks(handle), media_type=media_type, headers=headers)


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file, streamed", "content": {t: {} for t in ("image/png", "application/pdf")}},
    404: {"description": "No such file, or not yours to read"},
}


@router.get(
    "/creatives/{creative_id}/versions/{version_id}/file", response_class=StreamingResponse, responses=_FILE_RESPONSES
)
def version_file(
    creative_id: int, version_id: int, session: DbSession, actor: CurrentActor, download: bool = False
) -> StreamingResponse:
    """A version's file, to whoever may read the creative (its brand's staff, its creator, the creator's agency);
    ``inline`` to view it in the browser, ``?download=true`` to save it. A web session's cookie works too."""
    found = creative.version_file(session, actor, creative_id=creative_id, version_id=version_id)
    return _serve(found, download=download)


@router.get(
    "/creatives/{creative_id}/proofs/{proof_id}/file", response_class=StreamingResponse, responses=_FILE_RESPONSES
)
def proof_file(
    creative_id: int, proof_id: int, session: DbSession, actor: CurrentActor, download: bool = False
) -> StreamingResponse:
    """A proof of posting's file, to whoever may read the creative, as for a version's file."""
    found = creative.proof_file(session, actor, creative_id=creative_id, proof_id=proof_id)
    return _serve(found, download=download)
