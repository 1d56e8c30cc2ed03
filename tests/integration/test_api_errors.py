"""Every rejected request answers application/problem+json with a stable code (docs/errors.md),
names the field at fault, and changes nothing: no order, no audit entry, no outbox message."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orderhub.adapters.db.tables import outbox
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey

ORDERS = "/api/v1/orders"
PROBLEM_KEYS = {"type", "title", "status", "code", "detail", "instance"}

BODY: dict[str, Any] = {
    "external_id": "WEB-NEW", "channel": "own_site", "shop": "main", "currency": "CNY", "status": "paid",
    "placed_at": "2026-11-21T10:00:00+08:00", "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}],
}


def body(**changes: Any) -> dict[str, Any]:
    b = copy.deepcopy(BODY)
    b.update(changes)
    return b


def line(**changes: Any) -> dict[str, Any]:
    """A body whose only line is TEA-001 × 1 @ 59.90 with ``changes`` applied (None removes a key)."""
    ln: dict[str, Any] = {"sku": "TEA-001", "quantity": 1, "unit_price": "59.90", **changes}
    return body(lines=[{k: v for k, v in ln.items() if v is not None}])


@dataclass
class World:
    hub: OrderHub
    client: TestClient
    tenant: IssuedKey
    paid_id: str
    shipped_id: str

    def state(self) -> dict[str, Any]:
        """Everything a rejected request must leave alone."""
        listed = self.client.get(ORDERS, params={"limit": 200})
        assert listed.status_code == 200
        return {
            "orders": listed.json()["items"],
            "timelines": {oid: self.client.get(f"{ORDERS}/{oid}/timeline").json()
                          for oid in (self.paid_id, self.shipped_id)},
            "audit": list(self.hub.queries.verify_audit()),
            "outbox": outbox_counts(self.hub),
        }


def outbox_counts(hub: OrderHub) -> dict[str, int]:
    """Outbox rows per status, read straight from the table.

    (``hub.queries.outbox_counts()`` would do, but it calls SQLAlchemy 2.1's deprecated
    ``Result.tuples()``, which is an error under this suite's warning filter.)
    """
    with hub.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {status: n for status, n in rows}


@pytest.fixture
def world(hub: OrderHub, tenant: IssuedKey) -> Iterator[World]:
    """A tenant subscribed to its events (so every change would add outbox rows), one paid
    order and one shipped order."""
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url="http://127.0.0.1:9/hook",
                                                    secret="s" * 32, events=("*",)))
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {tenant.api_key}"}) as client:
        paid = client.post(ORDERS, json=body(external_id="WEB-PAID"))
        shipped = client.post(ORDERS, json=body(external_id="WEB-SHIPPED"))
        assert paid.status_code == shipped.status_code == 201
        r = client.post(f"{ORDERS}/{shipped.json()['id']}/events", json={"type": "ship"})
        assert r.status_code == 200
        w = World(hub, client, tenant, paid.json()["id"], shipped.json()["id"])
        assert w.state()["outbox"].get("pending", 0) >= 3  # the subscription sees every change
        yield w


def assert_problem(r: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = r.json()
    assert problem.keys() >= PROBLEM_KEYS, problem
    assert problem["status"] == status
    assert problem["code"] == code, problem
    assert problem["type"].endswith(f"/{code}")
    assert problem["title"] and problem["detail"]
    assert problem["instance"] == r.request.url.path
    assert problem["trace_id"] == r.headers["X-Request-ID"]
    if field is not None:
        assert problem["field"] == field, problem
        assert field in [e["field"] for e in problem["errors"]], problem
        assert all({"field", "message", "type"} <= e.keys() for e in problem["errors"])
    return problem


# (name, request body, status, code, field at fault)
BAD_ORDERS: list[tuple[str, Any, int, str, str]] = [
    ("unknown currency", body(currency="XXX"), 422, "unknown_currency", "currency"),
    ("lower-case currency", body(currency="cny"), 422, "unknown_currency", "currency"),
    ("zero quantity", line(quantity=0), 422, "validation_error", "lines[0].quantity"),
    ("negative quantity", line(quantity=-3), 422, "validation_error", "lines[0].quantity"),
    ("fractional quantity", line(quantity=1.5), 422, "validation_error", "lines[0].quantity"),
    ("quantity as text", line(quantity="2"), 422, "validation_error", "lines[0].quantity"),
    ("line without SKU", line(sku=None), 422, "validation_error", "lines[0].sku"),
    ("blank SKU", line(sku="   "), 422, "validation_error", "lines[0].sku"),
    ("second line without SKU", body(lines=[{"sku": "A", "quantity": 1, "unit_price": "1.00"},
                                            {"quantity": 1, "unit_price": "1.00"}]),
     422, "validation_error", "lines[1].sku"),
    ("float unit price", line(unit_price=59.9), 422, "validation_error", "lines[0].unit_price"),
    ("integer unit price", line(unit_price=59), 422, "validation_error", "lines[0].unit_price"),
    ("float shipping fee", body(shipping_fee=0.5), 422, "validation_error", "shipping_fee"),
    ("float line tax", line(tax=0.1), 422, "validation_error", "lines[0].tax"),
    ("too many decimals", line(unit_price="1.234"), 422, "invalid_money", "lines[0].unit_price"),
    ("decimals JPY does not have", body(currency="JPY", lines=[{"sku": "A", "quantity": 1, "unit_price": "1.5"}]),
     422, "invalid_money", "lines[0].unit_price"),
    ("not a number", line(unit_price="abc"), 422, "invalid_money", "lines[0].unit_price"),
    ("exponent notation", line(unit_price="1e3"), 422, "invalid_money", "lines[0].unit_price"),
    ("too many decimals in the order discount", body(discount="0.001"), 422, "invalid_money", "discount"),
    ("negative unit price", line(unit_price="-1.00"), 422, "invalid_order", "lines[0].unit_price"),
    ("line discount above the line", line(discount="60.00"), 422, "invalid_order", "lines[0].discount"),
    ("naive placed_at", body(placed_at="2026-11-21T10:00:00"), 422, "validation_error", "placed_at"),
    ("naive paid_at", body(paid_at="2026-11-21T10:00:05"), 422, "validation_error", "paid_at"),
    ("unreadable placed_at", body(placed_at="yesterday"), 422, "validation_error", "placed_at"),
    ("missing placed_at", {k: v for k, v in BODY.items() if k != "placed_at"}, 422, "validation_error",
     "placed_at"),
    ("no lines", body(lines=[]), 422, "validation_error", "lines"),
    ("unknown status", body(status="teleported"), 422, "validation_error", "status"),
    ("created on hold", body(status="on_hold"), 422, "invalid_order", "status"),
    ("unknown field", body(surprise=True), 422, "validation_error", "surprise"),
    ("blank external id", body(external_id="  "), 422, "validation_error", "external_id"),
    ("bad address country", body(shipping_address={"country": "China"}), 422, "validation_error",
     "shipping_address.country"),
]


def check_each(cases: list[Any], check: Any) -> None:
    """Run ``check`` on every case and report all failing cases at once (one database setup
    for the whole table keeps the suite fast)."""
    failures = []
    for case in cases:
        try:
            check(*case)
        except AssertionError as exc:
            failures.append(f"{case[0]}: {exc}")
    assert not failures, "\n".join(failures)


def test_bad_orders_are_problems_and_change_nothing(world: World) -> None:
    before = world.state()

    def check(name: str, payload: Any, status: int, code: str, field: str) -> None:
        r = world.client.post(ORDERS, json=payload, headers={"Idempotency-Key": f"bad-{name}"})
        assert_problem(r, status, code, field)
        assert world.state() == before

    check_each(BAD_ORDERS, check)
    # No failed request burned its Idempotency-Key: a valid body goes through with each one.
    for n, (name, *_) in enumerate(BAD_ORDERS):
        ok = world.client.post(ORDERS, json=body(external_id=f"WEB-OK-{n}"), headers={"Idempotency-Key": f"bad-{name}"})
        assert ok.status_code == 201, (name, ok.text)


def test_malformed_json_is_400(world: World) -> None:
    before = world.state()
    for raw in (b'{"external_id": ', b"{bad}", b"\xff\xfe", b"[1, 2,]"):
        r = world.client.post(ORDERS, content=raw, headers={"Content-Type": "application/json"})
        problem = assert_problem(r, 400, "malformed_json")
        assert "JSON" in problem["detail"]
        r = world.client.post(f"{ORDERS}/{world.paid_id}/events", content=raw,
                              headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "malformed_json")
    assert world.state() == before


def test_several_problems_are_all_listed(world: World) -> None:
    before = world.state()
    payload = body(currency="CNY", placed_at="2026-11-21T10:00:00",
                   lines=[{"sku": "", "quantity": 0, "unit_price": 1.5}])
    r = world.client.post(ORDERS, json=payload)
    problem = assert_problem(r, 422, "validation_error")
    fields = {e["field"] for e in problem["errors"]}
    assert {"placed_at", "lines[0].sku", "lines[0].quantity", "lines[0].unit_price"} <= fields
    assert problem["field"] in fields
    assert "more problem" in problem["detail"]
    assert world.state() == before


# (name, order fixture attribute, event body, status, code, field)
BAD_EVENTS: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
    ("deliver a paid order", "paid_id", {"type": "deliver"}, 409, "invalid_transition", "type"),
    ("complete a paid order", "paid_id", {"type": "complete"}, 409, "invalid_transition", "type"),
    ("release an order not on hold", "paid_id", {"type": "release"}, 409, "invalid_transition", "type"),
    ("cancel a shipped order", "shipped_id", {"type": "cancel", "reason": "too late"}, 409, "invalid_transition",
     "type"),
    ("hold a shipped order", "shipped_id", {"type": "hold"}, 409, "invalid_transition", "type"),
    ("unknown event type", "paid_id", {"type": "teleport"}, 422, "validation_error", "type"),
    ("missing event type", "paid_id", {"reason": "why"}, 422, "validation_error", "type"),
    ("stale expected_version", "paid_id", {"type": "hold", "expected_version": 7}, 409, "version_mismatch",
     "expected_version"),
    ("naive occurred_at", "paid_id", {"type": "hold", "occurred_at": "2026-11-21T10:00:00"}, 422,
     "validation_error", "occurred_at"),
    ("unknown field", "paid_id", {"type": "hold", "colour": "red"}, 422, "validation_error", "colour"),
]


def test_bad_events_are_problems_and_change_nothing(world: World) -> None:
    before = world.state()

    def check(name: str, which: str, payload: dict[str, Any], status: int, code: str, field: str | None) -> None:
        order_id = getattr(world, which)
        r = world.client.post(f"{ORDERS}/{order_id}/events", json={**payload, "key": f"k-{name}"})
        assert_problem(r, status, code, field)
        assert world.state() == before

    check_each(BAD_EVENTS, check)


def test_a_rejected_event_does_not_burn_its_key(world: World) -> None:
    r = world.client.post(f"{ORDERS}/{world.paid_id}/events", json={"type": "deliver", "key": "k-1"})
    assert_problem(r, 409, "invalid_transition", "type")
    r = world.client.post(f"{ORDERS}/{world.paid_id}/events", json={"type": "hold", "key": "k-1"})
    assert r.status_code == 200
    assert r.json()["outcome"] == "applied"


def test_unknown_order_and_route(world: World) -> None:
    before = world.state()
    for method, path, payload in (("GET", f"{ORDERS}/ord_missing", None),
                                  ("GET", f"{ORDERS}/ord_missing/timeline", None),
                                  ("POST", f"{ORDERS}/ord_missing/events", {"type": "cancel"})):
        problem = assert_problem(world.client.request(method, path, json=payload), 404, "order_not_found")
        assert "ord_missing" in problem["detail"]
    for path in ("/api/v1/nothing-here", "/api/v2/orders", f"{ORDERS}/{world.paid_id}/nope"):
        assert_problem(world.client.get(path), 404, "route_not_found")
    r = world.client.delete(f"{ORDERS}/{world.paid_id}")
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"
    assert_problem(world.client.put(ORDERS, json=body()), 405, "method_not_allowed")
    assert world.state() == before


def test_amounts_too_large_to_store_are_422(world: World, hub: OrderHub, tenant: IssuedKey) -> None:
    before = world.state()
    payload = line(quantity=1_000_000, unit_price="90000000000000.00")  # 9e21 minor units in total
    with TestClient(create_app(hub), raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {tenant.api_key}"}) as client:
        r = client.post(ORDERS, json=payload)
    assert world.state() == before
    problem = assert_problem(r, 422, r.json().get("code", "?"))
    assert problem["code"] in ("invalid_money", "invalid_order")
    assert problem["field"].startswith("lines[0]")


def test_bad_query_parameters(world: World) -> None:
    for params, field in (({"limit": "lots"}, "limit"), ({"limit": 0}, "limit"), ({"limit": 1000}, "limit"),
                          ({"q": "x" * 201}, "q"), ({"status": "bogus"}, "status")):
        assert_problem(world.client.get(ORDERS, params=params), 422, "validation_error", field)
    assert_problem(world.client.get(ORDERS, params={"cursor": "not-a-cursor"}), 422, "invalid_input", "cursor")


def test_request_id_is_echoed_in_problems(world: World) -> None:
    r = world.client.post(ORDERS, json=body(currency="XXX"), headers={"X-Request-ID": "trace-me-42"})
    assert r.headers["X-Request-ID"] == "trace-me-42"
    assert r.json()["trace_id"] == "trace-me-42"
