"""The ``poll:`` section of a channel's mapping spec (``channels/specs/<channel>.yaml``) and a
shop's poll settings, parsed into the :class:`PollConfig` and :class:`Credentials` that
:class:`~orderhub.adapters.channels.polling.PollClient` pulls the channel's orders with.

A pull asks for the orders *updated* in a time window ``[since, until)`` and walks the
pages of the answer. Channels differ in how they page and how they spell times; the
``poll:`` section says which, so a new channel is a YAML edit. The format::

    poll:
      method: GET                      # GET (default) or POST
      path: /admin/api/2024-10/orders.json   # appended to the shop's settings.api_base_url
      items: orders                    # dotted path to the list of orders in the JSON body ("." = the body)
      params: {status: any}            # fixed query parameters (optional)
      body: {}                         # fixed JSON body fields, POST only (optional)
      window:
        from: updated_at_min           # parameter carrying the window start (inclusive)
        to: updated_at_max             # parameter carrying the window end (optional)
        in: query                      # query (default) or body
        format: iso                    # iso | unix_s | unix_ms | strftime
        pattern: "%Y-%m-%d %H:%M:%S"   # strftime only
        timezone: Asia/Shanghai        # iso and strftime: the zone times are written in (default UTC)
      pagination:
        style: link_header             # link_header | page_number | cursor
        in: query                      # where page parameters go: query (default) or body
        page_size: 250
        size_param: limit              # parameter carrying page_size (optional)
        page_param: page               # page_number: the page parameter
        first_page: 1                  # page_number: the first page's number (default 1)
        total_pages_header: X-WP-TotalPages   # page_number: stop after this many pages
        has_next: has_next             # page_number / cursor: dotted path to a boolean in the body
        cursor_param: page_token       # cursor: parameter carrying the cursor (omitted on page 1)
        next_cursor: data.next_page_token     # cursor: dotted path to the next cursor; empty = last
      auth:                            # how the shop's credentials are sent (no request signing)
        - {in: header, name: X-Shopify-Access-Token, value: "{access_token}"}
      error: {path: code, ok: [0]}     # optional: a body-level error code; values not in ok fail
      rate: {per_second: 2, burst: 40} # token bucket defaults (the shop's settings.poll override)
      max_window_seconds: 86400        # optional: split longer windows (channels cap the span)
      lag_seconds: 5                   # the window ends this long before now (channel indexes lag)
      overlap_seconds: 300             # default overlap (shop settings.poll override)
      interval_seconds: 60             # default interval (shop settings.poll override)
      initial_lookback_seconds: 86400  # the first pass of a new shop starts this far back
      max_retries: 4                   # 5xx / network retries per request
      max_wait_seconds: 30             # longest Retry-After slept; longer defers the pass
      backoff_base_seconds: 1          # jittered exponential backoff: base and cap
      backoff_cap_seconds: 60
      timeout_seconds: 30              # per HTTP request

Pagination styles: ``link_header`` follows ``Link: <…>; rel="next"`` verbatim (Shopify's
``page_info`` cursor, which forbids repeating the filters, so only auth is added);
``page_number`` counts pages until the total-pages header, a false ``has_next``, or a short
page; ``cursor`` passes the body's next cursor back until it is empty or ``has_next`` is
false. An ``items`` path whose first key is missing is an error (a misconfigured path must
not look like "no orders"); deeper keys may be missing (TOP omits ``trades`` when empty).

Template values in ``auth``: ``{access_token}``, ``{app_key}`` and ``{shop}`` (the shop
code), from the shop's ``settings``.

Errors and waiting (``max_retries``, ``max_wait_seconds``, the backoff) are described in
:mod:`orderhub.adapters.channels.polling`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orderhub.domain.time import ensure_utc

LINK_HEADER, PAGE_NUMBER, CURSOR = "link_header", "page_number", "cursor"
STYLES = (LINK_HEADER, PAGE_NUMBER, CURSOR)
TIME_FORMATS = ("iso", "unix_s", "unix_ms", "strftime")
_TEMPLATE = re.compile(r"\{([a-z_]+)\}")
_TEMPLATE_FIELDS = ("access_token", "app_key", "shop")


class PollConfigError(ValueError):
    """Raised when a channel's ``poll:`` section or a shop's poll settings can't be used;
    the message names the offending key."""


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """How a window bound is written in a request: ISO 8601, unix seconds/millis or strftime."""

    style: str = "iso"
    pattern: str | None = None
    zone: str = "UTC"

    def render(self, value: datetime) -> str | int:
        """``value`` (aware) in this format."""
        local = ensure_utc(value, field="window").astimezone(ZoneInfo(self.zone))
        if self.style == "unix_s":
            return int(local.timestamp())
        if self.style == "unix_ms":
            return int(local.timestamp() * 1000)
        if self.style == "strftime":
            assert self.pattern is not None
            return local.strftime(self.pattern)
        return local.isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class AuthParam:
    """One credential sent with every request: a header or a query parameter."""

    location: str     # header | query
    name: str
    value: str        # template, e.g. "Bearer {access_token}"


@dataclass(frozen=True, slots=True)
class Pagination:
    """How the channel pages a window's results (see the module docstring)."""

    style: str
    location: str = "query"
    page_size: int = 100
    size_param: str | None = None
    page_param: str = "page"
    first_page: int = 1
    total_pages_header: str | None = None
    has_next: str | None = None
    cursor_param: str = "cursor"
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PollConfig:
    """A channel's ``poll:`` section merged with one shop's ``settings.poll`` overrides."""

    path: str
    items: str
    window_from: str
    pagination: Pagination
    method: str = "GET"
    window_to: str | None = None
    window_location: str = "query"
    time_format: TimeFormat = field(default_factory=TimeFormat)
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    auth: tuple[AuthParam, ...] = ()
    error_path: str | None = None
    error_ok: tuple[Any, ...] = ()
    rate_per_second: float = 2.0
    burst: int = 4
    enabled: bool = True
    interval_seconds: int = 60
    overlap_seconds: int = 300
    lag_seconds: int = 5
    max_window_seconds: int | None = None
    initial_lookback_seconds: int = 86_400
    max_retries: int = 4
    max_throttled: int = 10
    max_wait_seconds: float = 30.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_pages: int = 10_000
    timeout_seconds: float = 30.0

    @property
    def interval(self) -> timedelta:
        """Time between two passes of a shop."""
        return timedelta(seconds=self.interval_seconds)

    @property
    def overlap(self) -> timedelta:
        """How far before the cursor a pass starts again, to catch orders missed while paging."""
        return timedelta(seconds=self.overlap_seconds)

    @property
    def lag(self) -> timedelta:
        """How long before now a window ends (channel search indexes trail their writes)."""
        return timedelta(seconds=self.lag_seconds)

    @classmethod
    def from_spec(cls, poll: Mapping[str, Any], shop_poll: Mapping[str, Any] | None = None) -> PollConfig:
        """Parse a ``poll:`` section; ``shop_poll`` (a shop's ``settings.poll``) overrides
        ``enabled``, ``interval_seconds``, ``overlap_seconds``, ``rate_per_second``, ``burst``,
        ``lag_seconds`` and ``initial_lookback_seconds``. Raises :class:`PollConfigError`."""
        if not isinstance(poll, Mapping):
            raise PollConfigError("poll: must be a mapping")
        shop_poll = shop_poll or {}
        if not isinstance(shop_poll, Mapping):
            raise PollConfigError("settings.poll: must be a mapping")
        window = _mapping(poll, "window")
        paging = _mapping(poll, "pagination")
        rate = _mapping(poll, "rate", required=False)
        error = _mapping(poll, "error", required=False)
        method = str(poll.get("method", "GET")).upper()
        if method not in ("GET", "POST"):
            raise PollConfigError(f"poll.method: GET or POST, got {method!r}")
        style = _choice(paging, "style", STYLES, where="poll.pagination")
        pagination = Pagination(
            style=style,
            location=_choice(paging, "in", ("query", "body"), where="poll.pagination", default="query"),
            page_size=_int(paging, "page_size", 100, where="poll.pagination", minimum=1),
            size_param=_opt_str(paging, "size_param", where="poll.pagination"),
            page_param=_opt_str(paging, "page_param", where="poll.pagination") or "page",
            first_page=_int(paging, "first_page", 1, where="poll.pagination", minimum=0),
            total_pages_header=_opt_str(paging, "total_pages_header", where="poll.pagination"),
            has_next=_opt_str(paging, "has_next", where="poll.pagination"),
            cursor_param=_opt_str(paging, "cursor_param", where="poll.pagination") or "cursor",
            next_cursor=_opt_str(paging, "next_cursor", where="poll.pagination"),
        )
        if style == CURSOR and pagination.next_cursor is None:
            raise PollConfigError("poll.pagination.next_cursor: required for the cursor style")
        time_style = _choice(window, "format", TIME_FORMATS, where="poll.window", default="iso")
        pattern = _opt_str(window, "pattern", where="poll.window")
        if time_style == "strftime" and not pattern:
            raise PollConfigError("poll.window.pattern: required for format strftime")
        zone = _opt_str(window, "timezone", where="poll.window") or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PollConfigError(f"poll.window.timezone: unknown time zone {zone!r}") from exc
        auth_items = poll.get("auth") or []
        if not isinstance(auth_items, list):
            raise PollConfigError("poll.auth: must be a list of {in, name, value}")
        auth = []
        for i, item in enumerate(auth_items):
            where = f"poll.auth[{i}]"
            if not isinstance(item, Mapping):
                raise PollConfigError(f"{where}: must be a mapping with in, name and value")
            value = _str(item, "value", where=where)
            for name in _TEMPLATE.findall(value):
                if name not in _TEMPLATE_FIELDS:
                    raise PollConfigError(f"{where}.value: unknown placeholder {{{name}}}; use "
                                          + ", ".join("{" + f + "}" for f in _TEMPLATE_FIELDS))
            auth.append(AuthParam(_choice(item, "in", ("header", "query"), where=where),
                                  _str(item, "name", where=where), value))
        ok = error.get("ok", [])
        max_window = poll.get("max_window_seconds")
        return cls(
            path=_str(poll, "path", where="poll"),
            items=_str(poll, "items", where="poll"),
            method=method,
            window_from=_str(window, "from", where="poll.window"),
            window_to=_opt_str(window, "to", where="poll.window"),
            window_location=_choice(window, "in", ("query", "body"), where="poll.window", default="query"),
            time_format=TimeFormat(time_style, pattern, zone),
            pagination=pagination,
            params=dict(_mapping(poll, "params", required=False)),
            body=dict(_mapping(poll, "body", required=False)),
            auth=tuple(auth),
            error_path=_opt_str(error, "path", where="poll.error"),
            error_ok=tuple(ok) if isinstance(ok, list) else (ok,),
            rate_per_second=_float(shop_poll, "rate_per_second",
                                   _float(rate, "per_second", 2.0, where="poll.rate"), where="settings.poll"),
            burst=_int(shop_poll, "burst", _int(rate, "burst", 4, where="poll.rate", minimum=1),
                       where="settings.poll", minimum=1),
            enabled=bool(shop_poll.get("enabled", True)),
            interval_seconds=_int(shop_poll, "interval_seconds",
                                  _int(poll, "interval_seconds", 60, where="poll", minimum=1),
                                  where="settings.poll", minimum=1),
            overlap_seconds=_int(shop_poll, "overlap_seconds",
                                 _int(poll, "overlap_seconds", 300, where="poll", minimum=0),
                                 where="settings.poll", minimum=0),
            lag_seconds=_int(shop_poll, "lag_seconds", _int(poll, "lag_seconds", 5, where="poll", minimum=0),
                             where="settings.poll", minimum=0),
            max_window_seconds=(None if max_window is None
                                else _int(poll, "max_window_seconds", 0, where="poll", minimum=1)),
            initial_lookback_seconds=_int(shop_poll, "initial_lookback_seconds",
                                          _int(poll, "initial_lookback_seconds", 86_400, where="poll", minimum=1),
                                          where="settings.poll", minimum=1),
            max_retries=_int(poll, "max_retries", 4, where="poll", minimum=0),
            max_wait_seconds=_float(poll, "max_wait_seconds", 30.0, where="poll"),
            backoff_base=_float(poll, "backoff_base_seconds", 1.0, where="poll"),
            backoff_cap=_float(poll, "backoff_cap_seconds", 60.0, where="poll"),
            timeout_seconds=_float(poll, "timeout_seconds", 30.0, where="poll"),
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A shop's API access, from its ``settings``: where its API lives and how to log in."""

    api_base_url: str
    access_token: str = ""
    app_key: str = ""
    shop: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, shop: str) -> Credentials:
        """Read ``api_base_url``, ``access_token`` and ``app_key``; raises PollConfigError
        when the base URL is missing or not http(s)."""
        base = settings.get("api_base_url")
        if not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise PollConfigError("settings.api_base_url: the shop's API base URL (http or https) is required "
                                  "to poll it")
        return cls(api_base_url=base.rstrip("/"), access_token=str(settings.get("access_token") or ""),
                   app_key=str(settings.get("app_key") or ""), shop=shop)

    def fill(self, template: str) -> str:
        """``template`` with ``{access_token}``, ``{app_key}`` and ``{shop}`` replaced."""
        values = {"access_token": self.access_token, "app_key": self.app_key, "shop": self.shop}
        return _TEMPLATE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# --------------------------------------------------------------------------- parsing helpers
def _mapping(section: Mapping[str, Any], key: str, *, required: bool = True) -> Mapping[str, Any]:
    value = section.get(key)
    if value is None:
        if required:
            raise PollConfigError(f"poll.{key}: required")
        return {}
    if not isinstance(value, Mapping):
        raise PollConfigError(f"poll.{key}: must be a mapping")
    return value


def _str(section: Mapping[str, Any], key: str, *, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        raise PollConfigError(f"{where}.{key}: required, a non-empty string")
    return value


def _opt_str(section: Mapping[str, Any], key: str, *, where: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PollConfigError(f"{where}.{key}: must be a non-empty string")
    return value


def _choice(section: Mapping[str, Any], key: str, allowed: tuple[str, ...], *, where: str,
            default: str | None = None) -> str:
    value = section.get(key, default)
    if value not in allowed:
        raise PollConfigError(f"{where}.{key}: one of {', '.join(allowed)}, got {value!r}")
    assert isinstance(value, str)
    return value


def _int(section: Mapping[str, Any], key: str, default: int, *, where: str, minimum: int = 0) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PollConfigError(f"{where}.{key}: an integer >= {minimum}, got {value!r}")
    return value


def _float(section: Mapping[str, Any], key: str, default: float, *, where: str) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PollConfigError(f"{where}.{key}: a positive number, got {value!r}")
    return float(value)
