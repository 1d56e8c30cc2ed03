"""Idempotency-Key on POST /api/v1/orders: a retried request never creates a second order,
a reused key with another body is refused, and concurrent retries agree on one order."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.entrypoints.cli.server import RunningServer
from orderhub.service_layer.handlers.tenancy import IssuedKey
from tests.http_helpers import free_port

ORDERS = "/api/v1/orders"

BODY: dict[str, Any] = {
    "external_id": "WEB-10001", "channel": "own_site", "shop": "main", "currency": "CNY",
    "status": "paid", "placed_at": "2026-11-21T10:00:00+08:00",
    "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}],
    "tags": ["express"],
}


def body(**changes: Any) -> dict[str, Any]:
    b = copy.deepcopy(BODY)
    b.update(changes)
    return b


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {tenant.api_key}"}) as c:
        yield c


def order_ids(client: TestClient) -> list[str]:
    page = client.get(ORDERS, params={"limit": 200}).json()
    return [o["id"] for o in page["items"]]


def created_entries(client: TestClient, order_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"{ORDERS}/{order_id}/timeline").json()["items"]
    return [i for i in items if i["action"] == "order.created"]


def test_same_key_and_body_returns_the_same_order(client: TestClient) -> None:
    first = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "web-10001"})
    assert first.status_code == 201, first.text
    for _ in range(2):
        again = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "web-10001"})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()  # DESIGN §8: 200 with the same body
        assert again.headers["Location"] == first.headers["Location"]
    oid = first.json()["id"]
    assert order_ids(client) == [oid]
    assert len(created_entries(client, oid)) == 1


def test_same_key_and_body_after_the_order_moved_returns_it_as_it_is_now(client: TestClient) -> None:
    first = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "k-1"}).json()
    client.post(f"{ORDERS}/{first['id']}/events", json={"type": "ship"})
    again = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["status"] == "shipped"
    assert again.json()["version"] == 2


def test_the_body_is_compared_by_content_not_by_bytes(client: TestClient) -> None:
    first = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "k-order"})
    assert first.status_code == 201
    reordered = dict(reversed(list(body().items())))
    # Spelling out a default is the same request too.
    again = client.post(ORDERS, json={**reordered, "shipping_fee": "0"}, headers={"Idempotency-Key": "k-order"})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


def test_same_key_with_a_different_body_is_409(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    first = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "web-10001"})
    assert first.status_code == 201
    audit_before = list(hub.queries.verify_audit([tenant.tenant_id]))
    for changed in (body(lines=[{"sku": "TEA-001", "quantity": 3, "unit_price": "59.90"}]),
                    body(external_id="WEB-10002"), body(status="pending_payment")):
        r = client.post(ORDERS, json=changed, headers={"Idempotency-Key": "web-10001"})
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "idempotency_key_reused"
        assert problem["order_id"] == first.json()["id"]
        assert "Idempotency-Key" in problem["detail"]
    assert order_ids(client) == [first.json()["id"]]
    assert list(hub.queries.verify_audit([tenant.tenant_id])) == audit_before
    assert client.get(first.headers["Location"]).json() == first.json()


def test_without_a_key_the_same_external_id_is_409_order_already_exists(client: TestClient, hub: OrderHub,
                                                                        tenant: IssuedKey) -> None:
    first = client.post(ORDERS, json=body())
    assert first.status_code == 201
    audit_before = list(hub.queries.verify_audit([tenant.tenant_id]))
    for headers in ({}, {"Idempotency-Key": "a-new-key"}):
        r = client.post(ORDERS, json=body(), headers=headers)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "order_already_exists"
        assert r.json()["order_id"] == first.json()["id"]
    assert order_ids(client) == [first.json()["id"]]
    assert list(hub.queries.verify_audit([tenant.tenant_id])) == audit_before
    # The failed attempt did not remember "a-new-key": it can create another order later.
    r = client.post(ORDERS, json=body(external_id="WEB-2"), headers={"Idempotency-Key": "a-new-key"})
    assert r.status_code == 201, r.text


def test_keys_are_scoped_to_the_tenant(client: TestClient, hub: OrderHub) -> None:
    other: IssuedKey = hub.bus.handle(commands.CreateTenant("other"))
    mine = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "shared"})
    theirs = client.post(ORDERS, json=body(), headers={"Idempotency-Key": "shared",
                                                       "Authorization": f"Bearer {other.api_key}"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["tenant"] == other.tenant_id


@pytest.fixture
def server(hub: OrderHub) -> Iterator[str]:
    """OrderHub served by a real uvicorn on a background thread (no workers)."""
    running = RunningServer(hub, host="127.0.0.1", port=free_port(), workers=False, log_level="warning")
    running.start()
    try:
        yield running.url
    finally:
        running.stop()


THREADS = 8


def burst(url: str, path: str, payload: dict[str, Any], headers: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """POST the same request from THREADS threads released at the same instant."""
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def post() -> None:
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                barrier.wait(timeout=10)
                r = http.post(path, json=payload, headers=headers)
            with lock:
                results.append((r.status_code, r.json()))
        except BaseException as exc:  # surfaced below, in the test thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == THREADS
    return results


def test_concurrent_retries_with_one_key_create_exactly_one_order(server: str, client: TestClient) -> None:
    results = burst(server, ORDERS, body(), {**client.headers, "Idempotency-Key": "burst-1"})
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * (THREADS - 1) + [201], [b for _, b in results]
    assert len({b["id"] for _, b in results}) == 1
    oid = results[0][1]["id"]
    assert order_ids(client) == [oid]
    assert len(created_entries(client, oid)) == 1
    assert client.get(f"{ORDERS}/{oid}/timeline").json()["verified"] is True


def test_concurrent_creates_without_a_key_store_one_order(server: str, client: TestClient) -> None:
    results = burst(server, ORDERS, body(), dict(client.headers))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [409] * (THREADS - 1), [b for _, b in results]
    [winner] = [b for s, b in results if s == 201]
    assert {b["code"] for s, b in results if s == 409} == {"order_already_exists"}
    assert {b["order_id"] for s, b in results if s == 409} == {winner["id"]}
    assert order_ids(client) == [winner["id"]]
    assert len(created_entries(client, winner["id"])) == 1


def test_concurrent_events_with_one_key_apply_once(server: str, client: TestClient) -> None:
    oid = client.post(ORDERS, json=body()).json()["id"]
    results = burst(server, f"{ORDERS}/{oid}/events", {"type": "ship", "key": "ship-1"}, dict(client.headers))
    assert {s for s, _ in results} == {200}, [b for _, b in results]
    outcomes = sorted(b["outcome"] for _, b in results)
    assert outcomes == ["applied"] + ["duplicate"] * (THREADS - 1)
    order = client.get(f"{ORDERS}/{oid}").json()
    assert (order["status"], order["version"]) == ("shipped", 2)
    actions = [i["action"] for i in client.get(f"{ORDERS}/{oid}/timeline").json()["items"]]
    assert actions == ["order.created", "order.ship"]
