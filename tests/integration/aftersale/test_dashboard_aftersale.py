"""The dashboard's after-sale pages (issue 6 §7) through starlette's TestClient on real SQLite
and PostgreSQL, with cases made by the real flow: an auto-approved refund-only case refunded
by the relay, one in manual review that turns orange on the SLA clock, one negotiating with
the buyer and one return waiting for its parcel. The queue sorts by urgency and filters, the
case page shows the decision, return parcel, refund, vouchers, SLA and timeline, the order
page lists its cases, and nothing of another tenant's is shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.workers.aftersale import AfterSaleTimers, RefundRelay
from tests.integration.aftersale.helpers import act, open_case, order, run_refunds
from tests.integration.test_dashboard_pages import sign_in, text_of, with_dashboard

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def ui(hub: OrderHub) -> Iterator[TestClient]:
    """A browser-like client of the app with the dashboard; not signed in, no redirects followed."""
    with TestClient(with_dashboard(create_app(hub), hub), follow_redirects=False) as c:
        yield c


@pytest.fixture
def cases(hub: OrderHub, api: TestClient, relay: RefundRelay, clock: FixedClock) -> dict[str, Any]:
    """Four cases: ``auto`` (refunded), ``review`` (orange, 25 h old), ``nego`` (negotiating)
    and ``ret`` (return parcel in transit), plus ``fresh``, a review case opened just now."""
    paid = order(api, "WEB-AS-1")
    auto = open_case(api, paid["id"], amount="10.00")
    assert auto["decision"]["rule"] == "unshipped_auto"
    assert run_refunds(relay) == 1
    shipped = order(api, "WEB-AS-2", stage="shipped")
    review = open_case(api, shipped["id"], reason="not_as_described", amount="20.00", note=HOSTILE)
    assert review["status"] == "requested" and review["queue"] == "after_sale"
    delivered = order(api, "WEB-AS-3", stage="delivered")
    nego = open_case(api, delivered["id"])
    assert nego["status"] == "negotiating" and nego["options"]
    returned = order(api, "WEB-AS-4", stage="delivered")
    ret = open_case(api, returned["id"], "return_refund", reason="wrong_size")
    act(api, ret["id"], "approve")
    act(api, ret["id"], "return_shipped", carrier="sf", waybill_no="SF1234567890")
    clock.advance(hours=25)
    later = order(api, "WEB-AS-5", stage="shipped")
    fresh = open_case(api, later["id"], reason="not_as_described", amount="5.00")
    assert AfterSaleTimers(hub).run_once() >= 1
    return {"auto": auto, "review": review, "nego": nego, "ret": ret, "fresh": fresh, "orders": {
        "auto": paid, "review": shipped}}


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-case="([^"]+)"', html)


def _row(html: str, case_id: str) -> str:
    found = re.search(rf'<tr data-case="{case_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert found is not None, case_id
    return found.group(1)


def test_aftersale_pages_require_sign_in(ui: TestClient, tenant: IssuedKey) -> None:
    for path in ("/ui/aftersales", "/ui/aftersales/as_x"):
        r = ui.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login")


def test_empty_queue_says_so(ui: TestClient, tenant: IssuedKey) -> None:
    sign_in(ui, tenant.api_key)
    assert '<a href="/ui/aftersales">After-sale</a>' in ui.get("/ui/").text  # the nav link
    page = ui.get("/ui/aftersales")
    assert page.status_code == 200
    assert 'href="/ui/aftersales" aria-current="page"' in page.text
    assert "No open after-sale cases." in page.text
    assert '<strong data-count="open">0</strong>' in page.text


def test_queue_sorts_by_urgency_with_counts_badges_and_links(ui: TestClient, tenant: IssuedKey,
                                                             cases: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    page = ui.get("/ui/aftersales")
    assert page.status_code == 200
    html = page.text
    review, fresh = cases["review"]["id"], cases["fresh"]["id"]
    ids = _row_ids(html)
    # The refunded case is closed; the orange one leads, then the nearest deadline.
    assert cases["auto"]["id"] not in ids
    assert ids[0] == review
    assert set(ids) == {review, fresh, cases["nego"]["id"], cases["ret"]["id"]}
    assert ids.index(fresh) < ids.index(cases["nego"]["id"])
    assert '<strong data-count="open">4</strong>' in html and '<strong data-count="orange">1</strong>' in html
    row = _row(html, review)
    assert 'class="badge sla sla-orange" data-sla="orange">orange<' in row
    assert f'href="/ui/aftersales/{review}"' in row
    assert f'href="/ui/orders/{cases["orders"]["review"]["id"]}">WEB-AS-2<' in row
    cells = text_of(row)
    for shown in ("refund only · 仅退款", "requested · 待处理", "20.00 CNY", "not_as_described", "default",
                  "after_sale", "next 2026-11-22 14:00:00 UTC", "2026-11-21 02:00:00 UTC"):
        assert shown in cells, (shown, cells)
    assert 'data-sla="none">on time<' in _row(html, fresh)
    assert "quiet_period_after_delivery" in text_of(_row(html, cases["nego"]["id"]))


def test_queue_filters(ui: TestClient, tenant: IssuedKey, cases: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    assert _row_ids(ui.get("/ui/aftersales", params={"sla": "orange"}).text) == [cases["review"]["id"]]
    assert _row_ids(ui.get("/ui/aftersales", params={"status": "negotiating"}).text) == [cases["nego"]["id"]]
    queued = _row_ids(ui.get("/ui/aftersales", params={"queue": "after_sale"}).text)
    assert queued[0] == cases["review"]["id"] and cases["fresh"]["id"] in queued
    assert cases["nego"]["id"] not in queued
    everything = ui.get("/ui/aftersales", params={"include_closed": "1"}).text
    assert cases["auto"]["id"] in _row_ids(everything) and len(_row_ids(everything)) == 5
    assert 'name="include_closed" type="checkbox" value="1" checked' in everything
    assert _row_ids(ui.get("/ui/aftersales", params={"status": "refunded"}).text) == [cases["auto"]["id"]]
    none = ui.get("/ui/aftersales", params={"queue": "nobody"})
    assert none.status_code == 200 and "No after-sale case matches these filters." in none.text
    for bad in ({"sla": "purple"}, {"status": "bogus"}, {"queue": "x" * 300}):
        r = ui.get("/ui/aftersales", params=bad)
        assert r.status_code == 400, bad
        assert 'class="alert error" role="alert"' in r.text


def test_refund_only_case_page(ui: TestClient, tenant: IssuedKey, cases: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    case_id = cases["auto"]["id"]
    page = ui.get(f"/ui/aftersales/{case_id}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    text = text_of(html)
    assert '<code id="decision-rule">unshipped_auto</code>' in html
    for shown in ("refunded · 已退款", "refund only · 仅退款", "10.00 CNY", "changed_mind", "auto approve",
                  "rule unshipped_auto: auto_approve", "No return parcel: refund only",
                  f"SIMPAY-RF-{case_id}", "sales_returns", "clearing:own_site", "auto-approved",
                  "None: the case is closed."):
        assert shown in text, shown
    assert f'href="/ui/orders/{cases["orders"]["auto"]["id"]}"' in html
    timeline = text_of(re.search(r'<ol class="timeline" id="case-timeline">(.*?)</ol>', html, re.S).group(1))  # type: ignore[union-attr]
    for shown in ("aftersale.requested", "— → requested", "aftersale.decided", "requested → approved",
                  "approved → refunding", "aftersale.refunded", "refunding → refunded", "“changed_mind”"):
        assert shown in timeline, (shown, timeline)


def test_review_negotiation_and_return_case_pages(ui: TestClient, tenant: IssuedKey,
                                                   cases: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    review = ui.get(f"/ui/aftersales/{cases['review']['id']}")
    text = text_of(review.text)
    assert "SLA orange" in text and "manual review" in text and "No refund has been made." in text
    for action in ("approve", "reject", "negotiate", "cancel", "assign"):
        assert f"<li><code>{action}</code></li>" in review.text
    assert "read-only" in text
    assert "<form" not in review.text.replace('<form class="logout"', "")  # no write forms
    # The buyer's note is escaped.
    assert HOSTILE not in review.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in review.text

    nego = ui.get(f"/ui/aftersales/{cases['nego']['id']}")
    options = re.search(r'<table class="options">(.*?)</table>', nego.text, re.S)
    assert options is not None
    assert [o["id"] for o in cases["nego"]["options"]] == re.findall(r"<td><code>([^<]+)</code></td>", options.group(1))

    ret = ui.get(f"/ui/aftersales/{cases['ret']['id']}")
    parcel = re.search(r'<dl class="facts" id="return-parcel">(.*?)</dl>', ret.text, re.S)
    assert parcel is not None
    assert "in transit" in parcel.group(1) and "SF1234567890" in parcel.group(1) and "sf" in parcel.group(1)
    expected = text_of(re.search(r'<table class="return-lines">(.*?)</table>', ret.text, re.S).group(1))  # type: ignore[union-attr]
    assert "TEA-001" in expected
    assert "return and refund · 退货退款" in text_of(ret.text)


def test_order_page_lists_its_cases(ui: TestClient, tenant: IssuedKey, api: TestClient,
                                    cases: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    page = ui.get(f"/ui/orders/{cases['orders']['auto']['id']}")
    assert page.status_code == 200
    case_id = cases["auto"]["id"]
    row = text_of(_row(page.text, case_id))
    assert "unshipped_auto" in row and "10.00 CNY" in row and "refunded" in row
    assert f'<a href="/ui/aftersales/{case_id}">' in page.text
    other = order(api, "WEB-AS-NONE")
    assert "No after-sale case on this order." in ui.get(f"/ui/orders/{other['id']}").text


def test_another_tenants_case_is_a_404(ui: TestClient, hub: OrderHub, cases: dict[str, Any]) -> None:
    other: IssuedKey = hub.bus.handle(commands.CreateTenant("globex"))
    sign_in(ui, other.api_key)
    for case_id in (cases["review"]["id"], "as_does_not_exist", "x" * 300, "bad%00id"):
        page = ui.get(f"/ui/aftersales/{case_id}")
        assert page.status_code == 404, case_id
        assert "was not found in this tenant" in page.text
        assert "not_as_described" not in page.text
    queue = ui.get("/ui/aftersales", params={"include_closed": "1"}).text
    assert _row_ids(queue) == [] and "No after-sale case matches these filters." in queue
