"""The FastAPI application factory. ``create_app(hub)`` wires routes to an already
bootstrapped OrderHub; nothing is built at import time."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline
from starlette.staticfiles import StaticFiles

from orderhub import __version__
from orderhub.bootstrap import OrderHub
from orderhub.entrypoints.api import errors
from orderhub.entrypoints.api.middleware import TraceAndMeasure
from orderhub.entrypoints.api.routes import (
    aftersale,
    channels,
    fulfillment,
    health,
    inventory,
    orders,
    rules,
    shops,
    webhook_endpoints,
    webhooks,
)
from orderhub.entrypoints.dashboard import STATIC_DIR, create_dashboard

DESCRIPTION = """One canonical order from every sales channel, honest stock, and a tamper-evident timeline.

Authenticate with `Authorization: Bearer <api key>` (create keys with `orderhub init` / `orderhub keys create`).
Errors are `application/problem+json` with a stable `code`."""


def create_app(hub: OrderHub) -> FastAPI:
    """Build the HTTP application around ``hub``."""
    # Docs assets (Swagger UI, ReDoc) are served from the installed package: no CDN at run time.
    app = FastAPIOffline(title="OrderHub", version=__version__, description=DESCRIPTION)
    app.state.hub = hub
    errors.install(app)
    app.include_router(orders.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(shops.router)
    app.include_router(channels.router)
    app.include_router(rules.router)
    app.include_router(inventory.router)
    # Before the channel webhooks: /webhooks/{channel}/{shop} would otherwise take /webhooks/carriers/….
    app.include_router(fulfillment.carrier_push_router)
    app.include_router(webhooks.router)
    app.include_router(fulfillment.router)
    app.include_router(aftersale.router)
    app.include_router(create_dashboard(hub))
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(health.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.add_middleware(TraceAndMeasure, metrics=hub.metrics)

    return app
