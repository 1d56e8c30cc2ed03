"""Liveness, readiness and Prometheus metrics (outside /api/v1, no API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orderhub.adapters.db import migrate
from orderhub.entrypoints.api.deps import Hub
from orderhub.entrypoints.api.errors import problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request, hub: Hub) -> dict[str, Any] | JSONResponse:
    """Ready to serve: the database answers and its schema is current."""
    try:
        hub.queries.database_ok()
    except Exception as exc:  # any failure to reach the database means "not ready"
        return problem(503, "database_unavailable", f"the database does not answer: {exc.__class__.__name__}",
                       request=request)
    if not migrate.is_up_to_date(hub.engine):
        return problem(503, "schema_out_of_date", "the database schema is behind this version; run "
                       "`orderhub db upgrade`", request=request)
    return {"status": "ready", "database": hub.engine.dialect.name}


@router.get("/metrics")
def metrics(hub: Hub) -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)
