"""Inbound channel pushes: ``POST /webhooks/{channel}/{shop_code}`` (DESIGN.md §6).

No API key: the shop's secret, checked against the channel's signature on the raw bytes,
authenticates the push. The route only reads the body (within the size limit) and hands
it to the bus; everything else happens in the handler and the normalizer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orderhub.domain import commands
from orderhub.entrypoints.api.deps import get_hub
from orderhub.entrypoints.api.errors import problem

router = APIRouter(prefix="/webhooks", tags=["channel webhooks"])

MAX_BODY = 1024 * 1024  # 1 MiB: no channel sends orders anywhere near this


async def read_limited(request: Request) -> bytes | None:
    """The body, or None as soon as it passes MAX_BODY (without reading the rest into memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/{channel}/{shop_code}", status_code=status.HTTP_202_ACCEPTED,
             responses={401: {"description": "bad or missing signature"}, 400: {"description": "unreadable body"},
                        404: {"description": "unknown channel or shop"}, 413: {"description": "body over 1 MiB"}})
async def receive(channel: str, shop_code: str, request: Request) -> Any:
    """Store a channel push in the inbox: 202 ``accepted`` or ``duplicate`` (with the message id)."""
    body = await read_limited(request)
    if body is None:
        return problem(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes; channel pushes carry "
                       "one order, send bigger batches with `orderhub import`", request=request)
    hub = get_hub(request)
    received = await run_in_threadpool(hub.bus.handle, commands.ReceiveChannelMessage(
        channel=channel, shop_code=shop_code, source="webhook", body=body, headers=dict(request.headers),
        url=str(request.url), verify=True))
    return JSONResponse({"status": received.status, "message_id": received.message_id,
                         "duplicate": received.status == "duplicate"}, status_code=status.HTTP_202_ACCEPTED)
