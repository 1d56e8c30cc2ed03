"""The orders HTTP API (DESIGN.md §6, §8): create, get, list with filters and cursor
pagination, events and their outcomes, and the hash-chained timeline — on SQLite and
PostgreSQL."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from tests.http_helpers import auth

ORDERS = "/api/v1/orders"

# DESIGN.md §8, verbatim.
EXAMPLE: dict[str, Any] = {
    "external_id": "WEB-10001", "channel": "own_site", "shop": "main", "currency": "CNY",
    "status": "paid", "placed_at": "2026-11-21T10:00:00+08:00", "paid_at": "2026-11-21T10:00:05+08:00",
    "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                         "detail": "文三路 90 号", "postcode": "310000", "name": "王小明", "phone": "138****5678"},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}],
    "shipping_fee": "0.00", "discount": "0.00", "tags": ["express"],
}


def order_body(external_id: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["external_id"] = external_id
    body.update(changes)
    return body


def create(client: TestClient, external_id: str, **changes: Any) -> dict[str, Any]:
    r = client.post(ORDERS, json=order_body(external_id, **changes))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def event(client: TestClient, order_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"{ORDERS}/{order_id}/events", json={"type": type_, **fields})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def all_ids(client: TestClient, **params: Any) -> list[str]:
    r = client.get(ORDERS, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return [o["id"] for o in r.json()["items"]]


# ---------------------------------------------------------------------------- create / get


def test_create_answers_201_with_the_canonical_order(client: TestClient, tenant: IssuedKey) -> None:
    r = client.post(ORDERS, json=EXAMPLE, headers={"Idempotency-Key": "web-10001"})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    order = r.json()
    assert order["id"].startswith("ord_")
    assert r.headers["Location"] == f"{ORDERS}/{order['id']}"
    assert order["tenant"] == tenant.tenant_id
    assert (order["channel"], order["shop"], order["external_id"]) == ("own_site", "main", "WEB-10001")
    assert order["status"] == "paid"
    assert order["payment_status"] == "paid"
    assert order["total"] == {"amount": 11980, "currency": "CNY"}
    assert order["subtotal"] == {"amount": 11980, "currency": "CNY"}
    assert order["shipping_fee"] == {"amount": 0, "currency": "CNY"}
    assert order["version"] == 1
    assert order["conflict_count"] == 0
    assert order["tags"] == ["express"]
    assert order["buyer"] == {"name": "王小明", "phone": "138****5678", "email": None}
    assert order["shipping_address"]["city"] == "杭州市"
    # Times come out as UTC: 10:00 +08:00 is 02:00Z.
    assert order["placed_at"].startswith("2026-11-21T02:00:00")
    assert order["placed_at"].endswith("Z")
    assert order["paid_at"].startswith("2026-11-21T02:00:05")
    [line] = order["lines"]
    assert line == {"line_no": 1, "sku": "TEA-001", "title": "龙井 250g", "quantity": 2,
                    "unit_price": {"amount": 5990, "currency": "CNY"}, "discount": {"amount": 0, "currency": "CNY"},
                    "tax": {"amount": 0, "currency": "CNY"}, "total": {"amount": 11980, "currency": "CNY"}}
    assert order["shipments"] == [] and order["aftersales"] == [] and order["reservations"] == []

    # GET answers the same order, and the Location header points at it.
    got = client.get(r.headers["Location"])
    assert got.status_code == 200
    assert got.json() == order


def test_money_is_exact_across_currencies_and_totals(client: TestClient) -> None:
    order = create(client, "WEB-MONEY", shipping_fee="10.00", discount="0.10", lines=[
        {"sku": "A", "quantity": 3, "unit_price": "0.10"},
        {"sku": "B", "quantity": 1, "unit_price": "19.99", "discount": "1.00", "tax": "0.01"},
    ])
    # 3 × 0.10 = 0.30 exactly (never 0.30000000000000004), + 19.00 + 10.00 − 0.10
    assert [ln["total"]["amount"] for ln in order["lines"]] == [30, 1900]
    assert order["total"] == {"amount": 30 + 1900 + 1000 - 10, "currency": "CNY"}
    jpy = create(client, "WEB-JPY", currency="JPY", lines=[{"sku": "A", "quantity": 2, "unit_price": "1500"}],
                 shipping_fee="0", discount="0")
    assert jpy["total"] == {"amount": 3000, "currency": "JPY"}


# ---------------------------------------------------------------------------- list


def test_list_filters_by_status_channel_shop_and_text(client: TestClient) -> None:
    a = create(client, "WEB-A1", status="pending_payment", paid_at=None,
               buyer={"name": "Zhang San", "phone": None, "email": None},
               lines=[{"sku": "TEA-LJ-250", "quantity": 1, "unit_price": "88.00"}])
    b = create(client, "WEB-B2", shop="outlet", buyer={"name": "Li Si", "phone": None, "email": None},
               lines=[{"sku": "CUP-01", "quantity": 1, "unit_price": "12.00"}])
    c = create(client, "JD-C3", channel="jd", buyer={"name": "Wang Wu", "phone": None, "email": None},
               lines=[{"sku": "CUP-02", "quantity": 1, "unit_price": "15.00"},
                      {"sku": "TEA-PU-100", "quantity": 1, "unit_price": "30.00"}])
    d = create(client, "WEB-D4", buyer={"name": "李小龙", "phone": "139****0000", "email": None})
    assert set(all_ids(client)) == {a["id"], b["id"], c["id"], d["id"]}

    assert all_ids(client, status="pending_payment") == [a["id"]]
    assert set(all_ids(client, status="paid")) == {b["id"], c["id"], d["id"]}
    assert all_ids(client, status="shipped") == []
    assert all_ids(client, channel="jd") == [c["id"]]
    assert set(all_ids(client, channel="own_site")) == {a["id"], b["id"], d["id"]}
    assert all_ids(client, shop="outlet") == [b["id"]]
    assert set(all_ids(client, shop="main", channel="own_site")) == {a["id"], d["id"]}
    assert all_ids(client, shop="main", channel="own_site", status="pending_payment") == [a["id"]]
    assert all_ids(client, shop="outlet", channel="jd") == []

    # q: external id, buyer name and SKU; case-insensitive, substring.
    assert all_ids(client, q="WEB-B2") == [b["id"]]
    assert all_ids(client, q="web-a") == [a["id"]]
    assert all_ids(client, q="zhang") == [a["id"]]
    assert all_ids(client, q="Wang Wu") == [c["id"]]
    assert all_ids(client, q="小龙") == [d["id"]]
    assert len(all_ids(client, q="小明")) == 4  # every order ships to DESIGN §8's 王小明
    assert all_ids(client, q="TEA-PU") == [c["id"]]
    assert set(all_ids(client, q="TEA-")) == {a["id"], c["id"], d["id"]}
    assert set(all_ids(client, q="cup")) == {b["id"], c["id"]}
    assert all_ids(client, q="cup", channel="jd") == [c["id"]]
    assert all_ids(client, q="no-such-thing") == []
    # LIKE wildcards in q are literal characters, not patterns.
    assert all_ids(client, q="%") == []
    assert all_ids(client, q="TEA_LJ") == []  # "_" would match the "-" of TEA-LJ as a pattern

    # Every listed order carries its lines and money like GET /orders/{id}.
    [listed] = client.get(ORDERS, params={"q": "TEA-PU"}).json()["items"]
    full = client.get(f"{ORDERS}/{c['id']}").json()
    assert listed["lines"] == full["lines"] and listed["total"] == full["total"]


def _walk(client: TestClient, limit: int, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        r = client.get(ORDERS, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append([o["id"] for o in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not terminate"


def test_cursor_pagination_visits_every_order_once_newest_first(client: TestClient) -> None:
    created = [create(client, f"WEB-{n:03d}", **({} if n % 2 else {"status": "pending_payment", "paid_at": None}))["id"]
               for n in range(25)]
    pages = _walk(client, 7)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    flat = [i for p in pages for i in p]
    assert flat == list(reversed(created))  # newest first, each exactly once
    assert all_ids(client) == flat  # the same stable order as one big page

    # The cursor composes with filters.
    paid = [i for n, i in enumerate(created) if n % 2]
    pages = _walk(client, 5, status="paid")
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for p in pages for i in p] == list(reversed(paid))

    # A page size that divides the total exactly still ends with next_cursor null.
    pages = _walk(client, 25)
    assert [len(p) for p in pages] == [25]

    # Orders created after a cursor was issued don't disturb the pages after it.
    first = client.get(ORDERS, params={"limit": 7}).json()
    newer = create(client, "WEB-NEWER")["id"]
    rest = _walk_from(client, first["next_cursor"], 7)
    assert newer not in rest
    assert [o["id"] for o in first["items"]] + rest == list(reversed(created))


def _walk_from(client: TestClient, cursor: str, limit: int) -> list[str]:
    seen: list[str] = []
    while cursor is not None:
        page = client.get(ORDERS, params={"limit": limit, "cursor": cursor}).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
    return seen


@pytest.fixture
def frozen_hub(settings: Settings, engine: Engine) -> OrderHub:
    """An OrderHub whose clock only moves when a test says so (for created_at ties)."""
    return bootstrap(settings, engine=engine, clock=FixedClock(datetime(2026, 11, 21, 2, 0, tzinfo=UTC)))


def test_cursor_pagination_is_stable_when_orders_share_a_timestamp(frozen_hub: OrderHub) -> None:
    issued: IssuedKey = frozen_hub.bus.handle(commands.CreateTenant("acme"))
    clock = frozen_hub.clock
    assert isinstance(clock, FixedClock)
    created: list[tuple[str, str]] = []
    with TestClient(create_app(frozen_hub), headers=auth(issued.api_key)) as client:
        for n in range(25):
            if n % 4 == 0:
                clock.advance(seconds=1)  # groups of four orders share one created_at
            order = create(client, f"WEB-{n:03d}")
            created.append((order["created_at"], order["id"]))
        expected = [i for _, i in sorted(created, reverse=True)]
        for limit in (1, 3, 4, 7):
            flat = [i for p in _walk(client, limit) for i in p]
            assert flat == expected, f"limit={limit}"


def test_page_size_and_bad_cursor_are_problems(client: TestClient) -> None:
    create(client, "WEB-1")
    for cursor in ("garbage!!", "Zm9v", "W10", "eyJhIjogMX0", "WyJub3QtYS1kYXRlIiwgIngiXQ"):
        r = client.get(ORDERS, params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "invalid_input"
        assert problem["field"] == "cursor"
        assert [e["field"] for e in problem["errors"]] == ["cursor"]
    for limit in (0, 201, -1):
        r = client.get(ORDERS, params={"limit": limit})
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"
        assert r.json()["errors"][0]["field"] == "limit"


# ---------------------------------------------------------------------------- events


def test_events_hold_release_pay_and_cancel(client: TestClient) -> None:
    order = create(client, "WEB-EV", status="pending_payment", paid_at=None)
    oid = order["id"]
    assert (order["status"], order["payment_status"], order["version"]) == ("pending_payment", "unpaid", 1)

    held = event(client, oid, "hold", reason="address check")
    assert held["outcome"] == "applied"
    assert held["order"]["status"] == "on_hold"
    assert held["order"]["hold_reason"] == "address check"
    assert held["order"]["held_from"] == "pending_payment"
    assert held["order"]["version"] == 2

    again = event(client, oid, "hold", reason="still checking")
    assert again["outcome"] == "unchanged"
    assert again["order"]["version"] == 2

    released = event(client, oid, "release")
    assert released["outcome"] == "applied"
    assert released["order"]["status"] == "pending_payment"
    assert released["order"]["hold_reason"] is None and released["order"]["held_from"] is None
    assert released["order"]["version"] == 3

    paid = event(client, oid, "mark_paid", key="pay-1")
    assert paid["outcome"] == "applied"
    assert paid["order"]["status"] == "paid"
    assert paid["order"]["payment_status"] == "paid"
    assert paid["order"]["paid_at"] is not None
    assert paid["order"]["version"] == 4

    # The same dedup key again: nothing changes, not even the version.
    dup = event(client, oid, "mark_paid", key="pay-1")
    assert dup["outcome"] == "duplicate"
    assert dup["order"] == paid["order"]
    # The Idempotency-Key header is the dedup key when the body has none.
    r = client.post(f"{ORDERS}/{oid}/events", json={"type": "hold"}, headers={"Idempotency-Key": "hold-1"})
    assert r.json()["outcome"] == "applied" and r.json()["order"]["version"] == 5
    r = client.post(f"{ORDERS}/{oid}/events", json={"type": "hold"}, headers={"Idempotency-Key": "hold-1"})
    assert r.json()["outcome"] == "duplicate" and r.json()["order"]["version"] == 5
    event(client, oid, "release")

    cancelled = event(client, oid, "cancel", reason="buyer request")
    assert cancelled["outcome"] == "applied"
    assert cancelled["order"]["status"] == "cancelled"
    assert cancelled["order"]["cancel_reason"] == "buyer request"
    assert cancelled["order"]["cancelled_at"] is not None
    assert cancelled["order"]["version"] == 7
    assert client.get(f"{ORDERS}/{oid}").json() == cancelled["order"]

    actions = [i["action"] for i in client.get(f"{ORDERS}/{oid}/timeline").json()["items"]]
    assert actions == ["order.created", "order.hold", "order.release", "order.mark_paid", "order.hold",
                       "order.release", "order.cancel"]


def test_stale_event_is_ignored_and_counted(client: TestClient) -> None:
    oid = create(client, "WEB-STALE")["id"]
    shipped = event(client, oid, "ship")
    assert shipped["order"]["status"] == "shipped"
    version = shipped["order"]["version"]

    stale = event(client, oid, "mark_paid", key="late-pay", reason="channel resent paid")
    assert stale["outcome"] == "ignored_stale"
    assert stale["order"]["status"] == "shipped"
    assert stale["order"]["conflict_count"] == 1
    assert stale["order"]["version"] == version + 1  # the conflict is recorded on the order

    stale2 = event(client, oid, "ready_to_ship")
    assert stale2["outcome"] == "ignored_stale"
    assert stale2["order"]["conflict_count"] == 2
    assert stale2["order"]["status"] == "shipped"

    # The same stale event re-sent with its key is a duplicate, not a second conflict.
    dup = event(client, oid, "mark_paid", key="late-pay")
    assert dup["outcome"] == "duplicate"
    assert dup["order"]["conflict_count"] == 2

    items = client.get(f"{ORDERS}/{oid}/timeline").json()["items"]
    assert [i["action"] for i in items] == ["order.created", "order.ship", "order.event_ignored_stale",
                                            "order.event_ignored_stale"]
    # Recorded as current → requested status, with why it was not applied.
    assert (items[2]["from_status"], items[2]["to_status"]) == ("shipped", "paid")
    assert "stale mark_paid" in items[2]["reason"]
    assert items[2]["payload"]["event_key"] == "late-pay"
    assert items[2]["payload"]["conflict_count"] == 1
    assert (items[3]["from_status"], items[3]["to_status"]) == ("shipped", "ready_to_ship")


def test_expected_version_mismatch_is_409_and_changes_nothing(client: TestClient) -> None:
    oid = create(client, "WEB-VER", status="pending_payment", paid_at=None)["id"]
    ok = event(client, oid, "hold", reason="check", expected_version=1)
    assert ok["outcome"] == "applied" and ok["order"]["version"] == 2
    before = client.get(f"{ORDERS}/{oid}").json()
    timeline_before = client.get(f"{ORDERS}/{oid}/timeline").json()

    r = client.post(f"{ORDERS}/{oid}/events", json={"type": "cancel", "expected_version": 1})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "version_mismatch"
    assert r.json()["field"] == "expected_version"
    assert client.get(f"{ORDERS}/{oid}").json() == before
    assert client.get(f"{ORDERS}/{oid}/timeline").json() == timeline_before

    # With the current version the same event goes through.
    assert event(client, oid, "cancel", expected_version=2)["order"]["status"] == "cancelled"


# ---------------------------------------------------------------------------- timeline


def test_timeline_records_who_why_and_links_the_hash_chain(client: TestClient, tenant: IssuedKey) -> None:
    r = client.post(ORDERS, json=order_body("WEB-TL", status="pending_payment", paid_at=None),
                    headers={"X-Request-ID": "req-create-1"})
    assert r.status_code == 201
    assert r.headers["X-Request-ID"] == "req-create-1"
    oid = r.json()["id"]
    other = create(client, "WEB-OTHER")["id"]  # interleaved entries about another order
    steps = [("hold", "address check", "req-hold-2"), ("release", None, "req-release-3"),
             ("mark_paid", None, "req-pay-4"), ("cancel", "buyer request", "req-cancel-5")]
    for n, (type_, reason, trace) in enumerate(steps):
        r = client.post(f"{ORDERS}/{oid}/events", json={"type": type_, "reason": reason},
                        headers={"X-Request-ID": trace})
        assert r.status_code == 200, r.text
        event(client, other, "release" if n % 2 else "hold")

    r = client.get(f"{ORDERS}/{oid}/timeline")
    assert r.status_code == 200
    timeline = r.json()
    assert timeline["order_id"] == oid
    assert timeline["verified"] is True
    items = timeline["items"]
    assert [i["action"] for i in items] == ["order.created", "order.hold", "order.release", "order.mark_paid",
                                            "order.cancel"]
    assert [i["trace_id"] for i in items] == ["req-create-1", "req-hold-2", "req-release-3", "req-pay-4",
                                              "req-cancel-5"]
    assert {i["actor"] for i in items} == {f"key:{tenant.key_id}"}
    assert {i["source"] for i in items} == {"api"}
    assert all(i["verified"] for i in items)
    assert [(i["from_status"], i["to_status"]) for i in items] == [
        (None, "pending_payment"), ("pending_payment", "on_hold"), ("on_hold", "pending_payment"),
        ("pending_payment", "paid"), ("paid", "cancelled")]
    assert items[1]["reason"] == "address check"
    assert items[4]["reason"] == "buyer request"
    assert items[0]["payload"]["order"]["id"] == oid
    assert items[0]["payload"]["order"]["total"] == 11980

    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(b - a > 1 for a, b in itertools.pairwise(seqs)), "other entries interleave"
    for prev, cur in itertools.pairwise(items):
        assert cur["prev_hash"] != cur["hash"]
        if cur["seq"] == prev["seq"] + 1:
            assert cur["prev_hash"] == prev["hash"]
        else:
            assert cur["prev_hash"] != prev["hash"]
    for item in items:
        assert len(item["hash"]) == 64 and len(item["prev_hash"]) == 64
        assert len(item["payload_digest"]) == 64

    # The whole tenant chain (both orders, tenant and key entries) verifies too.
    hub: OrderHub = client.app.state.hub  # type: ignore[attr-defined]
    [(_, entries, broken)] = list(hub.queries.verify_audit([tenant.tenant_id]))
    assert broken is None
    assert entries == items[-1]["seq"] + 1  # other's last hold/release comes after our cancel


def test_a_request_without_request_id_gets_one(client: TestClient) -> None:
    r = client.post(ORDERS, json=order_body("WEB-TRACE"))
    trace = r.headers["X-Request-ID"]
    assert len(trace) >= 16
    [item] = client.get(f"{ORDERS}/{r.json()['id']}/timeline").json()["items"]
    assert item["trace_id"] == trace


def test_unknown_order_is_404_on_every_order_route(client: TestClient) -> None:
    for method, path, body in (("GET", f"{ORDERS}/ord_nope", None), ("GET", f"{ORDERS}/ord_nope/timeline", None),
                               ("POST", f"{ORDERS}/ord_nope/events", {"type": "cancel"})):
        r = client.request(method, path, json=body)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "order_not_found"
        assert r.json()["instance"] == path
