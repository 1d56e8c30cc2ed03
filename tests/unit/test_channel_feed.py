"""The channel stock feed: shares of the sellable pool, the low-stock cut-off that leaves only
the primary channel selling, and validation of the channel list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderhub.domain.errors import DomainError
from orderhub.domain.inventory.feed import (
    ChannelFeedPolicy,
    ChannelShare,
    InvalidChannelFeed,
    channel_quantities,
    check_channels,
    pool_figures,
)
from orderhub.domain.inventory.stock import StockLevel

TMALL = ChannelShare("tmall", primary=True)
JD = ChannelShare("jd", 600)
DOUYIN = ChannelShare("douyin", 333)


def test_every_channel_gets_its_share_of_the_sellable_pool_rounded_down() -> None:
    assert channel_quantities(100, 120, [TMALL, JD, DOUYIN], low_threshold=10) == {
        "tmall": 100, "jd": 60, "douyin": 33}
    assert channel_quantities(7, 7, [ChannelShare("a", 500), ChannelShare("b", 999)], low_threshold=0) == {
        "a": 3, "b": 6}


def test_shares_default_to_the_whole_pool_and_may_overlap() -> None:
    quantities = channel_quantities(40, 50, [ChannelShare("a"), ChannelShare("b")], low_threshold=0)
    assert quantities == {"a": 40, "b": 40}


def test_a_zero_share_sells_nothing() -> None:
    assert channel_quantities(40, 50, [ChannelShare("paused", 0), TMALL], low_threshold=0) == {
        "paused": 0, "tmall": 40}


def test_under_the_threshold_only_the_primary_keeps_selling() -> None:
    channels = [JD, ChannelShare("tmall", 500, primary=True), DOUYIN]
    assert channel_quantities(8, 9, channels, low_threshold=10) == {"jd": 0, "tmall": 4, "douyin": 0}


def test_the_threshold_is_strictly_below() -> None:
    assert channel_quantities(10, 10, [TMALL, JD], low_threshold=10) == {"tmall": 10, "jd": 6}
    assert channel_quantities(9, 9, [TMALL, JD], low_threshold=10) == {"tmall": 9, "jd": 0}


def test_the_threshold_looks_at_available_not_sellable() -> None:
    # Safety stock takes sellable down to 2, but 30 are available: not low.
    assert channel_quantities(2, 30, [TMALL, JD], low_threshold=10) == {"tmall": 2, "jd": 1}


def test_without_a_primary_a_low_sku_is_zero_everywhere() -> None:
    assert channel_quantities(5, 5, [JD, DOUYIN], low_threshold=6) == {"jd": 0, "douyin": 0}


def test_a_zero_threshold_never_cuts_off() -> None:
    assert channel_quantities(0, 0, [JD], low_threshold=0) == {"jd": 0}
    assert channel_quantities(1, 1, [JD, DOUYIN], low_threshold=0) == {"jd": 0, "douyin": 0}   # floors


def test_no_channels_gives_an_empty_feed() -> None:
    assert channel_quantities(10, 10, [], low_threshold=5) == {}


def test_pool_figures_sum_sellable_and_available_over_warehouses() -> None:
    levels = [StockLevel("SH", "A", on_hand=10, reserved=3, safety_stock=2),          # available 7, sellable 5
              StockLevel("GZ", "A", on_hand=4, presale_reserved=1, safety_stock=5),   # available 3, sellable 0
              StockLevel("CD", "A", on_hand=0)]
    sellable, available = pool_figures(levels)
    assert (sellable, available) == (5, 10)
    assert channel_quantities(sellable, available, [TMALL, JD], low_threshold=0) == {"tmall": 5, "jd": 3}


@pytest.mark.parametrize(("channels", "field"), [
    ([ChannelShare("a", 1001)], "channels[0].share_permille"),
    ([ChannelShare("a"), ChannelShare("b", -1)], "channels[1].share_permille"),
    ([ChannelShare("a", True)], "channels[0].share_permille"),
    ([ChannelShare("a", primary=True), ChannelShare("b"), ChannelShare("c", primary=True)], "channels[2].primary"),
    ([ChannelShare("a"), ChannelShare("a", 500)], "channels[1].channel"),
    ([ChannelShare("")], "channels[0].channel"),
])
def test_bad_channel_lists_are_rejected_with_the_field(channels: list[ChannelShare], field: str) -> None:
    with pytest.raises(InvalidChannelFeed) as error:
        channel_quantities(10, 10, channels, low_threshold=0)
    assert error.value.field == field
    assert error.value.code == "invalid_channel_feed"
    assert isinstance(error.value, DomainError)


@pytest.mark.parametrize(("sellable", "available", "threshold", "field"), [
    (-1, 5, 0, "sellable"),
    (1, -5, 0, "available"),
    (1, 5, -1, "low_threshold"),
    (6, 5, 0, "sellable"),
])
def test_bad_figures_are_rejected(sellable: int, available: int, threshold: int, field: str) -> None:
    with pytest.raises(InvalidChannelFeed) as error:
        channel_quantities(sellable, available, [TMALL], low_threshold=threshold)
    assert error.value.field == field


def test_a_valid_list_passes_the_check() -> None:
    check_channels([TMALL, JD, DOUYIN, ChannelShare("zero", 0)])


def test_feed_policy_from_a_tenant_mapping() -> None:
    policy = ChannelFeedPolicy.from_mapping({
        "low_threshold": 5,
        "channels": [{"channel": "tmall", "primary": True}, {"channel": "douyin", "share_permille": 500}],
    })
    assert policy == ChannelFeedPolicy((ChannelShare("tmall", 1000, True), ChannelShare("douyin", 500)), 5)
    assert policy.quantities(20, 20) == {"tmall": 20, "douyin": 10}
    assert policy.quantities(4, 4) == {"tmall": 4, "douyin": 0}
    assert ChannelFeedPolicy.from_mapping({}) == ChannelFeedPolicy((), 0)


@pytest.mark.parametrize(("data", "field"), [
    ({"low_threshold": -1}, "channel_feed.low_threshold"),
    ({"low_threshold": "5"}, "channel_feed.low_threshold"),
    ({"threshold": 5}, "channel_feed.threshold"),
    ({"channels": {"tmall": {}}}, "channel_feed.channels"),
    ({"channels": ["tmall"]}, "channel_feed.channels[0]"),
    ({"channels": [{"share_permille": 5}]}, "channel_feed.channels[0].channel"),
    ({"channels": [{"channel": "a", "share": 5}]}, "channel_feed.channels[0].share"),
    ({"channels": [{"channel": "a", "share_permille": 0.5}]}, "channel_feed.channels[0].share_permille"),
    ({"channels": [{"channel": "a", "share_permille": 2000}]}, "channel_feed.channels[0].share_permille"),
    ({"channels": [{"channel": "a", "primary": "yes"}]}, "channel_feed.channels[0].primary"),
    ({"channels": [{"channel": "a"}, {"channel": "a"}]}, "channel_feed.channels[1].channel"),
    ({"channels": [{"channel": "a", "primary": True}, {"channel": "b", "primary": True}]},
     "channel_feed.channels[1].primary"),
])
def test_bad_feed_policies_are_rejected_with_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidChannelFeed) as error:
        ChannelFeedPolicy.from_mapping(data)
    assert error.value.field == field
    assert error.value.message.startswith(field)


SHARES = st.lists(st.integers(0, 1000), max_size=6)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(available=st.integers(0, 10_000), safety=st.integers(0, 10_000), threshold=st.integers(0, 100),
       shares=SHARES, primary_at=st.integers(0, 6))
def test_no_channel_is_ever_offered_more_than_the_sellable_pool(available: int, safety: int, threshold: int,
                                                                 shares: list[int],
                                                                 primary_at: int) -> None:
    sellable = max(0, available - safety)
    channels = [ChannelShare(f"ch{i}", share, primary=i == primary_at) for i, share in enumerate(shares)]
    quantities = channel_quantities(sellable, available, channels, low_threshold=threshold)
    assert list(quantities) == [c.channel for c in channels]
    for channel in channels:
        figure = quantities[channel.channel]
        assert 0 <= figure <= sellable
        if available < threshold and not channel.primary:
            assert figure == 0
        else:
            assert figure * 1000 <= sellable * channel.share_permille < (figure + 1) * 1000
