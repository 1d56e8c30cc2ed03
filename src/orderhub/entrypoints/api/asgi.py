"""An ASGI factory for running the API under an external server with several worker
processes (``uvicorn --factory orderhub.entrypoints.api.asgi:create --workers N``): each
process bootstraps its own hub from the environment. No workers run here; start them with
``orderhub worker``."""

from __future__ import annotations

from fastapi import FastAPI

from orderhub.bootstrap import bootstrap
from orderhub.entrypoints.api.app import create_app


def create() -> FastAPI:
    """Build the application from ``ORDERHUB_*`` environment variables."""
    return create_app(bootstrap())
