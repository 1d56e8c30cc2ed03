"""A fake sales-channel API over real HTTP, for testing pollers and demos.

:class:`FakeChannel` runs an HTTP server on 127.0.0.1 (a free port) in a background thread
and answers order searches in five channels' dialects from one in-memory order store:

=============  ==========================================  =======================================
dialect        request                                     paging
=============  ==========================================  =======================================
shopify        GET /admin/api/2024-10/orders.json          ``Link: <…page_info=…>; rel="next"``
               updated_at_min/max (ISO), limit
woocommerce    GET /wp-json/wc/v3/orders                   page/per_page, ``X-WP-TotalPages``
               modified_after/before (ISO)
tiktok_shop    POST /order/202309/orders/search            page_token → ``data.next_page_token``
               body update_time_ge/lt (unix s)
taobao         GET /router/rest                            page_no/page_size, ``has_next``
               start/end_modified "yyyy-MM-dd HH:mm:ss" (Asia/Shanghai)
pinduoduo      GET /api/router                             page/page_size, ``has_next``
               start/end_updated_at (unix s)
=============  ==========================================  =======================================

Like the real APIs it pages by offset over the live, filtered result set (sorted by
updated-at), so orders changed between two page requests shift the pages — exactly what a
poller's overlap window must survive. Tests steer it:

* :meth:`FakeChannel.upsert` adds or changes an order (its ``updated_at`` is given, never
  read from a clock);
* ``between_pages`` is called before each search request with its 0-based index, so a test
  can change orders in the middle of a pass;
* :meth:`FakeChannel.throttle` answers the next requests 429 with a ``Retry-After``;
  :meth:`FakeChannel.fail` answers them 5xx;
* ``reorder_seed`` shuffles the orders within each page (the client must not rely on order).

Every request is recorded in :attr:`FakeChannel.requests`. The server uses the standard
library only.

It also takes tracking write-backs (see ``orderhub.adapters.channels.writeback``) the way
each channel would, answering with that channel's success shape, and records each accepted
one in :attr:`FakeChannel.writebacks` (``{"channel", "external_id", "carrier",
"waybill_no"}``, the carrier as the channel's code). Signed calls (TikTok Shop, Taobao,
Pinduoduo, own site) are checked against ``app_secret``, independently of the client code:

=============  ==========================================================================
shopify        GET …/orders/{id}/fulfillment_orders.json, POST …/fulfillments.json
woocommerce    POST /wp-json/wc/v3/orders/{id}/notes
tiktok_shop    POST /fulfillment/202309/orders/{id}/packages
taobao         POST /router/rest  method=taobao.logistics.offline.send
pinduoduo      POST /api/router   type=pdd.logistics.online.send
own_site       POST /orders/{id}/tracking  (X-OrderHub-Signature)
=============  ==========================================================================

``throttle`` and ``fail`` apply to these calls too. Refund calls (Shopify, own site, Taobao,
Pinduoduo) are answered by the :class:`~orderhub.simulation.fake_refunds.RefundEndpoints` mixin
and recorded in :attr:`FakeChannel.refunds`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from orderhub.simulation.fake_refunds import RefundEndpoints
from orderhub.simulation.local_server import LocalHTTPService, read_request

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_TIME = "%Y-%m-%d %H:%M:%S"
SHOPIFY_PATH = "/admin/api/2024-10/orders.json"
SHOPIFY_VERSIONED = re.compile(r"/admin/api/[0-9]{4}-[0-9]{2}/orders\.json")
WOO_PATH = "/wp-json/wc/v3/orders"
TIKTOK_PATH = "/order/202309/orders/search"
TAOBAO_PATH = "/router/rest"
PDD_PATH = "/api/router"
SHOPIFY_FULFILLMENT_ORDERS = re.compile(r"/admin/api/[0-9]{4}-[0-9]{2}/orders/([^/]+)/fulfillment_orders\.json")
SHOPIFY_FULFILLMENTS = re.compile(r"/admin/api/[0-9]{4}-[0-9]{2}/fulfillments\.json")
WOO_NOTES = re.compile(r"/wp-json/wc/v3/orders/([^/]+)/notes")
WOO_NOTE_TEXT = re.compile(r"Shipped with (?P<carrier>.+), tracking number (?P<waybill>\S+)")
TIKTOK_PACKAGES = re.compile(r"/fulfillment/202309/orders/([^/]+)/packages")
OWN_SITE_TRACKING = re.compile(r"/orders/([^/]+)/tracking")


@dataclass
class FakeOrder:
    """One order in the fake channel's store; ``fields`` are merged into every rendering."""

    id: int
    updated_at: datetime
    created_at: datetime
    status: str = "paid"
    total: str = "19.90"
    currency: str = "USD"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake channel answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class _Scripted:
    status: int
    headers: dict[str, str]


class BadRequest(Exception):
    """Raised inside the fake server for a request the real channel would refuse (answered 400)."""


class FakeChannel(RefundEndpoints, LocalHTTPService):
    """The fake channel server (see the module docstring). Use as a context manager or
    call :meth:`start` / :meth:`close`. ``access_token`` (and ``app_key`` for WooCommerce's
    consumer key) must accompany every request, else 401."""

    def __init__(self, *, access_token: str = "tok-fake", app_key: str = "ck-fake",  # noqa: S107 - fake credentials
                 reorder_seed: int | None = None, max_page_size: int = 250,
                 app_secret: str = "app-secret-fake") -> None:  # noqa: S107 - fake credentials
        self.access_token = access_token
        self.app_key = app_key
        self.app_secret = app_secret
        self.writebacks: list[dict[str, Any]] = []
        self._init_refunds()
        # Shopify fulfillment orders handed out by id: {"id", "order_id", "status"}.
        self._fulfillment_orders: dict[int, dict[str, Any]] = {}
        self.max_page_size = max_page_size
        self.requests: list[RecordedRequest] = []
        self.between_pages: Callable[[int], None] | None = None
        self._orders: dict[int, FakeOrder] = {}
        self._script: list[_Scripted] = []
        self._searches = 0
        self._lock = threading.RLock()
        # Seeded so a failing test reorders the same way when rerun; not security-relevant.
        self._shuffle = random.Random(reorder_seed) if reorder_seed is not None else None  # noqa: S311
        super().__init__(name="fake-channel")

    # ------------------------------------------------------------------ steering
    def upsert(self, order_id: int, updated_at: datetime, *, created_at: datetime | None = None,
               **changes: Any) -> FakeOrder:
        """Add order ``order_id`` or change it; ``status``, ``total``, ``currency`` set those
        attributes, other keyword arguments are merged into its payload ``fields``."""
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                order = FakeOrder(id=order_id, updated_at=updated_at, created_at=created_at or updated_at)
                self._orders[order_id] = order
            order.updated_at = updated_at
            for name in ("status", "total", "currency"):
                if name in changes:
                    setattr(order, name, changes.pop(name))
            order.fields.update(changes)
            return order

    def orders(self) -> list[FakeOrder]:
        """All orders, by id."""
        with self._lock:
            return [self._orders[k] for k in sorted(self._orders)]

    def throttle(self, times: int = 1, retry_after: str | None = "1") -> None:
        """Answer the next ``times`` requests 429, with ``Retry-After: retry_after`` (None: no header)."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        with self._lock:
            self._script.extend(_Scripted(429, headers) for _ in range(times))

    def fail(self, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` requests with ``status`` (a server error)."""
        with self._lock:
            self._script.extend(_Scripted(status, {}) for _ in range(times))

    @property
    def searches(self) -> int:
        """How many search requests were answered with a page (200)."""
        return self._searches

    # ------------------------------------------------------------------ serving
    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts, query, headers, raw = read_request(request)
        body: Any
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        status, out_headers, payload = self._answer(method, parts.path, query, headers, body, raw=raw)
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, headers, body, status))
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request.send_response(status)
        for name, value in out_headers.items():
            request.send_header(name, value)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                body: Any, *, raw: bytes = b"") -> tuple[int, dict[str, str], Any]:
        with self._lock:
            if self._script:
                scripted = self._script.pop(0)
                return scripted.status, scripted.headers, {"errors": f"scripted {scripted.status}"}
        # Refunds first: they share the TOP and PDD routers with the write-backs.
        refund = self._refund_answer(method, path, query, headers, body=body, raw=raw)
        if refund is not None:
            return refund
        writeback = self._writeback_answer(method, path, query, headers, body=body, raw=raw)
        if writeback is not None:
            return writeback
        routes: dict[tuple[str, str], Callable[..., tuple[int, dict[str, str], Any]]] = {
            ("GET", SHOPIFY_PATH): self._shopify, ("GET", WOO_PATH): self._woocommerce,
            ("POST", TIKTOK_PATH): self._tiktok, ("GET", TAOBAO_PATH): self._taobao,
            ("GET", PDD_PATH): self._pinduoduo,
        }
        if method == "GET" and SHOPIFY_VERSIONED.fullmatch(path):
            path = SHOPIFY_PATH  # any API version: specs pin their own
        route = routes.get((method, path))
        if route is None:
            return 404, {}, {"errors": "Not Found"}
        try:
            return route(query, headers, body)
        except BadRequest as exc:
            return 400, {}, {"errors": str(exc)}

    def _page(self, low: datetime | None, high: datetime | None, offset: int, limit: int,
              *, high_inclusive: bool = True) -> tuple[list[FakeOrder], int]:
        """One page of the live result set, and the result set's size."""
        if limit < 1 or limit > self.max_page_size:
            raise BadRequest(f"page size must be 1..{self.max_page_size}")
        index = self._searches
        if self.between_pages is not None:
            self.between_pages(index)
        with self._lock:
            self._searches += 1
            matching = sorted((o for o in self._orders.values()
                               if (low is None or o.updated_at >= low)
                               and (high is None or o.updated_at < high
                                    or (high_inclusive and o.updated_at == high))),
                              key=lambda o: (o.updated_at, o.id))
            page = matching[offset:offset + limit]
            if self._shuffle is not None:
                self._shuffle.shuffle(page)
            return page, len(matching)

    # ------------------------------------------------------------------ dialects
    def _shopify(self, query: dict[str, str], headers: dict[str, str], _body: Any) -> tuple[int, dict[str, str], Any]:
        if headers.get("x-shopify-access-token") != self.access_token:
            return 401, {}, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        limit = int(query.get("limit", "50"))
        if "page_info" in query:
            extra = set(query) - {"page_info", "limit", "fields"}
            if extra:
                raise BadRequest(f"page_info cannot be combined with {sorted(extra)}")
            state = _decode(query["page_info"])
            window_min, window_max, offset = state["min"], state["max"], int(state["offset"])
        else:
            window_min, window_max, offset = query.get("updated_at_min"), query.get("updated_at_max"), 0
        page, total = self._page(_iso_or_none(window_min), _iso_or_none(window_max), offset, limit)
        out: dict[str, str] = {}
        if offset + limit < total:
            # Like Shopify, the cursor carries the filters: the next request must not repeat them.
            token = _encode({"min": window_min, "max": window_max, "offset": offset + limit})
            next_url = f"{self.base_url}{SHOPIFY_PATH}?{urlencode({'limit': limit, 'page_info': token})}"
            out["Link"] = f'<{next_url}>; rel="next"'
        return 200, out, {"orders": [self._render_shopify(o) for o in page]}

    def _woocommerce(self, query: dict[str, str], _h: dict[str, str], _b: Any) -> tuple[int, dict[str, str], Any]:
        if query.get("consumer_key") != self.app_key or query.get("consumer_secret") != self.access_token:
            return 401, {}, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."}
        per_page, page_no = int(query.get("per_page", "10")), int(query.get("page", "1"))
        page, total = self._page(_iso_or_none(query.get("modified_after")), _iso_or_none(query.get("modified_before")),
                                 (page_no - 1) * per_page, per_page, high_inclusive=False)
        pages = max(1, -(-total // per_page))
        return 200, {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}, [self._render_woo(o) for o in page]

    def _tiktok(self, query: dict[str, str], headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        if headers.get("x-tts-access-token") != self.access_token:
            return 401, {}, {"code": 105002, "message": "Expired credentials", "data": None}
        body = body if isinstance(body, dict) else {}
        size = int(query.get("page_size", "20"))
        offset = int(_decode(query["page_token"])["offset"]) if query.get("page_token") else 0
        low = _unix_or_none(body.get("update_time_ge"))
        high = _unix_or_none(body.get("update_time_lt"))
        page, total = self._page(low, high, offset, size, high_inclusive=False)
        token = _encode({"offset": offset + size}) if offset + size < total else ""
        return 200, {}, {"code": 0, "message": "Success", "request_id": f"req-{self._searches}",
                         "data": {"orders": [self._render_tiktok(o) for o in page], "next_page_token": token,
                                  "total_count": total}}

    def _taobao(self, query: dict[str, str], _h: dict[str, str], _b: Any) -> tuple[int, dict[str, str], Any]:
        if query.get("session") != self.access_token:
            return 200, {}, {"error_response": {"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}}
        if query.get("method") != "taobao.trades.sold.increment.get":
            return 200, {}, {"error_response": {"code": 22, "msg": "Invalid method"}}
        size, page_no = int(query.get("page_size", "40")), int(query.get("page_no", "1"))
        low, high = _top_or_none(query.get("start_modified")), _top_or_none(query.get("end_modified"))
        page, total = self._page(low, high, (page_no - 1) * size, size)
        inner: dict[str, Any] = {"total_results": total, "has_next": page_no * size < total}
        if page:
            inner["trades"] = {"trade": [self._render_taobao(o) for o in page]}
        return 200, {}, {"trades_sold_increment_get_response": inner}

    def _pinduoduo(self, query: dict[str, str], _h: dict[str, str], _b: Any) -> tuple[int, dict[str, str], Any]:
        if query.get("access_token") != self.access_token:
            return 200, {}, {"error_response": {"error_code": 10019, "error_msg": "access_token已过期"}}
        size, page_no = int(query.get("page_size", "100")), int(query.get("page", "1"))
        low = _unix_or_none(query.get("start_updated_at"))
        high = _unix_or_none(query.get("end_updated_at"))
        page, total = self._page(low, high, (page_no - 1) * size, size)
        return 200, {}, {"order_sn_increment_get_response": {
            "total_count": total, "has_next": page_no * size < total,
            "order_sn_list": [self._render_pdd(o) for o in page]}}

    # ------------------------------------------------------------------ write-backs
    def _writeback_answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], *,
                          body: Any, raw: bytes) -> tuple[int, dict[str, str], Any] | None:
        """The answer to a write-back call, or None when ``path`` isn't one."""
        if method == "GET" and (found := SHOPIFY_FULFILLMENT_ORDERS.fullmatch(path)):
            return self._shopify_fulfillment_orders(found.group(1), headers)
        if method != "POST":
            return None
        body = body if isinstance(body, dict) else {}
        if SHOPIFY_FULFILLMENTS.fullmatch(path):
            return self._shopify_fulfill(headers, body)
        if found := WOO_NOTES.fullmatch(path):
            return self._woo_note(found.group(1), query, body)
        if found := TIKTOK_PACKAGES.fullmatch(path):
            return self._tiktok_ship(found.group(1), path, query, headers, body=body, raw=raw)
        if path == TAOBAO_PATH:
            return self._taobao_send({**query, **body})
        if path == PDD_PATH:
            return self._pdd_send({**query, **body})
        if found := OWN_SITE_TRACKING.fullmatch(path):
            return self._own_site_tracking(found.group(1), headers, body, raw)
        return None

    def _record_writeback(self, channel: str, external_id: str, carrier: Any, waybill_no: Any) -> None:
        with self._lock:
            self.writebacks.append({"channel": channel, "external_id": external_id, "carrier": carrier,
                                    "waybill_no": waybill_no})

    def _shopify_fulfillment_orders(self, order_id: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if headers.get("x-shopify-access-token") != self.access_token:
            return 401, {}, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        with self._lock:
            mine = [fo for fo in self._fulfillment_orders.values() if fo["order_id"] == order_id]
            if not mine:
                # Shopify creates one fulfillment order per location when the order is placed.
                fo_id = 9000 + len(self._fulfillment_orders) + 1
                self._fulfillment_orders[fo_id] = {"id": fo_id, "order_id": order_id, "status": "open"}
                mine = [self._fulfillment_orders[fo_id]]
            return 200, {}, {"fulfillment_orders": [dict(fo) for fo in mine]}

    def _shopify_fulfill(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if headers.get("x-shopify-access-token") != self.access_token:
            return 401, {}, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        fulfillment = body.get("fulfillment") or {}
        tracking = fulfillment.get("tracking_info") or {}
        groups = fulfillment.get("line_items_by_fulfillment_order") or []
        with self._lock:
            found = [self._fulfillment_orders.get(_int_or_zero(g.get("fulfillment_order_id"))) for g in groups]
            if not groups or None in found:
                return 422, {}, {"errors": ["Fulfillment order does not exist."]}
            closed = [fo["id"] for fo in found if fo is not None and fo["status"] != "open"]
            if closed:
                return 422, {}, {"errors": [f"Fulfillment order {closed[0]} has an unfulfillable status= closed."]}
            for fo in found:
                if fo is not None:
                    fo["status"] = "closed"
            order_id = str(found[0]["order_id"]) if found[0] is not None else ""
        self._record_writeback("shopify", order_id, tracking.get("company"), tracking.get("number"))
        return 201, {}, {"fulfillment": {"id": 7000 + len(self.writebacks), "order_id": order_id,
                                         "status": "success", "tracking_company": tracking.get("company"),
                                         "tracking_number": tracking.get("number")}}

    def _woo_note(self, order_id: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if query.get("consumer_key") != self.app_key or query.get("consumer_secret") != self.access_token:
            return 401, {}, {"code": "woocommerce_rest_cannot_create", "message": "Sorry, you are not allowed to "
                             "create resources.", "data": {"status": 401}}
        note = body.get("note")
        if not note:
            return 400, {}, {"code": "rest_missing_callback_param", "message": "Missing parameter(s): note",
                             "data": {"status": 400}}
        parsed = WOO_NOTE_TEXT.search(str(note))
        self._record_writeback("woocommerce", order_id, parsed.group("carrier") if parsed else None,
                               parsed.group("waybill") if parsed else None)
        return 201, {}, {"id": 500 + len(self.writebacks), "author": "WooCommerce", "note": note,
                         "customer_note": bool(body.get("customer_note")),
                         "date_created_gmt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")}

    def _tiktok_ship(self, order_id: str, path: str, query: dict[str, str], headers: dict[str, str], *,
                     body: dict[str, Any], raw: bytes) -> tuple[int, dict[str, str], Any]:
        if headers.get("x-tts-access-token") != self.access_token or query.get("app_key") != self.app_key:
            return 401, {}, {"code": 105002, "message": "Expired credentials", "data": None}
        text = path + "".join(f"{k}{v}" for k, v in sorted(query.items()) if k not in ("sign", "access_token"))
        key = self.app_secret.encode()
        expected = hmac.new(key, key + text.encode() + raw + key, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(query.get("sign", ""), expected):
            return 401, {}, {"code": 106001, "message": "Invalid sign", "data": None}
        if not body.get("tracking_number") or not body.get("shipping_provider_id"):
            return 400, {}, {"code": 36009003, "message": "tracking_number and shipping_provider_id are required",
                             "data": None}
        self._record_writeback("tiktok_shop", order_id, body["shipping_provider_id"], body["tracking_number"])
        return 200, {}, {"code": 0, "message": "Success", "request_id": f"req-w{len(self.writebacks)}",
                         "data": {"package_id": f"pkg-{order_id}"}}

    def _top_md5(self, params: dict[str, str]) -> str:
        text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
        digest = hashlib.md5(f"{self.app_secret}{text}{self.app_secret}".encode(), usedforsecurity=False)
        return digest.hexdigest().upper()

    def _taobao_send(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if params.get("session") != self.access_token:
            return 200, {}, {"error_response": {"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}}
        if params.get("method") != "taobao.logistics.offline.send":
            return 200, {}, {"error_response": {"code": 22, "msg": "Invalid method"}}
        if params.get("sign") != self._top_md5(params):
            return 200, {}, {"error_response": {"code": 25, "msg": "Invalid signature"}}
        missing = [k for k in ("tid", "out_sid", "company_code") if not params.get(k)]
        if missing:
            return 200, {}, {"error_response": {"code": 40, "msg": "Missing required arguments:" + missing[0]}}
        self._record_writeback("taobao", params["tid"], params["company_code"], params["out_sid"])
        return 200, {}, {"logistics_offline_send_response": {"shipping": {"is_success": True}}}

    def _pdd_send(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if params.get("access_token") != self.access_token or params.get("client_id") != self.app_key:
            return 200, {}, {"error_response": {"error_code": 10019, "error_msg": "access_token已过期"}}
        if params.get("type") != "pdd.logistics.online.send":
            return 200, {}, {"error_response": {"error_code": 10001, "error_msg": "type not found"}}
        text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign")
        expected = hashlib.md5(f"{self.app_secret}{text}{self.app_secret}".encode(),
                               usedforsecurity=False).hexdigest().upper()
        if params.get("sign") != expected:
            return 200, {}, {"error_response": {"error_code": 10016, "error_msg": "sign error"}}
        self._record_writeback("pinduoduo", params.get("order_sn", ""), params.get("logistics_id"),
                               params.get("tracking_number"))
        return 200, {}, {"logistics_online_send_response": {"is_success": True,
                                                            "request_id": f"pdd-{len(self.writebacks)}"}}

    def _own_site_tracking(self, order_id: str, headers: dict[str, str], body: dict[str, Any],
                           raw: bytes) -> tuple[int, dict[str, str], Any]:
        timestamp = headers.get("x-orderhub-timestamp", "")
        mac = hmac.new(self.app_secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not timestamp or not hmac.compare_digest(headers.get("x-orderhub-signature", ""), "sha256=" + mac):
            return 401, {}, {"error": "bad signature"}
        if not body.get("waybill_no"):
            return 400, {}, {"error": "waybill_no is required"}
        self._record_writeback("own_site", order_id, body.get("carrier"), body["waybill_no"])
        return 200, {}, {"ok": True}

    # ------------------------------------------------------------------ renderings
    @staticmethod
    def _render_shopify(o: FakeOrder) -> dict[str, Any]:
        return {"id": o.id, "name": f"#{o.id}", "created_at": o.created_at.isoformat(timespec="seconds"),
                "updated_at": o.updated_at.isoformat(timespec="seconds"), "processed_at":
                o.created_at.isoformat(timespec="seconds"), "financial_status": o.status, "fulfillment_status": None,
                "cancelled_at": None, "total_price": o.total, "currency": o.currency,
                "line_items": [{"id": o.id * 10, "sku": f"SKU-{o.id}", "title": f"Item {o.id}", "quantity": 1,
                                "current_quantity": 1, "price": o.total}], **o.fields}

    @staticmethod
    def _render_woo(o: FakeOrder) -> dict[str, Any]:
        return {"id": o.id, "status": o.status, "currency": o.currency, "total": o.total,
                "date_created_gmt": o.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "date_modified_gmt": o.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), **o.fields}

    @staticmethod
    def _render_tiktok(o: FakeOrder) -> dict[str, Any]:
        return {"id": str(o.id), "status": o.status, "create_time": int(o.created_at.timestamp()),
                "update_time": int(o.updated_at.timestamp()),
                "payment": {"currency": o.currency, "total_amount": o.total}, **o.fields}

    @staticmethod
    def _render_taobao(o: FakeOrder) -> dict[str, Any]:
        return {"tid": o.id, "status": o.status, "payment": o.total,
                "created": o.created_at.astimezone(SHANGHAI).strftime(TOP_TIME),
                "modified": o.updated_at.astimezone(SHANGHAI).strftime(TOP_TIME), **o.fields}

    @staticmethod
    def _render_pdd(o: FakeOrder) -> dict[str, Any]:
        return {"order_sn": f"{o.created_at:%y%m%d}-{o.id}", "order_status": o.status, "pay_amount": o.total,
                "updated_at": o.updated_at.astimezone(SHANGHAI).strftime(TOP_TIME), **o.fields}


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise BadRequest("invalid page token") from exc
    return state


def _iso_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"invalid date {value!r}") from exc
    if parsed.tzinfo is None:
        # WooCommerce and Shopify read offset-less dates in the store's zone; the fake store is UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _unix_or_none(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"invalid unix time {value!r}") from exc


def _top_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, TOP_TIME).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError as exc:
        raise BadRequest(f"invalid time {value!r}; expected yyyy-MM-dd HH:mm:ss") from exc


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
