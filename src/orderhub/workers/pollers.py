"""The poller: pulls orders from channel APIs for shops with polling enabled (DESIGN.md §2
step 1, "A poll or a backfill writes the same inbox with the same key").

A pass over one shop:

1. claims the shop's cursor (a compare-and-set on ``next_poll_at``, so one worker per shop);
2. pulls the window ``[updated_until - overlap, now - lag)`` (the first pass starts
   ``initial_lookback_seconds`` back), cut into ``max_window_seconds`` pieces, page by page;
3. puts every item into the inbox through the bus (``ReceiveChannelMessage``, exactly like a
   webhook, so webhook, poll and backfill share one dedup key) and counts the page;
4. after the last page of a window, moves ``updated_until`` to the window's end.

Why the overlap: channels page by offset over a live result set. When an order on an
already-read page is updated mid-pass it leaves its place, every later order moves up one
slot, and one of them slips onto a page already read: it is missed by this pass although
its updated-at lies inside the window. The next pass starts ``overlap`` earlier and catches
it; the repeats it reads are duplicates the inbox absorbs.

A failing pass (5xx/network retries exhausted, a 4xx, a bus error) stops with
``last_error`` recorded and the cursor where the last complete window left it. A 429 asking
for a wait longer than the client may sleep defers the shop's next pass by that long.

A backfill re-pulls a past range the same way with ``source="backfill"`` and never moves
the cursor.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import Engine

from orderhub.adapters.channels.poll_config import Credentials, PollConfig, PollConfigError
from orderhub.adapters.channels.polling import (
    USER_AGENT,
    PollClient,
    PollDeferred,
    PollError,
    split_window,
    whole_second,
)
from orderhub.adapters.channels.ratelimit import TokenBucket
from orderhub.adapters.db import polling as cursors
from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.polling import PollableShop
from orderhub.domain.commands import ReceiveChannelMessage
from orderhub.domain.errors import UnreadableMessage
from orderhub.domain.time import Clock, ensure_utc
from orderhub.workers.http_client import WorkerHttp
from orderhub.workers.outbox_relay import default_worker_id

log = structlog.get_logger(__name__)

POLL, BACKFILL = "poll", "backfill"
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


class SpecRegistry(Protocol):
    """The channel mapping registry, as far as the poller uses it: ``get(channel)`` returns
    the channel's spec (its ``poll`` attribute is the raw ``poll:`` section, or None), or
    raises ``KeyError`` / returns None for an unknown channel."""

    def get(self, channel: str) -> Any: ...


class CommandBus(Protocol):
    """The message bus, as far as the poller uses it."""

    def handle(self, command: object) -> Any: ...


class ShopNotPollable(LookupError):
    """Raised by :meth:`ChannelPoller.poll_now` and :meth:`ChannelPoller.backfill` when the
    shop doesn't exist, is ambiguous, or its channel has no ``poll:`` section."""


@dataclass
class PassResult:
    """What one pass (or backfill) over one shop did."""

    shop: str
    channel: str
    source: str
    since: datetime | None = None
    until: datetime | None = None
    windows: int = 0
    pages: int = 0
    items: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    updated_until: datetime | None = None
    error: str | None = None
    deferred_seconds: float | None = None
    message_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the pass pulled its whole range."""
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for ``--json``)."""
        def stamp(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()
        return {"shop": self.shop, "channel": self.channel, "source": self.source, "since": stamp(self.since),
                "until": stamp(self.until), "windows": self.windows, "pages": self.pages, "items": self.items,
                "accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                "updated_until": stamp(self.updated_until), "error": self.error,
                "deferred_seconds": self.deferred_seconds}


ProgressCallback = Callable[[float, PassResult], None]


class ChannelPoller:
    """The polling worker; fits :class:`~orderhub.workers.runner.Worker`.

    ``registry`` gives each channel's ``poll:`` section; ``bus`` stores items in the inbox.
    ``http_client`` is used as given (the caller closes it); without one the poller makes
    and closes its own. ``sleep``, ``monotonic`` and ``rand`` are injectable so tests never
    really wait; the token buckets (one per shop, kept across passes) use them too.
    """

    def __init__(self, engine: Engine, clock: Clock, bus: CommandBus, registry: SpecRegistry, *,
                 http_client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random,
                 lease: timedelta = timedelta(minutes=10), max_shops: int = 20, name: str = "pollers",
                 worker_id: str | None = None) -> None:
        self.name = name
        self.worker_id = worker_id or default_worker_id(name)
        self._engine = engine
        self._clock = clock
        self._bus = bus
        self._registry = registry
        # httpx's default timeout (5 s per operation), as before the client was shared.
        self._client = WorkerHttp(http_client, timeout=5.0, headers={"User-Agent": USER_AGENT})
        self._http = self._client.client
        self._sleep = sleep
        self._monotonic = monotonic
        self._rand = rand
        self._lease = lease
        self._max_shops = max_shops
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    # ------------------------------------------------------------------ worker protocol
    def run_once(self) -> int:
        """One pass over every due shop (at most ``max_shops``); returns the items pulled."""
        now = self._clock.now()
        with self._engine.connect() as conn:
            due = cursors.list_pollable_shops(conn, due_at=now)
        total = 0
        for shop in due[: self._max_shops]:
            with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                claimed = cursors.claim_cursor(conn, shop.tenant_id, shop.shop_id, now=now, lease=self._lease)
            if claimed is None:
                continue  # another worker has it
            result = self._poll_claimed(shop, claimed)
            total += result.items
        return total

    def close(self) -> None:
        """Close the HTTP client if the poller made it."""
        self._client.close()

    # ------------------------------------------------------------------ operator commands
    def poll_now(self, code: str, *, tenant_id: str | None = None, channel: str | None = None,
                 progress: ProgressCallback | None = None) -> PassResult:
        """One pass over shop ``code`` now, due or not (``orderhub shops poll``)."""
        shop = self._find(code, tenant_id=tenant_id, channel=channel)
        now = self._clock.now()
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            claimed = cursors.claim_cursor(conn, shop.tenant_id, shop.shop_id, now=now, lease=self._lease,
                                           force=True)
        assert claimed is not None  # force always claims
        return self._poll_claimed(shop, claimed, progress=progress)

    def backfill(self, code: str, since: datetime, until: datetime, *, tenant_id: str | None = None,
                 channel: str | None = None, progress: ProgressCallback | None = None) -> PassResult:
        """Re-pull orders updated in ``[since, until)`` through the same inbox dedup; the
        cursor is not moved. ``progress(fraction, result)`` is called after every page."""
        since = whole_second(ensure_utc(since, field="since"))
        until = whole_second(ensure_utc(until, field="until"))
        if until <= since:
            raise ValueError("backfill: --until must be after --since")
        shop = self._find(code, tenant_id=tenant_id, channel=channel)
        config = self._config(shop)
        result = PassResult(shop=shop.code, channel=shop.channel, source=BACKFILL, since=since, until=until)
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            cursors.ensure_cursor(conn, shop.tenant_id, shop.shop_id, now=self._clock.now())
        # Backfills span long ranges; a day per window keeps page counts sane when the channel sets no cap.
        windows = split_window(since, until, config.max_window_seconds or 86_400)
        try:
            self._pull(shop, config, windows, result, source=BACKFILL, advance=False, progress=progress)
        except PollDeferred as exc:
            result.error, result.deferred_seconds = str(exc), exc.retry_after
        except Exception as exc:  # reported to the operator, never half-silently swallowed
            result.error = f"{type(exc).__name__}: {exc}"
        log.info("backfill_finished", **result.as_dict())
        return result

    # ------------------------------------------------------------------ a pass
    def _poll_claimed(self, shop: PollableShop, cursor: cursors.PollCursor,
                      progress: ProgressCallback | None = None) -> PassResult:
        now = self._clock.now()
        result = PassResult(shop=shop.code, channel=shop.channel, source=POLL, updated_until=cursor.updated_until)
        interval = timedelta(seconds=60)
        try:
            config = self._config(shop)
            interval = config.interval
            end = whole_second(now - config.lag)
            start = (whole_second(cursor.updated_until - config.overlap) if cursor.updated_until is not None
                     else end - timedelta(seconds=config.initial_lookback_seconds))
            result.since, result.until = start, end
            self._pull(shop, config, split_window(start, end, config.max_window_seconds), result, source=POLL,
                       advance=True, progress=progress)
        except PollDeferred as exc:
            result.error, result.deferred_seconds = str(exc), exc.retry_after
            interval = max(interval, timedelta(seconds=exc.retry_after))
        except Exception as exc:  # one shop's failure is recorded and must not stop the others
            result.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, PollError | PollConfigError | ShopNotPollable):
                log.exception("poll_pass_crashed", shop=shop.code, channel=shop.channel)
        done = self._clock.now()
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            cursors.finish_pass(conn, shop.tenant_id, shop.shop_id, now=done, next_poll_at=done + interval,
                                error=result.error)
        if result.error:
            log.warning("poll_pass_failed", **result.as_dict())
        else:
            log.info("poll_pass_finished", **result.as_dict())
        return result

    def _pull(self, shop: PollableShop, config: PollConfig, windows: list[tuple[datetime, datetime]],
              result: PassResult, *, source: str, advance: bool, progress: ProgressCallback | None) -> None:
        client = PollClient(self._http, config, Credentials.from_settings(shop.settings, shop=shop.code),
                            self._bucket(shop, config), clock=self._clock, sleep=self._sleep, rand=self._rand)
        total = sum((end - start).total_seconds() for start, end in windows) or 1.0
        done = 0.0
        for start, end in windows:
            for page in client.pages(start, end):
                self._ingest(shop, page.items, result, source=source)
                result.pages += 1
                with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                    cursors.record_page(conn, shop.tenant_id, shop.shop_id, messages=len(page.items),
                                        now=self._clock.now(), lease=self._lease if advance else None)
                if progress is not None:
                    progress(done / total, result)
            result.windows += 1
            done += (end - start).total_seconds()
            if advance:
                with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                    cursors.advance_cursor(conn, shop.tenant_id, shop.shop_id, end)
                if result.updated_until is None or end > result.updated_until:
                    result.updated_until = end
            if progress is not None:
                progress(done / total, result)

    def _ingest(self, shop: PollableShop, items: tuple[dict[str, Any], ...], result: PassResult, *,
                source: str) -> None:
        for item in items:
            body = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            try:
                outcome = self._bus.handle(ReceiveChannelMessage(channel=shop.channel, shop_code=shop.code,
                                                                 source=source, body=body, headers={}, verify=False,
                                                                 tenant_id=shop.tenant_id))
            except UnreadableMessage:
                # Already kept in the inbox as rejected; one bad order must not stall the shop's cursor.
                result.items += 1
                result.rejected += 1
                continue
            result.items += 1
            status = getattr(outcome, "status", None)
            if status == ACCEPTED:
                result.accepted += 1
            elif status == DUPLICATE:
                result.duplicates += 1
            else:
                result.rejected += 1
            message_id = getattr(outcome, "message_id", None)
            if message_id:
                result.message_ids.append(str(message_id))

    # ------------------------------------------------------------------ lookups
    def _find(self, code: str, *, tenant_id: str | None, channel: str | None) -> PollableShop:
        with self._engine.connect() as conn:
            found = cursors.get_shop(conn, code, tenant_id=tenant_id, channel=channel)
        if not found:
            raise ShopNotPollable(f"no shop with code {code!r}")
        if len(found) > 1:
            raise ShopNotPollable(f"several shops have code {code!r} (channels: "
                                  + ", ".join(s.channel for s in found) + "); name the channel")
        return found[0]

    def _config(self, shop: PollableShop) -> PollConfig:
        try:
            spec = self._registry.get(shop.channel)
        except Exception as exc:  # the registry's "unknown channel" error, whatever its class
            raise ShopNotPollable(f"channel {shop.channel!r}: {exc}") from exc
        section = getattr(spec, "poll", None) if spec is not None else None
        if not isinstance(section, Mapping):
            raise ShopNotPollable(f"channel {shop.channel!r} has no poll: section in its mapping spec")
        return PollConfig.from_spec(section, shop.poll_settings)

    def _bucket(self, shop: PollableShop, config: PollConfig) -> TokenBucket:
        key = (shop.tenant_id, shop.shop_id)
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.rate, bucket.burst) != (config.rate_per_second, config.burst):
            bucket = TokenBucket(config.rate_per_second, config.burst, monotonic=self._monotonic, sleep=self._sleep)
            self._buckets[key] = bucket
        return bucket
