"""The channel stock feed: how many units of a SKU each sales channel may sell (issue 4,
scope item 6).

All channels sell from one pool: the SKU's *sellable* stock, i.e. available less safety stock
(never below zero) summed over warehouses. A channel may be limited to a share of that pool
(``share_permille``; shares are independent and need not add up to 1000 — the reservation at
order time, not the feed, is what prevents overselling). When the SKU's available stock falls
under its low threshold, only the primary channel keeps selling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orderhub.domain.errors import DomainError
from orderhub.domain.inventory.stock import StockLevel

PERMILLE = 1000


class InvalidChannelFeed(DomainError):
    """A channel feed configuration is malformed: a share outside 0..1000‰, more than one
    primary channel, a blank or repeated channel name, or a negative stock figure."""

    code = "invalid_channel_feed"


@dataclass(frozen=True, slots=True)
class ChannelShare:
    """``channel`` may sell ``share_permille``‰ of the sellable pool; the ``primary`` channel
    keeps selling when stock runs low."""

    channel: str
    share_permille: int = PERMILLE
    primary: bool = False


def pool_figures(levels: Iterable[StockLevel]) -> tuple[int, int]:
    """(sellable, available) of one SKU summed over its stock rows (one per warehouse):
    sellable counts each row's available less its safety stock, never below zero."""
    sellable = available = 0
    for level in levels:
        sellable += level.sellable
        available += level.available
    return sellable, available


def check_channels(channels: Sequence[ChannelShare]) -> None:
    """Raise InvalidChannelFeed (with the field path, e.g. ``channels[2].share_permille``)
    for a blank or repeated channel name, a share outside 0..1000, or a second primary."""
    seen: set[str] = set()
    primary: str | None = None
    for i, share in enumerate(channels):
        where = f"channels[{i}]"
        if not isinstance(share.channel, str) or not share.channel.strip():
            raise InvalidChannelFeed(f"{where}.channel: a channel name is required", field=f"{where}.channel")
        if share.channel in seen:
            raise InvalidChannelFeed(f"{where}.channel: {share.channel!r} is listed twice", field=f"{where}.channel")
        seen.add(share.channel)
        value = share.share_permille
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PERMILLE:
            raise InvalidChannelFeed(f"{where}.share_permille: a whole number from 0 to 1000, got {value!r}",
                                     field=f"{where}.share_permille")
        if not isinstance(share.primary, bool):
            raise InvalidChannelFeed(f"{where}.primary: true or false, got {share.primary!r}",
                                     field=f"{where}.primary")
        if share.primary:
            if primary is not None:
                raise InvalidChannelFeed(f"{where}.primary: {primary!r} is already the primary channel; "
                                         "at most one channel may be primary", field=f"{where}.primary")
            primary = share.channel


def channel_quantities(sellable: int, available: int, channels: Sequence[ChannelShare], *,
                       low_threshold: int) -> dict[str, int]:
    """The quantity of one SKU each channel may sell, keyed by channel in the given order.

    ``sellable`` is available − safety stock (≥ 0) summed over warehouses and ``available``
    the plain available sum (see :func:`pool_figures`). Each channel gets
    ``floor(sellable × share_permille ÷ 1000)``. When ``available`` is below
    ``low_threshold`` every channel except the primary gets 0; the primary keeps its figure.
    With no primary channel configured, a low SKU is therefore set to 0 on *every* channel.
    A ``low_threshold`` of 0 never triggers.

    Raises InvalidChannelFeed for a malformed channel list (see :func:`check_channels`), a
    negative figure, or ``sellable`` above ``available`` (safety stock only ever subtracts).
    """
    for name, value in (("sellable", sellable), ("available", available), ("low_threshold", low_threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidChannelFeed(f"{name}: a whole number of at least 0, got {value!r}", field=name)
    if sellable > available:
        raise InvalidChannelFeed(f"sellable: {sellable} is more than the {available} units available",
                                 field="sellable")
    check_channels(channels)
    low = available < low_threshold
    return {share.channel: 0 if low and not share.primary else sellable * share.share_permille // PERMILLE
            for share in channels}


@dataclass(frozen=True, slots=True)
class ChannelFeedPolicy:
    """A tenant's channel feed settings: the channels with their shares, and the available
    level under which only the primary channel keeps selling."""

    channels: tuple[ChannelShare, ...] = ()
    low_threshold: int = 0

    def quantities(self, sellable: int, available: int) -> dict[str, int]:
        """:func:`channel_quantities` with this policy's channels and threshold."""
        return channel_quantities(sellable, available, self.channels, low_threshold=self.low_threshold)

    @staticmethod
    def from_mapping(data: Mapping[str, object]) -> ChannelFeedPolicy:
        """Parse a policy's ``channel_feed`` object::

            {"low_threshold": 5,
             "channels": [{"channel": "tmall", "share_permille": 1000, "primary": true},
                          {"channel": "douyin", "share_permille": 500}]}

        Both keys are optional. Raises InvalidChannelFeed naming the field
        (``channel_feed.channels[1].share_permille``…).
        """
        if not isinstance(data, Mapping):
            raise InvalidChannelFeed("channel_feed: must be an object", field="channel_feed")
        unknown = sorted(set(data) - {"channels", "low_threshold"})
        if unknown:
            raise InvalidChannelFeed(f"channel_feed.{unknown[0]}: unknown key; expected channels, low_threshold",
                                     field=f"channel_feed.{unknown[0]}")
        threshold = data.get("low_threshold", 0)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise InvalidChannelFeed(f"channel_feed.low_threshold: a whole number of at least 0, got {threshold!r}",
                                     field="channel_feed.low_threshold")
        raw = data.get("channels", [])
        if not isinstance(raw, list):
            raise InvalidChannelFeed("channel_feed.channels: a list of channel objects", field="channel_feed.channels")
        shares: list[ChannelShare] = []
        for i, body in enumerate(raw):
            where = f"channel_feed.channels[{i}]"
            if not isinstance(body, Mapping):
                raise InvalidChannelFeed(f"{where}: must be an object", field=where)
            extra = sorted(set(body) - {"channel", "share_permille", "primary"})
            if extra:
                raise InvalidChannelFeed(f"{where}.{extra[0]}: unknown key", field=f"{where}.{extra[0]}")
            channel = body.get("channel")
            share = body.get("share_permille", PERMILLE)
            primary = body.get("primary", False)
            if not isinstance(channel, str):
                raise InvalidChannelFeed(f"{where}.channel: a channel name is required", field=f"{where}.channel")
            if isinstance(share, bool) or not isinstance(share, int):
                raise InvalidChannelFeed(f"{where}.share_permille: a whole number from 0 to 1000, got {share!r}",
                                         field=f"{where}.share_permille")
            if not isinstance(primary, bool):
                raise InvalidChannelFeed(f"{where}.primary: true or false, got {primary!r}", field=f"{where}.primary")
            shares.append(ChannelShare(channel, share, primary))
        try:
            check_channels(shares)
        except InvalidChannelFeed as error:
            path = f"channel_feed.{error.field}"
            raise InvalidChannelFeed(f"channel_feed.{error.message}", field=path) from None
        return ChannelFeedPolicy(tuple(shares), threshold)
