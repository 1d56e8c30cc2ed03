"""Fixtures shared by the after-sale tests: a hub on a clock that only moves when told to,
the API as the tenant's admin, and the refund relay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain.time import FixedClock
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.workers.aftersale import RefundRelay
from tests.http_helpers import auth
from tests.integration.aftersale.helpers import START


@pytest.fixture
def clock() -> FixedClock:
    """The hub's clock, at START until a test advances it."""
    return FixedClock(START)


@pytest.fixture
def hub(settings: Settings, engine: Any, clock: FixedClock) -> Iterator[OrderHub]:
    """A fully wired OrderHub on the per-test database, on ``clock``."""
    yield bootstrap(settings, engine=engine, clock=clock)


@pytest.fixture
def api(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    """The API in process, authenticated as the tenant's admin."""
    with TestClient(create_app(hub), headers=auth(tenant.api_key)) as client:
        yield client


@pytest.fixture
def relay(hub: OrderHub) -> Iterator[RefundRelay]:
    """The refund relay (own-site orders without a shop API go to the simulated gateway)."""
    worker = RefundRelay(hub)
    yield worker
    worker.close()
