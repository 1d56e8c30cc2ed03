"""The carrier adapter for the simulated carrier service (``protocol: simulated``).

It speaks the API of :class:`orderhub.simulation.fake_carrier.FakeCarrier` (documented in
``docs/carrier-adapters.md``) with ``Authorization: Bearer <api_key>``, and maps HTTP
outcomes onto the carrier error tree the same way every real adapter must:

=================================  ==========================
outcome                            error
=================================  ==========================
network error, timeout, 5xx        CarrierUnavailable
429 (``Retry-After`` seconds)      CarrierUnavailable(retry_after=…)
401 / 403                          CarrierAuthFailed (a CarrierRejected)
404 on a waybill                   WaybillNotFound
other 4xx (400, 409…)              CarrierRejected(the carrier's message)
=================================  ==========================
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from orderhub.adapters.carriers.base import CarrierAccount, CarrierEvent, Waybill, WaybillRequest
from orderhub.adapters.carriers.errors import (
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    PushUnreadable,
    WaybillNotFound,
)
from orderhub.adapters.carriers.push import read_orderhub_event
from orderhub.adapters.channels.ratelimit import parse_retry_after


class SimulatedCarrierClient:
    """A :class:`~orderhub.adapters.carriers.base.CarrierAdapter` for the simulated carrier.

    Pass ``http`` to share a client (its owner closes it); otherwise the adapter makes one
    with ``timeout`` and :meth:`close` closes it.
    """

    def __init__(self, account: CarrierAccount, *, http: httpx.Client | None = None, timeout: float = 10.0) -> None:
        self.carrier = account.carrier
        self._account = account
        self._base = account.api_base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._timeout = timeout

    def create_waybill(self, req: WaybillRequest) -> Waybill:
        """Book a waybill; the same ``shipment_id`` again returns the same waybill.

        A request for another carrier than the account's is a caller bug: ``ValueError``.
        """
        if req.carrier != self.carrier:
            raise ValueError(f"waybill request for carrier {req.carrier!r} sent to a {self.carrier!r} account")
        data = self._call("POST", "/v1/waybills", json=dataclasses.asdict(req))
        try:
            return Waybill(waybill_no=_required_text(data, "waybill_no"), carrier=_required_text(data, "carrier"),
                           label_url=data.get("label_url") if isinstance(data.get("label_url"), str) else None)
        except KeyError as exc:
            raise CarrierUnavailable(f"{self.carrier}: waybill answer without {exc.args[0]}") from exc

    def cancel_waybill(self, waybill_no: str) -> None:
        """Void a waybill; CarrierRejected once the carrier has picked the parcel up."""
        self._call("DELETE", f"/v1/waybills/{quote(waybill_no, safe='')}", waybill_no=waybill_no)

    def fetch_tracking(self, waybill_no: str) -> list[CarrierEvent]:
        """The waybill's events, oldest first, RAW codes, UTC times. An answer whose events
        can't be read is CarrierUnavailable (the carrier's fault; a later call may do)."""
        data = self._call("GET", f"/v1/waybills/{quote(waybill_no, safe='')}/tracking", waybill_no=waybill_no)
        items = data.get("events")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise CarrierUnavailable(f"{self.carrier}: tracking answer for {waybill_no} has no events list")
        try:
            events = [read_orderhub_event(item, f"events[{index}]") for index, item in enumerate(items)]
        except PushUnreadable as exc:
            raise CarrierUnavailable(f"{self.carrier}: unreadable tracking answer: {exc.message}") from exc
        return sorted(events, key=lambda event: event.occurred_at)

    def close(self) -> None:
        """Close the HTTP client if this adapter made it."""
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, *, json: Any = None, waybill_no: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._account.api_key}", "Accept": "application/json"}
        try:
            response = self._http.request(method, self._base + path, json=json, headers=headers,
                                          timeout=self._timeout)
        except httpx.TransportError as exc:
            raise CarrierUnavailable(f"{self.carrier}: {type(exc).__name__} calling {method} {path}: {exc}") from exc
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return {}
            try:
                data = response.json()
            except ValueError as exc:
                raise CarrierUnavailable(f"{self.carrier}: {method} {path} answered non-JSON",
                                         status=response.status_code) from exc
            if not isinstance(data, dict):
                raise CarrierUnavailable(f"{self.carrier}: {method} {path} answered {type(data).__name__}, "
                                         "not an object", status=response.status_code)
            return data
        raise self._error(response, method, path, waybill_no)

    def _error(self, response: httpx.Response, method: str, path: str, waybill_no: str | None) -> Exception:
        status = response.status_code
        said = _message(response)
        where = f"{self.carrier}: {method} {path} answered {status}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            return CarrierUnavailable(f"{where}: {said}", retry_after=retry_after, status=status)
        if status in (401, 403):
            return CarrierAuthFailed(f"{where}: {said} (check the account's api_key)", status=status)
        if status == 404 and waybill_no is not None:
            return WaybillNotFound(f"{self.carrier} does not know waybill {waybill_no}", waybill_no=waybill_no)
        # 3xx lands here too: httpx doesn't follow redirects, and one means a wrong api_base_url.
        return CarrierRejected(f"{where}: {said}", status=status)


def _required_text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise KeyError(key)
    return value


def _message(response: httpx.Response) -> str:
    """The carrier's own words about a failure: ``message``/``error`` of a JSON body, else its text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
    return response.text.strip()[:500]
