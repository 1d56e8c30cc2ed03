"""The dashboard pages (issue 3, scope 10) through starlette's TestClient on real SQLite and
PostgreSQL: sign-in by API key cookie, the order list with filters and pages, the order page,
another tenant's order as a 404, HTML escaping of hostile data, channel health."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.staticfiles import StaticFiles

from orderhub.adapters.db.tables import api_keys
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.entrypoints.dashboard import STATIC_DIR, create_dashboard
from orderhub.entrypoints.dashboard.auth import COOKIE_NAME
from orderhub.entrypoints.dashboard.routes import DashboardQueries, build_router
from orderhub.service_layer.handlers.tenancy import IssuedKey
from tests.integration.test_api_orders import order_body

ORDERS = "/api/v1/orders"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

def with_dashboard(app: FastAPI, hub: OrderHub) -> FastAPI:
    """Mount the dashboard the way entrypoints/api/app.py does (unless it already does)."""
    if not any(getattr(r, "path", "").startswith("/ui") for r in app.routes):
        app.include_router(create_dashboard(hub))
        app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    return app


@pytest.fixture
def api(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    """The JSON API, authenticated as acme's admin (to seed orders)."""
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {tenant.api_key}"}) as c:
        yield c


@pytest.fixture
def ui(hub: OrderHub) -> Iterator[TestClient]:
    """A browser-like client of the app with the dashboard; not signed in, no redirects followed."""
    with TestClient(with_dashboard(create_app(hub), hub), follow_redirects=False) as c:
        yield c


def sign_in(ui: TestClient, key: str) -> None:
    r = ui.post("/ui/login", data={"api_key": key})
    assert r.status_code == 303, r.text
    assert ui.cookies.get(COOKIE_NAME) == key


def create(api: TestClient, external_id: str, **changes: Any) -> dict[str, Any]:
    r = api.post(ORDERS, json=order_body(external_id, **changes))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def text_of(html: str) -> str:
    """The page's visible text, tags removed and spaces collapsed (entities left as they are)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------------------- sign-in


def test_every_page_requires_sign_in(ui: TestClient, tenant: IssuedKey) -> None:
    for path in ("/ui/", "/ui/channels", "/ui/orders/ord_x"):
        r = ui.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login")
    # The page asked for is remembered (as a path on this site only).
    assert ui.get("/ui/orders/ord_x?a=1").headers["location"] == "/ui/login?next=%2Fui%2Forders%2Ford_x%3Fa%3D1"
    assert ui.get("/ui").status_code == 308

    # The JSON API key header does not open the dashboard: only the dashboard's own cookie does.
    r = ui.get("/ui/", headers={"Authorization": f"Bearer {tenant.api_key}"})
    assert r.status_code == 303


def test_login_with_a_bad_key_says_so_and_sets_nothing(ui: TestClient, tenant: IssuedKey) -> None:
    page = ui.get("/ui/login")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'type="password"' in page.text

    for bad in ("ohk_nope_nope", tenant.api_key + "x", "   ", "ключ"):
        r = ui.post("/ui/login", data={"api_key": bad})
        assert r.status_code == 401, bad
        assert "set-cookie" not in r.headers
        assert 'role="alert"' in r.text
        assert ("unknown or has been revoked" in r.text or "Paste an API key" in r.text
                or "not an OrderHub API key" in r.text)
        assert ui.get("/ui/").status_code == 303


def test_good_key_sets_a_strict_httponly_cookie_scoped_to_ui(ui: TestClient, tenant: IssuedKey) -> None:
    r = ui.post("/ui/login", data={"api_key": f"  {tenant.api_key}\n", "next": "/ui/channels"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/channels"
    assert tenant.api_key not in r.headers["location"]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={tenant.api_key};")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/ui"
    assert "secure" not in attributes  # plain http in tests; set under https

    home = ui.get("/ui/")
    assert home.status_code == 200
    assert "No orders yet." in home.text
    assert tenant.api_key not in home.text  # the page shows the key's prefix, never the key

    # Signed in, the login page goes straight on; a foreign "next" never leaves the site.
    assert ui.get("/ui/login").headers["location"] == "/ui/"
    for foreign in ("https://evil.example/", "//evil.example/ui/", "/ui/..\\evil", "/api/v1/orders"):
        assert ui.get("/ui/login", params={"next": foreign}).headers["location"] == "/ui/"


def test_forms_posted_from_another_site_are_refused(ui: TestClient, tenant: IssuedKey) -> None:
    r = ui.post("/ui/login", data={"api_key": tenant.api_key}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    assert ui.post("/ui/login", data={"api_key": tenant.api_key}, headers={"Origin": "null"}).status_code == 403
    # The same site's own form is fine.
    r = ui.post("/ui/login", data={"api_key": tenant.api_key}, headers={"Origin": "http://testserver"})
    assert r.status_code == 303
    # A cross-site sign-out does nothing.
    r = ui.post("/ui/logout", headers={"Origin": "https://evil.example"})
    assert "set-cookie" not in r.headers
    assert ui.get("/ui/").status_code == 200


def test_logout_forgets_the_key(ui: TestClient, tenant: IssuedKey) -> None:
    sign_in(ui, tenant.api_key)
    r = ui.post("/ui/logout")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?signed_out=1"
    assert COOKIE_NAME not in ui.cookies
    assert ui.get("/ui/").status_code == 303
    assert "You are signed out." in ui.get("/ui/login?signed_out=1").text


def test_a_revoked_key_is_signed_out_on_its_next_request(ui: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    sign_in(ui, tenant.api_key)
    assert ui.get("/ui/").status_code == 200
    with hub.engine.begin() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == tenant.key_id).values(revoked_at=hub.clock.now()))
    r = ui.get("/ui/")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/login")
    assert f'{COOKIE_NAME}=""' in r.headers["set-cookie"]  # the browser is told to drop it
    r = ui.post("/ui/login", data={"api_key": tenant.api_key})
    assert r.status_code == 401
    assert "revoked" in r.text


def test_a_viewer_key_may_sign_in(ui: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    viewer: IssuedKey = hub.bus.handle(commands.CreateApiKey("acme", "viewer"))
    sign_in(ui, viewer.api_key)
    page = ui.get("/ui/")
    assert page.status_code == 200
    assert "viewer" in page.text


# ---------------------------------------------------------------------------- orders list


def test_list_shows_orders_with_money_in_each_currencys_units(ui: TestClient, api: TestClient,
                                                               tenant: IssuedKey) -> None:
    create(api, "WEB-CNY", shipping_fee="1000.00")
    create(api, "WEB-JPY", currency="JPY", shipping_fee="0", discount="0",
           lines=[{"sku": "A", "quantity": 2, "unit_price": "1500"}])
    create(api, "WEB-KWD", currency="KWD", shipping_fee="0", discount="0",
           lines=[{"sku": "A", "quantity": 1, "unit_price": "1.005"}])
    sign_in(ui, tenant.api_key)
    page = ui.get("/ui/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "1,119.80 CNY" in text
    assert "3,000 JPY" in text
    assert "1.005 KWD" in text
    assert "王小明" in text  # UTF-8 all the way
    assert '<meta charset="utf-8">' in page.text
    assert "2026-11-21 02:00:00 UTC" in text
    assert "paid · 已付款" in text
    assert "3 orders on this page" in text
    # CSP: only our own origin's scripts and styles.
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_list_filters_search_and_pages(ui: TestClient, api: TestClient, tenant: IssuedKey) -> None:
    ids = {}
    for n in range(5):
        ids[n] = create(api, f"WEB-{n}", shop="outlet" if n == 4 else "main")["id"]
    jd = create(api, "JD-777", channel="jd", buyer={"name": "Zhang San", "phone": None, "email": None})["id"]
    held = create(api, "WEB-HELD")["id"]
    r = api.post(f"{ORDERS}/{held}/events", json={"type": "hold", "reason": "address check"})
    assert r.status_code == 200, r.text
    sign_in(ui, tenant.api_key)

    def listed(**params: str) -> list[str]:
        page = ui.get("/ui/", params=params)
        assert page.status_code == 200, page.text
        return re.findall(r'href="/ui/orders/([^"]+)"', page.text)

    assert listed(status="on_hold") == [held]
    on_hold_page = ui.get("/ui/", params={"status": "on_hold"}).text
    assert "address check" in on_hold_page
    assert '<option value="on_hold" selected>' in on_hold_page
    assert listed(channel="jd") == [jd]
    assert listed(shop="outlet") == [ids[4]]
    assert listed(q="jd-777") == [jd]
    assert listed(q="zhang") == [jd]
    assert listed(q="nothing-like-this") == []
    assert "No orders match these filters." in ui.get("/ui/", params={"q": "nothing-like-this"}).text

    # Pages: two at a time with a filter, following the next-page links to the end.
    seen: list[str] = []
    url: str | None = "/ui/?channel=own_site&limit=2"
    while url is not None:
        page = ui.get(url.replace("&amp;", "&"))
        assert page.status_code == 200
        seen += re.findall(r'href="/ui/orders/([^"]+)"', page.text)
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = found.group(1) if found else None
        if url is not None:
            assert "channel=own_site" in url and "limit=2" in url and "cursor=" in url
        assert len(seen) < 20
    assert sorted(seen) == sorted([*ids.values(), held])
    assert len(seen) == len(set(seen))


def test_bad_filters_and_forged_cursors_are_messages_not_crashes(ui: TestClient, api: TestClient,
                                                                 tenant: IssuedKey) -> None:
    create(api, "WEB-1")
    sign_in(ui, tenant.api_key)
    for params in ({"cursor": "not-a-cursor"}, {"q": "a\x00b"}, {"q": "x" * 500}, {"limit": "0"},
                   {"limit": "many"}):
        page = ui.get("/ui/", params=params)
        assert page.status_code == 400, params
        assert 'class="alert error"' in page.text
        assert "WEB-1" not in text_of(page.text)


# ---------------------------------------------------------------------------- order page


def test_order_page_shows_header_lines_address_and_verified_timeline(ui: TestClient, api: TestClient,
                                                                     tenant: IssuedKey) -> None:
    order = create(api, "WEB-PAGE", shipping_fee="8.00", lines=[
        {"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"},
        {"sku": "CUP-9", "title": "Cup", "quantity": 1, "unit_price": "12.00", "discount": "2.00"}])
    r = api.post(f"{ORDERS}/{order['id']}/events", json={"type": "hold", "reason": "地址待确认"})
    assert r.status_code == 200, r.text
    sign_in(ui, tenant.api_key)
    page = ui.get(f"/ui/orders/{order['id']}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Order WEB-PAGE" in text
    assert "on hold · 挂起" in text
    assert "On hold: 地址待确认" in text
    assert "own_site" in text and "main" in text and order["id"] in text
    assert "龙井 250g" in text and "59.90 CNY" in text and "119.80 CNY" in text and "10.00 CNY" in text
    assert "Total 137.80 CNY" in text
    assert "浙江省 杭州市 西湖区" in text and "文三路 90 号" in text and "138****5678" in text
    # The timeline: every entry present and marked verified, the chain as a whole too.
    timeline = api.get(f"{ORDERS}/{order['id']}/timeline").json()
    assert len(timeline["items"]) >= 2
    assert page.text.count('<li class="ok">') == len(timeline["items"])
    assert "chain verified" in text
    assert "paid → on_hold" in text
    assert "No channel message fed this order" in text


def test_another_tenants_order_is_a_404_page(ui: TestClient, api: TestClient, hub: OrderHub,
                                             tenant: IssuedKey) -> None:
    mine = create(api, "WEB-MINE")
    other: IssuedKey = hub.bus.handle(commands.CreateTenant("globex"))
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {other.api_key}"}) as other_api:
        theirs = create(other_api, "WEB-THEIRS", buyer={"name": "Secret Buyer", "phone": None, "email": None})
    sign_in(ui, tenant.api_key)
    assert ui.get(f"/ui/orders/{mine['id']}").status_code == 200
    for order_id in (theirs["id"], "ord_does_not_exist", "x" * 300, "bad%00id"):
        page = ui.get(f"/ui/orders/{order_id}")
        assert page.status_code == 404, order_id
        assert "was not found in this tenant" in page.text
        assert "Secret Buyer" not in page.text
    # Nor does it show up in a list or search.
    searched = ui.get("/ui/", params={"q": "WEB-THEIRS"}).text
    assert "No orders match these filters." in searched
    assert theirs["id"] not in searched


def test_hostile_buyer_names_are_escaped(ui: TestClient, api: TestClient, tenant: IssuedKey) -> None:
    order = create(api, "WEB-XSS", buyer={"name": HOSTILE, "phone": None, "email": None},
                   tags=["<b>gift</b>"],
                   lines=[{"sku": "A", "title": "</td><script>bad()</script>", "quantity": 1, "unit_price": "1.00"}])
    r = api.post(f"{ORDERS}/{order['id']}/events", json={"type": "hold", "reason": '"><script>x()</script>'})
    assert r.status_code == 200, r.text
    sign_in(ui, tenant.api_key)
    for path in ("/ui/", f"/ui/orders/{order['id']}", "/ui/?q=" + "%3Cscript%3E"):
        html = ui.get(path).text
        assert "<script>" not in html, path
        assert "<img" not in html and "<b>" not in html
    listing = ui.get("/ui/").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in listing
    # The search box echoes the query escaped, too.
    assert 'value="&lt;script&gt;"' in ui.get("/ui/", params={"q": "<script>"}).text


def test_static_assets_are_served_locally(ui: TestClient, tenant: IssuedKey) -> None:
    sign_in(ui, tenant.api_key)
    html = ui.get("/ui/").text
    assets = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', html)
    assert sorted(assets) == ["/ui/static/dashboard.css", "/ui/static/dashboard.js"]
    for asset in assets:
        assert ui.get(asset).status_code == 200
    # Nothing is fetched from another host.
    assert not re.search(r'(?:href|src)="(?:https?:)?//', html)


# ---------------------------------------------------------------------------- canned channel views
# Rendering checks of the channel views with canned data, over the real orders and keys.


class CannedChannelViews:
    """The real queries, with the inbox/health views answering canned data."""

    def __init__(self, hub: OrderHub, messages: dict[str, list[dict[str, Any]]],
                 bodies: dict[str, dict[str, Any]], health: dict[str, Any]) -> None:
        self._real = hub.queries
        self.authenticate = self._real.authenticate
        self.list_orders = self._real.list_orders
        self.get_order = self._real.get_order
        self.timeline = self._real.timeline
        self.order_shipments = self._real.order_shipments
        self.shipment = self._real.shipment
        self.alerts = self._real.alerts
        self.devices = self._real.devices
        self._messages = messages
        self._bodies = bodies
        self._health = health

    def order_messages(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        return self._messages.get(order_id, [])

    def inbox_message(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        return self._bodies.get(message_id)

    def channel_health(self, tenant_id: str) -> dict[str, Any]:
        return self._health


def canned_client(queries: DashboardQueries) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(queries))
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    return TestClient(app, follow_redirects=False)


def test_raw_payloads_render_pretty_escaped_and_without_credentials(hub: OrderHub, api: TestClient,
                                                                    tenant: IssuedKey) -> None:
    order = create(api, "SHOP-1001", channel="shopify", shop="sh-1")
    summary = {"id": "msg_1", "channel": "shopify", "shop": "sh-1", "source": "webhook", "kind": "order",
               "status": "processed", "external_id": "SHOP-1001", "event_version": "2026-11-21T02:00:00Z",
               "received_at": "2026-11-21T02:00:01Z", "outcome": "created", "error": None}
    failed = {**summary, "id": "msg_2", "status": "failed", "outcome": None,
              "error": {"code": "mapping_failed", "field": "line_items[0].price", "detail": "not a decimal"}}
    body = {"id": 1001, "note": "<script>alert(1)</script>", "shipping_address": {"city": "上海市"}}
    bodies = {
        "msg_1": {**summary, "processed_at": "2026-11-21T02:00:02Z", "order_id": order["id"], "attempts": 1,
                  "headers": {"X-Shopify-Topic": "orders/create", "Authorization": "Bearer s3cret"},
                  "body_text": "{}", "body_json": body},
        "msg_2": {**failed, "processed_at": None, "order_id": order["id"], "attempts": 3, "headers": {},
                  "body_text": "price=<b>abc</b>", "body_json": None},
    }
    queries = CannedChannelViews(hub, {order["id"]: [summary, failed]}, bodies, {"threshold": 0.008, "channels": []})
    with canned_client(queries) as ui:
        sign_in(ui, tenant.api_key)
        html = ui.get(f"/ui/orders/{order['id']}").text
    assert html.count('<details class="raw"') == 2
    assert '"city": "上海市"' in html.replace("&#34;", '"')  # pretty JSON, Chinese kept readable
    assert '  "shipping_address": {' in html.replace("&#34;", '"')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "price=&lt;b&gt;abc&lt;/b&gt;" in html  # a non-JSON body, exactly as received (escaped)
    assert "s3cret" not in html and "(hidden)" in html
    assert "orders/create" in html
    assert "line_items[0].price" in html and "not a decimal" in html


def test_channel_health_flags_channels_over_the_threshold(hub: OrderHub, tenant: IssuedKey) -> None:
    def row(channel: str, **changes: Any) -> dict[str, Any]:
        base = {"channel": channel, "received": 1000, "mapped": 1000, "failed": 0, "parked": 0, "rejected": 0,
                "pending": 0, "failure_rate": 0.0, "flagged": False, "top_failing_fields": [],
                "breaker": {"state": "closed", "reason": None, "opened_at": None}, "signature_failures": 0}
        return {**base, **changes}

    health = {"threshold": 0.008, "channels": [
        row("shopify"),
        row("douyin", mapped=980, failed=20, failure_rate=0.02, flagged=True,
            top_failing_fields=[{"field": "order_id_douyin", "count": 15}, {"field": "pay_amount", "count": 5}],
            breaker={"state": "open", "reason": "17 conflicts today", "opened_at": "2026-11-21T03:00:00Z"},
            signature_failures=4),
        row("<i>evil</i>"),
    ]}
    with canned_client(CannedChannelViews(hub, {}, {}, health)) as ui:
        assert ui.get("/ui/channels").status_code == 303
        sign_in(ui, tenant.api_key)
        page = ui.get("/ui/channels")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "above 0.80% are flagged" in text
    flagged = re.findall(r'<tr class="flagged" data-channel="([^"]+)"', page.text)
    assert flagged == ["douyin"]
    assert "⚠ over threshold" in text and "2.00%" in text and "0.00%" in text
    assert "order_id_douyin × 15" in text and "pay_amount × 5" in text
    assert "17 conflicts today" in text and "2026-11-21 03:00:00 UTC" in text
    assert "<i>evil</i>" not in page.text and "&lt;i&gt;evil&lt;/i&gt;" in page.text
