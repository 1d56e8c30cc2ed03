"""The fake channel's refund endpoints (a mixin of :class:`~orderhub.simulation.fake_channel.FakeChannel`).

Used by tests and demos of refund execution (``orderhub.adapters.channels.refunds``): each
channel's refund call is answered the way that channel would, with auth and signatures
checked independently of the client code, and every executed refund is recorded in
:attr:`RefundEndpoints.refunds` (``{"channel", "order", "amount" (minor units), "currency",
"ref", "key", "note"}``; ``key`` is what the channel deduplicates on, None for Shopify).

=============  ==========================================================================
shopify        GET  /admin/api/{v}/orders/{id}.json (with ``refunds[]``),
               POST /admin/api/{v}/orders/{id}/refunds.json
own_site       POST /orderhub/refunds  (X-OrderHub-Signature, Idempotency-Key)
taobao         POST /router/rest  method=taobao.refund.get / taobao.rp.refunds.agree
pinduoduo      POST /api/router   type=pdd.refund.agree
=============  ==========================================================================

Idempotency is modelled per channel: the own site answers a repeated ``Idempotency-Key``
with the first refund (and refuses the key reused for a different refund); Taobao and
Pinduoduo agree to a buyer's request once, a repeat answers success without a second refund.
Shopify, like the real one, creates a new refund on every POST: clients find their earlier
refund through the order's ``refunds[]`` notes. Any Shopify order id is accepted (orders not
in the store have no line items and no currency); Taobao and Pinduoduo only know the buyer
requests opened with :meth:`RefundEndpoints.open_refund`. :meth:`RefundEndpoints.refuse_refunds`
makes the next refund calls fail in the channel's own refusal shape; the channel's
``throttle`` / ``fail`` apply to these calls as to all others.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orderhub.domain.errors import DomainError
from orderhub.domain.money import Money

if TYPE_CHECKING:
    from orderhub.simulation.fake_channel import FakeOrder

Answer = tuple[int, dict[str, str], Any]

SHOPIFY_ORDER = re.compile(r"/admin/api/[0-9]{4}-[0-9]{2}/orders/([^/]+)\.json")
SHOPIFY_REFUNDS = re.compile(r"/admin/api/[0-9]{4}-[0-9]{2}/orders/([^/]+)/refunds\.json")
OWN_SITE_REFUNDS = "/orderhub/refunds"
TOP_REFUND_METHODS = ("taobao.refund.get", "taobao.rp.refunds.agree")
PDD_REFUND_TYPES = ("pdd.refund.agree",)
FIRST_TAOBAO_VERSION = 1_732_150_000_000  # refund_version is a millisecond timestamp
_SHOPIFY_AUTH_ERROR = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


class RefundEndpoints:
    """Refund endpoints mixed into FakeChannel; :meth:`_init_refunds` must run in its ``__init__``."""

    # Provided by FakeChannel.
    access_token: str
    app_key: str
    app_secret: str
    _lock: threading.RLock
    _orders: dict[int, FakeOrder]

    if TYPE_CHECKING:
        @staticmethod
        def _render_shopify(o: FakeOrder) -> dict[str, Any]: ...

    def _init_refunds(self) -> None:
        self.refunds: list[dict[str, Any]] = []
        # (channel, refund id) -> a buyer's refund request awaiting the seller (Taobao, PDD).
        self._buyer_requests: dict[tuple[str, str], dict[str, Any]] = {}
        # Shopify refunds by order id, as rendered in the order's refunds[].
        self._shopify_refunds: dict[str, list[dict[str, Any]]] = {}
        # own site Idempotency-Key -> (what was asked, the answer given).
        self._own_site_keys: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._refusals: list[str] = []

    # ------------------------------------------------------------------ steering
    def open_refund(self, channel: str, refund_id: str, order: str, amount: int, *, currency: str = "CNY",
                    phase: str = "aftersale", status: str = "WAIT_SELLER_AGREE") -> None:
        """Let the buyer ask for a refund of ``amount`` minor units on ``order`` (Taobao or
        Pinduoduo): the seller can then agree to it under ``refund_id``. ``status`` is the
        Taobao refund status it starts in (``CLOSED``: the buyer withdrew it)."""
        with self._lock:
            self._buyer_requests[(channel, refund_id)] = {
                "refund_id": refund_id, "order": order, "amount": amount, "currency": currency, "phase": phase,
                "status": status, "version": FIRST_TAOBAO_VERSION + len(self._buyer_requests)}

    def buyer_request(self, channel: str, refund_id: str) -> dict[str, Any] | None:
        """A copy of the buyer's request ``refund_id`` (its ``status`` turns ``SUCCESS`` once agreed)."""
        with self._lock:
            found = self._buyer_requests.get((channel, refund_id))
            return dict(found) if found else None

    def refuse_refunds(self, times: int = 1, message: str = "refund refused by the channel") -> None:
        """Refuse the next ``times`` refund executions (not reads) in each channel's own refusal
        shape: Shopify and own site 422, Taobao and Pinduoduo an in-body error."""
        with self._lock:
            self._refusals.extend(message for _ in range(times))

    # ------------------------------------------------------------------ routing
    def _refund_answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], *,
                       body: Any, raw: bytes) -> Answer | None:
        """The answer to a refund call, or None when the request isn't one."""
        params = {**query, **body} if isinstance(body, dict) else dict(query)
        if method == "GET" and (found := SHOPIFY_ORDER.fullmatch(path)):
            return self._shopify_order(found.group(1), query, headers)
        if method != "POST":
            return None
        if found := SHOPIFY_REFUNDS.fullmatch(path):
            return self._shopify_refund(found.group(1), headers, body if isinstance(body, dict) else {})
        if path == OWN_SITE_REFUNDS:
            return self._own_site_refund(headers, body if isinstance(body, dict) else {}, raw)
        if path == "/router/rest" and params.get("method") in TOP_REFUND_METHODS:
            return self._taobao_refund({k: str(v) for k, v in params.items()})
        if path == "/api/router" and params.get("type") in PDD_REFUND_TYPES:
            return self._pdd_refund({k: str(v) for k, v in params.items()})
        return None

    def _refused(self) -> str | None:
        with self._lock:
            return self._refusals.pop(0) if self._refusals else None

    def _record_refund(self, channel: str, order: str, *, amount: int, currency: str, ref: str, key: str | None,
                       note: str = "") -> None:
        with self._lock:
            self.refunds.append({"channel": channel, "order": order, "amount": amount, "currency": currency,
                                 "ref": ref, "key": key, "note": note})

    # ------------------------------------------------------------------ shopify
    def _shopify_view(self, order_id: str) -> tuple[dict[str, Any], FakeOrder | None]:
        known = self._orders.get(int(order_id)) if order_id.isdigit() else None
        view: dict[str, Any] = self._render_shopify(known) if known else {"id": order_id, "line_items": []}
        view.setdefault("payment_gateway_names", ["manual"])
        view["refunds"] = [dict(r) for r in self._shopify_refunds.get(order_id, [])]
        return view, known

    def _shopify_order(self, order_id: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if headers.get("x-shopify-access-token") != self.access_token:
            return 401, {}, _SHOPIFY_AUTH_ERROR
        with self._lock:
            view, _known = self._shopify_view(order_id)
        if query.get("fields"):
            wanted = set(query["fields"].split(","))
            view = {k: v for k, v in view.items() if k in wanted}
        return 200, {}, {"order": view}

    def _shopify_refund(self, order_id: str, headers: dict[str, str], body: dict[str, Any]) -> Answer:
        if headers.get("x-shopify-access-token") != self.access_token:
            return 401, {}, _SHOPIFY_AUTH_ERROR
        refund = body.get("refund")
        if not isinstance(refund, dict):
            refund = {}
        transactions = refund.get("transactions") or []
        with self._lock:
            view, known = self._shopify_view(order_id)
            currency = str(refund.get("currency") or (known.currency if known else ""))
            if known and currency != known.currency:
                return 422, {}, {"errors": {"currency": [f"must be {known.currency}"]}}
            try:
                amounts = [Money.parse(str(t.get("amount")), currency).amount for t in transactions
                           if isinstance(t, dict) and t.get("kind") == "refund"]
            except DomainError as exc:
                return 422, {}, {"errors": {"transactions": [str(exc)]}}
            if not amounts or len(amounts) != len(transactions) or min(amounts) <= 0:
                return 422, {}, {"errors": {"transactions": ["must be refund transactions with positive amounts"]}}
            line_ids = {item.get("id") for item in view.get("line_items") or []}
            for item in refund.get("refund_line_items") or []:
                if known and item.get("line_item_id") not in line_ids:
                    return 422, {}, {"errors": {"refund_line_items": ["Line item does not exist"]}}
            total = sum(amounts)
            if known:
                refunded = sum(r["amount"] for r in self.refunds
                               if r["channel"] == "shopify" and r["order"] == order_id)
                if refunded + total > Money.parse(known.total, known.currency).amount:
                    # [fake] Shopify's wording of this refusal is not checked.
                    return 422, {}, {"errors": {"base": ["Amount cannot be greater than the refundable amount"]}}
            message = self._refused()
            if message is not None:
                return 422, {}, {"errors": {"base": [message]}}
            refund_id = 8000 + len(self.refunds) + 1
            made = {"id": refund_id, "order_id": order_id, "note": refund.get("note"),
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "refund_line_items": list(refund.get("refund_line_items") or []),
                    "transactions": [{**t, "id": refund_id * 10 + i, "status": "success", "currency": currency}
                                     for i, t in enumerate(transactions)]}
            self._shopify_refunds.setdefault(order_id, []).append(made)
            self._record_refund("shopify", order_id, amount=total, currency=currency, ref=str(refund_id), key=None,
                                note=str(refund.get("note")))
        return 201, {}, {"refund": made}

    # ------------------------------------------------------------------ own site
    def _own_site_refund(self, headers: dict[str, str], body: dict[str, Any], raw: bytes) -> Answer:
        timestamp = headers.get("x-orderhub-timestamp", "")
        mac = hmac.new(self.app_secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not timestamp or not hmac.compare_digest(headers.get("x-orderhub-signature", ""), "sha256=" + mac):
            return 401, {}, {"error": "bad signature"}
        key = headers.get("idempotency-key", "")
        if not key or key != body.get("refund_id"):
            return 400, {}, {"error": "Idempotency-Key is required and must equal refund_id"}
        try:
            amount = Money.parse(str(body.get("amount")), str(body.get("currency")))
        except DomainError as exc:
            return 400, {}, {"error": str(exc)}
        asked = (body.get("order_id"), amount.amount, amount.currency)
        with self._lock:
            if key in self._own_site_keys:
                first, answer = self._own_site_keys[key]
                if first != asked:
                    return 422, {}, {"error": f"Idempotency-Key {key} was used for a different refund"}
                return 200, {}, answer
            if amount.amount <= 0 or not body.get("order_id"):
                return 400, {}, {"error": "order_id and a positive amount are required"}
            message = self._refused()
            if message is not None:
                return 422, {}, {"error": message}
            ref = f"OS-RF-{len(self.refunds) + 1:04d}"
            answer = {"refund_id": key, "ref": ref, "status": "refunded"}
            self._own_site_keys[key] = (asked, answer)
            self._record_refund("own_site", str(body["order_id"]), amount=amount.amount, currency=amount.currency,
                                ref=ref, key=key, note=str(body.get("reason") or ""))
        return 201, {}, answer

    # ------------------------------------------------------------------ taobao
    def _taobao_refund(self, params: dict[str, str]) -> Answer:
        if params.get("session") != self.access_token or params.get("app_key") != self.app_key:
            return 200, {}, {"error_response": {"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}}
        if params.get("sign") != _md5_sign(params, self.app_secret, skip_empty=True):
            return 200, {}, {"error_response": {"code": 25, "msg": "Invalid signature"}}
        if params["method"] == "taobao.refund.get":
            with self._lock:
                found = self._buyer_requests.get(("taobao", params.get("refund_id", "")))
                if found is None:
                    return 200, {}, _top_error("isv.refund-not-exist", "退款不存在 (no such refund)")
                return 200, {}, {"refund_get_response": {"refund": {
                    "refund_id": found["refund_id"], "tid": found["order"], "status": found["status"],
                    "refund_fee": Money(found["amount"], found["currency"]).to_decimal_string(),
                    "refund_version": found["version"], "refund_phase": found["phase"]}}}
        results = []
        with self._lock:
            for info in params.get("refund_infos", "").split(","):
                refund_id, fen, version, *_phase = [*info.split("|"), "", ""][:4]
                found = self._buyer_requests.get(("taobao", refund_id))
                if found is None:
                    return 200, {}, _top_error("isv.refund-not-exist", f"退款不存在 (no refund {refund_id})")
                if found["status"] == "CLOSED":
                    return 200, {}, _top_agree_failed(refund_id, "退款已关闭 (the buyer closed the refund)")
                if found["status"] == "SUCCESS":
                    results.append({"refund_id": refund_id, "succ": True, "message": "already agreed"})
                    continue
                if version != str(found["version"]):
                    return 200, {}, _top_agree_failed(refund_id, "退款版本不一致 (the refund changed; read it again)")
                if not fen.isdigit() or int(fen) <= 0 or int(fen) > found["amount"]:
                    return 200, {}, _top_agree_failed(refund_id, "退款金额错误 (more than the buyer asked for)")
                message = self._refused()
                if message is not None:
                    return 200, {}, _top_error("isv.refund-agree-refused", message)
                found["status"] = "SUCCESS"
                self._record_refund("taobao", found["order"], amount=int(fen), currency="CNY", ref=refund_id,
                                    key=refund_id)
                results.append({"refund_id": refund_id, "succ": True, "message": "成功"})
        return 200, {}, {"rp_refunds_agree_response": {"succ": True, "msg": "成功",
                                                       "results": {"refund_mapping_result": results}}}

    # ------------------------------------------------------------------ pinduoduo
    def _pdd_refund(self, params: dict[str, str]) -> Answer:
        if params.get("access_token") != self.access_token or params.get("client_id") != self.app_key:
            return 200, {}, {"error_response": {"error_code": 10019, "error_msg": "access_token已过期"}}
        if params.get("sign") != _md5_sign(params, self.app_secret, skip_empty=False):
            return 200, {}, {"error_response": {"error_code": 10016, "error_msg": "sign error"}}
        after_sales_id, fen = params.get("after_sales_id", ""), params.get("refund_amount", "")
        with self._lock:
            found = self._buyer_requests.get(("pinduoduo", after_sales_id))
            # [fake] error codes: Pinduoduo's own are not known to us.
            if found is None or found["order"] != params.get("order_sn"):
                return 200, {}, {"error_response": {"error_code": 50001,
                                                    "error_msg": "售后单不存在 (no such after-sale)"}}
            if found["status"] != "SUCCESS":
                if not fen.isdigit() or int(fen) <= 0 or int(fen) > found["amount"]:
                    return 200, {}, {"error_response": {"error_code": 50002,
                                                        "error_msg": "退款金额错误 (more than the buyer asked for)"}}
                message = self._refused()
                if message is not None:
                    return 200, {}, {"error_response": {"error_code": 50003, "error_msg": message}}
                found["status"] = "SUCCESS"
                self._record_refund("pinduoduo", found["order"], amount=int(fen), currency="CNY", ref=after_sales_id,
                                    key=after_sales_id)
        return 200, {}, {"refund_agree_response": {"is_success": True, "request_id": f"pdd-rf-{after_sales_id}"}}


def _md5_sign(params: dict[str, str], secret: str, *, skip_empty: bool) -> str:
    """TOP (empty values skipped) and PDD md5 signatures, recomputed here independently of the client."""
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and (v != "" or not skip_empty))
    return hashlib.md5(f"{secret}{text}{secret}".encode(), usedforsecurity=False).hexdigest().upper()


def _top_error(sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"error_response": {"code": 15, "msg": "Remote service error", "sub_code": sub_code, "sub_msg": sub_msg}}


def _top_agree_failed(refund_id: str, message: str) -> dict[str, Any]:
    # [unverified] shape of a refused agree: succ false with per-refund results.
    return {"rp_refunds_agree_response": {"succ": False, "msg": message, "results": {"refund_mapping_result": [
        {"refund_id": refund_id, "succ": False, "message": message}]}}}
