"""Pollers against the fake channel server, over real HTTP.

The HTTP-level tests drive :class:`PollClient` with each built-in ``poll:`` section (read
from docs/polling.md, the text the channel specs carry) against the fake server speaking
that channel's dialect. The inbox-level tests run the :class:`ChannelPoller` worker on the
real database (SQLite and PostgreSQL): polled orders go through the bus into the inbox.

No test really waits: sleeps go to a fake monotonic clock and are asserted, and every
timestamp comes from a fixed clock.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
import yaml
from sqlalchemy import select

from orderhub.adapters.channels.poll_config import Credentials, PollConfig, PollConfigError
from orderhub.adapters.channels.polling import PollClient, PollDeferred, PollFailed
from orderhub.adapters.channels.ratelimit import TokenBucket
from orderhub.adapters.db import polling as cursors
from orderhub.adapters.db.tables import inbox
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.simulation.fake_channel import FakeChannel
from orderhub.workers.pollers import ChannelPoller, PassResult
from tests.unit.fake_time import FakeTime

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "polling.md"


def documented_sections() -> dict[str, dict[str, Any]]:
    """The ``poll:`` section of each built-in channel, as docs/polling.md gives it."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.findall(r"^### (\w+)\n\n```yaml\n(.*?)```", text, flags=re.S | re.M)
    return {name: yaml.safe_load(block)["poll"] for name, block in found}


SECTIONS = documented_sections()


def section(channel: str, **overrides: Any) -> dict[str, Any]:
    """A deep copy of ``channel``'s section; ``page_size`` goes into pagination, the rest on top."""
    poll = copy.deepcopy(SECTIONS[channel])
    if "page_size" in overrides:
        poll["pagination"]["page_size"] = overrides.pop("page_size")
    poll.update(overrides)
    return poll


@pytest.fixture
def fake() -> Iterator[FakeChannel]:
    with FakeChannel() as server:
        yield server


@pytest.fixture
def timer() -> FakeTime:
    return FakeTime(500.0)


def client_for(channel: str, fake: FakeChannel, http: httpx.Client, timer: FakeTime, *, rate: float = 1000.0,
               burst: int = 1000, **overrides: Any) -> PollClient:
    config = PollConfig.from_spec(section(channel, **overrides))
    credentials = Credentials(api_base_url=fake.base_url, access_token=fake.access_token, app_key=fake.app_key,
                              shop="s1")
    bucket = TokenBucket(rate, burst, monotonic=timer.monotonic, sleep=timer.sleep)
    return PollClient(http, config, credentials, bucket, clock=FixedClock(NOW), sleep=timer.sleep,
                      rand=lambda: 0.5)


def seed(fake: FakeChannel, count: int, *, start: datetime = NOW - timedelta(minutes=30),
         step: timedelta = timedelta(minutes=1)) -> None:
    for i in range(count):
        fake.upsert(1001 + i, start + i * step)


ID_OF: dict[str, Callable[[dict[str, Any]], int]] = {
    "shopify": lambda item: int(item["id"]),
    "woocommerce": lambda item: int(item["id"]),
    "tiktok_shop": lambda item: int(item["id"]),
    "taobao": lambda item: int(item["tid"]),
    "pinduoduo": lambda item: int(item["order_sn"].split("-")[1]),
}


# --------------------------------------------------------------------------- HTTP level
@pytest.mark.parametrize("channel", sorted(ID_OF))
def test_every_builtin_section_pages_through_the_window(channel: str, fake: FakeChannel, http: httpx.Client,
                                                        timer: FakeTime) -> None:
    seed(fake, 7)
    fake.upsert(900, NOW - timedelta(hours=3))     # updated before the window
    client = client_for(channel, fake, http, timer, page_size=2)

    pages = list(client.pages(NOW - timedelta(hours=1), NOW))

    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert [len(p.items) for p in pages] == [2, 2, 2, 1]
    assert [ID_OF[channel](item) for p in pages for item in p.items] == list(range(1001, 1008))
    searches = [r for r in fake.requests if r.status == 200]
    assert len(searches) == 4
    assert timer.sleeps == []


def test_window_bounds_are_written_in_each_channels_format(fake: FakeChannel, http: httpx.Client,
                                                           timer: FakeTime) -> None:
    since, until = NOW - timedelta(hours=1), NOW
    for channel in ("shopify", "taobao", "pinduoduo", "tiktok_shop", "woocommerce"):
        list(client_for(channel, fake, http, timer).pages(since, until))
    shopify, taobao, pdd, tiktok, woo = fake.requests
    assert shopify.query["updated_at_min"] == "2026-03-01T11:00:00+00:00"
    assert shopify.query["updated_at_max"] == "2026-03-01T12:00:00+00:00"
    assert shopify.headers["x-shopify-access-token"] == fake.access_token
    # TOP times are Beijing time without an offset.
    assert (taobao.query["start_modified"], taobao.query["end_modified"]) == ("2026-03-01 19:00:00",
                                                                              "2026-03-01 20:00:00")
    assert taobao.query["use_has_next"] == "true"
    assert pdd.query["start_updated_at"] == str(int(since.timestamp()))
    assert tiktok.method == "POST"
    assert tiktok.body == {"update_time_ge": int(since.timestamp()), "update_time_lt": int(until.timestamp())}
    assert woo.query["consumer_key"] == fake.app_key
    assert woo.query["modified_after"] == "2026-03-01T11:00:00+00:00"


def test_link_header_pages_are_followed_verbatim(fake: FakeChannel, http: httpx.Client, timer: FakeTime) -> None:
    seed(fake, 5)
    list(client_for("shopify", fake, http, timer, page_size=2).pages(NOW - timedelta(hours=1), NOW))
    first, *rest = fake.requests
    assert first.query["status"] == "any" and "page_info" not in first.query
    # The fake answers 400 (like Shopify) if filters are repeated next to page_info.
    assert [r.status for r in rest] == [200, 200]
    assert all(set(r.query) == {"limit", "page_info"} for r in rest)


def test_items_reordered_within_pages_are_all_pulled(http: httpx.Client, timer: FakeTime) -> None:
    with FakeChannel(reorder_seed=7) as fake:
        seed(fake, 12)
        pages = list(client_for("shopify", fake, http, timer, page_size=4).pages(NOW - timedelta(hours=1), NOW))
    ids = [[int(item["id"]) for item in p.items] for p in pages]
    assert any(page != sorted(page) for page in ids), "the fake server should have reordered a page"
    assert sorted(i for page in ids for i in page) == list(range(1001, 1013))
    # Reordering stays within a page: pages still partition the sorted result.
    assert [sorted(page) for page in ids] == [list(range(1001 + 4 * n, 1005 + 4 * n)) for n in range(3)]


def test_429_retry_after_seconds_is_honoured(fake: FakeChannel, http: httpx.Client, timer: FakeTime) -> None:
    seed(fake, 3)
    fake.throttle(2, retry_after="7")
    pages = list(client_for("woocommerce", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))
    assert sum(len(p.items) for p in pages) == 3
    assert timer.sleeps == [7.0, 7.0]
    assert [r.status for r in fake.requests] == [429, 429, 200]


def test_429_retry_after_http_date_is_measured_from_the_clock(fake: FakeChannel, http: httpx.Client,
                                                             timer: FakeTime) -> None:
    seed(fake, 1)
    fake.throttle(1, retry_after=format_datetime(NOW + timedelta(seconds=12), usegmt=True))
    list(client_for("shopify", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))
    assert timer.sleeps == [12.0]


def test_429_without_retry_after_backs_off_exponentially_with_jitter(fake: FakeChannel, http: httpx.Client,
                                                                    timer: FakeTime) -> None:
    seed(fake, 1)
    fake.throttle(3, retry_after=None)
    list(client_for("tiktok_shop", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))
    # rand() = 0.5 of a ceiling doubling from 1 s.
    assert timer.sleeps == [0.5, 1.0, 2.0]


def test_429_asking_for_a_long_wait_defers_instead_of_sleeping(fake: FakeChannel, http: httpx.Client,
                                                               timer: FakeTime) -> None:
    fake.throttle(1, retry_after="600")
    with pytest.raises(PollDeferred) as caught:
        list(client_for("shopify", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))
    assert caught.value.retry_after == 600.0
    assert timer.sleeps == []


def test_server_errors_are_retried_then_give_up(fake: FakeChannel, http: httpx.Client, timer: FakeTime) -> None:
    seed(fake, 2)
    fake.fail(2, status=503)
    pages = list(client_for("pinduoduo", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))
    assert sum(len(p.items) for p in pages) == 2
    assert timer.sleeps == [0.5, 1.0]

    fake.fail(10, status=502)
    with pytest.raises(PollFailed, match=r"HTTP 502.*after 5 attempts"):
        list(client_for("pinduoduo", fake, http, timer).pages(NOW - timedelta(hours=1), NOW))


def test_auth_and_body_level_errors_fail_at_once(fake: FakeChannel, http: httpx.Client, timer: FakeTime) -> None:
    clients = {channel: client_for(channel, fake, http, timer) for channel in ("shopify", "taobao", "tiktok_shop")}
    fake.access_token = "rotated"  # the shop's token no longer works
    with pytest.raises(PollFailed, match="HTTP 401"):
        list(clients["shopify"].pages(NOW - timedelta(hours=1), NOW))
    with pytest.raises(PollFailed, match=r"error_response\.code=27"):
        list(clients["taobao"].pages(NOW - timedelta(hours=1), NOW))
    with pytest.raises(PollFailed, match="105002"):
        list(clients["tiktok_shop"].pages(NOW - timedelta(hours=1), NOW))
    assert timer.sleeps == []
    assert len(fake.requests) == 3


def test_token_bucket_paces_page_requests(fake: FakeChannel, http: httpx.Client, timer: FakeTime) -> None:
    seed(fake, 8)
    list(client_for("shopify", fake, http, timer, rate=2.0, burst=1, page_size=2).pages(NOW - timedelta(hours=1),
                                                                                        NOW))
    assert timer.sleeps == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p["pagination"].update(style="offset"), "poll.pagination.style"),
    (lambda p: p.pop("items"), "poll.items"),
    (lambda p: p["window"].update(format="strftime"), "poll.window.pattern"),
    (lambda p: p["window"].update(timezone="Mars/Olympus"), "poll.window.timezone"),
    (lambda p: p["auth"][0].update(value="{password}"), r"poll.auth\[0\].value"),
    (lambda p: p["pagination"].update(page_size=0), "poll.pagination.page_size"),
])
def test_bad_poll_sections_name_the_key(mutate: Callable[[dict[str, Any]], Any], message: str) -> None:
    poll = section("shopify")
    mutate(poll)
    with pytest.raises(PollConfigError, match=message):
        PollConfig.from_spec(poll)


def test_shop_settings_override_the_spec_defaults() -> None:
    config = PollConfig.from_spec(section("shopify"), {"enabled": True, "interval_seconds": 15, "overlap_seconds": 0,
                                                       "rate_per_second": 0.5, "burst": 2})
    assert (config.interval_seconds, config.overlap_seconds, config.rate_per_second, config.burst) == (15, 0, 0.5, 2)
    with pytest.raises(PollConfigError, match=r"settings\.poll\.burst"):
        PollConfig.from_spec(section("shopify"), {"burst": -1})
    with pytest.raises(PollConfigError, match="api_base_url"):
        Credentials.from_settings({"access_token": "x"}, shop="s1")


# --------------------------------------------------------------------------- worker + inbox (SQLite, PostgreSQL)
class Specs:
    """A registry whose channels carry the given ``poll:`` sections."""

    def __init__(self, **sections: dict[str, Any]) -> None:
        self._sections = sections

    def get(self, channel: str) -> Any:
        return SimpleNamespace(poll=self._sections[channel])


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def register_shop(hub: OrderHub, actor: commands.Actor, fake: FakeChannel, code: str = "sh-1",
                  **poll: Any) -> None:
    settings: dict[str, object] = {"api_base_url": fake.base_url, "access_token": fake.access_token,
                                   "poll": {"enabled": True, **poll}}
    hub.bus.handle(commands.RegisterShop(actor=actor, code=code, channel="shopify", name="Tea shop",
                                         secret="shpss_0123456789", settings=settings))


def make_poller(hub: OrderHub, clock: FixedClock, http: httpx.Client, timer: FakeTime, *,
                page_size: int = 2, **overrides: Any) -> ChannelPoller:
    return ChannelPoller(hub.engine, clock, hub.bus, Specs(shopify=section("shopify", page_size=page_size,
                                                                           **overrides)),
                         http_client=http, sleep=timer.sleep, monotonic=timer.monotonic, rand=lambda: 0.5)


def inbox_rows(hub: OrderHub) -> list[tuple[str, str, str]]:
    """(external_id, event_version, source) of every shopify inbox row, sorted."""
    with hub.engine.connect() as conn:
        rows = conn.execute(select(inbox.c.external_id, inbox.c.event_version, inbox.c.source)
                            .where(inbox.c.channel == "shopify")).all()
    return sorted((r.external_id, r.event_version, r.source) for r in rows)


def cursor_of(hub: OrderHub, tenant_id: str, code: str = "sh-1") -> cursors.PollCursor:
    with hub.engine.connect() as conn:
        (shop,) = cursors.get_shop(conn, code, tenant_id=tenant_id)
        found = cursors.get_cursor(conn, tenant_id, shop.shop_id)
    assert found is not None
    return found


def test_a_pass_puts_every_page_into_the_inbox_and_advances_the_cursor(
        hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, timer: FakeTime,
        clock: FixedClock) -> None:
    seed(fake, 7)
    register_shop(hub, actor, fake)

    result = make_poller(hub, clock, http, timer).poll_now("sh-1")

    assert result.error is None
    assert (result.pages, result.items, result.accepted, result.duplicates) == (4, 7, 7, 0)
    rows = inbox_rows(hub)
    assert [r[0] for r in rows] == [str(1001 + i) for i in range(7)]
    assert {r[2] for r in rows} == {"poll"}
    cursor = cursor_of(hub, actor.tenant_id)
    # The window ends `lag` (5 s) before now; the first pass started a day back.
    assert cursor.updated_until == NOW - timedelta(seconds=5)
    assert result.since == NOW - timedelta(seconds=5) - timedelta(days=1)
    assert (cursor.pages, cursor.messages, cursor.last_error) == (4, 7, None)
    assert cursor.next_poll_at == NOW + timedelta(seconds=60)


def test_rerunning_a_pass_creates_no_new_inbox_rows(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                                    http: httpx.Client, timer: FakeTime, clock: FixedClock) -> None:
    # All updated within the overlap window, so the second pass re-reads every one.
    seed(fake, 5, start=NOW - timedelta(minutes=4), step=timedelta(seconds=30))
    register_shop(hub, actor, fake)
    poller = make_poller(hub, clock, http, timer)
    first = poller.poll_now("sh-1")
    before = inbox_rows(hub)

    clock.advance(seconds=60)
    second = poller.poll_now("sh-1")

    assert (first.accepted, first.duplicates) == (5, 0)
    assert (second.items, second.accepted, second.duplicates) == (5, 0, 5)
    assert inbox_rows(hub) == before
    # The same order pushed by webhook is the same inbox row: one dedup key for every source.
    pushed = fake.orders()[0]
    body = (f'{{"id":{pushed.id},"updated_at":"{pushed.updated_at.isoformat(timespec="seconds")}",'
            f'"created_at":"{pushed.created_at.isoformat(timespec="seconds")}"}}').encode()
    received = hub.bus.handle(commands.ReceiveChannelMessage(channel="shopify", shop_code="sh-1", source="webhook",
                                                             body=body, verify=False))
    assert received.status == "duplicate"
    assert inbox_rows(hub) == before


def _overlap_scenario(hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, timer: FakeTime,
                      clock: FixedClock, *, overlap: int) -> tuple[PassResult, PassResult]:
    # Six orders updated in the last few minutes, two per page, sorted by updated-at.
    seed(fake, 6, start=NOW - timedelta(seconds=200), step=timedelta(seconds=10))
    register_shop(hub, actor, fake, overlap_seconds=overlap)

    def edit_first_order(index: int) -> None:
        if index == 1:
            # Before page 2: order 1001 (already read on page 1) is edited, leaves the window, and every
            # later order moves up a slot, so 1003 slides onto page 1, which was already read.
            fake.upsert(1001, NOW - timedelta(seconds=1), note="gift wrap please")

    fake.between_pages = edit_first_order
    poller = make_poller(hub, clock, http, timer)
    first = poller.poll_now("sh-1")
    fake.between_pages = None
    clock.advance(seconds=60)
    second = poller.poll_now("sh-1")
    return first, second


def test_an_order_missed_while_paging_is_caught_next_pass_by_the_overlap(
        hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, timer: FakeTime,
        clock: FixedClock) -> None:
    first, second = _overlap_scenario(hub, actor, fake, http, timer, clock, overlap=300)

    assert first.error is None and first.accepted == 5  # 1003 was missed by this pass
    assert second.accepted == 2                          # 1003, and 1001's edited version
    ids = [r[0] for r in inbox_rows(hub)]
    assert sorted(set(ids)) == [str(i) for i in range(1001, 1007)]
    assert ids.count("1001") == 2                        # two versions of the edited order
    assert second.duplicates == 4


def test_without_an_overlap_the_missed_order_is_lost(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                                     http: httpx.Client, timer: FakeTime, clock: FixedClock) -> None:
    first, second = _overlap_scenario(hub, actor, fake, http, timer, clock, overlap=0)
    assert (first.accepted, second.accepted) == (5, 1)
    assert "1003" not in {r[0] for r in inbox_rows(hub)}


def test_backfill_repulls_a_past_range_through_the_same_dedup(
        hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, timer: FakeTime,
        clock: FixedClock) -> None:
    seed(fake, 4)                                                   # last half hour: polled
    fake.upsert(2001, NOW - timedelta(days=3, hours=-1))            # before the first pass's lookback
    fake.upsert(2002, NOW - timedelta(days=3, hours=2))
    register_shop(hub, actor, fake)
    poller = make_poller(hub, clock, http, timer)
    polled = poller.poll_now("sh-1")
    cursor_before = cursor_of(hub, actor.tenant_id)
    fractions: list[float] = []

    result = poller.backfill("sh-1", NOW - timedelta(days=4), NOW - timedelta(minutes=1),
                             progress=lambda fraction, _r: fractions.append(fraction))

    assert polled.accepted == 4
    assert result.error is None
    assert (result.items, result.accepted, result.duplicates) == (6, 2, 4)
    assert result.windows == 4                                      # a day per window
    rows = inbox_rows(hub)
    assert len(rows) == 6
    assert {r[0]: r[2] for r in rows} == {**{str(1001 + i): "poll" for i in range(4)},
                                         "2001": "backfill", "2002": "backfill"}
    assert cursor_of(hub, actor.tenant_id).updated_until == cursor_before.updated_until
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    again = poller.backfill("sh-1", NOW - timedelta(days=4), NOW - timedelta(minutes=1))
    assert (again.accepted, again.duplicates) == (0, 6)
    assert len(inbox_rows(hub)) == 6


def test_cursor_survives_a_new_worker_instance(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                               http: httpx.Client, timer: FakeTime, clock: FixedClock) -> None:
    seed(fake, 3, start=NOW - timedelta(minutes=4))
    register_shop(hub, actor, fake)
    assert make_poller(hub, clock, http, timer).run_once() == 3
    until = cursor_of(hub, actor.tenant_id).updated_until
    assert until == NOW - timedelta(seconds=5)

    fresh = make_poller(hub, clock, http, timer)
    requests = len(fake.requests)
    assert fresh.run_once() == 0                       # not due yet: nothing is requested
    assert len(fake.requests) == requests

    clock.advance(seconds=61)
    fake.upsert(1100, NOW + timedelta(seconds=30))
    assert fresh.run_once() == 4                       # 3 re-read through the overlap + 1 new
    # The new instance resumed from the stored cursor, minus the overlap.
    assert fake.requests[requests].query["updated_at_min"] == (until - timedelta(seconds=300)).isoformat()
    assert len(inbox_rows(hub)) == 4
    assert cursor_of(hub, actor.tenant_id).updated_until == NOW + timedelta(seconds=56)


def test_a_failing_pass_keeps_the_cursor_and_records_the_error(
        hub: OrderHub, actor: commands.Actor, fake: FakeChannel, http: httpx.Client, timer: FakeTime,
        clock: FixedClock) -> None:
    # 10-minute windows over the last half hour, one order in each: one page per window.
    for i, minutes in enumerate((25, 15, 5)):
        fake.upsert(1001 + i, NOW - timedelta(minutes=minutes))
    register_shop(hub, actor, fake, initial_lookback_seconds=1800)
    poller = make_poller(hub, clock, http, timer, max_window_seconds=600)
    # Every attempt at the second window fails: the first try and `max_retries` (4) retries.
    fake.between_pages = lambda index: fake.fail(5, status=500) if index == 0 else None

    failed = poller.poll_now("sh-1")

    start = NOW - timedelta(seconds=5) - timedelta(seconds=1800)
    assert failed.error is not None and "HTTP 500" in failed.error
    assert failed.windows == 1
    cursor = cursor_of(hub, actor.tenant_id)
    assert cursor.updated_until == start + timedelta(seconds=600)   # the first window completed
    assert cursor.last_error == failed.error
    assert [r[0] for r in inbox_rows(hub)] == ["1001"]

    fake.between_pages = None
    clock.advance(seconds=60)
    recovered = poller.poll_now("sh-1")
    assert recovered.error is None
    assert cursor_of(hub, actor.tenant_id).last_error is None
    assert [r[0] for r in inbox_rows(hub)] == ["1001", "1002", "1003"]


def test_a_long_retry_after_defers_the_shops_next_pass(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                                       http: httpx.Client, timer: FakeTime,
                                                       clock: FixedClock) -> None:
    seed(fake, 2)
    register_shop(hub, actor, fake)
    fake.throttle(1, retry_after="900")

    result = make_poller(hub, clock, http, timer).run_once()

    assert result == 0
    cursor = cursor_of(hub, actor.tenant_id)
    assert cursor.updated_until is None
    assert cursor.next_poll_at == NOW + timedelta(seconds=900)
    assert cursor.last_error is not None and "429" in cursor.last_error
    assert timer.sleeps == []


def test_the_shops_rate_limit_paces_the_pass(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                             http: httpx.Client, timer: FakeTime, clock: FixedClock) -> None:
    seed(fake, 8)
    register_shop(hub, actor, fake, rate_per_second=4, burst=1)
    result = make_poller(hub, clock, http, timer).poll_now("sh-1")
    assert result.pages == 4
    assert timer.sleeps == [0.25, 0.25, 0.25]


def test_shops_without_polling_are_left_alone(hub: OrderHub, actor: commands.Actor, fake: FakeChannel,
                                              http: httpx.Client, timer: FakeTime, clock: FixedClock) -> None:
    seed(fake, 2)
    hub.bus.handle(commands.RegisterShop(actor=actor, code="push-only", channel="shopify", name="Push only",
                                         secret="shpss_0123456789", settings={"api_base_url": fake.base_url}))
    assert make_poller(hub, clock, http, timer).run_once() == 0
    assert fake.requests == []


def test_builtin_specs_carry_the_documented_poll_sections() -> None:
    """The channel specs' ``poll:`` sections are the ones documented and tested above."""
    from orderhub.adapters.channels.mapping import load_registry  # noqa: PLC0415 - only this test needs specs

    registry = load_registry()
    for channel, documented in SECTIONS.items():
        spec = registry.get(channel)
        assert spec.poll == documented, f"{channel}: specs/{channel}.yaml poll: differs from docs/polling.md"
        PollConfig.from_spec(spec.poll)


def test_cli_poll_and_backfill(hub: OrderHub, actor: commands.Actor, settings: Any, fake: FakeChannel,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``orderhub shops poll`` / ``shops backfill`` (the functions cli/app.py registers) on the real database."""
    import typer  # noqa: PLC0415
    from typer.testing import CliRunner  # noqa: PLC0415

    from orderhub.entrypoints.cli.polling import shops_backfill, shops_poll  # noqa: PLC0415

    # An operator's spec override in $ORDERHUB_HOME/channels carries the documented poll: section.
    spec_file = Path(__file__).resolve().parents[2] / "src/orderhub/adapters/channels/specs/shopify.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["poll"] = section("shopify", page_size=2)
    (settings.home / "channels").mkdir(parents=True, exist_ok=True)
    (settings.home / "channels" / "shopify.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True),
                                                             encoding="utf-8")
    monkeypatch.setenv("ORDERHUB_HOME", str(settings.home))
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", settings.database_url)
    now = datetime.now(UTC)  # the CLI runs on the system clock; only relative times matter here
    for i in range(3):
        fake.upsert(1001 + i, now - timedelta(minutes=10 + i))
    fake.upsert(2001, now - timedelta(days=3))
    register_shop(hub, actor, fake)
    cli = typer.Typer()
    cli.command("poll")(shops_poll)
    cli.command("backfill")(shops_backfill)
    runner = CliRunner()
    # `orderhub` sends logs to stderr (main() configures it); here they are captured instead.
    with structlog.testing.capture_logs() as logs:
        _cli_session(cli, runner, now, hub)
    assert [entry["event"] for entry in logs].count("backfill_finished") == 2


def _cli_session(cli: Any, runner: Any, now: datetime, hub: OrderHub) -> None:
    import json  # noqa: PLC0415

    polled = runner.invoke(cli, ["poll", "sh-1", "--json"])
    assert polled.exit_code == 0, polled.output
    assert json.loads(polled.output)["accepted"] == 3

    since, until = (now - timedelta(days=5)).isoformat(), now.isoformat()
    filled = runner.invoke(cli, ["backfill", "sh-1", "--since", since, "--until", until, "--json"])
    assert filled.exit_code == 0, filled.output
    summary = json.loads(filled.output)
    assert (summary["accepted"], summary["duplicates"], summary["source"]) == (1, 3, "backfill")
    assert len(inbox_rows(hub)) == 4

    shown = runner.invoke(cli, ["backfill", "sh-1", "--since", since, "--until", until])
    assert shown.exit_code == 0 and "0 new, 4 duplicate" in shown.output
    assert runner.invoke(cli, ["poll", "no-such-shop"]).exit_code == 2
    assert runner.invoke(cli, ["backfill", "sh-1", "--since", "yesterday", "--until", until]).exit_code == 2
