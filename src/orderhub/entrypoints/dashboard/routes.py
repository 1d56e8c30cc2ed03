"""The dashboard's pages: the order list, one order (lines, shipments, timeline, raw channel
payloads), one shipment (lines, scans, carrier events), open alerts, warehouse devices,
channel health, and the after-sale case queue and one case. Thin like every entrypoint:
read the query side, render a template. Read-only: the only forms sign in and out."""

from __future__ import annotations

from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from orderhub.adapters.db.tenancy import ApiKeyRecord
from orderhub.bootstrap import OrderHub
from orderhub.domain.aftersale.states import AfterSaleStatus, SlaLevel
from orderhub.domain.orders.states import OrderStatus
from orderhub.entrypoints.dashboard.auth import (
    COOKIE_NAME,
    HOME_PATH,
    LOGIN_PATH,
    SignInProblem,
    Viewer,
    check_key,
    clear_key_cookie,
    cross_site,
    current_viewer,
    login_redirect,
    safe_next,
    set_key_cookie,
)
from orderhub.entrypoints.dashboard.render import Renderer
from orderhub.service_layer.errors import AfterSaleNotFound, InvalidInput, OrderNotFound, ShipmentNotFound
from orderhub.service_layer.queries import MAX_PAGE, OrderFilter

PAGE_SIZE = 50
# One order rarely has more than a handful of channel messages; a runaway channel resending
# the same order must not turn its page into megabytes of payloads.
MAX_MESSAGES_SHOWN = 50
MAX_FILTER_LENGTH = 200
MAX_ALERTS_SHOWN = 200
MAX_CASES_SHOWN = 200


class DashboardQueries(Protocol):
    """The read side the dashboard uses (``orderhub.service_layer.queries.Queries``)."""

    def authenticate(self, plain_key: str) -> ApiKeyRecord | None:
        """The key record for a presented API key, or None when unknown."""

    def list_orders(self, tenant_id: str, flt: OrderFilter, *, cursor: str | None = None,
                    limit: int = 50) -> dict[str, Any]:
        """A page of orders, newest first: ``{"items": [...], "next_cursor": str | None}``."""

    def get_order(self, tenant_id: str, order_id: str) -> dict[str, Any]:
        """One order with its lines; OrderNotFound for unknown ids and other tenants' orders."""

    def timeline(self, tenant_id: str, order_id: str) -> dict[str, Any]:
        """The order's audit entries, each with its ``verified`` mark."""

    def order_messages(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        """Summaries of the inbox messages that fed the order."""

    def inbox_message(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        """One inbox message with its headers and body, or None."""

    def channel_health(self, tenant_id: str) -> dict[str, Any]:
        """Per-channel counts, failure rates, failing fields and breaker state."""

    def order_shipments(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        """The order's shipments, oldest first."""

    def shipment(self, tenant_id: str, shipment_id: str) -> dict[str, Any]:
        """One shipment with lines, scans, refused scans and carrier events; ShipmentNotFound
        for unknown ids and other tenants' shipments."""

    def alerts(self, tenant_id: str, *, open_only: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's alerts, newest first."""

    def devices(self, tenant_id: str) -> dict[str, Any]:
        """Devices (last heartbeat and sync, refused items), locked operators, sightings."""

    def aftersale_queue(self, tenant_id: str, *, status: str | None = None, queue: str | None = None,
                        sla: str | None = None, include_closed: bool = False, order_id: str | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """After-sale cases, most urgent first (red, orange, yellow, then nearest deadline)."""

    def aftersale_counts(self, tenant_id: str) -> dict[str, Any]:
        """Open cases: ``{"open": n, "by_status": {...}, "by_sla": {...}}``."""

    def aftersale(self, tenant_id: str, case_id: str) -> dict[str, Any]:
        """One case with its order, vouchers and timeline; AfterSaleNotFound for unknown ids
        and other tenants' cases."""


class BadFilter(Exception):
    """Raised when a list filter can't be used; the message is shown above the list."""


def _text_param(request: Request, name: str) -> str | None:
    """A filter value from the query string: trimmed, empty means absent; characters no
    database column can hold (NUL, lone surrogates) are refused rather than passed on."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if len(value) > MAX_FILTER_LENGTH:
        raise BadFilter(f"The {name} filter is longer than {MAX_FILTER_LENGTH} characters.")
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise BadFilter(f"The {name} filter contains characters that can't be searched for.")
    return value


def _limit_param(request: Request) -> int:
    raw = request.query_params.get("limit", "").strip()
    if not raw:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadFilter(f"The page size must be a number from 1 to {MAX_PAGE}.")
    return int(raw)


def _plausible_id(order_id: str) -> bool:
    # Ids are short printable tokens; anything else can't name an order, so it is not
    # worth a query (and NUL would be refused by PostgreSQL with an error, not a miss).
    return 0 < len(order_id) <= 100 and order_id.isprintable() and order_id.isascii()


def create_dashboard(hub: OrderHub) -> APIRouter:
    """The dashboard's routes under ``/ui``, reading through ``hub.queries``."""
    queries: DashboardQueries = hub.queries
    return build_router(queries)


def build_router(queries: DashboardQueries) -> APIRouter:
    """The dashboard's routes over any implementation of :class:`DashboardQueries`."""
    router = APIRouter(prefix="/ui", include_in_schema=False)
    pages = _Pages(queries)
    router.add_api_route("", pages.ui_root, methods=["GET"])
    router.add_api_route("/login", pages.login_form, methods=["GET"])
    router.add_api_route("/login", pages.login, methods=["POST"])
    router.add_api_route("/logout", pages.logout, methods=["POST"])
    router.add_api_route("/", pages.orders_list, methods=["GET"])
    router.add_api_route("/orders/{order_id}", pages.order_page, methods=["GET"])
    router.add_api_route("/shipments/{shipment_id}", pages.shipment_page, methods=["GET"])
    router.add_api_route("/alerts", pages.alerts_page, methods=["GET"])
    router.add_api_route("/devices", pages.devices_page, methods=["GET"])
    router.add_api_route("/channels", pages.channels_page, methods=["GET"])
    router.add_api_route("/aftersales", pages.aftersales_list, methods=["GET"])
    router.add_api_route("/aftersales/{case_id}", pages.aftersale_page, methods=["GET"])
    return router


class _Pages:
    """The handlers behind each dashboard route."""

    def __init__(self, queries: DashboardQueries) -> None:
        self._queries = queries
        self._renderer = Renderer()

    def _page(self, request: Request, template: str, viewer: Viewer | None, *, status_code: int = 200,
              **context: Any) -> Response:
        return self._renderer.page(template, {"viewer": viewer, "path": request.url.path, **context},
                                   status_code=status_code)

    def _not_found(self, request: Request, viewer: Viewer, what: str) -> Response:
        return self._page(request, "error.html", viewer, status_code=404, title="Not found",
                          message=f"{what} was not found in this tenant.")

    def _viewer(self, request: Request) -> Viewer | Response:
        """The signed-in viewer, or the redirect to the login page (forgetting a stored key
        that stopped working, so the browser stops sending it)."""
        viewer = current_viewer(request, self._queries)
        if viewer is None:
            return login_redirect(request, forget=COOKIE_NAME in request.cookies)
        return viewer

    def ui_root(self) -> RedirectResponse:
        """``/ui`` → ``/ui/``."""
        return RedirectResponse(HOME_PATH, status_code=308)

    def login_form(self, request: Request) -> Response:
        """The sign-in form (or straight on, when the cookie's key still works)."""
        wanted = safe_next(request.query_params.get("next"))
        if current_viewer(request, self._queries) is not None:
            return RedirectResponse(wanted, status_code=303)
        notice = "You are signed out." if request.query_params.get("signed_out") else None
        return self._page(request, "login.html", None, title="Sign in", error=None, notice=notice, next=wanted)

    def login(self, request: Request, api_key: Annotated[str, Form(max_length=1000)] = "",
              next_page: Annotated[str, Form(alias="next", max_length=2000)] = "") -> Response:
        """Check the pasted key; on success store it in the cookie and go on, else say why (401)."""
        wanted = safe_next(next_page)
        if cross_site(request):
            return self._page(request, "login.html", None, status_code=403, title="Sign in", notice=None,
                              error="Sign in from OrderHub's own page, not from another site.", next=HOME_PATH)
        try:
            check_key(self._queries, api_key)
        except SignInProblem as problem:
            return self._page(request, "login.html", None, status_code=401, title="Sign in", error=problem.message,
                              notice=None, next=wanted)
        response = RedirectResponse(wanted, status_code=303)
        set_key_cookie(response, request, api_key)
        return response

    def logout(self, request: Request) -> RedirectResponse:
        """Forget the key. A POST, so a link or an image on another page can't sign anyone out."""
        if cross_site(request):
            return RedirectResponse(HOME_PATH, status_code=303)
        response = RedirectResponse(f"{LOGIN_PATH}?signed_out=1", status_code=303)
        clear_key_cookie(response, request)
        return response

    def orders_list(self, request: Request) -> Response:
        """Orders, newest first, filtered by status / channel / shop / free text, page by page."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        filters: dict[str, str | None] = {"status": None, "channel": None, "shop": None, "q": None}
        error: str | None = None
        result: dict[str, Any] = {"items": [], "next_cursor": None}
        limit = PAGE_SIZE
        cursor: str | None = None
        try:
            for name in filters:
                filters[name] = _text_param(request, name)
            cursor = _text_param(request, "cursor")
            limit = _limit_param(request)
            result = self._queries.list_orders(viewer.tenant_id, OrderFilter(**filters), cursor=cursor, limit=limit)
        except BadFilter as exc:
            error = str(exc)
        except InvalidInput:
            error = "That page link is no longer valid. Start again from the first page."
        kept = {k: v for k, v in {**filters, "limit": None if limit == PAGE_SIZE else str(limit)}.items() if v}
        next_url = None
        if result["next_cursor"]:
            next_url = f"{HOME_PATH}?{urlencode({**kept, 'cursor': result['next_cursor']})}"
        first_url = f"{HOME_PATH}?{urlencode(kept)}" if cursor else None
        return self._page(request, "orders.html", viewer, status_code=400 if error else 200, title="Orders",
                          orders=result["items"], filters=filters, statuses=[s.value for s in OrderStatus],
                          error=error, next_url=next_url, first_url=first_url, filtered=any(filters.values()))

    def order_page(self, request: Request, order_id: str) -> Response:
        """One order: header, lines, buyer and address, verified timeline, raw channel messages."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        if not _plausible_id(order_id):
            return self._not_found(request, viewer, "That order")
        try:
            order = self._queries.get_order(viewer.tenant_id, order_id)
            timeline = self._queries.timeline(viewer.tenant_id, order_id)
        except OrderNotFound:
            return self._not_found(request, viewer, f"Order {order_id}")
        shipments = self._queries.order_shipments(viewer.tenant_id, order_id)
        summaries = self._queries.order_messages(viewer.tenant_id, order_id)
        messages = []
        for summary in summaries[:MAX_MESSAGES_SHOWN]:
            full = self._queries.inbox_message(viewer.tenant_id, str(summary["id"]))
            messages.append({**summary, **(full or {}), "found": full is not None})
        return self._page(request, "order.html", viewer, title=f"Order {order['external_id']}", order=order,
                          timeline=timeline, messages=messages, shipments=shipments,
                          more_messages=max(0, len(summaries) - MAX_MESSAGES_SHOWN))

    def shipment_page(self, request: Request, shipment_id: str) -> Response:
        """One shipment: routing, waybill, lines with pick/verify progress, scans (and refused
        ones), carrier events with what each did, and the next warehouse step."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        if not _plausible_id(shipment_id):
            return self._not_found(request, viewer, "That shipment")
        try:
            shipment = self._queries.shipment(viewer.tenant_id, shipment_id)
        except ShipmentNotFound:
            return self._not_found(request, viewer, f"Shipment {shipment_id}")
        title = f"Shipment {shipment['waybill_no'] or shipment['id']}"
        return self._page(request, "shipment.html", viewer, title=title, shipment=shipment)

    def alerts_page(self, request: Request) -> Response:
        """Open alerts, newest first: stalled parcels, weights, locked operators, unknown codes…"""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        alerts = self._queries.alerts(viewer.tenant_id, open_only=True, limit=MAX_ALERTS_SHOWN)
        return self._page(request, "alerts.html", viewer, title="Alerts", alerts=alerts,
                          limit=MAX_ALERTS_SHOWN)

    def devices_page(self, request: Request) -> Response:
        """Warehouse handhelds (last heartbeat and sync) and locked operator accounts."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        return self._page(request, "devices.html", viewer, title="Devices",
                          devices=self._queries.devices(viewer.tenant_id))

    def channels_page(self, request: Request) -> Response:
        """Per-channel counts, failure rate against the threshold, failing fields, breaker."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        health = self._queries.channel_health(viewer.tenant_id)
        return self._page(request, "channels.html", viewer, title="Channel health", health=health)

    def aftersales_list(self, request: Request) -> Response:
        """The after-sale queue, most urgent first, with the open counts by SLA colour and
        filters by status, queue and SLA level (closed cases on request)."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        filters: dict[str, str | None] = {"status": None, "queue": None, "sla": None}
        include_closed = request.query_params.get("include_closed", "") not in ("", "0")
        error: str | None = None
        cases: list[dict[str, Any]] = []
        try:
            for name in filters:
                filters[name] = _text_param(request, name)
            if filters["sla"] is not None and filters["sla"] not in {s.value for s in SlaLevel}:
                raise BadFilter(f"The SLA level must be one of {', '.join(s.value for s in SlaLevel)}.")
            cases = self._queries.aftersale_queue(viewer.tenant_id, status=filters["status"], queue=filters["queue"],
                                                  sla=filters["sla"], include_closed=include_closed,
                                                  limit=MAX_CASES_SHOWN)
        except BadFilter as exc:
            error = str(exc)
        except InvalidInput:
            error = f"The status must be one of {', '.join(s.value for s in AfterSaleStatus)}."
        counts = self._queries.aftersale_counts(viewer.tenant_id)
        return self._page(request, "aftersales.html", viewer, status_code=400 if error else 200,
                          title="After-sale", cases=cases, counts=counts, filters=filters,
                          include_closed=include_closed, statuses=[s.value for s in AfterSaleStatus],
                          sla_levels=[s.value for s in SlaLevel], error=error, limit=MAX_CASES_SHOWN,
                          filtered=any(filters.values()) or include_closed)

    def aftersale_page(self, request: Request, case_id: str) -> Response:
        """One case: summary, the policy's decision and the rule that fired, lines, return
        parcel, refund, vouchers, SLA deadlines, timeline and the actions its status allows."""
        viewer = self._viewer(request)
        if not isinstance(viewer, Viewer):
            return viewer
        if not _plausible_id(case_id):
            return self._not_found(request, viewer, "That after-sale case")
        try:
            case = self._queries.aftersale(viewer.tenant_id, case_id)
        except AfterSaleNotFound:
            return self._not_found(request, viewer, f"After-sale case {case_id}")
        return self._page(request, "aftersale.html", viewer, title=f"After-sale case {case['id']}", case=case)
