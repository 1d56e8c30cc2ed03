"""Template rendering for the dashboard: the Jinja2 environment, its display filters and the
HTTP headers every page carries."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orderhub.domain.errors import DomainError
from orderhub.domain.money import Money
from orderhub.domain.time import ensure_utc

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# Only our own origin may supply scripts, styles and images; nothing may frame the pages.
# No inline script or style is used, so none is allowed: a buyer name that slipped past
# escaping still could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show tenant data: no shared or back-button cache may keep them after logout.
    "Cache-Control": "no-store",
}

# Header values that authenticate a request are never shown, even to the tenant's own staff.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key", "x-access-token"})


def format_money(value: dict[str, Any] | None) -> str:
    """``{"amount": 11980, "currency": "CNY"}`` → ``"119.80 CNY"`` using the currency's own
    minor-unit exponent (0 for JPY, 3 for KWD), with thousands grouped."""
    if not value:
        return "—"
    amount, currency = value.get("amount"), value.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return "—"
    try:
        text = Money(amount, currency).to_decimal_string()
    except DomainError:
        # An unknown currency can't be scaled; show the stored minor units rather than guess.
        return f"{amount} {currency} (minor units)"
    sign = "-" if text.startswith("-") else ""
    whole, dot, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{frac} {currency}"


def format_time(value: str | datetime | None) -> str:
    """An ISO timestamp as ``2026-11-21 02:00:05 UTC`` (the API's UTC instant, human-readable)."""
    if value is None or value == "":
        return "—"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        moment = ensure_utc(moment, field="time")
    except (ValueError, TypeError, DomainError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: str | datetime | None) -> str:
    """The machine-readable form for ``<time datetime=…>``."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def format_percent(value: float | None) -> str:
    """A rate in 0..1 as a percentage with two decimals (0.008 → ``0.80%``)."""
    if value is None:
        return "—"
    return f"{value * 100:.2f}%"


def pretty_json(value: Any) -> str:
    """Indented JSON with non-ASCII text kept readable (Chinese stays Chinese)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def pretty_body(message: dict[str, Any]) -> str:
    """A stored inbox message body for reading: parsed JSON pretty-printed, anything else
    (form posts, CSV rows, unreadable bodies) exactly as received."""
    body_json = message.get("body_json")
    if body_json is not None:
        return pretty_json(body_json)
    text = message.get("body_text")
    return text if isinstance(text, str) else ""


def safe_headers(headers: Any) -> list[tuple[str, str]]:
    """Received headers in name order, with credentials replaced by a placeholder."""
    if not isinstance(headers, dict):
        return []
    shown = []
    for name in sorted(headers, key=str.lower):
        value = "(hidden)" if name.lower() in _SECRET_HEADERS else str(headers[name])
        shown.append((str(name), value))
    return shown


def status_label(status: str | None) -> str:
    """``on_hold`` → ``on hold`` with its Chinese name, as merchants know the statuses."""
    if not status:
        return "—"
    chinese = _STATUS_ZH.get(status)
    label = status.replace("_", " ")
    return f"{label} · {chinese}" if chinese else label


_STATUS_ZH = {"pending_payment": "待付款", "paid": "已付款", "on_hold": "挂起", "ready_to_ship": "待发货",
              "partially_shipped": "部分发货", "shipped": "已发货", "delivered": "已签收", "completed": "已完成",
              "cancelled": "已取消",
              # Shipment statuses (the ones orders don't share).
              "created": "已创建", "waybill_issued": "已出单", "picking": "拣货中", "picked": "已拣货",
              "packed": "已打包", "handed_over": "已交接", "in_transit": "运输中", "out_for_delivery": "派送中",
              "exception": "异常", "returning": "退回中", "returned": "已退回",
              # After-sale case statuses.
              "requested": "待处理", "negotiating": "协商中", "approved": "已同意", "awaiting_return": "待退货",
              "return_received": "已收到退货", "refunding": "退款中", "refunded": "已退款", "resolved": "已解决",
              "rejected": "已拒绝"}

_CASE_TYPES = {"refund_only": "refund only · 仅退款", "return_refund": "return and refund · 退货退款",
               "exchange": "exchange · 换货", "reship": "reship · 补发", "price_protection": "price protection · 保价"}


def case_type_label(case_type: str | None) -> str:
    """An after-sale case type as merchants know it: ``refund_only`` → ``refund only · 仅退款``."""
    if not case_type:
        return "—"
    return _CASE_TYPES.get(case_type, case_type.replace("_", " "))


def sla_label(level: str | None) -> str:
    """A case's SLA level for its badge: ``none`` is on time, the others are their colour."""
    if not level or level == "none":
        return "on time"
    return level


def stall_label(level: int | None) -> str:
    """A shipment's stall level: 0 is not stalled; 1 buyer notified, 2 customer-service task,
    3 compensation flag (DESIGN.md §6)."""
    if not level:
        return "—"
    return {1: "1 · buyer notified", 2: "2 · service task", 3: "3 · compensation"}.get(level, str(level))


def subject_link(subject: str | None) -> str | None:
    """The dashboard page an alert's subject names (``shipment:shp_…`` → the shipment,
    ``operator:wang`` → the devices page), or None when it has none."""
    kind, _, rest = (subject or "").partition(":")
    if kind == "shipment" and rest:
        return "/ui/shipments/" + quote(rest, safe="")
    if kind == "operator" and rest:
        return "/ui/devices"
    return None


def build_environment() -> Environment:
    """The dashboard's Jinja2 environment: autoescaping on for every template, undefined
    names are errors (a typo fails a test instead of rendering an empty cell)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({"money": format_money, "when": format_time, "iso": iso_time, "percent": format_percent,
                        "pretty_json": pretty_json, "pretty_body": pretty_body, "safe_headers": safe_headers,
                        "status_label": status_label, "stall_label": stall_label,
                        "subject_link": subject_link, "case_type": case_type_label, "sla_label": sla_label})
    return env


class Renderer:
    """Renders a named template into an HTML response with the dashboard's headers."""

    def __init__(self) -> None:
        self._env = build_environment()

    def page(self, template: str, context: dict[str, Any], *, status_code: int = 200,
             headers: dict[str, str] | None = None) -> HTMLResponse:
        """Render ``template`` with ``context``; UTF-8, never cached, framed by nobody."""
        html = self._env.get_template(template).render(**context)
        response = HTMLResponse(html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})
        return response
