"""The after-sale pages (issue 6 §7) in headless Chromium against the real server: a refund-only
case the policy approves at once (rule ``unshipped_auto``; the running refund relay then
refunds it) and one on a shipped order that waits for review. The queue lists them with
their SLA badges, the case link opens the case with its rule, "refund only" return text,
refund and timeline, and the order page links to its cases. Every request stays local."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LiveServer
from tests.browser.test_dashboard import API_ORDER

pytestmark = pytest.mark.browser


def _seed(live: LiveServer) -> dict[str, Any]:
    """Two paid orders, the second shipped; an auto-approved refund-only case on the first
    (waited on until the worker has refunded it) and a case in review on the second."""
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.tenant.api_key}"},
                      timeout=10) as api:
        orders = {}
        for external_id in ("AS-2001", "AS-2002"):
            r = api.post("/api/v1/orders", json={**API_ORDER, "external_id": external_id})
            assert r.status_code == 201, r.text
            orders[external_id] = r.json()["id"]
        r = api.post("/api/v1/aftersales", json={"order_id": orders["AS-2001"], "type": "refund_only",
                                                 "reason": "changed_mind", "amount": "10.00"})
        assert r.status_code == 201, r.text
        auto = r.json()
        assert auto["decision"]["rule"] == "unshipped_auto"
        r = api.post(f"/api/v1/orders/{orders['AS-2002']}/events", json={"type": "ship"})
        assert r.status_code == 200, r.text
        r = api.post("/api/v1/aftersales", json={"order_id": orders["AS-2002"], "type": "refund_only",
                                                 "reason": "not_as_described"})
        assert r.status_code == 201, r.text
        review = r.json()
        assert review["status"] == "requested"
        deadline = time.monotonic() + 20
        while (status := api.get(f"/api/v1/aftersales/{auto['id']}").json()["status"]) != "refunded":
            assert time.monotonic() < deadline, f"the refund relay did not refund the case: {status}"
            time.sleep(0.1)
    return {"orders": orders, "auto": auto["id"], "review": review["id"]}


def test_aftersale_queue_and_case_in_headless_chromium(browser: Any, live_server: LiveServer) -> None:
    seeded = _seed(live_server)
    base = live_server.url
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    try:
        # Signing in from the queue's own link comes back to the queue.
        page.goto(f"{base}/ui/aftersales")
        assert page.url.startswith(f"{base}/ui/login?next=")
        page.fill("#api_key", live_server.tenant.api_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/aftersales")
        assert page.locator("nav a[aria-current=page]").inner_text() == "After-sale"

        # Open cases only: the refunded one has left the queue; the review case waits, on time.
        assert page.locator("[data-count=open]").inner_text() == "1"
        rows = page.locator("table.aftersales tbody tr")
        assert rows.count() == 1
        review_row = page.locator(f"tr[data-case='{seeded['review']}']")
        badge = review_row.locator(".badge.sla")
        assert badge.inner_text() == "on time" and badge.get_attribute("data-sla") == "none"
        # The SLA colour comes from the packaged stylesheet.
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(220, 239, 220)"
        assert "next" in review_row.locator(".due").inner_text()
        assert "not_as_described" in review_row.inner_text() and "default" in review_row.inner_text()

        # Include closed cases: both are listed, the open one (with a deadline) first.
        page.check("#f-closed")
        page.click(".filters button[type=submit]")
        page.wait_for_url(re.compile(r".*include_closed=1.*"))
        assert rows.count() == 2
        assert [rows.nth(i).get_attribute("data-case") for i in range(2)] == [seeded["review"], seeded["auto"]]
        auto_row = page.locator(f"tr[data-case='{seeded['auto']}']")
        assert "unshipped_auto" in auto_row.inner_text() and "10.00 CNY" in auto_row.inner_text()
        assert "AS-2001" in auto_row.inner_text()

        # The case link opens the case: its rule, no return parcel, the refund and the timeline.
        auto_row.locator("th a").click()
        page.wait_for_url(f"{base}/ui/aftersales/{seeded['auto']}")
        assert page.locator("#decision-rule").inner_text() == "unshipped_auto"
        assert "refund only" in page.locator("#no-return-parcel").inner_text()
        assert f"SIMPAY-RF-{seeded['auto']}" in page.locator("#refund").inner_text()
        assert "sales_returns" in page.locator("table.vouchers").inner_text()
        timeline = page.locator("#case-timeline")
        assert timeline.locator("li").count() >= 4
        assert "aftersale.requested" in timeline.inner_text() and "refunding → refunded" in timeline.inner_text()

        # From the review case's order page to the case through its link.
        page.goto(f"{base}/ui/orders/{seeded['orders']['AS-2002']}")
        page.locator(f"tr[data-case='{seeded['review']}'] a").click()
        page.wait_for_url(f"{base}/ui/aftersales/{seeded['review']}")
        assert page.locator("#decision-rule").inner_text() == "default"
        assert "manual review" in page.locator("#decision").inner_text()
        assert "approve" in page.locator("#allowed-actions").inner_text()
    finally:
        context.close()

    assert requested, "the browser made no requests"
    assert all(url.startswith(base + "/") for url in requested), [u for u in requested if not u.startswith(base)]
    assert failed == []
