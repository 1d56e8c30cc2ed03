"""Pulling orders from a channel's API: one HTTP client for every channel, driven by the
``poll:`` section of the channel's mapping spec (``channels/specs/<channel>.yaml``).

A pull asks for the orders *updated* in a time window ``[since, until)`` and walks the
pages of the answer. The ``poll:`` section — its format, the pagination styles and the
credential templates — is parsed and documented in :mod:`orderhub.adapters.channels.poll_config`.

Errors and waiting: every request takes a token from the shop's bucket. A 429 waits the
``Retry-After`` (seconds or HTTP date) or, without one, jittered exponential backoff; a
wait longer than ``max_wait_seconds`` stops the pull with :class:`PollDeferred`. 5xx and
network errors are retried ``max_retries`` times with backoff, then :class:`PollFailed`;
other 4xx fail at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from orderhub.adapters.channels.poll_config import CURSOR, LINK_HEADER, PAGE_NUMBER, Credentials, PollConfig
from orderhub.adapters.channels.ratelimit import Backoff, TokenBucket, parse_retry_after
from orderhub.domain.time import Clock

ERROR_EXCERPT = 300
USER_AGENT = "OrderHub-Poller/1"


class PollError(Exception):
    """Base of the errors that stop a pull; the shop's cursor is then left where it was."""


class PollFailed(PollError):
    """Raised when the channel answered an error that retrying won't fix (4xx, a body-level
    error code, unreadable JSON), or when 5xx/network retries are exhausted."""


class PollDeferred(PollError):
    """Raised when the channel asked to wait (429 ``Retry-After``) longer than the client may
    sleep; the pull is retried after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --------------------------------------------------------------------------- windows
def split_window(since: datetime, until: datetime, max_seconds: int | None) -> list[tuple[datetime, datetime]]:
    """``[since, until)`` cut into consecutive windows no longer than ``max_seconds`` (one if None)."""
    if until <= since:
        return []
    if not max_seconds:
        return [(since, until)]
    step = timedelta(seconds=max_seconds)
    windows = []
    start = since
    while start < until:
        end = min(until, start + step)
        windows.append((start, end))
        start = end
    return windows


def whole_second(value: datetime) -> datetime:
    """``value`` rounded down to the second: window bounds are whole seconds, so a cursor
    written in a second-resolution format (unix_s, strftime) never skips a fraction."""
    return value.replace(microsecond=0)


# --------------------------------------------------------------------------- the client
@dataclass(frozen=True, slots=True)
class Page:
    """One page of a window: its 1-based ``number`` within the window and its orders."""

    number: int
    items: tuple[dict[str, Any], ...]
    url: str


class PollClient:
    """Pulls one shop's orders over HTTP according to a :class:`PollConfig`.

    ``bucket`` is the shop's token bucket (shared across passes by the worker); ``sleep``
    and ``rand`` are injected for tests (the bucket has its own ``sleep``); ``clock`` is the
    wall clock that HTTP-date ``Retry-After`` values are measured from.
    """

    def __init__(self, http: httpx.Client, config: PollConfig, credentials: Credentials, bucket: TokenBucket, *,
                 clock: Clock, sleep: Callable[[float], None], rand: Callable[[], float]) -> None:
        self._http = http
        self.config = config
        self._credentials = credentials
        self._bucket = bucket
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._backoff = Backoff(config.backoff_base, config.backoff_cap)
        self.requests = 0

    def pages(self, since: datetime, until: datetime) -> Iterator[Page]:
        """The pages of orders updated in ``[since, until)``, in the channel's order.

        Raises :class:`PollError` subclasses; pages already yielded stay valid.
        """
        cfg, paging = self.config, self.config.pagination
        url = self._credentials.api_base_url + "/" + cfg.path.lstrip("/")
        query: dict[str, Any] = dict(cfg.params)
        body: dict[str, Any] = dict(cfg.body)
        window = query if cfg.window_location == "query" else body
        window[cfg.window_from] = cfg.time_format.render(since)
        if cfg.window_to:
            window[cfg.window_to] = cfg.time_format.render(until)
        page_args = query if paging.location == "query" else body
        if paging.size_param:
            page_args[paging.size_param] = paging.page_size
        page_no = paging.first_page
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for number in range(1, cfg.max_pages + 1):
            if paging.style == PAGE_NUMBER:
                page_args[paging.page_param] = page_no
            elif paging.style == CURSOR and cursor is not None:
                page_args[paging.cursor_param] = cursor
            response, data = self._send(url, query, body if cfg.method == "POST" else None)
            items = self._items(data)
            yield Page(number, items, str(response.url))
            if paging.style == LINK_HEADER:
                next_url = self._next_link(response)
                if next_url is None:
                    return
                # Shopify refuses the filters next to page_info: the link carries everything.
                url, query = next_url, {}
            elif paging.style == PAGE_NUMBER:
                if not items or not self._more_pages(response, data, page_no, len(items)):
                    return
                page_no += 1
            else:
                nxt = _lookup(data, paging.next_cursor or "")
                if not nxt or (paging.has_next and not _lookup(data, paging.has_next)):
                    return
                cursor = str(nxt)
                if cursor in seen_cursors:
                    raise PollFailed(f"the channel returned the cursor {cursor[:60]!r} twice; stopping to avoid a loop")
                seen_cursors.add(cursor)
        raise PollFailed(f"more than {cfg.max_pages} pages in one window; shorten max_window_seconds")

    # ------------------------------------------------------------------ internals
    def _more_pages(self, response: httpx.Response, data: Any, page_no: int, count: int) -> bool:
        paging = self.config.pagination
        if paging.total_pages_header:
            total = response.headers.get(paging.total_pages_header)
            if total is not None and total.strip().isdigit():
                return page_no - paging.first_page + 1 < int(total)
        if paging.has_next:
            return bool(_lookup(data, paging.has_next))
        return count >= paging.page_size

    def _next_link(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        absolute = urljoin(str(response.url), link)
        here, there = urlsplit(str(response.url)), urlsplit(absolute)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            # The next link would carry the shop's access token to another host.
            raise PollFailed(f"the next-page link points to another origin ({there.scheme}://{there.netloc}); "
                             "refusing to send credentials there")
        return absolute

    def _items(self, data: Any) -> tuple[dict[str, Any], ...]:
        path = self.config.items
        if path == ".":
            # The body itself is the list (WooCommerce).
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise PollFailed("expected the response body to be a list of orders (poll.items is '.')")
            return tuple(data)
        first = path.split(".", 1)[0]
        if not isinstance(data, Mapping) or first not in data:
            raise PollFailed(f"the response has no {first!r} (poll.items is {path!r}): "
                             + _excerpt(json.dumps(data, ensure_ascii=False, default=str)))
        found = _lookup(data, path)
        if found is None:
            return ()
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise PollFailed(f"{path}: expected a list of objects, got {type(found).__name__}")
        return tuple(found)

    def _send(self, url: str, query: Mapping[str, Any], body: Mapping[str, Any] | None) -> tuple[httpx.Response, Any]:
        cfg = self.config
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        params = {k: _query_value(v) for k, v in query.items()}
        for auth in cfg.auth:
            value = self._credentials.fill(auth.value)
            if auth.location == "header":
                headers[auth.name] = value
            else:
                params[auth.name] = value
        failures = throttled = 0
        while True:
            self._bucket.acquire()
            self.requests += 1
            try:
                response = self._http.request(cfg.method, url, params=params or None,
                                              json=dict(body) if body is not None else None, headers=headers,
                                              timeout=cfg.timeout_seconds)
            except httpx.TransportError as exc:
                failures += 1
                self._retry_or_fail(failures, f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code == 429:
                throttled += 1
                if throttled > cfg.max_throttled:
                    raise PollFailed(f"HTTP 429 {throttled} times in a row; giving up this pass")
                wait = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
                if wait is None:
                    wait = self._backoff.delay(throttled, self._rand)
                if wait > cfg.max_wait_seconds:
                    raise PollDeferred(f"HTTP 429: the channel asked to wait {wait:.0f}s", wait)
                self._sleep(wait)
                continue
            if response.status_code >= 500:
                failures += 1
                self._retry_or_fail(failures, f"HTTP {response.status_code}: {_excerpt(response.text)}")
                continue
            if response.status_code >= 400:
                raise PollFailed(f"HTTP {response.status_code}: {_excerpt(response.text)}")
            try:
                data = response.json()
            except ValueError as exc:
                raise PollFailed(f"the response is not JSON: {_excerpt(response.text)}") from exc
            if cfg.error_path is not None:
                code = _lookup(data, cfg.error_path)
                if code is not None and code not in cfg.error_ok:
                    raise PollFailed(f"{cfg.error_path}={code!r}: {_excerpt(response.text)}")
            return response, data

    def _retry_or_fail(self, failures: int, error: str) -> None:
        if failures > self.config.max_retries:
            raise PollFailed(f"{error} (after {failures} attempts)")
        self._sleep(self._backoff.delay(failures, self._rand))


# --------------------------------------------------------------------------- helpers
def _lookup(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in nested mappings, or None when any key is missing."""
    current = data
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        # Channels expect lowercase booleans in query strings (use_has_next=true).
        return "true" if value else "false"
    return value


def _excerpt(text: str) -> str:
    return text[:ERROR_EXCERPT] + ("…" if len(text) > ERROR_EXCERPT else "")


def utc_now_floor(clock: Clock) -> datetime:
    """The clock's now, aware UTC, rounded down to the second."""
    return whole_second(clock.now().astimezone(UTC))
