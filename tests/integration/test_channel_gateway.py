"""The channel gateway end to end in-process (DESIGN.md §2 steps 1–3), on SQLite and
PostgreSQL: shops, signed webhooks into the inbox with dedup, the normalizer, stale
status never regressing an order, dead letters with field paths and replay, channel
health, the circuit breaker, and filter rules holding (never dropping) orders."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from orderhub.adapters.channels.mapping import BUILTIN_DIR
from orderhub.adapters.channels.signatures import sign
from orderhub.adapters.db.tables import alerts, inbox
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.domain import ids
from orderhub.domain.commands import Actor, ReplayInbox
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.normalizer import Normalizer
from tests.http_helpers import auth

SECRET = "shpss_test_secret_0001"
NOW = datetime.now(UTC).replace(microsecond=0)


def shopify_order(order_id: int, *, updated: datetime, financial: str = "paid", fulfillment: str | None = None,
                  cancelled: bool = False, **changes: Any) -> dict[str, Any]:
    """A Shopify REST order of our own making (shape per the reference, values invented)."""
    created = NOW - timedelta(hours=2)
    body: dict[str, Any] = {
        "id": order_id, "name": f"#{order_id % 10000}", "currency": "USD", "financial_status": financial,
        "fulfillment_status": fulfillment, "cancelled_at": updated.isoformat() if cancelled else None,
        "created_at": created.isoformat(), "processed_at": created.isoformat(), "updated_at": updated.isoformat(),
        "email": "j***@example.com", "phone": None, "test": False, "tags": "vip, gift",
        "customer": {"first_name": "Jane", "last_name": "Doe"},
        "shipping_address": {"name": "Jane Doe", "address1": "1 Main St", "address2": None, "city": "Springfield",
                             "province": "Oregon", "country_code": "US", "zip": "97477", "phone": "555-***-0100"},
        "line_items": [
            {"id": 1, "sku": "TEA-001", "title": "Green tea", "variant_title": "250g", "quantity": 2,
             "price": "12.50", "discount_allocations": [{"amount": "1.00"}], "tax_lines": [{"price": "0.00"}]},
            {"id": 2, "sku": "CUP-9", "title": "Cup", "variant_title": None, "quantity": 1, "price": "8.00",
             "discount_allocations": [], "tax_lines": []},
        ],
        "shipping_lines": [{"code": "standard", "price": "5.00"}],
        "payment_gateway_names": ["shopify_payments"],
    }
    body.update(changes)
    return body


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    with TestClient(create_app(hub), base_url="https://oh.test") as c:
        reply = c.post("/api/v1/shops", headers=auth(tenant.api_key),
                       json={"code": "sh-1", "channel": "shopify", "name": "Tea shop", "secret": SECRET})
        assert reply.status_code == 201, reply.text
        yield c


@pytest.fixture
def normalizer(hub: OrderHub) -> Normalizer:
    return Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics, worker_id="test")


def push(client: TestClient, payload: dict[str, Any] | bytes, *, secret: str = SECRET, shop: str = "sh-1",
         topic: str = "orders/updated") -> Any:
    body = payload if isinstance(payload, bytes) else raw(payload)
    headers = sign("shopify", body=body, secret=secret, url="")
    headers |= {"X-Shopify-Topic": topic, "Content-Type": "application/json"}
    return client.post(f"/webhooks/shopify/{shop}", content=body, headers=headers)


def inbox_count(hub: OrderHub, **where: Any) -> int:
    query = select(func.count()).select_from(inbox)
    for name, value in where.items():
        query = query.where(inbox.c[name] == value)
    with hub.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def order_of(client: TestClient, tenant: IssuedKey, external_id: str) -> dict[str, Any]:
    order_id = ids.order_id(tenant.tenant_id, "shopify", "sh-1", external_id)
    reply = client.get(f"/api/v1/orders/{order_id}", headers=auth(tenant.api_key))
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_shop_registration_validates_and_is_unique_per_channel(client: TestClient, tenant: IssuedKey,
                                                               hub: OrderHub) -> None:
    headers = auth(tenant.api_key)
    again = client.post("/api/v1/shops", headers=headers,
                        json={"code": "sh-1", "channel": "shopify", "name": "x", "secret": SECRET})
    assert again.status_code == 409 and again.json()["code"] == "shop_already_exists"
    bad_channel = client.post("/api/v1/shops", headers=headers,
                              json={"code": "sh-2", "channel": "myspace", "name": "x", "secret": SECRET})
    assert bad_channel.status_code == 422 and bad_channel.json()["code"] == "invalid_shop"
    assert "shopify" in bad_channel.json()["detail"]
    bad_zone = client.post("/api/v1/shops", headers=headers, json={
        "code": "sh-3", "channel": "shopify", "name": "x", "secret": SECRET, "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422 and bad_zone.json()["field"] == "timezone"
    listed = client.get("/api/v1/shops", headers=headers).json()
    assert [(s["channel"], s["code"], s["webhook_path"]) for s in listed] == [
        ("shopify", "sh-1", "/webhooks/shopify/sh-1")]
    assert all("secret" not in s for s in listed)
    viewer = hub.bus.handle(__import__("orderhub.domain.commands", fromlist=["CreateApiKey"]).CreateApiKey(
        tenant=tenant.tenant, role="viewer"))
    denied = client.post("/api/v1/shops", headers=auth(viewer.api_key),
                         json={"code": "sh-4", "channel": "shopify", "name": "x", "secret": SECRET})
    assert denied.status_code == 403


def test_signed_webhook_is_stored_once_and_becomes_one_order(client: TestClient, tenant: IssuedKey, hub: OrderHub,
                                                             normalizer: Normalizer) -> None:
    payload = shopify_order(5001, updated=NOW - timedelta(minutes=30))
    first = push(client, payload)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    again = push(client, payload)
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "message_id": first.json()["message_id"], "duplicate": True}
    assert inbox_count(hub) == 1

    report = normalizer.drain()
    assert report.applied == 1 and report.dead == 0
    order = order_of(client, tenant, "5001")
    assert order["status"] == "paid" and order["channel"] == "shopify" and order["shop"] == "sh-1"
    # 2 × 12.50 − 1.00 + 8.00 + 5.00 shipping = 37.00
    assert order["total"] == {"amount": 3700, "currency": "USD"}
    assert [(ln["sku"], ln["quantity"]) for ln in order["lines"]] == [("TEA-001", 2), ("CUP-9", 1)]

    assert order["raw_ref"] == first.json()["message_id"]
    message = client.get(f"/api/v1/inbox/{order['raw_ref']}", headers=auth(tenant.api_key)).json()
    assert message["status"] == "applied" and message["order_id"] == order["id"]
    assert message["body_json"] == payload and "x-shopify-hmac-sha256" not in message["headers"]

    # The same order version arriving by poll is the same dedup key: still one row, one order.
    from orderhub.domain.commands import ReceiveChannelMessage  # noqa: PLC0415
    polled = hub.bus.handle(ReceiveChannelMessage(channel="shopify", shop_code="sh-1", source="poll",
                                                  body=raw(payload), verify=False, tenant_id=tenant.tenant_id))
    assert polled.status == "duplicate"
    assert inbox_count(hub) == 1


def test_out_of_order_status_never_regresses_the_order(client: TestClient, tenant: IssuedKey,
                                                       normalizer: Normalizer) -> None:
    shipped = shopify_order(5002, updated=NOW - timedelta(minutes=5), fulfillment="fulfilled")
    pending = shopify_order(5002, updated=NOW - timedelta(minutes=50), financial="pending")
    paid = shopify_order(5002, updated=NOW - timedelta(minutes=40))
    assert push(client, shipped).status_code == 202
    normalizer.drain()
    assert order_of(client, tenant, "5002")["status"] == "shipped"
    for late in (pending, paid):
        assert push(client, late).json()["status"] == "accepted"
    normalizer.drain()
    order = order_of(client, tenant, "5002")
    assert order["status"] == "shipped"
    assert order["conflict_count"] == 2
    timeline = client.get(f"/api/v1/orders/{order['id']}/timeline", headers=auth(tenant.api_key)).json()
    assert [i["action"] for i in timeline["items"]].count("order.event_ignored_stale") == 2


def test_skipped_steps_are_applied_in_order(client: TestClient, tenant: IssuedKey, normalizer: Normalizer) -> None:
    push(client, shopify_order(5003, updated=NOW - timedelta(minutes=30), financial="pending"))
    normalizer.drain()
    assert order_of(client, tenant, "5003")["status"] == "pending_payment"
    push(client, shopify_order(5003, updated=NOW - timedelta(minutes=10), fulfillment="fulfilled"))
    normalizer.drain()
    order = order_of(client, tenant, "5003")
    assert order["status"] == "shipped" and order["payment_status"] == "paid"


def test_bad_input_answers_401_400_404_413_and_keeps_what_it_should(client: TestClient, tenant: IssuedKey,
                                                                     hub: OrderHub) -> None:
    payload = shopify_order(5004, updated=NOW)
    forged = push(client, payload, secret="not-the-secret-at-all")
    assert forged.status_code == 401 and forged.json()["code"] == "signature_invalid"
    unsigned = client.post("/webhooks/shopify/sh-1", content=raw(payload))
    assert unsigned.status_code == 401
    assert inbox_count(hub) == 0
    health = client.get("/api/v1/channels/health", headers=auth(tenant.api_key)).json()
    assert health["channels"][0]["signature_failures"] == 2

    unknown = push(client, payload, shop="nope")
    assert unknown.status_code == 404 and unknown.json()["code"] == "shop_not_found"
    assert client.post("/webhooks/myspace/sh-1", content=b"{}").status_code == 404

    garbage = push(client, b"{not json")
    assert garbage.status_code == 400 and garbage.json()["code"] == "unreadable_message"
    assert inbox_count(hub, status="rejected") == 1

    huge = b'{"id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert push(client, huge).status_code == 413
    assert inbox_count(hub) == 1


def test_missing_field_is_dead_lettered_with_its_path_then_replayed(client: TestClient, tenant: IssuedKey,
                                                                    hub: OrderHub, normalizer: Normalizer) -> None:
    broken = shopify_order(5005, updated=NOW)
    del broken["line_items"][1]["price"]
    accepted = push(client, broken)
    assert accepted.status_code == 202
    for n in range(3):
        push(client, shopify_order(5100 + n, updated=NOW))
    report = normalizer.drain()
    assert report.dead == 1 and report.applied == 3
    message = client.get(f"/api/v1/inbox/{accepted.json()['message_id']}", headers=auth(tenant.api_key)).json()
    assert message["status"] == "dead"
    assert message["error"]["code"] == "mapping_failed"
    assert message["error"]["field"] == "line_items[1].price"

    health = client.get("/api/v1/channels/health", headers=auth(tenant.api_key)).json()
    shopify = health["channels"][0]
    assert (shopify["received"], shopify["mapped"], shopify["failed"]) == (4, 3, 1)
    assert shopify["failure_rate"] == 0.25 and shopify["flagged"] is True
    assert shopify["top_failing_fields"] == [{"field": "line_items[1].price", "count": 1}]

    # Replayed with the mapping unchanged, it is dead again (and still kept).
    replay = client.post("/api/v1/inbox/replay", headers=auth(tenant.api_key))
    assert replay.json()["requeued"] == 1
    assert normalizer.drain().dead == 1
    assert inbox_count(hub, status="dead") == 1


def test_a_mapping_fix_in_orderhub_home_then_replay_recovers_dead_letters(
        client: TestClient, tenant: IssuedKey, hub: OrderHub, normalizer: Normalizer) -> None:
    broken = shopify_order(5011, updated=NOW)
    line = broken["line_items"][1]
    line["price_set"] = {"shop_money": {"amount": line.pop("price"), "currency_code": "USD"}}
    push(client, broken)
    assert normalizer.drain().dead == 1

    # The fix is a mapping file edit: an override spec that falls back to price_set.
    builtin = (BUILTIN_DIR / "shopify.yaml").read_text(encoding="utf-8")
    fixed = builtin.replace("unit_price: {path: price, as: money}",
                            'unit_price: {path: [price, "price_set.shop_money.amount"], as: money}')
    assert fixed != builtin
    overrides = hub.settings.home / "channels"
    overrides.mkdir(parents=True, exist_ok=True)
    (overrides / "shopify.yaml").write_text(fixed, encoding="utf-8")
    restarted = bootstrap(hub.settings, engine=hub.engine)   # specs are loaded when OrderHub starts
    replayed = restarted.bus.handle(ReplayInbox(actor=Actor(tenant.tenant_id, "test", "test")))
    assert replayed == 1
    report = Normalizer(restarted.uow_factory, specs=restarted.specs, clock=restarted.clock,
                        metrics=restarted.metrics, worker_id="test").drain()
    assert (report.applied, report.dead) == (1, 0)
    order = order_of(client, tenant, "5011")
    assert order["total"] == {"amount": 3700, "currency": "USD"}


def test_breaker_parks_a_channel_after_too_many_conflicts_until_resumed(
        client: TestClient, tenant: IssuedKey, hub: OrderHub, normalizer: Normalizer) -> None:
    push(client, shopify_order(5006, updated=NOW - timedelta(minutes=1), fulfillment="fulfilled"))
    normalizer.drain()
    # Five late 'paid' versions of one shipped order: the order jumps more than 3 times.
    for n in range(5):
        push(client, shopify_order(5006, updated=NOW - timedelta(minutes=30 + n)))
    report = normalizer.drain()
    assert report.conflicts == 4 and report.parked == 1
    assert order_of(client, tenant, "5006")["status"] == "shipped"
    health = client.get("/api/v1/channels/health", headers=auth(tenant.api_key)).json()["channels"][0]
    assert health["breaker"]["state"] == "open" and "jumped" in health["breaker"]["reason"]
    with hub.engine.connect() as conn:
        assert conn.execute(select(alerts.c.kind).where(alerts.c.resolved_at.is_(None))).scalars().all() == [
            "channel_breaker_open"]

    push(client, shopify_order(5007, updated=NOW))
    assert normalizer.drain().parked == 1
    assert inbox_count(hub, status="parked") == 2

    resumed = client.post("/api/v1/channels/shopify/resume", headers=auth(tenant.api_key))
    assert resumed.status_code == 200 and resumed.json()["requeued"] == 2
    normalizer.drain()
    assert order_of(client, tenant, "5007")["status"] == "paid"
    assert client.post("/api/v1/channels/shopify/resume", headers=auth(tenant.api_key)).status_code == 409


def test_filter_rules_hold_test_orders_and_unlisted_payment_methods(client: TestClient, tenant: IssuedKey,
                                                                    normalizer: Normalizer) -> None:
    push(client, shopify_order(5008, updated=NOW, test=True))
    normalizer.drain()
    held = order_of(client, tenant, "5008")
    assert held["status"] == "on_hold" and "test" in held["hold_reason"]

    rules = client.get("/api/v1/rules/order_filters", headers=auth(tenant.api_key)).json()
    body = copy.deepcopy(rules["body"])
    body.setdefault("params", {})["accepted_payment_methods"] = ["shopify_payments"]
    stored = client.put("/api/v1/rules/order_filters", headers=auth(tenant.api_key), json=body)
    assert stored.status_code == 200, stored.text
    push(client, shopify_order(5009, updated=NOW, payment_gateway_names=["wallet_x"]))
    push(client, shopify_order(5010, updated=NOW))
    normalizer.drain()
    wallet = order_of(client, tenant, "5009")
    assert wallet["status"] == "on_hold" and "payment" in wallet["hold_reason"]
    assert order_of(client, tenant, "5010")["status"] == "paid"


def test_a_message_that_keeps_killing_its_worker_is_dead_lettered(client: TestClient, tenant: IssuedKey,
                                                                  hub: OrderHub, normalizer: Normalizer) -> None:
    message_id = push(client, shopify_order(5012, updated=NOW)).json()["message_id"]
    # As if seven workers had claimed it and died: in progress, lease long expired.
    with hub.engine.begin() as conn:
        conn.execute(update(inbox).where(inbox.c.message_id == message_id).values(
            status="in_progress", attempts=7, locked_by="dead-worker", locked_until=NOW - timedelta(hours=1)))
    report = normalizer.run_once()
    assert (report.claimed, report.dead, report.applied) == (1, 1, 0)
    message = client.get(f"/api/v1/inbox/{message_id}", headers=auth(tenant.api_key)).json()
    assert message["status"] == "dead" and message["error"]["code"] == "processing_failed"
    assert message["attempts"] == 8
