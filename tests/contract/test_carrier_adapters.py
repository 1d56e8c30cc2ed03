"""One contract every carrier adapter passes, and the carrier push formats (docs/carrier-adapters.md).

The adapter contract is parametrized over *harnesses*: each pairs an adapter with a way to
steer the carrier behind it (add scans, script failures). Today there is one, the simulated
carrier client against a real :class:`FakeCarrier` over HTTP; a real carrier's adapter joins
by adding a harness against a recorded or sandbox service.

Decision: a bad API key (401/403) raises ``CarrierAuthFailed``, a subclass of
``CarrierRejected`` — not retried, yet told apart so the account, not the shipment, gets fixed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from orderhub.adapters.carriers.base import CarrierAccount, CarrierAdapter, CarrierEvent, Party, WaybillRequest
from orderhub.adapters.carriers.errors import (
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    PushUnreadable,
    WaybillNotFound,
)
from orderhub.adapters.carriers.push import (
    FORM_CONTENT_TYPE,
    ORDERHUB_SIGNATURE_HEADER,
    OrderHubPush,
    SfRoutePush,
    build_sf_route_push,
    orderhub_push_body,
    push_format_for,
    sf_digest,
    sf_route_of,
    sign_orderhub_push,
)
from orderhub.adapters.carriers.registry import PROTOCOLS, build_adapter
from orderhub.adapters.carriers.simulated import SimulatedCarrierClient
from orderhub.domain.errors import InvalidTime
from orderhub.simulation.fake_carrier import JOURNEYS, FakeCarrier
from tests.http_helpers import free_port

API_KEY = "ck-contract-carrier"
SECRET = "push-secret-contract"
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=CST)  # 01:00 UTC


def party(**changes: Any) -> Party:
    base = Party(name="李雷", phone="138****0000", country="CN", province="广东省", city="深圳市", district="南山区",
                 detail="科技园路 1 号", postcode="518000")
    return replace(base, **changes)


def request(shipment_id: str = "shp-1", carrier: str = "sf", **changes: Any) -> WaybillRequest:
    base = WaybillRequest(shipment_id=shipment_id, carrier=carrier, service=None, sender=party(name="Shop"),
                          recipient=party(), weight_g=1200, declared_value_minor=19900, currency="CNY",
                          reference="ORD-1")
    return replace(base, **changes)


# ---------------------------------------------------------------------- harnesses
@dataclass
class SimulatedHarness:
    """The simulated carrier client against a real FakeCarrier over HTTP."""

    fake: FakeCarrier
    adapters: list[CarrierAdapter] = field(default_factory=list)

    def adapter(self, carrier: str = "sf", *, api_key: str = API_KEY) -> CarrierAdapter:
        account = CarrierAccount(carrier=carrier, protocol="simulated", api_base_url=self.fake.base_url,
                                 api_key=api_key, push_secret=SECRET)
        made = build_adapter(account)
        self.adapters.append(made)
        return made

    def pick_up(self, waybill_no: str) -> None:
        self.fake.play_journey(waybill_no, T0, timedelta(hours=1), upto=2)

    def play(self, waybill_no: str) -> None:
        self.fake.play_journey(waybill_no, T0, timedelta(hours=3))

    def journey_codes(self, carrier: str) -> list[str]:
        return [code for code, _ in JOURNEYS[carrier]]

    def is_cancelled(self, waybill_no: str) -> bool:
        return self.fake.waybills[waybill_no].cancelled

    def fail_next(self, status: int) -> None:
        self.fake.fail_next(1, status=status)

    def throttle_next(self, retry_after: float) -> None:
        self.fake.throttle_next(1, retry_after=retry_after)


@pytest.fixture(params=["simulated"])
def harness(request: pytest.FixtureRequest) -> Iterator[SimulatedHarness]:
    with FakeCarrier(api_key=API_KEY, seed=7) as fake:
        made = SimulatedHarness(fake)
        yield made
        for adapter in made.adapters:
            adapter.close()


# ---------------------------------------------------------------------- the adapter contract
def test_create_is_idempotent_per_shipment_id(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("sf")
    first = adapter.create_waybill(request("shp-1"))
    again = adapter.create_waybill(request("shp-1"))
    other = adapter.create_waybill(request("shp-2"))
    assert again == first
    assert other.waybill_no != first.waybill_no
    assert first.carrier == "sf"
    assert first.label_url


@pytest.mark.parametrize(("carrier", "pattern"), [
    ("sf", r"SF\d{13}"), ("jdl", r"JDV\d{12}"), ("usps", r"9400\d{18}"), ("ups", r"1Z[0-9A-Z]{16}"),
    ("fedex", r"\d{12}"), ("dhl", r"\d{10}"), ("zto", r"\d{12,15}"), ("yunda", r"\d{12,15}"),
])
def test_waybill_numbers_look_like_the_carriers(harness: SimulatedHarness, carrier: str, pattern: str) -> None:
    adapter = harness.adapter(carrier)
    numbers = {adapter.create_waybill(request(f"shp-{i}", carrier)).waybill_no for i in range(5)}
    assert len(numbers) == 5
    for number in numbers:
        assert re.fullmatch(pattern, number), number


def test_cancel_before_pickup(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("usps")
    waybill = adapter.create_waybill(request("shp-c", "usps"))
    harness.fake.add_event(waybill.waybill_no, "MA", occurred_at=T0)  # label data only: still cancellable
    adapter.cancel_waybill(waybill.waybill_no)
    assert harness.is_cancelled(waybill.waybill_no)


def test_cancel_after_pickup_is_rejected(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("sf")
    waybill = adapter.create_waybill(request("shp-p"))
    harness.pick_up(waybill.waybill_no)
    with pytest.raises(CarrierRejected) as caught:
        adapter.cancel_waybill(waybill.waybill_no)
    assert not isinstance(caught.value, CarrierAuthFailed)
    assert caught.value.status == 409
    assert "already" in caught.value.message
    assert not harness.is_cancelled(waybill.waybill_no)


@pytest.mark.parametrize("carrier", ["sf", "usps", "jdl"])
def test_fetch_tracking_returns_raw_codes_in_utc_oldest_first(harness: SimulatedHarness, carrier: str) -> None:
    adapter = harness.adapter(carrier)
    waybill = adapter.create_waybill(request("shp-t", carrier))
    harness.play(waybill.waybill_no)
    events = adapter.fetch_tracking(waybill.waybill_no)
    assert [e.code for e in events] == harness.journey_codes(carrier)
    assert all(e.occurred_at.tzinfo is UTC for e in events)
    assert events[0].occurred_at == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert {e.waybill_no for e in events} == {waybill.waybill_no}


def test_tracking_of_a_fresh_waybill_is_empty(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("ups")
    waybill = adapter.create_waybill(request("shp-e", "ups"))
    assert adapter.fetch_tracking(waybill.waybill_no) == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable_then_recover(harness: SimulatedHarness, status: int) -> None:
    adapter = harness.adapter("sf")
    harness.fail_next(status)
    with pytest.raises(CarrierUnavailable) as caught:
        adapter.create_waybill(request("shp-5"))
    assert caught.value.status == status
    assert caught.value.retry_after is None
    assert adapter.create_waybill(request("shp-5")).waybill_no.startswith("SF")


def test_throttling_is_unavailable_with_retry_after(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("sf")
    waybill = adapter.create_waybill(request("shp-r"))
    harness.throttle_next(7)
    with pytest.raises(CarrierUnavailable) as caught:
        adapter.fetch_tracking(waybill.waybill_no)
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429


def test_bad_api_key_is_auth_failed_a_rejection(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("sf", api_key="wrong-key")
    with pytest.raises(CarrierAuthFailed) as caught:
        adapter.create_waybill(request("shp-k"))
    assert isinstance(caught.value, CarrierRejected)
    assert caught.value.code == "carrier_auth_failed"
    assert caught.value.status == 401


def test_unknown_waybill_is_not_found(harness: SimulatedHarness) -> None:
    adapter = harness.adapter("sf")
    for call in (adapter.fetch_tracking, adapter.cancel_waybill):
        with pytest.raises(WaybillNotFound) as caught:
            call("SF0000000000000")
        assert caught.value.waybill_no == "SF0000000000000"
        assert caught.value.code == "waybill_not_found"


@pytest.mark.parametrize(("changes", "words"), [
    ({"weight_g": 0}, "weight_g"),
    ({"recipient": party(detail=None)}, "recipient.detail"),
    ({"recipient": party(country="")}, "recipient.country"),
])
def test_unserviceable_requests_are_rejected_with_the_carriers_message(
        harness: SimulatedHarness, changes: dict[str, Any], words: str) -> None:
    adapter = harness.adapter("sf")
    with pytest.raises(CarrierRejected) as caught:
        adapter.create_waybill(request("shp-bad", **changes))
    assert caught.value.status == 400
    assert words in caught.value.message


def test_request_for_another_carrier_is_a_caller_bug(harness: SimulatedHarness) -> None:
    with pytest.raises(ValueError, match="'jdl'"):
        harness.adapter("sf").create_waybill(request("shp-x", "jdl"))


def test_network_error_is_unavailable() -> None:
    account = CarrierAccount(carrier="sf", protocol="simulated", api_base_url=f"http://127.0.0.1:{free_port()}",
                             api_key=API_KEY, push_secret=SECRET)
    adapter = SimulatedCarrierClient(account, timeout=2.0)
    try:
        with pytest.raises(CarrierUnavailable) as caught:
            adapter.create_waybill(request("shp-n"))
        assert caught.value.status is None
        assert "ConnectError" in caught.value.message
    finally:
        adapter.close()


def test_adapter_closes_only_the_client_it_made() -> None:
    account = CarrierAccount(carrier="sf", protocol="simulated", api_base_url="http://127.0.0.1:9",
                             api_key=API_KEY, push_secret=SECRET)
    with httpx.Client() as shared:
        build_adapter(account, http=shared).close()
        assert not shared.is_closed
    own = SimulatedCarrierClient(account)
    own.close()
    assert own._http.is_closed


def test_registry_knows_simulated_and_names_the_known_protocols() -> None:
    account = CarrierAccount(carrier="sf", protocol="sf_express_v2", api_base_url="http://127.0.0.1:9",
                             api_key=API_KEY, push_secret=SECRET)
    assert "simulated" in PROTOCOLS
    with pytest.raises(ValueError, match="known protocols: simulated"):
        build_adapter(account)
    assert API_KEY not in repr(account) and SECRET not in repr(account)


# ---------------------------------------------------------------------- the fake carrier's journeys
def test_every_carrier_has_a_journey_from_label_to_delivered() -> None:
    expected = {"sf", "zto", "yto", "sto", "yunda", "jdl", "ems", "cainiao", "usps", "ups", "fedex", "dhl"}
    assert expected <= set(JOURNEYS)
    assert [c for c, _ in JOURNEYS["sf"]] == ["50", "30", "36", "31", "44", "80"]
    assert [c for c, _ in JOURNEYS["usps"]] == ["MA", "03", "10", "07", "OF", "01"]
    assert all(len(steps) >= 3 and all(code and text for code, text in steps) for steps in JOURNEYS.values())


# ---------------------------------------------------------------------- OrderHub push format
def events_for(waybill_no: str = "SF1234567890123") -> list[CarrierEvent]:
    return [CarrierEvent(waybill_no=waybill_no, code=code, description=text, occurred_at=T0 + timedelta(hours=i),
                         location="深圳" if i % 2 else None, raw={})
            for i, (code, text) in enumerate(JOURNEYS["sf"])]


def test_orderhub_push_round_trip() -> None:
    events = events_for()
    body = orderhub_push_body("sf", events)
    headers = {ORDERHUB_SIGNATURE_HEADER.lower(): sign_orderhub_push(SECRET, body)}
    fmt = OrderHubPush()
    parsed = fmt.parse(body, headers)
    assert parsed == events
    assert all(e.occurred_at.tzinfo is UTC for e in parsed)
    assert parsed[0].raw["occurred_at"] == "2026-11-21T01:00:00.000000Z"
    assert fmt.verify(body, headers, SECRET)
    assert fmt.verify(body, {ORDERHUB_SIGNATURE_HEADER: headers[ORDERHUB_SIGNATURE_HEADER.lower()]}, SECRET)


def test_orderhub_push_signature_fails_on_tampering_or_wrong_secret() -> None:
    body = orderhub_push_body("sf", events_for())
    headers = {ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(SECRET, body)}
    fmt = OrderHubPush()
    assert not fmt.verify(body.replace(b'"80"', b'"70"'), headers, SECRET)
    assert not fmt.verify(body, headers, "another-secret")
    assert not fmt.verify(body, {}, SECRET)
    assert not fmt.verify(body, headers, "")


def _event(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"waybill_no": "SF1", "code": "50", "description": "收件",
                            "occurred_at": "2026-11-21T09:00:00+08:00"}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


@pytest.mark.parametrize(("body", "path"), [
    (b"{not json", ""),
    (b"[]", ""),
    (json.dumps({"events": []}).encode(), "carrier"),
    (json.dumps({"carrier": "sf"}).encode(), "events"),
    (json.dumps({"carrier": "sf", "events": {}}).encode(), "events"),
    (json.dumps({"carrier": "sf", "events": ["x"]}).encode(), "events[0]"),
    (json.dumps({"carrier": "sf", "events": [_event(), _event(occurred_at="2026-11-21T09:00:00")]}).encode(),
     "events[1].occurred_at"),
    (json.dumps({"carrier": "sf", "events": [_event(occurred_at="yesterday")]}).encode(), "events[0].occurred_at"),
    (json.dumps({"carrier": "sf", "events": [_event(), _event(), _event(code=None)]}).encode(), "events[2].code"),
    (json.dumps({"carrier": "sf", "events": [_event(code=50)]}).encode(), "events[0].code"),
    (json.dumps({"carrier": "sf", "events": [_event(waybill_no=" ")]}).encode(), "events[0].waybill_no"),
])
def test_orderhub_push_unreadable_names_the_path(body: bytes, path: str) -> None:
    with pytest.raises(PushUnreadable) as caught:
        OrderHubPush().parse(body, {})
    assert caught.value.path == path
    assert caught.value.code == "push_unreadable"


# ---------------------------------------------------------------------- SF route push format
def _form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode("utf-8")


def test_sf_route_push_round_trip_converts_china_time_to_utc() -> None:
    events = events_for()
    fields = build_sf_route_push(SECRET, [sf_route_of(e) for e in events], 1_763_686_800_000)
    assert fields["msgDigest"] == sf_digest(fields["msgData"], "1763686800000", SECRET)
    assert set(fields) == {"partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData"}
    body = _form_body(fields)
    fmt = SfRoutePush()
    parsed = fmt.parse(body, {"content-type": FORM_CONTENT_TYPE})
    assert parsed == events
    assert parsed[0].raw["acceptTime"] == "2026-11-21 09:00:00"
    assert parsed[0].occurred_at == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    assert parsed[0].location is None and parsed[1].location == "深圳"
    assert fmt.verify(body, {}, SECRET)


def test_sf_route_push_digest_fails_on_tampering_or_wrong_checkword() -> None:
    fields = build_sf_route_push(SECRET, [sf_route_of(e) for e in events_for()], 1_763_686_800_000)
    fmt = SfRoutePush()
    tampered = dict(fields, msgData=fields["msgData"].replace('"80"', '"70"'))
    assert not fmt.verify(_form_body(tampered), {}, SECRET)
    assert not fmt.verify(_form_body(dict(fields, timestamp="1763686800001")), {}, SECRET)
    assert not fmt.verify(_form_body(fields), {}, "wrong-checkword")
    assert not fmt.verify(_form_body({k: v for k, v in fields.items() if k != "msgDigest"}), {}, SECRET)
    assert not fmt.verify(b"\xff\xfe", {}, SECRET)


def test_sf_route_push_accepts_the_urlencoded_digest_variant_and_the_unwrapped_body() -> None:
    msg_data = json.dumps({"WaybillRoute": [{"mailno": "SF1", "acceptTime": "2026-11-21 09:00:00", "opCode": 50}]})
    digest = sf_digest(msg_data, "1", SECRET, urlencoded=True)
    assert digest != sf_digest(msg_data, "1", SECRET)
    body = _form_body({"timestamp": "1", "msgDigest": digest, "msgData": msg_data})
    fmt = SfRoutePush()
    assert fmt.verify(body, {}, SECRET)
    [event] = fmt.parse(body, {})
    assert (event.code, event.description, event.location) == ("50", "", None)


def _sf_body(msg_data: Any) -> bytes:
    text = msg_data if isinstance(msg_data, str) else json.dumps(msg_data)
    return _form_body({"timestamp": "1", "msgDigest": "x", "msgData": text})


ROUTE = {"mailno": "SF1", "acceptTime": "2026-11-21 09:00:00", "opCode": "50", "remark": "收件"}


@pytest.mark.parametrize(("body", "path"), [
    (b"partnerID=P1", "msgData"),
    (b"\xff", ""),
    (_sf_body("{oops"), "msgData"),
    (_sf_body({"Body": []}), "msgData.Body"),
    (_sf_body({"Body": {}}), "msgData.Body.WaybillRoute"),
    (_sf_body({"Body": {"WaybillRoute": [ROUTE, {**ROUTE, "acceptTime": "2026-11-21T09:00:00+08:00"}]}}),
     "msgData.Body.WaybillRoute[1].acceptTime"),
    (_sf_body({"Body": {"WaybillRoute": [{k: v for k, v in ROUTE.items() if k != "mailno"}]}}),
     "msgData.Body.WaybillRoute[0].mailno"),
    (_sf_body({"WaybillRoute": [{**ROUTE, "opCode": ""}]}), "msgData.WaybillRoute[0].opCode"),
])
def test_sf_route_push_unreadable_names_the_path(body: bytes, path: str) -> None:
    with pytest.raises(PushUnreadable) as caught:
        SfRoutePush().parse(body, {})
    assert caught.value.path == path


def test_signatures_match_the_documented_known_answers() -> None:
    # The values in docs/carrier-adapters.md: a change here breaks every sender out there.
    assert sign_orderhub_push("whsec-demo", b'{"carrier":"sf","events":[]}') == (
        "sha256=b70c61202cd8d46a2dbaaa09a6f7e8a32a68f7f63f9109944788b28a83e77111")
    assert sf_digest('{"Body":{"WaybillRoute":[]}}', "1763686800000", "checkword-demo") == "HQAKoncZD8x4tMxnpmZSzw=="


@pytest.mark.parametrize(("carrier", "content_type", "name"), [
    ("sf", "application/x-www-form-urlencoded; charset=UTF-8", "sf_route"),
    ("SF", "Application/X-WWW-Form-Urlencoded", "sf_route"),
    ("sf", "application/json", "orderhub"),
    ("sf", None, "orderhub"),
    ("usps", "application/x-www-form-urlencoded", "orderhub"),
])
def test_push_format_for(carrier: str, content_type: str | None, name: str) -> None:
    assert push_format_for(carrier, content_type).name == name


def test_carrier_events_are_utc_and_refuse_naive_times() -> None:
    event = CarrierEvent(waybill_no="SF1", code="50", description="", occurred_at=T0, location=None, raw={})
    assert event.occurred_at.tzinfo is UTC
    with pytest.raises(InvalidTime):
        CarrierEvent(waybill_no="SF1", code="50", description="", occurred_at=datetime(2026, 11, 21), location=None,
                     raw={})


# ---------------------------------------------------------------------- FakeCarrier.push
@dataclass
class Receiver:
    """A tiny OrderHub stand-in: records carrier pushes and answers 202."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = b'{"accepted": true}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    made.thread.start()
    yield made
    made.server.shutdown()
    made.thread.join(5)
    made.server.server_close()


@pytest.mark.parametrize("fmt", ["orderhub", "sf_route"])
def test_fake_carrier_pushes_signed_events(receiver: Receiver, fmt: str) -> None:
    with FakeCarrier(api_key=API_KEY) as fake:
        account = CarrierAccount(carrier="sf", protocol="simulated", api_base_url=fake.base_url, api_key=API_KEY,
                                 push_secret=SECRET)
        adapter = build_adapter(account)
        try:
            waybill = adapter.create_waybill(request("shp-push"))
        finally:
            adapter.close()
        played = fake.play_journey(waybill.waybill_no, T0, timedelta(hours=2), upto=3)
        response = fake.push(receiver.url, SECRET, waybill.waybill_no, fmt=fmt)
    assert response.status_code == 202
    [(path, headers, body)] = receiver.received
    assert path == "/webhooks/carriers/sf"
    push = push_format_for("sf", headers.get("content-type"))
    assert push.name == fmt
    assert push.verify(body, headers, SECRET)
    assert not push.verify(body, headers, "not-the-secret")
    assert push.parse(body, headers) == played


def test_fake_carrier_push_needs_to_know_the_carrier(receiver: Receiver) -> None:
    with FakeCarrier(api_key=API_KEY) as fake:
        with pytest.raises(ValueError, match="carrier="):
            fake.push(receiver.url, SECRET, events=events_for("SF9999999999999"))
        response = fake.push(receiver.url, SECRET, events=events_for("SF9999999999999"), carrier="sf")
    assert response.status_code == 202
    assert OrderHubPush().parse(receiver.received[0][2], {}) == events_for("SF9999999999999")
