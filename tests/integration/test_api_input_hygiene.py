"""Inputs that once slipped past validation: every one must be a 4xx problem on both
engines (PostgreSQL refuses NUL characters that SQLite would store) and change nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.queries import OrderFilter

ORDERS = "/api/v1/orders"


def body(**changes: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"external_id": "WEB-1", "currency": "CNY", "status": "paid",
                         "placed_at": "2026-11-21T10:00:00+08:00",
                         "lines": [{"sku": "TEA-001", "quantity": 2, "unit_price": "59.90"}]}
    b.update(changes)
    return b


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {tenant.api_key}"},
                    raise_server_exceptions=False) as c:
        yield c


def problem(r: Any, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    if field is not None:
        assert r.json()["field"] == field


def count(hub: OrderHub, tenant: IssuedKey) -> int:
    return len(hub.queries.list_orders(tenant.tenant_id, OrderFilter(), limit=200)["items"])


def test_nul_and_lone_surrogates_are_422_everywhere(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    order_id = client.post(ORDERS, json=body()).json()["id"]
    problem(client.post(ORDERS, json=body(external_id="A\u0000B")), 422, "validation_error", "external_id")
    problem(client.post(ORDERS, json=body(external_id="B", buyer={"name": "王\u0000"})), 422, "validation_error",
            "buyer.name")
    raw = json.dumps(body(external_id="C")).replace('"C"', '"\\udfff"').encode()
    problem(client.post(ORDERS, content=raw, headers={"content-type": "application/json"}), 422,
            "validation_error", "external_id")
    problem(client.post(f"{ORDERS}/{order_id}/events", json={"type": "hold", "reason": "x\u0000"}), 422,
            "validation_error", "reason")
    problem(client.get(ORDERS, params={"q": "a\u0000"}), 422, "validation_error", "q")
    problem(client.get(f"{ORDERS}/ord%00x"), 422, "validation_error", "order_id")
    assert count(hub, tenant) == 1
    assert client.get(f"{ORDERS}/{order_id}").json()["version"] == 1


def test_blank_idempotency_key_is_refused_not_stored(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    for key in ("", "   "):
        problem(client.post(ORDERS, json=body(), headers={"Idempotency-Key": key}), 422, "validation_error",
                "Idempotency-Key")
    assert count(hub, tenant) == 0
    assert client.post(ORDERS, json=body(), headers={"Idempotency-Key": "k-1"}).status_code == 201


def test_an_event_key_reused_for_another_event_is_409(client: TestClient) -> None:
    order_id = client.post(ORDERS, json=body()).json()["id"]
    first = client.post(f"{ORDERS}/{order_id}/events", json={"type": "hold"}, headers={"Idempotency-Key": "k1"})
    assert first.json()["outcome"] == "applied"
    again = client.post(f"{ORDERS}/{order_id}/events", json={"type": "hold"}, headers={"Idempotency-Key": "k1"})
    assert again.json()["outcome"] == "duplicate"
    problem(client.post(f"{ORDERS}/{order_id}/events", json={"type": "cancel"}, headers={"Idempotency-Key": "k1"}),
            409, "event_key_reused", "key")
    assert client.get(f"{ORDERS}/{order_id}").json()["status"] == "on_hold"


def test_times_outside_an_orders_life_are_422(client: TestClient) -> None:
    problem(client.post(ORDERS, json=body(placed_at="0001-01-01T00:00:00+08:00")), 422, "invalid_time", "placed_at")
    problem(client.post(ORDERS, json=body(placed_at="2999-01-01T00:00:00+00:00")), 422, "invalid_order", "placed_at")
    problem(client.post(ORDERS, json=body(status="pending_payment", paid_at="2026-11-21T10:00:05+08:00")), 422,
            "invalid_order", "paid_at")
    order_id = client.post(ORDERS, json=body()).json()["id"]
    for when in ("1970-01-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00"):
        problem(client.post(f"{ORDERS}/{order_id}/events", json={"type": "ship", "occurred_at": when}), 422,
                "invalid_time", "occurred_at")
    assert client.get(f"{ORDERS}/{order_id}").json()["status"] == "paid"


def test_forged_cursors_are_422(client: TestClient) -> None:
    for content in (["2026-11-21T10:00:00", "ord_x"], ["0001-01-01T00:00:00+08:00", "ord_x"],
                    ["2026-11-21T10:00:00+00:00", "a\u0000"], ["2026-11-21T10:00:00+00:00", 7]):
        cursor = base64.urlsafe_b64encode(json.dumps(content).encode()).decode().rstrip("=")
        problem(client.get(ORDERS, params={"cursor": cursor}), 422, "invalid_input", "cursor")
