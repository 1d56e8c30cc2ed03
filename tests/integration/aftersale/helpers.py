"""Shared setup for the after-sale tests (issue 6): paid orders in every stage, a warehouse
with stock, cases opened over the API and refunds executed by the relay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.workers.aftersale import RefundRelay
from tests.integration.fulfillment.helpers import ok, problem
from tests.integration.test_api_orders import order_body

START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
CASES = "/api/v1/aftersales"
__all__ = ["CASES", "START", "act", "ok", "open_case", "order", "outbox_rows", "problem", "run_refunds", "stock"]


def stock(api: TestClient, skus: dict[str, int] | None = None) -> None:
    """Warehouse HZ1 with stock (default 20 TEA-001 and 20 TEA-002)."""
    ok(api.post("/api/v1/warehouses", json={"code": "HZ1", "name": "杭州仓", "province": "浙江省",
                                            "city": "杭州市"}), 201)
    for sku, on_hand in (skus or {"TEA-001": 20, "TEA-002": 20}).items():
        ok(api.put(f"/api/v1/inventory/HZ1/{sku}", json={"on_hand": on_hand}))


def order(api: TestClient, external_id: str, *, stage: str = "paid", lines: list[dict[str, Any]] | None = None,
          **changes: Any) -> dict[str, Any]:
    """A paid own-site order (default: 2 × TEA-001 at 59.90 = 119.80), moved to ``stage``
    (paid, shipped or delivered) through order events."""
    body = order_body(external_id, **changes)
    if lines is not None:
        body["lines"] = lines
    created = ok(api.post("/api/v1/orders", json=body), 201)
    for event in {"paid": [], "shipped": ["ship"], "delivered": ["ship", "deliver"]}[stage]:
        ok(api.post(f"/api/v1/orders/{created['id']}/events", json={"type": event}))
    return created


def open_case(api: TestClient, order_id: str, type_: str = "refund_only", reason: str = "changed_mind",
              status: int = 201, **fields: Any) -> dict[str, Any]:
    """POST /aftersales, asserting ``status``."""
    return ok(api.post(CASES, json={"order_id": order_id, "type": type_, "reason": reason, **fields}), status)


def act(api: TestClient, case_id: str, action: str, status: int = 200, **fields: Any) -> dict[str, Any]:
    """POST /aftersales/{id}/actions, asserting ``status``."""
    return ok(api.post(f"{CASES}/{case_id}/actions", json={"action": action, **fields}), status)


def run_refunds(relay: RefundRelay) -> int:
    """Deliver every due refund; how many rows the relay handled."""
    total = 0
    while (handled := relay.run_once()):
        total += handled
    return total


def outbox_rows(hub: OrderHub, kind: str) -> list[Any]:
    """Outbox rows of ``kind``, oldest first."""
    from sqlalchemy import select  # noqa: PLC0415 - test helper

    from orderhub.adapters.db.tables import outbox  # noqa: PLC0415

    with hub.engine.connect() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.kind == kind).order_by(outbox.c.id)))
