"""Fixtures for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from tests.http_helpers import auth
from tests.integration.webhook_receiver import http, receiver

__all__ = ["client", "http", "receiver"]


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    """The API in process, authenticated as the tenant's admin (modules may define their own)."""
    with TestClient(create_app(hub), headers=auth(tenant.api_key)) as c:
        yield c
