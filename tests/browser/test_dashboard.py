"""The dashboard in headless Chromium against the real server (issue 3, scope 10): sign in
(a bad key first), the order list, filtering by status, searching by external id, one order
with its timeline and its raw channel payload, and channel health. Every request the page
makes goes to the local server: no CDN, no network."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from orderhub.adapters.channels.signatures import sign
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

API_ORDER: dict[str, Any] = {
    "channel": "own_site", "shop": "main", "currency": "CNY", "status": "paid",
    "placed_at": "2026-11-21T10:00:00+08:00", "paid_at": "2026-11-21T10:00:05+08:00",
    "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                         "detail": "文三路 90 号", "postcode": "310000", "name": "王小明", "phone": "138****5678"},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}],
    "shipping_fee": "0.00", "discount": "0.00", "tags": [],
}


def _own_site_push(external_id: str) -> dict[str, Any]:
    # The own site pushes OrderHub's canonical order JSON (DESIGN.md §8).
    return {**API_ORDER, "external_id": external_id, "buyer": {"name": "李雷", "phone": None, "email": None},
            "lines": [{"sku": "CUP-7", "title": "青瓷杯", "quantity": 1, "unit_price": "35.00"}]}


def _webhook_channel() -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(channel, external id, payload, an unmappable payload: no currency) of the webhook order."""
    broken = {k: v for k, v in _own_site_push("WEB-HOOK-BAD").items() if k != "currency"}
    return "own_site", "WEB-HOOK-1", _own_site_push("WEB-HOOK-1"), broken


def _push(api: httpx.Client, live: LiveServer, channel: str, shop: str, payload: Any) -> httpx.Response:
    """POST ``payload`` to the shop's webhook, signed as the channel signs its pushes."""
    spec = live.hub.specs.get(channel)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    url = f"{live.url}/webhooks/{channel}/{shop}"
    signed = sign(spec.signature, body=body, secret="s3cret-hook", url=url, header=spec.signature_header)
    return api.post(url, content=body, headers={"content-type": "application/json", **signed})


def _seed(live: LiveServer) -> dict[str, Any]:
    """Three API orders (one held), one own_site order pushed by a signed webhook and one push
    the mapping can't read; waits until the worker has processed both pushes."""
    seeded: dict[str, Any] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {live.tenant.api_key}"}, timeout=10) as api:
        for external_id in ("WEB-1001", "WEB-1002", "WEB-1003"):
            r = api.post(f"{live.url}/api/v1/orders", json={**API_ORDER, "external_id": external_id})
            assert r.status_code == 201, r.text
            seeded[external_id] = r.json()["id"]
        r = api.post(f"{live.url}/api/v1/orders/{seeded['WEB-1002']}/events",
                     json={"type": "hold", "reason": "地址待确认 address check"})
        assert r.status_code == 200, r.text

        channel, external_id, payload, broken = _webhook_channel()
        r = api.post(f"{live.url}/api/v1/shops", json={"code": "hook-1", "channel": channel, "name": "Hooked shop",
                                                       "secret": "s3cret-hook"})
        assert r.status_code == 201, r.text
        r = _push(api, live, channel, "hook-1", payload)
        assert r.status_code == 202, r.text
        r = _push(api, live, channel, "hook-1", broken)
        assert r.status_code == 202, r.text

        deadline = time.monotonic() + 20
        while True:
            found = api.get(f"{live.url}/api/v1/orders", params={"channel": channel, "shop": "hook-1"}).json()["items"]
            health = live.hub.queries.channel_health(live.tenant.tenant_id)
            row = next(c for c in health["channels"] if c["channel"] == channel)
            if found and row["pending"] == 0:
                break
            assert time.monotonic() < deadline, f"the webhook order was not processed: {found} {row}"
            time.sleep(0.1)
        [hooked] = found
        assert hooked["external_id"] == external_id
        seeded.update(channel=channel, hook_external_id=external_id, hook_id=hooked["id"])
    return seeded


def test_dashboard_end_to_end_in_headless_chromium(browser: Any, live_server: LiveServer) -> None:
    seeded = _seed(live_server)
    base = live_server.url
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    failed_assets: list[str] = []
    page.on("response", lambda response: failed_assets.append(response.url) if response.status >= 400
            and "/ui/static/" in response.url else None)
    try:
        # Anonymous: every page leads to the sign-in form.
        page.goto(f"{base}/ui/")
        assert page.url.startswith(f"{base}/ui/login")

        # A bad key: a clear message, still on the form.
        page.fill("#api_key", "ohk_wrong_key")
        page.click("button[type=submit]")
        alert = page.locator("#login-error")
        assert "unknown or has been revoked" in alert.inner_text()
        assert page.url == f"{base}/ui/login"

        # The good key: the order list, newest first, with money in yuan and Chinese intact.
        page.fill("#api_key", live_server.tenant.api_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/")
        assert live_server.tenant.api_key not in page.url
        rows = page.locator("table.orders tbody tr")
        assert rows.count() == 4
        assert rows.nth(0).locator("th").inner_text() == seeded["hook_external_id"]
        listing = page.locator("table.orders").inner_text()
        assert "119.80 CNY" in listing and "王小明" in listing
        # The stylesheet really applied (served locally, not a CDN).
        assert page.evaluate("getComputedStyle(document.querySelector('.top')).display") == "flex"
        cookie = next(c for c in context.cookies() if c["name"] == "orderhub_ui_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
        assert page.evaluate("document.cookie") == ""  # invisible to scripts

        # Filter by status (the select applies itself through dashboard.js).
        page.select_option("#f-status", "on_hold")
        page.wait_for_url(re.compile(r".*status=on_hold.*"))
        assert page.locator("table.orders tbody tr").count() == 1
        assert page.locator("table.orders tbody th").inner_text() == "WEB-1002"
        assert "地址待确认" in page.locator("table.orders").inner_text()

        # Search by external id (clearing the status first).
        page.select_option("#f-status", "")
        page.wait_for_url(re.compile(r".*status=(&|$).*"))
        page.fill("#f-q", seeded["hook_external_id"])
        page.click(".filters button[type=submit]")
        page.wait_for_url(re.compile(r".*q=.*"))
        assert page.locator("table.orders tbody tr").count() == 1

        # The webhook order: header, the raw payload one click away, the verified timeline.
        page.click(f"text={seeded['hook_external_id']}")
        page.wait_for_url(f"{base}/ui/orders/{seeded['hook_id']}")
        assert seeded["hook_external_id"] in page.locator("h1").inner_text()
        raw = page.locator("details.raw").first
        payload = raw.locator("pre.payload")
        assert not payload.is_visible()
        raw.locator("summary").click()
        assert payload.is_visible()
        shown = json.loads(payload.inner_text())
        assert shown["external_id"] == seeded["hook_external_id"]
        assert shown["lines"][0]["title"] == "青瓷杯"  # the raw UTF-8 body, shown as sent
        assert "青瓷杯" in page.locator("table.lines").inner_text() and "李雷" in page.inner_text("main")
        assert "webhook" in raw.locator("summary").inner_text()
        assert page.locator("#chain-status").inner_text().startswith("✔")
        assert page.locator("ol.timeline li.ok").count() >= 1
        assert page.locator("ol.timeline li.broken").count() == 0

        # The held API order shows its hold reason and a timeline with the hold.
        page.goto(f"{base}/ui/orders/{seeded['WEB-1002']}")
        assert "地址待确认" in page.locator(".alert.hold").inner_text()
        assert "paid → on_hold" in page.locator("ol.timeline").inner_text()
        assert page.locator("#no-messages").is_visible()

        # Channel health: the channel with an unreadable push is flagged, its field listed.
        page.click("nav >> text=Channel health")
        page.wait_for_url(f"{base}/ui/channels")
        row = page.locator(f"tr[data-channel='{seeded['channel']}']")
        assert row.get_attribute("class") == "flagged"
        cells = row.locator("td")
        assert cells.nth(0).inner_text() == "2"  # received
        assert "over threshold" in row.inner_text()
        health = live_server.hub.queries.channel_health(live_server.tenant.tenant_id)
        [failing] = next(c for c in health["channels"] if c["channel"] == seeded["channel"])["top_failing_fields"]
        assert f"{failing['field']} × 1" in row.inner_text()

        # Sign out: the cookie is gone and the list asks for a key again.
        page.click("text=Sign out")
        page.wait_for_url(re.compile(r".*/ui/login\?signed_out=1"))
        assert not [c for c in context.cookies() if c["name"] == "orderhub_ui_key"]
        page.goto(f"{base}/ui/")
        assert page.url.startswith(f"{base}/ui/login")
    finally:
        context.close()

    assert requested, "the browser made no requests"
    assert all(url.startswith(base + "/") for url in requested), [u for u in requested if not u.startswith(base)]
    assert failed_assets == []
