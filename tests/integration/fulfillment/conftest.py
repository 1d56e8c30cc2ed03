"""Fixtures shared by the fulfillment tests: a hub on a clock that only moves when told to,
a simulated carrier over real HTTP, and the API as the tenant's admin."""

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
from orderhub.simulation.fake_carrier import FakeCarrier
from tests.http_helpers import auth
from tests.integration.fulfillment.helpers import API_KEY, START


@pytest.fixture
def clock() -> FixedClock:
    """The hub's clock, at START until a test advances it."""
    return FixedClock(START)


@pytest.fixture
def hub(settings: Settings, engine: Any, clock: FixedClock) -> Iterator[OrderHub]:
    """A fully wired OrderHub on the per-test database, on ``clock``."""
    yield bootstrap(settings, engine=engine, clock=clock)


@pytest.fixture
def carrier() -> Iterator[FakeCarrier]:
    """The simulated carrier service, serving on a free port."""
    with FakeCarrier(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def api(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    """The API in process, authenticated as the tenant's admin."""
    with TestClient(create_app(hub), headers=auth(tenant.api_key)) as client:
        yield client
