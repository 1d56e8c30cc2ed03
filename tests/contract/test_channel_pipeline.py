"""Every built-in channel through the whole gateway, on SQLite and PostgreSQL, with its
recorded payloads (tests/fixtures/channels/<channel>/):

* a signed push stored once: the same payload again, or the same version by poll, is a
  duplicate of the same inbox row, and the normalizer makes exactly one order;
* a later version of the order moves it forward; delivered out of order (later first,
  earlier after), the order never regresses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from orderhub.adapters.channels.signatures import sign
from orderhub.adapters.db.tables import inbox, orders
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands, ids
from orderhub.domain.orders.states import PROGRESS_RANK, OrderStatus
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.normalizer import Normalizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "channels"
SECRET = "contract-secret-0001"
APP_KEY = "contract-app-key"
URL = "https://oh.test/webhooks/{channel}/{shop}"


def _pairs() -> list[tuple[str, str, str]]:
    """(channel, earlier case, later case) for every fixture that names the case it follows."""
    out = []
    for expected in sorted(FIXTURES.glob("*/*.expected.json")):
        data = json.loads(expected.read_text(encoding="utf-8"))
        if data.get("later_than") and data.get("kind") == "order":
            earlier = expected.parent / f"{data['later_than']}.expected.json"
            if json.loads(earlier.read_text(encoding="utf-8")).get("kind") == "order":
                out.append((expected.parent.name, data["later_than"], expected.name.removesuffix(".expected.json")))
    return out


PAIRS = _pairs()


def _case(channel: str, case: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    folder = FIXTURES / channel
    body = (folder / f"{case}.json").read_bytes()
    headers_file = folder / f"{case}.headers.json"
    headers = json.loads(headers_file.read_text()) if headers_file.exists() else {}
    return body, headers, json.loads((folder / f"{case}.expected.json").read_text(encoding="utf-8"))


def test_every_channel_has_a_version_pair() -> None:
    channels = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert channels - {c for c, _, _ in PAIRS} == set()


@pytest.fixture
def setup(hub: OrderHub, tenant: IssuedKey) -> tuple[OrderHub, commands.Actor, Normalizer]:
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    # No filter rules: this suite checks mapping and dedup, not the merchant's holds.
    hub.bus.handle(commands.PutRuleSet(actor=actor, kind="order_filters", body={"params": {}, "rules": []}))
    normalizer = Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics,
                            worker_id="contract")
    return hub, actor, normalizer


def _register(hub: OrderHub, actor: commands.Actor, channel: str, shop: str) -> None:
    hub.bus.handle(commands.RegisterShop(actor=actor, code=shop, channel=channel, name=shop, secret=SECRET,
                                         settings={"app_key": APP_KEY}))


def _push(hub: OrderHub, channel: str, shop: str, case: str, *, source: str = "webhook") -> str:
    body, headers, _ = _case(channel, case)
    scheme = hub.specs.get(channel).signature
    url = URL.format(channel=channel, shop=shop)
    pushed = source == "webhook" and scheme != "none"
    if pushed:
        headers = headers | sign(scheme, body=body, secret=SECRET, url=url, app_key=APP_KEY)
    received = hub.bus.handle(commands.ReceiveChannelMessage(
        channel=channel, shop_code=shop, source=source if pushed or source != "webhook" else "import", body=body,
        headers=headers, url=url, verify=pushed, tenant_id=None if pushed else actor_tenant(hub, channel, shop)))
    return str(received.status)


def actor_tenant(hub: OrderHub, channel: str, shop: str) -> str:
    with hub.uow_factory() as uow:
        found = uow.shops.by_code(channel, shop)
    assert found is not None
    return found.tenant_id


def _order(hub: OrderHub, tenant_id: str, channel: str, shop: str, external_id: str) -> Any:
    with hub.engine.connect() as conn:
        rows = conn.execute(select(orders.c.status, orders.c.id).where(
            orders.c.tenant_id == tenant_id, orders.c.channel == channel, orders.c.shop == shop)).all()
    assert len(rows) == 1, f"expected exactly one {channel} order, found {len(rows)}"
    assert rows[0].id == ids.order_id(tenant_id, channel, shop, external_id)
    return rows[0]


def _rank(status: str) -> int:
    return PROGRESS_RANK.get(OrderStatus(status), 99)


@pytest.mark.parametrize(("channel", "earlier", "later"), PAIRS, ids=[f"{c}:{e}>{la}" for c, e, la in PAIRS])
def test_one_order_per_version_and_no_regression(setup: tuple[OrderHub, commands.Actor, Normalizer],
                                                 channel: str, earlier: str, later: str) -> None:
    hub, actor, normalizer = setup
    tenant = actor.tenant_id
    _, _, first = _case(channel, earlier)
    _, _, second = _case(channel, later)
    external_id = first["order"]["external_id"]

    _register(hub, actor, channel, "in-order")
    assert _push(hub, channel, "in-order", earlier) == "accepted"
    assert _push(hub, channel, "in-order", earlier) == "duplicate"
    assert _push(hub, channel, "in-order", earlier, source="poll") == "duplicate"
    report = normalizer.drain()
    assert (report.applied, report.dead) == (1, 0)
    assert _order(hub, tenant, channel, "in-order", external_id).status == first["order"]["status"]
    assert _push(hub, channel, "in-order", later) == "accepted"
    normalizer.drain()
    assert _order(hub, tenant, channel, "in-order", external_id).status == second["order"]["status"]

    # Out of order: the later version first, then the earlier one.
    _register(hub, actor, channel, "reversed")
    _push(hub, channel, "reversed", later)
    normalizer.drain()
    _push(hub, channel, "reversed", earlier)
    normalizer.drain()
    final = _order(hub, tenant, channel, "reversed", external_id).status
    assert final == second["order"]["status"]
    with hub.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(inbox).where(
            inbox.c.channel == channel, inbox.c.status == "dead")).scalar_one()
    assert stored == 0
