"""The channel write-back worker against the fake channel server over real HTTP, on SQLite
and PostgreSQL: an outbox row goes in, the fake channel records the tracking number.

The hub runs on a FixedClock, so backoff is reached by moving the clock, not by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete

from orderhub.adapters.channels.writeback import TrackingWriteBack
from orderhub.adapters.db import queue
from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.outbox import SqlOutboxRepository
from orderhub.adapters.db.tables import shops
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.simulation.fake_channel import FakeChannel
from orderhub.workers.outbox_relay import RetryPolicy
from orderhub.workers.writeback import CHANNEL_TRACKING, ChannelWriteBack, writeback_message

START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
APP_SECRET = "app-secret-0123456789"

# channel -> (external id, OrderHub carrier, shop carrier_codes, what the channel records as carrier)
CASES: dict[str, tuple[str, str, dict[str, str], str]] = {
    "shopify": ("820982911946154508", "ups", {}, "UPS"),
    "woocommerce": ("727", "dhl", {}, "DHL"),
    "tiktok_shop": ("576461413038785752", "usps", {"usps": "6617675021119438849"}, "6617675021119438849"),
    "taobao": ("2231958349221032771", "yto", {}, "YTO"),
    "pinduoduo": ("241121-123456789012345", "zto", {"zto": "115"}, "115"),
    "own_site": ("WEB-1001", "sf", {}, "sf"),
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def hub(settings: Settings, engine: Engine, clock: FixedClock) -> OrderHub:
    """Overrides the shared ``hub``: the same wiring on a clock the test moves."""
    return bootstrap(settings, engine=engine, clock=clock)


@pytest.fixture
def fake() -> Iterator[FakeChannel]:
    with FakeChannel(app_secret=APP_SECRET) as server:
        yield server


def register_shop(hub: OrderHub, actor: commands.Actor, fake: FakeChannel, channel: str,
                  carrier_codes: dict[str, str] | None = None) -> None:
    settings: dict[str, object] = {"api_base_url": fake.base_url, "access_token": fake.access_token,
                                   "app_key": fake.app_key, "carrier_codes": carrier_codes or {}}
    hub.bus.handle(commands.RegisterShop(actor=actor, code="s1", channel=channel, name="Tea shop",
                                         secret=APP_SECRET, settings=settings))


def queue_writeback(hub: OrderHub, tenant_id: str, channel: str, external_id: str, carrier: str) -> None:
    write_back = TrackingWriteBack(channel=channel, shop_code="s1", external_id=external_id, carrier=carrier,
                                   waybill_no="1Z999AA10123456784", shipment_id="shp_1", shipped_at=START,
                                   line_skus=(("TEA-001", 2),))
    with hub.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        SqlOutboxRepository(conn).add([writeback_message(tenant_id, write_back, "ord_1")], now=hub.clock.now())


def make_worker(hub: OrderHub, http: httpx.Client, **options: Any) -> ChannelWriteBack:
    options.setdefault("rand", lambda: 0.5)  # half the backoff ceiling, every time
    return ChannelWriteBack(hub.engine, hub.clock, hub.metrics, http_client=http, **options)


def only_row(hub: OrderHub, tenant_id: str) -> Any:
    with hub.engine.connect() as conn:
        [row] = SqlOutboxRepository(conn).list(tenant_id)
    return row


@pytest.mark.parametrize("channel", sorted(CASES))
def test_outbox_row_reaches_the_channel(channel: str, hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                        http: httpx.Client, clock: FixedClock) -> None:
    external_id, carrier, codes, channel_carrier = CASES[channel]
    register_shop(hub, actor, fake, channel, codes)
    queue_writeback(hub, actor.tenant_id, channel, external_id, carrier)
    row = only_row(hub, actor.tenant_id)
    assert (row.kind, row.target, row.topic) == (CHANNEL_TRACKING, f"{channel}:s1", "channel.tracking")
    assert row.payload == {"order_id": "ord_1", "external_id": external_id, "channel": channel, "shop": "s1",
                           "carrier": carrier, "waybill_no": "1Z999AA10123456784", "shipment_id": "shp_1",
                           "shipped_at": START.isoformat(), "lines": [{"sku": "TEA-001", "quantity": 2}]}

    assert make_worker(hub, http).run_once() == 1

    assert fake.writebacks == [{"channel": channel, "external_id": external_id, "carrier": channel_carrier,
                                "waybill_no": "1Z999AA10123456784"}]
    done = only_row(hub, actor.tenant_id)
    assert (done.status, done.attempts, done.delivered_at) == (queue.DONE, 0, clock.now())
    assert make_worker(hub, http).run_once() == 0


def test_unavailable_channel_is_retried_with_backoff_then_delivered(
        hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, clock: FixedClock) -> None:
    register_shop(hub, actor, fake, "taobao")
    queue_writeback(hub, actor.tenant_id, "taobao", "2231958349221032771", "sf")
    fake.fail(1, status=503)
    worker = make_worker(hub, http)

    assert worker.run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert (row.status, row.attempts, row.last_error) == (queue.PENDING, 1, "HTTP 503: scripted 503")
    assert row.next_attempt_at == START + timedelta(seconds=1)  # base 2 s x jitter 0.5
    assert fake.writebacks == []
    assert worker.run_once() == 0  # not due yet

    clock.advance(seconds=1)
    assert worker.run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DONE, 1)
    assert [w["carrier"] for w in fake.writebacks] == ["SF"]


def test_throttled_lookup_is_retried(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                     http: httpx.Client, clock: FixedClock) -> None:
    register_shop(hub, actor, fake, "shopify")
    queue_writeback(hub, actor.tenant_id, "shopify", "1001", "fedex")
    fake.throttle(1)
    worker = make_worker(hub, http)
    assert worker.run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert (row.status, row.last_error) == (queue.PENDING, "HTTP 429: scripted 429")
    clock.advance(seconds=1)
    assert worker.run_once() == 1
    assert only_row(hub, actor.tenant_id).status == queue.DONE
    assert fake.writebacks == [{"channel": "shopify", "external_id": "1001", "carrier": "FedEx",
                                "waybill_no": "1Z999AA10123456784"}]


def test_refusal_is_dead_lettered_with_the_channels_message(hub: OrderHub, actor: commands.Actor,
                                                            fake: FakeChannel, http: httpx.Client) -> None:
    register_shop(hub, actor, fake, "woocommerce")
    queue_writeback(hub, actor.tenant_id, "woocommerce", "727", "sf")
    fake.fail(1, status=400)

    assert make_worker(hub, http).run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DEAD, 1)
    assert row.last_error == "woocommerce refused the write-back: HTTP 400: scripted 400"
    assert fake.writebacks == []


def test_shopify_order_already_fulfilled_is_dead_lettered(hub: OrderHub, actor: commands.Actor,
                                                          fake: FakeChannel, http: httpx.Client) -> None:
    register_shop(hub, actor, fake, "shopify")
    queue_writeback(hub, actor.tenant_id, "shopify", "1001", "ups")
    queue_writeback(hub, actor.tenant_id, "shopify", "1001", "ups")  # a second shipment of the same order

    assert make_worker(hub, http).run_once() == 2
    with hub.engine.connect() as conn:
        first, second = reversed(SqlOutboxRepository(conn).list(actor.tenant_id))
    assert first.status == queue.DONE
    assert second.status == queue.DEAD
    assert second.last_error == ("shopify order 1001 has no open fulfillment order "
                                 "(already fulfilled or cancelled on Shopify)")
    assert len(fake.writebacks) == 1


def test_missing_carrier_code_is_dead_lettered(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                               http: httpx.Client) -> None:
    register_shop(hub, actor, fake, "pinduoduo")  # no carrier_codes: PDD's ids must be configured
    queue_writeback(hub, actor.tenant_id, "pinduoduo", "241121-1", "zto")
    assert make_worker(hub, http).run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert row.status == queue.DEAD
    assert row.last_error.startswith("pinduoduo has no carrier code for 'zto': set settings.carrier_codes.zto")
    assert fake.requests == []


def test_shop_gone_is_dead_lettered_without_an_attempt(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                                       http: httpx.Client) -> None:
    register_shop(hub, actor, fake, "taobao")
    queue_writeback(hub, actor.tenant_id, "taobao", "2231958349221032771", "sf")
    with hub.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(delete(shops).where(shops.c.tenant_id == actor.tenant_id))

    assert make_worker(hub, http).run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DEAD, 0)
    assert row.last_error == "taobao shop 's1' no longer exists; tracking number not sent"
    assert fake.requests == []


def test_a_channel_without_write_back_is_dead_lettered(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                                       http: httpx.Client) -> None:
    register_shop(hub, actor, fake, "amazon")
    queue_writeback(hub, actor.tenant_id, "amazon", "111-2222222-3333333", "ups")
    assert make_worker(hub, http, policy=RetryPolicy(max_attempts=3)).run_once() == 1
    row = only_row(hub, actor.tenant_id)
    assert row.status == queue.DEAD
    assert row.last_error.startswith("channel 'amazon' has no tracking write-back (supported: own_site, ")
    assert fake.requests == []
