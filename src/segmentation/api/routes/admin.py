"""The keys and the audit trail of the caller's tenant: served with SEGMENTATION_AUTH=keys
only, to admin keys (`security.require_admin`). The CLI's `segmentation keys` does the same
for any tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from segmentation.api.convert import problems_from_validation
from segmentation.api.deps import AccessControl, Caller, JsonBody
from segmentation.api.errors import documented
from segmentation.api.schemas import (
    ID_REGEX,
    AuditEventOut,
    AuditOut,
    KeyCreatedOut,
    KeyOut,
    KeyRequest,
    KeysOut,
)
from segmentation.api.wire import json_body
from segmentation.auth import ApiKey, AuditEvent
from segmentation.serialize import parse_json

router = APIRouter(tags=["admin"])

KeyId = Annotated[str, Path(pattern=ID_REGEX, description="22 characters of A-Z a-z 0-9 _ -")]
# far beyond any date, within what a float and SQLite compare exactly
MAX_SINCE = 1e11


def key_to_wire(key: ApiKey) -> dict[str, object]:
    return {
        "keyId": key.key_id,
        "tenant": key.tenant,
        "name": key.name,
        "scope": key.scope.value,
        "createdAt": key.created_at,
        "lastUsedAt": key.last_used_at,
        "revokedAt": key.revoked_at,
    }


def _event_to_wire(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        eventId=event.event_id or 0, at=event.at, keyId=event.key_id, tenant=event.tenant,
        method=event.method, path=event.path, status=event.status, client=event.client,
        event=event.event, target=event.target,
    )  # fmt: skip


def _key_request(body: bytes) -> KeyRequest:
    try:
        return KeyRequest.model_validate(parse_json(body))
    except ValidationError as error:
        raise problems_from_validation(error) from None


@router.post(
    "/api/keys",
    status_code=201,
    response_model=KeyCreatedOut,
    summary="Create an API key of the caller's tenant; the key is in this answer only",
    openapi_extra=json_body(KeyRequest),
    responses=documented(413, 415, 422),
)
async def create_key(
    request: Request, body: JsonBody, caller: Caller, access: AccessControl
) -> KeyCreatedOut:
    wanted = _key_request(body)
    new = await run_in_threadpool(access.keys.create, caller.tenant, wanted.name, wanted.scope)
    request.state.audit_event, request.state.audit_target = "key.created", new.key.key_id
    return KeyCreatedOut.model_validate({**key_to_wire(new.key), "key": new.secret})


@router.get("/api/keys", response_model=KeysOut, summary="The caller's tenant's keys (never a key)")
async def list_keys(caller: Caller, access: AccessControl) -> KeysOut:
    keys = await run_in_threadpool(access.keys.list, caller.tenant)
    return KeysOut.model_validate({"keys": [key_to_wire(key) for key in keys]})


@router.delete(
    "/api/keys/{keyId}",
    response_model=KeyOut,
    summary="Revoke a key of the caller's tenant, at once and for good",
    responses=documented(404, 422),
)
async def revoke_key(
    keyId: KeyId, request: Request, caller: Caller, access: AccessControl
) -> KeyOut:
    key = await run_in_threadpool(access.keys.revoke, keyId, caller.tenant)
    request.state.audit_event, request.state.audit_target = "key.revoked", key.key_id
    return KeyOut.model_validate(key_to_wire(key))


@router.get(
    "/api/audit",
    response_model=AuditOut,
    summary="The caller's tenant's audit trail, newest first",
    responses=documented(422),
)
async def audit(
    caller: Caller,
    access: AccessControl,
    since: Annotated[
        float | None,
        Query(ge=0, le=MAX_SINCE, description="Only rows at or after this time (epoch seconds)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditOut:
    events = await run_in_threadpool(access.audit.read, caller.tenant, since, limit)
    return AuditOut(events=[_event_to_wire(event) for event in events])
