"""API keys, roles and tenant isolation on the HTTP API (DESIGN.md §6: "A key sees its own
tenant only"), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orderhub.adapters.db.tables import api_keys
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey

ORDERS = "/api/v1/orders"
BODY: dict[str, Any] = {
    "external_id": "WEB-1", "currency": "CNY", "status": "paid", "placed_at": "2026-11-21T10:00:00+08:00",
    "buyer": {"name": "Acme Buyer", "phone": None, "email": None},
    "lines": [{"sku": "TEA-001", "quantity": 2, "unit_price": "59.90"}],
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(hub: OrderHub) -> Iterator[TestClient]:
    """A client without credentials: every request says which key it uses."""
    with TestClient(create_app(hub)) as c:
        yield c


@pytest.fixture
def acme_order(client: TestClient, tenant: IssuedKey) -> dict[str, Any]:
    r = client.post(ORDERS, json=BODY, headers=bearer(tenant.api_key))
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


def issue(hub: OrderHub, role: str, tenant: str = "acme") -> IssuedKey:
    issued: IssuedKey = hub.bus.handle(commands.CreateApiKey(tenant=tenant, role=role))
    return issued


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = r.json()
    assert problem["code"] == code
    assert problem["status"] == status
    return problem


def audit_counts(hub: OrderHub) -> list[tuple[str, int, Any]]:
    return list(hub.queries.verify_audit())


# ---------------------------------------------------------------------------- authentication


@pytest.mark.usefixtures("acme_order")
def test_missing_or_malformed_credentials_are_401(client: TestClient, tenant: IssuedKey) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "},
                    {"Authorization": f"Basic {tenant.api_key}"}, {"Authorization": tenant.api_key},
                    {"X-API-Key": tenant.api_key}):
        for method, path in (("GET", ORDERS), ("POST", ORDERS)):
            r = client.request(method, path, json=BODY if method == "POST" else None, headers=headers)
            problem = assert_problem(r, 401, "invalid_api_key")
            assert r.headers["WWW-Authenticate"] == "Bearer", headers
            assert "Authorization: Bearer" in problem["detail"] or "API key" in problem["detail"]


def test_unknown_key_is_401_and_changes_nothing(client: TestClient, hub: OrderHub, tenant: IssuedKey,
                                                acme_order: dict[str, Any]) -> None:
    before = audit_counts(hub)
    near_miss = tenant.api_key[:-1] + ("A" if tenant.api_key[-1] != "A" else "B")
    for key in ("ohk_00000000_nope", near_miss, tenant.api_key.upper(), tenant.api_key + "x"):
        r = client.post(ORDERS, json={**BODY, "external_id": "WEB-2"}, headers=bearer(key))
        assert_problem(r, 401, "invalid_api_key")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        r = client.post(f"{ORDERS}/{acme_order['id']}/events", json={"type": "cancel"}, headers=bearer(key))
        assert_problem(r, 401, "invalid_api_key")
        assert_problem(client.get(f"{ORDERS}/{acme_order['id']}", headers=bearer(key)), 401, "invalid_api_key")
    assert audit_counts(hub) == before
    r = client.get(ORDERS, headers=bearer(tenant.api_key))
    assert [o["id"] for o in r.json()["items"]] == [acme_order["id"]]
    assert r.json()["items"][0]["status"] == "paid"


def test_an_anonymous_caller_gets_401_before_any_validation(client: TestClient) -> None:
    for payload in ({"currency": "XXX"}, {**BODY, "lines": []}, BODY):
        assert_problem(client.post(ORDERS, json=payload), 401, "invalid_api_key")
    assert_problem(client.post(f"{ORDERS}/ord_x/events", json={"type": "teleport"}), 401, "invalid_api_key")
    assert_problem(client.get(ORDERS, params={"limit": 0, "cursor": "junk"}), 401, "invalid_api_key")


def test_health_and_docs_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 200


# ---------------------------------------------------------------------------- roles


@pytest.mark.parametrize("role", ["viewer", "warehouse", "finance"])
def test_read_only_roles_can_read_but_not_write(client: TestClient, hub: OrderHub, role: str,
                                                acme_order: dict[str, Any]) -> None:
    key = issue(hub, role).api_key
    oid = acme_order["id"]
    assert client.get(ORDERS, headers=bearer(key)).status_code == 200
    assert client.get(f"{ORDERS}/{oid}", headers=bearer(key)).json()["id"] == oid
    assert client.get(f"{ORDERS}/{oid}/timeline", headers=bearer(key)).status_code == 200

    before = audit_counts(hub)
    r = client.post(ORDERS, json={**BODY, "external_id": "WEB-2"}, headers=bearer(key))
    problem = assert_problem(r, 403, "permission_denied")
    assert role in problem["detail"]
    r = client.post(f"{ORDERS}/{oid}/events", json={"type": "cancel", "reason": "nope"}, headers=bearer(key))
    assert_problem(r, 403, "permission_denied")
    r = client.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x", "secret": "s" * 20},
                    headers=bearer(key))
    assert_problem(r, 403, "permission_denied")
    assert audit_counts(hub) == before
    after = client.get(f"{ORDERS}/{oid}", headers=bearer(key)).json()
    assert after == acme_order | {"shipments": [], "aftersales": [], "reservations": []}
    assert len(client.get(ORDERS, headers=bearer(key)).json()["items"]) == 1


def test_operator_can_create_orders_and_apply_events(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    operator = issue(hub, "operator")
    r = client.post(ORDERS, json=BODY, headers=bearer(operator.api_key))
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    r = client.post(f"{ORDERS}/{oid}/events", json={"type": "hold", "reason": "check"},
                    headers=bearer(operator.api_key))
    assert r.status_code == 200 and r.json()["outcome"] == "applied"
    # Each entry names the key that acted.
    items = client.get(f"{ORDERS}/{oid}/timeline", headers=bearer(tenant.api_key)).json()["items"]
    assert [i["actor"] for i in items] == [f"key:{operator.key_id}"] * 2
    # Operators manage orders, not webhook subscriptions (admin only).
    r = client.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x", "secret": "s" * 20},
                    headers=bearer(operator.api_key))
    assert_problem(r, 403, "permission_denied")


def test_admin_can_do_everything(client: TestClient, tenant: IssuedKey) -> None:
    key = bearer(tenant.api_key)
    assert client.post(ORDERS, json=BODY, headers=key).status_code == 201
    r = client.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x", "secret": "s" * 20},
                    headers=key)
    assert r.status_code == 201
    assert "secret" not in r.json()
    assert [e["url"] for e in client.get("/api/v1/webhook-endpoints", headers=key).json()] == ["http://127.0.0.1:9/x"]


# ---------------------------------------------------------------------------- tenant isolation


def test_another_tenant_sees_nothing_of_acme(client: TestClient, hub: OrderHub, tenant: IssuedKey,
                                             acme_order: dict[str, Any]) -> None:
    other: IssuedKey = hub.bus.handle(commands.CreateTenant("other"))
    b = bearer(other.api_key)
    oid = acme_order["id"]
    timeline_before = client.get(f"{ORDERS}/{oid}/timeline", headers=bearer(tenant.api_key)).json()
    audit_before = dict((t, (n, br)) for t, n, br in audit_counts(hub))

    # Acme's order does not exist for "other": 404 (not 403), so its existence doesn't leak.
    for method, path, payload in (("GET", f"{ORDERS}/{oid}", None), ("GET", f"{ORDERS}/{oid}/timeline", None),
                                  ("POST", f"{ORDERS}/{oid}/events", {"type": "cancel", "reason": "hijack"}),
                                  ("POST", f"{ORDERS}/{oid}/events", {"type": "ship"})):
        r = client.request(method, path, json=payload, headers=b)
        problem = assert_problem(r, 404, "order_not_found")
        assert problem["detail"] == "order 'ord_missing' not found".replace("ord_missing", oid)
    # The same answer as for an id that exists nowhere.
    missing = client.get(f"{ORDERS}/ord_doesnotexist", headers=b).json()
    assert missing["code"] == "order_not_found"

    # Searching and filtering can't reach it either.
    for params in ({}, {"q": "WEB-1"}, {"q": "acme"}, {"q": oid}, {"status": "paid"}, {"channel": "own_site"}):
        page = client.get(ORDERS, params=params, headers=b).json()
        assert page == {"items": [], "next_cursor": None}, params

    # Other's attempt changed nothing on acme's order or acme's chain.
    a = bearer(tenant.api_key)
    assert client.get(f"{ORDERS}/{oid}", headers=a).json() == acme_order
    assert client.get(f"{ORDERS}/{oid}/timeline", headers=a).json() == timeline_before
    audit_after = dict((t, (n, br)) for t, n, br in audit_counts(hub))
    assert audit_after[tenant.tenant_id] == audit_before[tenant.tenant_id]

    # The same external id in the other tenant is a different order; each tenant lists its own.
    r = client.post(ORDERS, json=BODY, headers=b)
    assert r.status_code == 201, r.text
    theirs = r.json()
    assert theirs["id"] != oid and theirs["tenant"] == other.tenant_id
    assert [o["id"] for o in client.get(ORDERS, headers=b).json()["items"]] == [theirs["id"]]
    assert [o["id"] for o in client.get(ORDERS, headers=a).json()["items"]] == [oid]
    assert_problem(client.get(f"{ORDERS}/{theirs['id']}", headers=a), 404, "order_not_found")
    # Acme's keys of every role are confined the same way.
    viewer = issue(hub, "viewer")
    assert_problem(client.get(f"{ORDERS}/{theirs['id']}", headers=bearer(viewer.api_key)), 404, "order_not_found")


def test_the_api_keys_table_never_holds_a_plain_key(hub: OrderHub, tenant: IssuedKey) -> None:
    issued = [tenant, issue(hub, "viewer"), issue(hub, "operator"), hub.bus.handle(commands.CreateTenant("other"))]
    with hub.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(api_keys)).all()]
    assert len(rows) == len(issued)
    dump = repr(rows)
    for key in issued:
        assert key.api_key not in dump
        secret_part = key.api_key.split("_", 2)[2]  # ohk_<prefix>_<secret>; the secret may contain "_"
        assert secret_part not in dump
    # What is stored is a SHA-256 hex digest and a short, non-secret prefix.
    for row in rows:
        assert len(row["key_hash"]) == 64 and int(row["key_hash"], 16) >= 0
        assert len(row["prefix"]) <= 24
    assert {row["id"] for row in rows} == {k.key_id for k in issued}
