"""Carrier tracking pushes: the formats OrderHub reads at ``POST /webhooks/carriers/{carrier}``.

=========== ================================= ===========================================
format      body                              signature
=========== ================================= ===========================================
orderhub    JSON ``{"carrier", "events"}``    ``X-Carrier-Signature: sha256=<hex>``,
                                              HMAC-SHA256(secret, raw body)
sf_route    form fields partnerID, requestID, ``msgDigest`` = base64(md5(msgData +
            serviceCode, timestamp,           timestamp + checkword))
            msgDigest, msgData (JSON routes)
=========== ================================= ===========================================

:func:`push_format_for` picks the format from the carrier and the content type. Each format
parses (raising :class:`PushUnreadable` with the field path at fault) and verifies (a bool,
constant-time) separately: see :class:`~orderhub.adapters.carriers.base.PushFormat` for why.
The builders at the bottom make genuine-looking signed pushes for the simulated carrier,
the tests and the demo. ``docs/carrier-adapters.md`` has exact examples and says what about
the SF format is unverified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus
from zoneinfo import ZoneInfo

from orderhub.adapters.carriers.base import CarrierEvent, PushFormat
from orderhub.adapters.carriers.errors import PushUnreadable
from orderhub.domain.time import isoformat

ORDERHUB_SIGNATURE_HEADER = "X-Carrier-Signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SF_TIME = "%Y-%m-%d %H:%M:%S"
# [unverified] the serviceCode SF puts on route pushes (its XML-era service name).
SF_SERVICE_CODE = "RoutePushService"
# [unverified] what SF expects back from a route push receiver (seen in third-party code).
SF_PUSH_ACK: dict[str, str] = {"return_code": "0000", "return_msg": "成功"}


# ---------------------------------------------------------------------- reading helpers
def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever case the caller's mapping uses."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _text(item: Mapping[str, Any], key: str, path: str, *, required: bool = True,
          allow_int: bool = False) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise PushUnreadable("is missing", path=_join(path, key))
        return None
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise PushUnreadable(f"must be a string, got {type(value).__name__}", path=_join(path, key))
    return value


def _non_empty(item: Mapping[str, Any], key: str, path: str, *, allow_int: bool = False) -> str:
    value = _text(item, key, path, allow_int=allow_int)
    if not value or not value.strip():
        raise PushUnreadable("must not be empty", path=_join(path, key))
    return value.strip()


def _object_list(container: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
    items = container.get(key)
    where = _join(path, key)
    if items is None:
        raise PushUnreadable("is missing", path=where)
    if not isinstance(items, list):
        raise PushUnreadable(f"must be a list, got {type(items).__name__}", path=where)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PushUnreadable(f"must be an object, got {type(item).__name__}", path=f"{where}[{index}]")
    return items


def _json_object(text: str | bytes, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushUnreadable(f"is not JSON: {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise PushUnreadable(f"must be a JSON object, got {type(data).__name__}", path=path)
    return data


def read_orderhub_event(item: Mapping[str, Any], path: str) -> CarrierEvent:
    """One event in the OrderHub event shape (used by pushes and by the simulated carrier's
    tracking answers); raise :class:`PushUnreadable` naming ``path``'s field at fault."""
    stamp = _non_empty(item, "occurred_at", path)
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise PushUnreadable(f"{stamp!r} is not an ISO 8601 time", path=f"{path}.occurred_at") from exc
    if when.tzinfo is None or when.utcoffset() is None:
        # A time without an offset is ambiguous by hours: refuse rather than guess a zone.
        raise PushUnreadable(f"{stamp!r} has no UTC offset; send e.g. 2026-11-21T10:00:00+08:00",
                             path=f"{path}.occurred_at")
    return CarrierEvent(waybill_no=_non_empty(item, "waybill_no", path), code=_non_empty(item, "code", path),
                        description=_text(item, "description", path) or "", occurred_at=when,
                        location=_text(item, "location", path, required=False), raw=dict(item))


def orderhub_event_dict(event: CarrierEvent) -> dict[str, Any]:
    """An event in the OrderHub event shape (``occurred_at`` ISO 8601 UTC with ``Z``)."""
    out: dict[str, Any] = {"waybill_no": event.waybill_no, "code": event.code, "description": event.description,
                           "occurred_at": isoformat(event.occurred_at)}
    if event.location is not None:
        out["location"] = event.location
    return out


# ---------------------------------------------------------------------- the OrderHub format
class OrderHubPush:
    """OrderHub's own carrier push (what the simulated carrier sends for every carrier):
    JSON ``{"carrier": "sf", "events": [{"waybill_no", "code", "description",
    "occurred_at", "location"?}]}`` signed in ``X-Carrier-Signature``."""

    name: str = "orderhub"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[CarrierEvent]:
        """The push's events; raise :class:`PushUnreadable` (``events[2].occurred_at``…)."""
        data = _json_object(body, "")
        _non_empty(data, "carrier", "")
        return [read_orderhub_event(item, f"events[{index}]")
                for index, item in enumerate(_object_list(data, "events", ""))]

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        """Whether ``X-Carrier-Signature`` is ``sha256=`` + hex HMAC-SHA256(secret, raw body)."""
        given = _header(headers, ORDERHUB_SIGNATURE_HEADER)
        if not given or not secret:
            return False
        expected = sign_orderhub_push(secret, body)
        return hmac.compare_digest(given.strip().lower().encode("utf-8"), expected.encode("utf-8"))


# ---------------------------------------------------------------------- SF route push
class SfRoutePush:
    """SF Express 路由推送, as the reference describes it (B.5) [partly unverified].

    Form fields ``partnerID, requestID, serviceCode, timestamp, msgDigest, msgData``;
    ``msgData`` is JSON ``{"Body": {"WaybillRoute": [{"mailno", "acceptTime",
    "acceptAddress", "remark", "opCode", …}]}}`` — ``{"WaybillRoute": […]}`` without the
    ``Body`` wrapper is read too, since public samples show both. ``acceptTime`` is
    ``yyyy-MM-dd HH:mm:ss`` in China time (Asia/Shanghai) and is converted to UTC.
    """

    name: str = "sf_route"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[CarrierEvent]:
        """The routes as events (``opCode`` is the raw code, ``remark`` the description,
        ``acceptAddress`` the location); raise :class:`PushUnreadable` naming the path
        (``msgData.Body.WaybillRoute[1].acceptTime``)."""
        fields = _form(body)
        data = _json_object(fields["msgData"], "msgData")
        path = "msgData"
        if "Body" in data:
            inner = data["Body"]
            if not isinstance(inner, dict):
                raise PushUnreadable("must be an object", path="msgData.Body")
            data, path = inner, "msgData.Body"
        routes = _object_list(data, "WaybillRoute", path)
        return [_sf_event(route, f"{path}.WaybillRoute[{index}]") for index, route in enumerate(routes)]

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        """Whether ``msgDigest`` is base64(md5(msgData + timestamp + checkword)) for the
        checkword ``secret``. Whether SF urlencodes that string before hashing (as its
        request signing does) is uncertain, so the urlencoded variant is accepted too; both
        need the checkword, and both are compared in constant time."""
        try:
            fields = _form(body)
        except PushUnreadable:
            return False
        given, timestamp = fields.get("msgDigest"), fields.get("timestamp")
        if not given or not timestamp or not secret:
            return False
        plain = sf_digest(fields["msgData"], timestamp, secret)
        encoded = sf_digest(fields["msgData"], timestamp, secret, urlencoded=True)
        given_bytes = given.strip().encode("utf-8")
        # Both compares always run, so timing doesn't tell which variant nearly matched.
        matches = [hmac.compare_digest(given_bytes, plain.encode("ascii")),
                   hmac.compare_digest(given_bytes, encoded.encode("ascii"))]
        return any(matches)


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise PushUnreadable(f"is not a UTF-8 form body: {exc}") from exc
    fields = {key: values[-1] for key, values in parsed.items()}
    if not fields.get("msgData"):
        raise PushUnreadable("is missing", path="msgData")
    return fields


def _sf_event(route: Mapping[str, Any], path: str) -> CarrierEvent:
    stamp = _non_empty(route, "acceptTime", path)
    try:
        local = datetime.strptime(stamp, SF_TIME)
    except ValueError as exc:
        raise PushUnreadable(f"{stamp!r} is not yyyy-MM-dd HH:mm:ss", path=f"{path}.acceptTime") from exc
    return CarrierEvent(waybill_no=_non_empty(route, "mailno", path),
                        code=_non_empty(route, "opCode", path, allow_int=True),
                        description=_text(route, "remark", path, required=False) or "",
                        occurred_at=local.replace(tzinfo=SHANGHAI),
                        location=_text(route, "acceptAddress", path, required=False) or None, raw=dict(route))


# Formats hold no state, so one instance of each serves every push.
PUSH_FORMATS: dict[str, PushFormat] = {OrderHubPush.name: OrderHubPush(), SfRoutePush.name: SfRoutePush()}


def push_format_for(carrier: str, content_type: str | None) -> PushFormat:
    """The format of a push to ``/webhooks/carriers/{carrier}``: SF's route push when SF
    posts a form, else OrderHub's JSON push (what every simulated carrier sends)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if carrier.strip().lower() == "sf" and media_type == FORM_CONTENT_TYPE:
        return PUSH_FORMATS[SfRoutePush.name]
    return PUSH_FORMATS[OrderHubPush.name]


# ---------------------------------------------------------------------- building pushes
def sign_orderhub_push(secret: str, body: bytes) -> str:
    """The ``X-Carrier-Signature`` value for ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def orderhub_push_body(carrier: str, events: Sequence[CarrierEvent]) -> bytes:
    """The JSON body of an OrderHub push carrying ``events``."""
    payload = {"carrier": carrier, "events": [orderhub_event_dict(e) for e in events]}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sf_digest(msg_data: str, timestamp: str, checkword: str, *, urlencoded: bool = False) -> str:
    """SF's ``msgDigest``: base64(md5(msgData + timestamp + checkword)); ``urlencoded``
    hashes the form-urlencoded string instead (Java ``URLEncoder`` style) [unverified]."""
    text = msg_data + timestamp + checkword
    if urlencoded:
        text = quote_plus(text, safe="*")
    # MD5 is SF's choice of digest, not ours; the checkword keeps it a keyed check.
    return base64.b64encode(hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()).decode("ascii")


def sf_route_of(event: CarrierEvent) -> dict[str, str]:
    """An event as one SF ``WaybillRoute`` item (``acceptTime`` in China time)."""
    return {"mailno": event.waybill_no, "acceptTime": event.occurred_at.astimezone(SHANGHAI).strftime(SF_TIME),
            "acceptAddress": event.location or "", "remark": event.description, "opCode": event.code}


def build_sf_route_push(checkword: str, routes: Sequence[Mapping[str, Any]], timestamp_ms: int, *,
                        partner_id: str = "ORDERHUB_SIM", request_id: str | None = None) -> dict[str, str]:
    """The form fields of a genuine-looking SF route push carrying ``routes`` (items shaped
    like :func:`sf_route_of`'s), digested with ``checkword`` at ``timestamp_ms``."""
    msg_data = json.dumps({"Body": {"WaybillRoute": [dict(r) for r in routes]}}, ensure_ascii=False,
                          separators=(",", ":"))
    timestamp = str(timestamp_ms)
    return {"partnerID": partner_id, "requestID": request_id or f"req-{timestamp}",
            "serviceCode": SF_SERVICE_CODE, "timestamp": timestamp,
            "msgDigest": sf_digest(msg_data, timestamp, checkword), "msgData": msg_data}
