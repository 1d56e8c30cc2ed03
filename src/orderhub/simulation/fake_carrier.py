"""A simulated carrier service over real HTTP, for carrier adapter tests, pushes and demos.

:class:`FakeCarrier` runs an HTTP server on 127.0.0.1 (a free port) in a background thread
and impersonates any carrier id (``sf``, ``usps``…) — the carrier is whatever the waybill
request names. Its API (``Authorization: Bearer <api_key>`` on every call, else 401):

=======================================  ================================================
request                                  answer
=======================================  ================================================
POST /v1/waybills  (WaybillRequest JSON)  201 ``{"waybill_no", "carrier", "label_url"}``;
                                         the same shipment_id again: 200, same waybill;
                                         400 ``{"message"}`` for a recipient without
                                         country or detail, or weight_g <= 0
DELETE /v1/waybills/{no}                 204; 409 once the parcel has events past
                                         info_received (picked up); 404 unknown
GET /v1/waybills/{no}/tracking           ``{"waybill_no", "carrier", "events": [...]}``
                                         (the OrderHub push event shape), oldest first
GET /v1/labels/{no}.pdf                  a stand-in label (no auth: label URLs are handed
                                         to printers)
=======================================  ================================================

Waybill numbers look like the carrier's (sf ``SF`` + 13 digits, usps 22 digits from
``9400``, ups ``1Z`` + 16…) and are deterministic for a ``seed``. Tests steer it:
:meth:`FakeCarrier.add_event` / :meth:`FakeCarrier.play_journey` add tracking events (a
typical journey of RAW codes per carrier is in :data:`JOURNEYS`), :meth:`FakeCarrier.fail_next`
and :meth:`FakeCarrier.throttle_next` script 5xx / 429 answers, and :meth:`FakeCarrier.push`
sends a signed push to OrderHub's ``/webhooks/carriers/{carrier}``. Every request is
recorded in :attr:`FakeCarrier.requests`. The server uses the standard library only.
"""

from __future__ import annotations

import json
import random
import re
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx

from orderhub.adapters.carriers.base import CarrierEvent
from orderhub.adapters.carriers.push import (
    FORM_CONTENT_TYPE,
    ORDERHUB_SIGNATURE_HEADER,
    build_sf_route_push,
    orderhub_event_dict,
    orderhub_push_body,
    sf_route_of,
    sign_orderhub_push,
)
from orderhub.simulation.fake_channel import RecordedRequest
from orderhub.simulation.local_server import LocalHTTPService, read_request

WAYBILLS_PATH = "/v1/waybills"
WAYBILL_PATH = re.compile(r"/v1/waybills/([^/]+)")
TRACKING_PATH = re.compile(r"/v1/waybills/([^/]+)/tracking")
LABEL_PATH = re.compile(r"/v1/labels/([^/]+)\.pdf")

# A typical journey per carrier, label (or pickup) to delivered, in RAW codes and the words
# the carrier uses (docs/carrier-adapters.md says which ones are unverified).
JOURNEYS: dict[str, list[tuple[str, str]]] = {
    "sf": [("50", "顺丰速运 已收取快件"), ("30", "快件已完成分拣，准备发往下一站"), ("36", "快件已离开中转场"),
           ("31", "快件到达目的地中转场"), ("44", "正在派送途中，请您准备签收"), ("80", "已签收，感谢使用顺丰")],
    "zto": [("收件", "快件已被揽收"), ("发件", "快件已从分拨中心发出"), ("到件", "快件已到达目的地网点"),
            ("派件", "快递员正在派件"), ("签收", "快件已签收")],
    "yto": [("已收件", "快件已揽收"), ("派件中", "快件正在派送中"), ("已签收", "客户已签收")],
    "sto": [("收件", "快件已揽收"), ("发件", "快件已发往转运中心"), ("到件", "快件已到达网点"),
            ("派件", "快件派送中"), ("客户签收", "快件已签收")],
    "yunda": [("GOT", "快件已揽收"), ("DEPARTURE", "快件已从转运中心发出"), ("ARRIVAL", "快件已到达网点"),
              ("SENT", "快件派送中"), ("SIGNED", "快件已签收")],
    "jdl": [("100", "您的订单已下单"), ("420", "快递小哥已揽收"), ("430", "您的快件正在运输途中"),
            ("440", "您的快件正在派送中"), ("510", "您的快件已签收")],
    # EMS as the aggregator state codes its code table uses (codes/ems.yaml).
    "ems": [("1", "已收寄"), ("206", "离开处理中心，发往目的地"), ("204", "到达处理中心"),
            ("202", "正在投递"), ("301", "已妥投")],
    "cainiao": [("ACCEPT", "包裹已揽收"), ("DEPARTURE", "包裹已发出"), ("ARRIVAL", "包裹已到达"),
                ("SENT_SCAN", "包裹正在派送"), ("SIGN", "包裹已签收")],
    "usps": [("MA", "Shipping Label Created, USPS Awaiting Item"), ("03", "USPS picked up item"),
             ("10", "Processed Through Facility"), ("07", "Arrived at Post Office"), ("OF", "Out for Delivery"),
             ("01", "Delivered, In/At Mailbox")],
    "ups": [("M", "Shipper created a label, UPS has not received the package yet."), ("P", "Pickup Scan"),
            ("I", "Departed from Facility"), ("I", "Out For Delivery Today"), ("D", "DELIVERED")],
    "fedex": [("OC", "Shipment information sent to FedEx"), ("PU", "Picked up"), ("DP", "Departed FedEx location"),
              ("AR", "Arrived at FedEx location"), ("OD", "On FedEx vehicle for delivery"), ("DL", "Delivered")],
    "dhl": [("PU", "Shipment picked up"), ("DF", "Departed Facility"), ("AF", "Arrived at Delivery Facility"),
            ("WC", "With delivery courier"), ("OK", "Delivered")],
}

# Codes that only say "the carrier has the label data": a waybill with nothing else can be cancelled.
INFO_RECEIVED_CODES: dict[str, frozenset[str]] = {
    "usps": frozenset({"MA", "GX", "GC"}), "ups": frozenset({"M"}), "fedex": frozenset({"OC", "OX", "MD", "EP"}),
    "jdl": frozenset({"100"}), "dhl": frozenset({"pre-transit"}),
}

# carrier -> (prefix, how many random characters follow, their alphabet)
WAYBILL_FORMATS: dict[str, tuple[str, int, str]] = {
    "sf": ("SF", 13, string.digits), "jdl": ("JDV", 12, string.digits), "usps": ("9400", 18, string.digits),
    "ups": ("1Z", 16, string.digits + string.ascii_uppercase), "fedex": ("7", 11, string.digits),
    "dhl": ("1", 9, string.digits), "zto": ("7", 13, string.digits), "sto": ("77", 11, string.digits),
    "yunda": ("43", 11, string.digits), "ems": ("11", 11, string.digits), "cainiao": ("", 15, string.digits),
}
OTHER_FORMAT = ("", 12, string.digits)
FAKE_LABEL = b"%PDF-1.4\n% OrderHub simulated carrier label\n%%EOF\n"


@dataclass
class FakeWaybill:
    """A waybill the fake carrier issued, its request and its tracking events."""

    waybill_no: str
    carrier: str
    shipment_id: str
    request: dict[str, Any]
    label_url: str
    events: list[CarrierEvent] = field(default_factory=list)
    cancelled: bool = False


@dataclass
class _Scripted:
    status: int
    headers: dict[str, str]


class BadRequest(Exception):
    """Raised inside the fake server for a waybill request a real carrier would refuse (answered 400)."""


class FakeCarrier(LocalHTTPService):
    """The simulated carrier (see the module docstring). Use as a context manager or call
    :meth:`start` / :meth:`stop`. ``seed`` fixes the waybill numbers issued."""

    def __init__(self, *, api_key: str = "ck-carrier-fake", seed: int = 0) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._seed = seed
        self._waybills: dict[str, FakeWaybill] = {}
        self._by_shipment: dict[tuple[str, str], str] = {}
        self._numbers: dict[str, random.Random] = {}
        self._script: list[_Scripted] = []
        self._lock = threading.RLock()
        super().__init__(name="fake-carrier")

    # ------------------------------------------------------------------ steering
    @property
    def waybills(self) -> dict[str, FakeWaybill]:
        """Every waybill issued, by number (a copy of the index; the waybills are live)."""
        with self._lock:
            return dict(self._waybills)

    def add_event(self, waybill_no: str, code: str, *, occurred_at: datetime, description: str = "",
                  location: str | None = None) -> CarrierEvent:
        """Record a tracking event (RAW ``code``, aware ``occurred_at``) on an issued waybill;
        ``KeyError`` for a waybill the carrier never issued."""
        with self._lock:
            waybill = self._waybills.get(waybill_no)
            if waybill is None:
                raise KeyError(f"no waybill {waybill_no!r} at the fake carrier")
            event = CarrierEvent(waybill_no=waybill_no, code=code, description=description, occurred_at=occurred_at,
                                 location=location, raw={})
            event = replace(event, raw=orderhub_event_dict(event))
            waybill.events.append(event)
            return event

    def events(self, waybill_no: str) -> list[CarrierEvent]:
        """The waybill's events, oldest first; ``KeyError`` for an unknown waybill."""
        with self._lock:
            waybill = self._waybills.get(waybill_no)
            if waybill is None:
                raise KeyError(f"no waybill {waybill_no!r} at the fake carrier")
            return sorted(waybill.events, key=lambda e: e.occurred_at)

    def play_journey(self, waybill_no: str, start: datetime, step: timedelta,
                     upto: int | None = None) -> list[CarrierEvent]:
        """Add the waybill's carrier's :data:`JOURNEYS` events (the first ``upto`` of them),
        ``step`` apart from ``start``; ``KeyError`` for a carrier without a journey."""
        with self._lock:
            waybill = self._waybills.get(waybill_no)
        if waybill is None:
            raise KeyError(f"no waybill {waybill_no!r} at the fake carrier")
        carrier = waybill.carrier
        if carrier not in JOURNEYS:
            raise KeyError(f"no journey for carrier {carrier!r}; known: {', '.join(sorted(JOURNEYS))}")
        return [self.add_event(waybill_no, code, occurred_at=start + step * index, description=text)
                for index, (code, text) in enumerate(JOURNEYS[carrier][:upto])]

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` requests with ``status`` (a server error)."""
        with self._lock:
            self._script.extend(_Scripted(status, {}) for _ in range(n))

    def throttle_next(self, n: int, retry_after: float | None = 1) -> None:
        """Answer the next ``n`` requests 429 with ``Retry-After: retry_after`` seconds (None: no header)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        with self._lock:
            self._script.extend(_Scripted(429, headers) for _ in range(n))

    def push(self, url: str, secret: str, waybill_no: str | None = None, events: Sequence[CarrierEvent] | None = None,
             fmt: str = "orderhub", *, carrier: str | None = None, timestamp_ms: int | None = None,
             timeout: float = 10.0) -> httpx.Response:
        """POST a signed push to OrderHub at ``url`` (its base URL) +
        ``/webhooks/carriers/{carrier}`` and return the response.

        The push carries ``events``, or all of ``waybill_no``'s; the carrier is ``carrier``,
        else the one that issued the (first) waybill. ``fmt`` is ``orderhub`` (JSON,
        ``X-Carrier-Signature`` with ``secret``) or ``sf_route`` (SF's form push with
        ``secret`` as the checkword, stamped ``timestamp_ms``, default now).
        """
        if events is None:
            if waybill_no is None:
                raise ValueError("push needs a waybill_no or events")
            events = self.events(waybill_no)
        carrier = carrier or self._carrier_of(waybill_no or (events[0].waybill_no if events else None))
        target = f"{url.rstrip('/')}/webhooks/carriers/{quote(carrier, safe='')}"
        if fmt == "orderhub":
            body = orderhub_push_body(carrier, events)
            headers = {"Content-Type": "application/json", ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(secret, body)}
        elif fmt == "sf_route":
            stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
            form = build_sf_route_push(secret, [sf_route_of(e) for e in events], stamp)
            body, headers = urlencode(form).encode("utf-8"), {"Content-Type": FORM_CONTENT_TYPE}
        else:
            raise ValueError(f"unknown push format {fmt!r}; known: orderhub, sf_route")
        return httpx.post(target, content=body, headers=headers, timeout=timeout)

    def _carrier_of(self, waybill_no: str | None) -> str:
        with self._lock:
            waybill = self._waybills.get(waybill_no or "")
        if waybill is None:
            raise ValueError(f"can't tell the carrier of waybill {waybill_no!r}: pass carrier=")
        return waybill.carrier

    # ------------------------------------------------------------------ serving
    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts, query, headers, raw = read_request(request)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        status, out_headers, payload = self._answer(method, parts.path, headers, body)
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, headers, body, status))
        if isinstance(payload, bytes):
            data, content_type = payload, "application/pdf"
        else:
            data, content_type = json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        request.send_response(status)
        for name, value in out_headers.items():
            request.send_header(name, value)
        if status == 204:
            data = b""  # a 204 carries no body and, per RFC 9110, no Content-Length either
        else:
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _answer(self, method: str, path: str, headers: dict[str, str],
                body: Any) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            if self._script:
                scripted = self._script.pop(0)
                return scripted.status, scripted.headers, {"message": f"scripted {scripted.status}"}
        label = LABEL_PATH.fullmatch(path)
        if method == "GET" and label:
            known = unquote(label.group(1)) in self.waybills
            return (200, {}, FAKE_LABEL) if known else (404, {}, {"message": "no such label"})
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"WWW-Authenticate": "Bearer"}, {"message": "invalid or missing API key"}
        routes: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, dict[str, str], Any]]]] = [
            ("POST", re.compile(re.escape(WAYBILLS_PATH)), self._create),
            ("GET", TRACKING_PATH, self._tracking), ("DELETE", WAYBILL_PATH, self._cancel)]
        for route_method, pattern, handler in routes:
            matched = pattern.fullmatch(path)
            if matched and route_method == method:
                try:
                    return handler(body, *(unquote(g) for g in matched.groups()))
                except BadRequest as exc:
                    return 400, {}, {"message": str(exc)}
        return 404, {}, {"message": "Not Found"}

    def _create(self, body: Any) -> tuple[int, dict[str, str], Any]:
        req = _checked_request(body)
        carrier, shipment_id = req["carrier"], req["shipment_id"]
        with self._lock:
            known = self._by_shipment.get((carrier, shipment_id))
            if known is not None and not self._waybills[known].cancelled:
                return 200, {}, self._render_waybill(self._waybills[known])
            number = self._new_number(carrier)
            waybill = FakeWaybill(waybill_no=number, carrier=carrier, shipment_id=shipment_id, request=req,
                                  label_url=f"{self.base_url}/v1/labels/{number}.pdf")
            self._waybills[number] = waybill
            self._by_shipment[(carrier, shipment_id)] = number
            return 201, {}, self._render_waybill(waybill)

    def _cancel(self, _body: Any, waybill_no: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            waybill = self._waybills.get(waybill_no)
            if waybill is None:
                return 404, {}, {"message": f"waybill {waybill_no} not found"}
            label_only = INFO_RECEIVED_CODES.get(waybill.carrier, frozenset())
            moved = [e for e in waybill.events if e.code not in label_only]
            if moved:
                first = min(moved, key=lambda e: e.occurred_at)
                return 409, {}, {"message": f"waybill {waybill_no} can't be cancelled: the carrier already has "
                                            f"the parcel (event {first.code} at {first.occurred_at.isoformat()})"}
            waybill.cancelled = True
            return 204, {}, None

    def _tracking(self, _body: Any, waybill_no: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            waybill = self._waybills.get(waybill_no)
            if waybill is None:
                return 404, {}, {"message": f"waybill {waybill_no} not found"}
            return 200, {}, {"waybill_no": waybill_no, "carrier": waybill.carrier, "cancelled": waybill.cancelled,
                             "events": [orderhub_event_dict(e) for e in self.events(waybill_no)]}

    @staticmethod
    def _render_waybill(waybill: FakeWaybill) -> dict[str, Any]:
        return {"waybill_no": waybill.waybill_no, "carrier": waybill.carrier, "label_url": waybill.label_url}

    def _new_number(self, carrier: str) -> str:
        prefix, length, alphabet = WAYBILL_FORMATS.get(carrier, OTHER_FORMAT)
        # Seeded per carrier so numbers repeat across runs; not security-relevant.
        rng = self._numbers.setdefault(carrier, random.Random(f"{self._seed}:{carrier}"))  # noqa: S311
        while True:
            first = alphabet if prefix else alphabet.replace("0", "")  # no leading zero on bare numbers
            number = prefix + rng.choice(first) + "".join(rng.choice(alphabet) for _ in range(length - 1))
            if number not in self._waybills:
                return number


def _checked_request(body: Any) -> dict[str, Any]:
    """The waybill request, or BadRequest saying what a real carrier would refuse it for."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    for key in ("shipment_id", "carrier"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise BadRequest(f"{key} is required")
    weight = body.get("weight_g")
    if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
        raise BadRequest(f"weight_g must be a positive whole number of grams, got {weight!r}")
    for party in ("sender", "recipient"):
        if not isinstance(body.get(party), dict):
            raise BadRequest(f"{party} is required")
    recipient = body["recipient"]
    for key in ("country", "detail"):
        value = recipient.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"unserviceable address: recipient.{key} is required")
    return body
